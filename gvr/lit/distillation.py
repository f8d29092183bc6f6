"""One-step distillation of a trained gvr model (the teacher) into a student served with one Euler step.

The student is the ``backbone`` of an ordinary :class:`gvr.lit.vsr_module.VSRModule` whose ``distill`` argument holds
this recipe; its checkpoint loads in ``gvr upscale``, ``gvr test`` and ``gvr score`` like any other, and
needs no teacher file there (the teacher is read when training starts).

Objective, for a batch of HR latents ``z0`` and LR latents ``c`` (all noise drawn from the batch's key):

1. **Trajectory matching (ODE distillation).** Both models start from the same source sample
   ``x1 = U(c) + sigma eps`` of the flow (`gvr.flow.FlowSource`). The teacher integrates its flow ODE with
   ``teacher_steps`` Euler steps to ``z_T``; the student takes one step, ``z_S = x1 - v_S(x1, t=1)``; the
   loss is ``|| z_S - z_T ||^2``. This is knowledge distillation of the probability-flow ODE (Luhman &
   Luhman, "Knowledge Distillation in Iterative Generative Models for Improved Sampling Speed", 2021), the
   one-step "distillation" stage of rectified flow on teacher pairs (Liu et al., "Flow Straight and Fast",
   ICLR 2023). With an anchored, noise-free source (``sigma = 0``) and one teacher step it transfers the
   teacher's function to a student of another attention pattern (windows instead of full attention).
2. **Pixel loss through the decoder** against the ground truth: L1, plus `frequency_loss` and
   `gradient_loss` (no downloaded weights), on ``decode(z_S)``; and `grid_excess_loss`, a guard against the
   token-period pattern that sharpening objectives grow (its 4-pixel grid energy above the ground truth's).
3. **Optional feature term** (``feature_weight > 0``): the student's hidden state after each DiT block against
   the teacher's at the same step (`feature_loss`, relative), a signal inside the network besides its output.
4. **Optional adversarial term** (``adversarial_weight > 0``): a small conditional video discriminator
   trained here with the relativistic pairing loss and SeedVR2's approximated R1/R2 penalties (APT: Wang et
   al., "SeedVR2: One-Step Video Restoration via Diffusion Adversarial Post-Training", 2025).

One optimizer steps the student and the discriminator together (two parameter groups, each clipped on its
own): the discriminator's loss sees the student's output detached, and the generator's adversarial loss
runs the discriminator with detached parameters, so each loss moves only its own network and Lightning's
automatic optimisation (accumulation, clipping, resume) applies unchanged.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.func import functional_call

from gvr.flow import augment_condition
from gvr.lit.distill_losses import (
    approximate_r1,
    feature_loss,
    frequency_loss,
    gradient_loss,
    grid_excess_loss,
    relativistic_d_loss,
    relativistic_g_loss,
)
from gvr.ops.resize import resize_video

log = logging.getLogger(__name__)


# Student modules the teacher may lack: zero-initialised, so the student still starts as the teacher.
STUDENT_ONLY = ("refiner.",)


def load_student(net: nn.Module, state: dict, teacher_path: str) -> None:
    """Load the teacher's ``state`` into the student ``net``; only the student's `STUDENT_ONLY` modules and its
    ``optional_weights`` (`SimpleGVR`'s ratio embedding) may be absent from it."""
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes differ
        problem = str(err).splitlines()[0]
    else:
        optional = STUDENT_ONLY + tuple(getattr(net, "optional_weights", ()))  # e.g. a ratio embedding, zero at start
        extra = [k for k in missing if not k.startswith(optional)]
        problem = f"missing keys {extra[:3]}, unexpected keys {unexpected[:3]}" if extra or unexpected else None
    if problem is not None:
        raise ValueError(f"distill: the student does not fit the teacher {teacher_path} ({problem} ...); "
                         "give it the teacher's backbone sizes or set init_from_teacher: false")


def check_teacher_scales(teacher: dict, student: dict, teacher_path: str) -> None:
    """The teacher must know every factor the student trains on: the same ``scale``, or for an any-scale student
    (``scale_range``) a teacher whose own ``scale_range`` holds the student's."""
    low, high = student.get("scale_range") or (student["scale"], student["scale"])
    t_low, t_high = teacher.get("scale_range") or (teacher["scale"], teacher["scale"])
    if student.get("scale_range") is None and teacher.get("scale_range") is None:
        if abs(float(teacher["scale"]) - float(student["scale"])) > 1e-6:
            raise ValueError(f"distill: the teacher is a x{teacher['scale']} model, the student x{student['scale']}; "
                             "set data.scale to the teacher's")
    elif not (t_low - 1e-6 <= low and high <= t_high + 1e-6):
        raise ValueError(f"distill: the student trains on factors x{low:g} to x{high:g}, but the teacher {teacher_path} "
                         f"knows x{t_low:g} to x{t_high:g} only; distil an any-scale teacher (configs/anyscale.yaml) "
                         "whose data.scale_range holds the student's")


@contextmanager
def block_outputs(net: nn.Module, enabled: bool = True) -> Iterator[list[Tensor]]:
    """While open, append the output of each of ``net.blocks`` (the DiT blocks) to the yielded list, in call order;
    a net called several times (an ODE of several steps) appends ``len(net.blocks)`` outputs per call. Closed,
    nothing is recorded (a recompute in backward adds nothing). ``enabled`` False yields an empty list."""
    outputs: list[Tensor] = []
    if not enabled:
        yield outputs
        return
    blocks = getattr(net, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not len(blocks):
        raise ValueError(f"distill: feature_weight needs a backbone with DiT blocks (net.blocks), got {type(net).__name__}")
    handles = [b.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for b in blocks]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


def budget_gate(mse: float, budget: float) -> float:
    """The adversarial weight's factor for a teacher MSE of ``mse``: 1 up to ``budget``, linearly to 0 at twice it."""
    return min(1.0, max(0.0, 2.0 - mse / budget))


class Distillation(nn.Module):
    """The one-step distillation recipe of a `VSRModule` (see the module docstring).

    Args:
        teacher: ``gvr fit`` checkpoint of the teacher (its EMA weights); read when training starts only.
        teacher_steps: Euler steps of the teacher's ODE that give the target; None: the teacher's ``sample_steps``.
        init_from_teacher: start the student (and its EMA) from the teacher's weights; the student may differ
            from the teacher in its attention operators (they hold no weights), not in its shapes.
        distill_weight: weight of the latent MSE between the student's one-step output and the teacher's.
        pixel_weight: weight of the L1 loss of the decoded student output against the ground-truth pixels.
        frequency_weight: weight of `frequency_loss` (decoded output against ground truth).
        gradient_weight: weight of `gradient_loss` (decoded output against ground truth).
        grid_weight: weight of `grid_excess_loss` (the output's token-period pattern above the ground truth's,
            in 8-bit levels); ``grid_period`` is the period in pixels (4 for PatchCodec x2 with 2x2 patches).
        feature_weight: weight of `feature_loss`, the student's hidden state after each DiT block against the
            teacher's in its first ODE step (the same ``x1``, ``t = 1``); needs the teacher's depth and ``s_inference``.
        adversarial_weight: weight of the generator's relativistic GAN loss; 0 trains no discriminator.
        discriminator: the discriminator (e.g. `gvr.models.VideoDiscriminator`); needed when
            ``adversarial_weight > 0``.
        discriminator_lr: AdamW learning rate of the discriminator.
        r1_weight: weight of the approximated R1 (real) and R2 (fake) penalties of the discriminator.
        r1_sigma: noise standard deviation of the approximated penalties (pixels in [-1, 1]).
        adversarial_start: optimizer step from which the generator feels the adversarial loss (the
            discriminator trains from the start, so it is not random when it begins to push).
        adversarial_budget: the latent MSE to the teacher the GAN may cost; None: no limit. Once the
            discriminator wins, the generator's adversarial loss pulls the student away from its teacher (the MSE
            grows several times over a run, docs/anyscale.md); with a budget the adversarial weight is
            scaled by `budget_gate` of a running mean of that MSE: full while the mean is at most the budget,
            fading linearly to zero at twice it. Needs ``distill_weight > 0``.
        budget_decay: decay of the running mean of the MSE (per training batch; 0.95 is about 20 batches).
    """

    def __init__(
        self,
        teacher: str,
        teacher_steps: int | None = None,
        init_from_teacher: bool = True,
        distill_weight: float = 1.0,
        pixel_weight: float = 1.0,
        frequency_weight: float = 0.1,
        gradient_weight: float = 0.0,
        grid_weight: float = 0.0,
        grid_period: int = 4,
        feature_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        discriminator: nn.Module | None = None,
        discriminator_lr: float = 1e-4,
        r1_weight: float = 1.0,
        r1_sigma: float = 0.01,
        adversarial_start: int = 0,
        adversarial_budget: float | None = None,
        budget_decay: float = 0.95,
    ):
        super().__init__()
        weights = dict(distill_weight=distill_weight, pixel_weight=pixel_weight, frequency_weight=frequency_weight,
                       gradient_weight=gradient_weight, grid_weight=grid_weight, feature_weight=feature_weight,
                       adversarial_weight=adversarial_weight, r1_weight=r1_weight)
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"Distillation: loss weights must be >= 0, got {weights}")
        if teacher_steps is not None and teacher_steps < 1:
            raise ValueError(f"Distillation: teacher_steps must be >= 1, got {teacher_steps}")
        if adversarial_weight > 0 and discriminator is None:
            raise ValueError("Distillation: adversarial_weight > 0 needs a discriminator (gvr.models.VideoDiscriminator)")
        if adversarial_budget is not None:
            if not adversarial_budget > 0:
                raise ValueError(f"Distillation: adversarial_budget must be > 0 (a latent MSE), got {adversarial_budget}")
            if distill_weight <= 0:
                raise ValueError("Distillation: adversarial_budget limits the latent MSE to the teacher; it needs distill_weight > 0")
        if not 0 <= budget_decay < 1:
            raise ValueError(f"Distillation: budget_decay must be in [0, 1), got {budget_decay}")
        if grid_period < 2:
            raise ValueError(f"Distillation: grid_period must be >= 2 pixels, got {grid_period}")
        self.teacher_path, self.teacher_steps, self.init_from_teacher = teacher, teacher_steps, init_from_teacher
        self.grid_period = grid_period
        self.weights = weights
        self.discriminator = discriminator if adversarial_weight > 0 else None
        self.discriminator_lr, self.r1_sigma, self.adversarial_start = discriminator_lr, r1_sigma, adversarial_start
        self.adversarial_budget, self.budget_decay = adversarial_budget, budget_decay
        if adversarial_budget is not None and self.discriminator is None:
            # e.g. distill_anyscale.yaml with --model.distill.init_args.adversarial_weight 0: nothing to gate
            log.warning("Distillation: adversarial_budget %g has no effect without the GAN (adversarial_weight 0)",
                        adversarial_budget)
        if adversarial_budget is not None and self.discriminator is not None:
            # The running mean of the teacher MSE: in the checkpoint, so a resumed run gates as the uninterrupted one.
            self.register_buffer("budget_mse", torch.tensor(-1.0))  # < 0: no batch seen yet
        self.__dict__["teacher"] = None  # a plain attribute: never in the state dict, checkpoints or .to()

    # ---- the teacher -------------------------------------------------------------------------------

    def load_teacher(self, module, init_student: bool) -> None:
        """Read the teacher next to the student ``module``; copy its weights into the student when ``init_student``.

        The teacher must share the student's codec, scale and flow source (the same ``x1``): anything else is a
        clear error, never a silent mismatch.
        """
        from gvr.lit.checkpoints import load_gvr_module

        teacher = load_gvr_module(self.teacher_path, "VSRModule", str(module.device))
        teacher.requires_grad_(False).eval()
        if teacher.codec.describe() != module.codec.describe():
            raise ValueError(f"distill: the teacher {self.teacher_path} uses codec {teacher.codec.describe()}, the student "
                             f"{module.codec.describe()}: they must share one latent space")
        check_teacher_scales(teacher.hparams, module.hparams, self.teacher_path)
        ts, ss = teacher.objective.source, module.objective.source
        if (ts.anchor, ts.sigma, ts.resize) != (ss.anchor, ss.sigma, ss.resize):
            raise ValueError(f"distill: the teacher's flow source (anchor {ts.anchor}, sigma {ts.sigma}, {ts.resize}) differs "
                             f"from the student's ({ss.anchor}, {ss.sigma}, {ss.resize}); "
                             "set model.objective.init_args.source to the teacher's")
        if self.weights["feature_weight"] > 0:
            t_depth, s_depth = len(getattr(teacher.inference_net, "blocks", ())), len(getattr(module.backbone, "blocks", ()))
            if t_depth != s_depth or not s_depth:
                raise ValueError(f"distill: feature_weight pairs the DiT blocks of student and teacher, but the teacher "
                                 f"{self.teacher_path} has {t_depth} and the student {s_depth}; give the student the teacher's depth")
            if float(teacher.objective.s_inference) != float(module.objective.s_inference):
                raise ValueError(f"distill: feature_weight compares the two networks on one input, but the teacher's "
                                 f"s_inference ({teacher.objective.s_inference}) differs from the student's "
                                 f"({module.objective.s_inference})")
        self.__dict__["teacher"] = teacher
        if init_student:
            state = teacher.inference_net.state_dict()
            for net in (m for m in (module.backbone, module.ema) if m is not None):
                load_student(net, state, self.teacher_path)
            log.info("initialised the student from the teacher %s", self.teacher_path)

    def setup_fit(self, module, resuming: bool) -> bool:
        """Read the teacher (resuming too); True when the student starts as the teacher (``init_from_teacher``,
        not resuming, and neither ``init_from`` nor ``init_from_base`` set on the module)."""
        from_teacher = (self.init_from_teacher and not resuming
                        and not (module.hparams.init_from or module.hparams.init_from_base))
        self.load_teacher(module, init_student=from_teacher)
        return from_teacher

    def reference(self, module, lr: Tensor, size: tuple[int, int], seed: int, captions) -> Tensor | None:
        """The teacher's upscale of ``lr`` (its ``teacher_steps``, the student's colour fix) for ``val/psnr_teacher``;
        None before the teacher is read (validation outside ``fit``)."""
        if self.teacher is None:
            return None
        return self._teacher(module.device).upscale_clip(lr, size, steps=self.teacher_steps, seed=seed, captions=captions,
                                                         color_fix=module.hparams.color_fix)

    def _teacher(self, device: torch.device):
        """The loaded teacher on ``device`` (Lightning moves the student after ``setup``; the teacher follows here)."""
        if self.teacher is None:
            raise RuntimeError("distill: the teacher is not loaded (it is read in setup('fit'))")
        if self.teacher.device != device:
            self.teacher.to(device)
        return self.teacher

    def teacher_latent(self, x1: Tensor, anchor: Tensor | None, c: Tensor, noise: Tensor, text: tuple = ()) -> Tensor:
        """The teacher's ODE solution from the source sample ``x1`` (its own ``s_inference`` on the condition)."""
        teacher = self._teacher(x1.device)
        return teacher.objective.solve(teacher.inference_net, x1, anchor, c, noise, self.teacher_steps, text=text)

    # ---- the objective -------------------------------------------------------------------------------

    def training_loss(self, module, z0: Tensor, c: Tensor, g: torch.Generator, batch: dict) -> tuple[Tensor, dict]:
        """Total loss of one batch for the student (and the discriminator) and its logged terms."""
        w, dev = self.weights, z0.device
        b = z0.shape[0]
        eps = torch.randn(z0.shape, generator=g, device=dev)
        noise = torch.randn(c.shape, generator=g, device=dev)
        text = module.text(batch.get("caption"), b, g)
        lr_pixels = batch.get("lr")
        flow = module.objective
        anchor = flow.anchor(c, tuple(z0.shape[-2:]), module.codec, None, lr_pixels)
        x1 = flow.source.start(anchor, eps)

        # 1. One student step from t = 1 and the teacher's trajectory from the same x1.
        s = torch.full((b,), float(flow.s_inference), device=dev)
        c_s = augment_condition(c, s, noise)
        t1 = torch.ones(b, device=dev)
        features = w["feature_weight"] > 0
        with block_outputs(module.backbone, features) as h_s:
            z_s = x1 - flow.velocity(module.backbone, x1, anchor, t1, c_s, s, *text)
        logs, total = {}, z0.new_zeros(())
        if w["distill_weight"] > 0 or features:
            with block_outputs(self._teacher(dev).inference_net, features) as h_t:
                z_t = self.teacher_latent(x1, anchor, c, noise, text)
            if features:  # the teacher's first step is the student's input (x1, t = 1); later steps are not
                logs["feature"] = feature_loss(h_s, h_t[: len(h_s)])
                total = total + w["feature_weight"] * logs["feature"]
        if w["distill_weight"] > 0:
            logs["distill"] = (z_s.float() - z_t.float()).square().mean()
            total = total + w["distill_weight"] * logs["distill"]
        gate = 1.0  # the adversarial weight's factor: below 1 once the student spends its adversarial_budget
        if hasattr(self, "budget_mse"):  # a budget and a GAN to gate (__init__)
            gate = self._budget_gate(logs["distill"])
            logs["adversarial_gate"] = torch.tensor(gate)

        # 2. Pixel terms through the decoder against the ground truth.
        pixel_terms = ("pixel_weight", "frequency_weight", "gradient_weight", "grid_weight", "adversarial_weight")
        if any(w[k] > 0 for k in pixel_terms):
            with torch.autocast(dev.type, enabled=False):
                fake = module.codec.decode_with_grad(z_s.float())
            hr = batch["hr"].float() if "hr" in batch else module.codec.decode(z0.float())
            fake = fake[:, :, : hr.shape[2], : hr.shape[3], : hr.shape[4]]
            grid = lambda x, y: grid_excess_loss(x, y, self.grid_period)  # noqa: E731
            for key, fn in (("pixel", lambda x, y: (x - y).abs().mean()), ("frequency", frequency_loss), ("gradient", gradient_loss),
                            ("grid", grid)):
                if w[f"{key}_weight"] > 0:
                    logs[key] = fn(fake, hr)
                    total = total + w[f"{key}_weight"] * logs[key]

            # 3. The adversarial pair: the discriminator learns on detached fakes, the student through frozen copies.
            if self.discriminator is not None:
                lr = lr_pixels.float() if lr_pixels is not None else module.codec.decode(c.float())
                cond = resize_video(lr[:, :, : hr.shape[2]], tuple(hr.shape[-2:]), "bicubic")
                d = self.discriminator
                real_logits = d(hr, cond)
                logs["d"] = relativistic_d_loss(real_logits, d(fake.detach(), cond))
                logs["r1"] = 0.5 * (approximate_r1(d, hr, self.r1_sigma, g, cond=cond)
                                    + approximate_r1(d, fake.detach(), self.r1_sigma, g, cond=cond))
                total = total + logs["d"] + w["r1_weight"] * logs["r1"]
                if module.global_step >= self.adversarial_start:
                    frozen = {k: p.detach() for k, p in d.named_parameters()}
                    fake_logits = functional_call(d, frozen, (fake, cond))
                    logs["adversarial"] = relativistic_g_loss(real_logits.detach(), fake_logits)
                    total = total + w["adversarial_weight"] * gate * logs["adversarial"]
        return total, logs

    @torch.no_grad()
    def _budget_gate(self, mse: Tensor) -> float:
        """Fold this batch's teacher MSE (mean over ranks) into ``budget_mse``; the gate of the adversarial weight."""
        mse = mse.detach().float()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            mse = mse.clone()
            torch.distributed.all_reduce(mse)
            mse /= torch.distributed.get_world_size()
        prev = self.budget_mse
        new = mse if prev < 0 else self.budget_decay * prev + (1 - self.budget_decay) * mse
        self.budget_mse.copy_(new)
        return budget_gate(float(new), self.adversarial_budget)

    def parameter_groups(self, student_params: list, lr: float) -> list[dict]:
        """AdamW parameter groups: the student at ``lr``, the discriminator (if any) at ``discriminator_lr``."""
        groups = [{"params": student_params, "lr": lr, "name": "student"}]
        if self.discriminator is not None:
            groups.append({"params": list(self.discriminator.parameters()), "lr": self.discriminator_lr, "name": "discriminator"})
        return groups
