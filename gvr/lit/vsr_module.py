"""VSRModule: the SimpleGVR backbone trained with rectified flow on codec latents.

Lightning lives here and at the CLI only: the backbone is a pure ``nn.Module``, the objective and the
sampler are pure functions in :mod:`gvr.flow`, the codec is a frozen :class:`LatentCodec`.
"""

import logging
from collections.abc import Sequence
from typing import Literal

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from gvr.codecs.codec import LatentCodec
from gvr.flow.objective import FlowObjective
from gvr.lit.distillation import Distillation
from gvr.lit.flow_module import CodecFlowModule, ema_copy, load_network_weights, read_network_weights
from gvr.metrics.image import FrameGrid, FramePSNR, FrameSSIM
from gvr.models.from_base import vsr_weights_from_base
from gvr.models.text import TextEncoder
from gvr.ops.colorfix import ColorFix
from gvr.ops.resize import output_size, resize_video
from gvr.ops.seeding import generator
from gvr.pipeline.vsr import SCALE_TOLERANCE, VSRPipeline  # noqa: F401  (SCALE_TOLERANCE public here too)

log = logging.getLogger(__name__)


def training_noise_key(step: int, batch_idx: int, accumulate: int, rank: int) -> tuple[int, int, int]:
    """Key of a training batch's noise: the optimizer step, the micro-batch within it and the rank.

    With ``accumulate_grad_batches > 1`` the micro-batches of one step must not redraw the same ``t``, ``s`` and
    noise; every key is restored on resume (step and batch index), so resumed runs stay exact.
    """
    return step, batch_idx % max(1, accumulate), rank


class FlowTraining:
    """The flow objective as `VSRModule` trains it (``gvr fit``). `gvr.lit.Distillation` (``gvr distill``) answers
    the same four calls, so the module never asks which of the two it trains."""

    def training_loss(self, module, z0: Tensor, c: Tensor, g: torch.Generator, batch: dict) -> tuple[Tensor, dict]:
        """The loss of one batch and its logged terms (none besides ``train/loss``)."""
        return module.flow_loss(z0, c, g, batch.get("caption"), batch.get("lr"), batch.get("hr")), {}

    def parameter_groups(self, params: list, lr: float) -> list:
        """What AdamW optimises: the backbone's parameters alone."""
        return params

    def setup_fit(self, module, resuming: bool) -> bool:
        """Nothing to prepare; False: the module's own ``init_from`` / ``init_from_base`` start the weights."""
        return False

    def reference(self, module, lr: Tensor, size: tuple[int, int], seed: int, captions) -> Tensor | None:
        """No reference output to validate against (a distillation returns its teacher's)."""
        return None


FLOW_TRAINING = FlowTraining()


class VSRModule(CodecFlowModule):
    """Latent video super-resolution with rectified flow, noise-augmented condition and EMA weights.

    Args:
        backbone: the velocity network ``v(z_t, t, c, s)`` (e.g. ``gvr.models.SimpleGVR``).
        codec: the frozen latent codec shared by the LR condition and the HR target.
        objective: the rectified-flow objective (`gvr.flow.FlowObjective`): where the flow starts (``source``),
            the training sampler of ``t`` (``timesteps``), what the backbone outputs (``prediction``), the
            condition's noise levels (``s_range``, ``s_inference``), the inference schedule (``sample_steps``,
            ``sample_shift``) and the temporal term (``temporal_weight``); None is the paper's (pure noise, uniform
            ``t``, ``s ~ U[0.3, 0.6]``, 50 Euler steps). In a config: ``model.objective.init_args.sample_steps``.
        color_fix: colour correction of decoded outputs against the bicubic input (`gvr.ops.colorfix`): "none",
            "wavelet" or "adain"; the default of `gvr upscale`, `gvr test` and validation.
        scale: super-resolution factor (HR size / LR size) that ``gvr upscale`` applies by default (linked from
            ``data.scale``); a model trained at this one factor refuses others (`check_scale`).
        scale_range: ``[low, high]``, the factors an any-scale model was trained on (linked from ``data.scale_range``;
            its backbone embeds the ratio); ``gvr upscale --scale`` / ``--size`` then take any factor inside it.
        train_frames: frames of a training clip (linked from ``data.num_frames``): the temporal context that
            ``gvr upscale`` gives a full-attention model; None: 17, the paper's clip.
        temporal_motion: where the objective's temporal term (``temporal_weight``) takes the frame-to-frame change
            of the error: "flow" along the ground truth's optical flow (DIS on the HR frames, occlusions masked,
            `gvr.lit.motion`), "screen" at one position.
        val_sample_steps: Euler steps for validation samples (fewer keeps CPU validation fast).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear learning-rate warm-up steps.
        ema_decay: decay of the EMA weights used for validation and prediction (0 disables EMA).
        seed: seed of the training noise; noise is a function of (seed, step, micro-batch, rank), so resumes
            are exact and the micro-batches of one accumulated step draw different noise.
        init_from: checkpoint of an earlier stage whose (EMA) backbone weights start this run (weights only:
            fresh optimizer and step counter); null trains from scratch. Ignored when resuming with --ckpt_path.
        init_from_base: checkpoint of a gvr base model (`gvr base fit`) whose (EMA) `LatentDiT` weights start
            the backbone, as the paper starts SimpleGVR from its base model: the shared DiT trunk is copied
            and the VSR-only parts set so that the start is exactly the base model (`gvr.models.from_base`).
            Exclusive with init_from; ignored when resuming.
        text_encoder: caption features for a backbone with `text_dim` (`gvr.models.text`); captions come from the
            batches (`caption`, from the manifest), "" (the null prompt) where there is none. None: no text.
        caption_dropout: fraction of training captions replaced by the null prompt (paper: 10%).
        distill: one-step distillation of a teacher checkpoint into this backbone (`gvr.lit.Distillation`,
            ``gvr distill``); None trains the flow objective. The student stays an ordinary VSRModule checkpoint.
        val_vmaf: also log ``val/vmaf`` and ``val/vmaf_bicubic`` (`gvr.metrics.vmaf.VideoVMAF`, each validation
            clip a video; needs the metrics extra), e.g. to pick checkpoints by VMAF.
    """

    network_attr = "backbone"  # what the optimizer and EMA follow (CodecFlowModule)

    def __init__(
        self,
        backbone: nn.Module,
        codec: LatentCodec,
        objective: FlowObjective | None = None,
        color_fix: ColorFix = "none",
        scale: float = 2.5,
        scale_range: tuple[float, float] | None = None,
        train_frames: int | None = None,
        temporal_motion: Literal["flow", "screen"] = "flow",
        val_sample_steps: int = 10,
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        ema_decay: float = 0.999,
        seed: int = 0,
        init_from: str | None = None,
        init_from_base: str | None = None,
        text_encoder: TextEncoder | None = None,
        caption_dropout: float = 0.1,
        distill: Distillation | None = None,
        val_vmaf: bool = False,
    ):
        super().__init__()
        if temporal_motion not in ("flow", "screen"):
            raise ValueError(f"temporal_motion must be 'flow' or 'screen', got {temporal_motion!r}")
        if init_from and init_from_base:
            raise ValueError("set model.init_from (an earlier VSR stage) or model.init_from_base (a base model), not both")
        self.save_hyperparameters()  # under GVRCLI these are the config dicts: a checkpoint rebuilds everything
        # The objective (path, draws, parametrisation, loss, solve); the network is an argument of each call.
        self.objective = objective if objective is not None else FlowObjective()
        want = getattr(backbone, "latent_channels", codec.latent_channels)
        if want != codec.latent_channels:
            raise ValueError(
                f"backbone.latent_channels={want} but the codec makes {codec.latent_channels}-channel latents: "
                "set model.backbone.init_args.latent_channels to match the codec"
            )
        if scale_range is not None and getattr(backbone, "ratio_embedding", True) is False:
            rank_zero_warn("data.scale_range is set but the backbone has no ratio_embedding: it will see every factor "
                           "without knowing which (set model.backbone.init_args.ratio_embedding: true)")
        text_dim = getattr(backbone, "text_dim", None)
        if (text_encoder is None) != (text_dim is None):
            raise ValueError("a backbone with text_dim needs model.text_encoder, and a text_encoder needs a backbone "
                             f"with text_dim (got text_dim {text_dim}, text_encoder {type(text_encoder).__name__})")
        if text_encoder is not None and text_encoder.dim != text_dim:
            raise ValueError(f"text_encoder gives {text_encoder.dim}-wide features but the backbone's text_dim is {text_dim}")
        if not 0 <= caption_dropout <= 1:
            raise ValueError(f"caption_dropout must lie in [0, 1], got {caption_dropout}")
        self.backbone, self.codec, self.text_encoder = backbone, codec, text_encoder
        if color_fix not in ("none", "wavelet", "adain"):
            raise ValueError(f"color_fix must be 'none', 'wavelet' or 'adain', got {color_fix!r}")
        # EMA copy: a buffer-like module outside the optimizer, saved in checkpoints so resumes are exact.
        self.ema = ema_copy(backbone, ema_decay)
        self.val_psnr, self.val_ssim = FramePSNR(), FrameSSIM()
        self.val_psnr_bicubic, self.val_ssim_bicubic = FramePSNR(), FrameSSIM()
        self.val_grid = FrameGrid()  # the token-seam pattern of the output (lower is better)
        self.distill = distill  # the attribute keeps the discriminator's state-dict keys (distill.discriminator.*)
        self.val_psnr_teacher = FramePSNR()  # logged when the training objective has a reference (a teacher)
        # VMAF's networks carry buffers and parameters: a plain dict keeps them out of the state dict (checkpoints
        # of runs with and without it stay alike); logged by hand at the end of each validation.
        self._val_vmaf: dict[str, nn.Module] = {}
        if val_vmaf:
            from gvr.metrics.vmaf import VideoVMAF

            self._val_vmaf = {"val/vmaf": VideoVMAF(), "val/vmaf_bicubic": VideoVMAF()}

    # ---- helpers -------------------------------------------------------------------------------

    def check_scale(self, factor: float, force: bool = False) -> None:
        """`gvr.pipeline.VSRPipeline.check_scale`: refuse a factor this checkpoint was not trained for."""
        self.pipeline().check_scale(factor, force)

    def pipeline(self) -> VSRPipeline:
        """This model at inference (`gvr.pipeline.VSRPipeline`): the EMA weights (or the live ones), the codec, the
        objective, the text encoder and the trained factors, shared with this module (nothing is copied)."""
        hp = self.hparams
        return VSRPipeline(self.inference_net, self.codec, self.objective, self.text_encoder, scale=hp.scale,
                           scale_range=hp.get("scale_range"), train_frames=hp.get("train_frames"),
                           color_fix=hp.color_fix, seed=hp.seed)

    @property
    def inference_net(self) -> nn.Module:
        """EMA weights when kept, else the live backbone."""
        return self.ema if self.ema is not None else self.backbone

    def _generator(self, *keys: int) -> torch.Generator:
        return generator(self.hparams.seed, *keys, device=self.device)

    def latents(self, batch: dict) -> tuple[Tensor, Tensor]:
        """HR latent ``z0`` and LR latent ``c`` of a batch: cached latents (``z``, ``c``) or encoded pixels.

        Prep shards store ``z`` only: their LR clips are degraded live, then encoded here.
        """
        if "z" in batch:
            return batch["z"].float(), batch["c"].float() if "c" in batch else self.encode(batch["lr"])
        return self.encode(batch["hr"]), self.encode(batch["lr"])

    def text(self, captions: Sequence[str] | None, batch: int, g: torch.Generator | None = None) -> tuple:
        """``(features, mask)`` of a batch's captions for the backbone, or ``()`` for a model without text.

        Missing captions are the null prompt ""; with ``g`` (training) each caption is dropped to the null
        prompt with probability ``caption_dropout``.
        """
        if self.text_encoder is None:
            return ()
        captions = list(captions) if captions is not None else [""] * batch
        if g is not None:
            drop = torch.rand(batch, generator=g, device=self.device) < self.hparams.caption_dropout
            captions = ["" if d else caption for caption, d in zip(captions, drop.tolist())]
        return self.text_encoder(captions, self.device)

    def flow_loss(
        self, z0: Tensor, c: Tensor, g: torch.Generator, captions: Sequence[str] | None = None, lr_pixels: Tensor | None = None,
        hr_pixels: Tensor | None = None,
    ) -> Tensor:
        """Rectified-flow loss of the backbone on one batch of latents, all randomness drawn from ``g``.

        The path runs from ``z0`` to the source ``x1 = U(c) + sigma eps`` (`gvr.flow.FlowSource`); ``lr_pixels`` (the LR
        clip ``c`` encodes) spare the pixel anchor a decode.
        """
        draw = self.objective.draw(z0, c, g)
        text = self.text(captions, z0.shape[0], g if self.training else None)  # captions dropped in training only
        # Training clips are degraded to exactly their LR size, so U maps them edge to edge (ratio None).
        anchor = self.objective.anchor(c, tuple(z0.shape[-2:]), self.codec, None, lr_pixels)
        motion = None
        if self.objective.temporal_weight and self.hparams.temporal_motion == "flow" and z0.shape[2] > 1:
            from gvr.lit.motion import latent_motion

            if self.codec.temporal_factor != 1:
                raise ValueError("model.temporal_motion 'flow' needs a codec whose latent frames are frames "
                                 "(temporal_factor 1); use 'screen'")
            pixels = hr_pixels if hr_pixels is not None else self.codec.decode(z0)
            motion = latent_motion(pixels, self.codec.spatial_factor)
        return self.objective.loss(self.backbone, z0, c, anchor, draw, text, motion)

    # ---- training --------------------------------------------------------------------------------

    @property
    def training_objective(self) -> "FlowTraining | Distillation":
        """What ``training_step`` optimises: the flow objective (`gvr fit`) or the distillation (`gvr distill`)."""
        return self.distill if self.distill is not None else FLOW_TRAINING

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        z0, c = self.latents(batch)
        accumulate = self.trainer.accumulate_grad_batches if self._trainer is not None else 1
        g = self._generator(*training_noise_key(self.global_step, batch_idx, accumulate, self.global_rank))
        loss, terms = self.training_objective.training_loss(self, z0, c, g, batch)
        if terms:
            self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=z0.shape[0])
        self.log("train/loss", loss, prog_bar=True, batch_size=z0.shape[0])
        return loss

    def optimizer_params(self) -> list:
        return self.training_objective.parameter_groups(super().optimizer_params(), self.hparams.lr)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip each parameter group on its own (the student and a distillation discriminator do not share a norm)."""
        if gradient_clip_val is None or len(optimizer.param_groups) == 1:
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        for group in optimizer.param_groups:
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(group["params"], gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(group["params"], gradient_clip_val)

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        resuming = self._trainer is not None and self.trainer.ckpt_path is not None
        initialised = self.training_objective.setup_fit(self, resuming)
        if resuming or initialised:
            return  # resuming: the checkpoint restores everything after setup; or the objective set the weights
        targets = [m for m in (self.backbone, self.ema) if m is not None]
        if self.hparams.init_from:
            load_network_weights(self.hparams.init_from, "backbone", targets)
        elif self.hparams.init_from_base:
            path = self.hparams.init_from_base
            weights, source = read_network_weights(path, "network", "init_from_base")
            state = vsr_weights_from_base(self.backbone, weights)
            for module in targets:
                module.load_state_dict(state)
            log.info("initialised the backbone from the base model %s (%s weights)", path, source)
        else:
            rank_zero_warn("model.init_from is not set: training the backbone from random initialisation")

    # ---- sampling ------------------------------------------------------------------------------------

    def upscale_clip(self, lr: Tensor, size: tuple[int, int], **kwargs) -> Tensor:
        """Super-resolve LR pixels ``(B, 3, T, h, w)`` to ``(B, 3, T, *size)`` pixels in [-1, 1] with the EMA (or
        live) weights: `gvr.pipeline.VSRPipeline.upscale_clip`, whose keyword arguments it takes."""
        return self.pipeline().upscale_clip(lr, size, **kwargs)

    def upscale_latent(self, c: Tensor, size: tuple[int, int], **kwargs) -> Tensor:
        """Sample the HR latent ``(B, C, T, *size)`` conditioned on the LR latent ``c`` (no decode):
        `gvr.pipeline.VSRPipeline.upscale_latent`, whose keyword arguments it takes."""
        return self.pipeline().upscale_latent(c, size, **kwargs)

    def _frame_noise(self, shape: tuple[int, ...], seed: int, frame_offset: int) -> Tensor:
        """Gaussian noise whose latent frame ``k`` depends only on (seed, its last pixel frame)."""
        return self.pipeline().frame_noise(shape, seed, frame_offset, self.device)

    # ---- validation / prediction ----------------------------------------------------------------

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        hr, lr = batch["hr"], batch["lr"]
        captions = batch.get("caption")
        loss = self.flow_loss(self.encode(hr), self.encode(lr), self._generator(10**9, batch_idx), captions)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=hr.shape[0])
        size = tuple(hr.shape[-2:])
        out = self.upscale_clip(lr, size, steps=self.hparams.val_sample_steps, seed=batch_idx, captions=captions)
        bicubic = resize_video(lr, size, "bicubic")
        for metric, pred in ((self.val_psnr, out), (self.val_ssim, out), (self.val_psnr_bicubic, bicubic), (self.val_ssim_bicubic, bicubic),
                             (self.val_grid, out)):
            metric.update(pred, hr)
        for name, pred in zip(self._val_vmaf, (out, bicubic)):
            self._val_vmaf[name].to(self.device).update(pred.float(), hr.float())
        ref = self.training_objective.reference(self, lr, size, batch_idx, captions)  # a teacher's output, if any
        if ref is not None:
            self.val_psnr_teacher.update(ref, hr)
            self.log("val/psnr_teacher", self.val_psnr_teacher, batch_size=hr.shape[0])
        self.log_dict(
            {"val/psnr": self.val_psnr, "val/ssim": self.val_ssim, "val/grid": self.val_grid,
             "val/psnr_bicubic": self.val_psnr_bicubic, "val/ssim_bicubic": self.val_ssim_bicubic},
            batch_size=hr.shape[0],
        )
        return {"output": out, "bicubic": bicubic, "hr": hr}

    def on_validation_epoch_end(self) -> None:
        for name, metric in self._val_vmaf.items():
            if metric.update_count:  # synchronised over ranks by compute
                self.log(name, metric.compute().item(), sync_dist=False, rank_zero_only=False)
            metric.reset()

    def test_step(self, batch: dict, batch_idx: int) -> dict | None:
        """Hand the decodable test clips of ``gvr test`` to :class:`gvr.lit.scoring.BenchmarkWriter`.

        Clips the dataset could not decode (``skipped``) are dropped here and counted by the writer. The output
        frame ``size`` is the ground truth's, or ``scale`` times the LR size without it (``--data.no_reference``).
        The writer upscales the clips itself, this model and every other checkpoint it lists alike (same steps,
        seed and captions), so nothing about the run has to be handed back to the model.
        """
        n = batch["lr"].shape[0]
        keep = [i for i, reason in enumerate(batch.get("skipped", [""] * n)) if not reason]
        if not keep:
            return None
        lr = batch["lr"][keep]
        hr = batch["hr"][keep] if "hr" in batch else None
        size = tuple(hr.shape[-2:]) if hr is not None else output_size(*lr.shape[-2:], self.hparams.scale)
        captions = [batch["caption"][i] for i in keep] if "caption" in batch else None
        return {"lr": lr, "hr": hr, "size": size, "captions": captions, "path": [batch["path"][i] for i in keep],
                "start": [int(batch["start"][i]) for i in keep]}

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Upscale one window of a video (see :class:`gvr.data.predict.VideoChunkDataset`)."""
        size = (int(batch["out_h"][0]), int(batch["out_w"][0]))
        out = self.upscale_clip(batch["lr"], size, frame_offset=int(batch["start"][0]), captions=batch.get("caption"))
        return {**batch, "output": out}
