"""One-step distillation: the losses against their definitions, the discriminator, the recipe's checks, the student
starting as the teacher, its loss falling, and `gvr distill` -> a checkpoint that `gvr upscale`, `gvr test` and
`gvr score` treat like any other."""

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_cli_args

from gvr.cli import lightning_main, main
from gvr.data.video import probe_video
from gvr.flow import FlowObjective
from gvr.lit import Distillation
from gvr.lit.checkpoints import load_gvr_module
from gvr.lit.distill_losses import (
    approximate_r1,
    feature_loss,
    frequency_loss,
    gradient_loss,
    grid_excess_loss,
    relativistic_d_loss,
    relativistic_g_loss,
)
from gvr.lit.distillation import block_outputs
from gvr.lit.vsr_module import VSRModule
from gvr.models import VideoDiscriminator

# The student of the tests: the tiny teacher's sizes with windowed attention (windows of 2x2 tokens: the
# 12x16-token training crops hold several windows and their shifts).
WINDOWED = ["--model.backbone.spatial_op", "gvr.models.SwinAttention", "--model.backbone.spatial_op.window", "[2, 2]",
            "--model.backbone.temporal_op", "gvr.models.SwinAttention", "--model.backbone.temporal_op.window", "[2, 2]",
            "--model.backbone.temporal_op.across_frames", "true"]


def distill_args(tiny_data, log_dir: Path, teacher: str, steps: int, *extra: str) -> list[str]:
    return tiny_cli_args(
        tiny_data, log_dir, "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "1",
        "--trainer.val_check_interval", str(steps), "--trainer.check_val_every_n_epoch", "null",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(log_dir / "checkpoints"), "--trainer.callbacks.save_last", "true",
        "--model.objective.sample_steps", "1", "--model.val_sample_steps", "1", "--model.lr", "1e-3",
        "--model.distill", "gvr.lit.Distillation", "--model.distill.teacher", teacher, *WINDOWED, *extra,
    )


# ---- losses ------------------------------------------------------------------------------------------------


def test_frequency_loss_is_the_mean_spectral_distance():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 2, 3, 3, 8, 6, generator=g).unbind(0)
    want = (torch.fft.rfft2(x, norm="ortho") - torch.fft.rfft2(y, norm="ortho")).abs().mean()
    torch.testing.assert_close(frequency_loss(x, y), want)
    assert frequency_loss(x, x) == 0
    # A single-frequency difference of amplitude a: |FFT| is a * sqrt(HW) / 2 at the +-k bins (ortho norm).
    h, w = 8, 8
    wave = torch.cos(2 * math.pi * 2 * torch.arange(w) / w).expand(1, 1, 1, h, w)
    bins = h * (w // 2 + 1)
    torch.testing.assert_close(frequency_loss(wave, torch.zeros_like(wave)), torch.tensor(math.sqrt(h * w) / 2 / bins))
    with pytest.raises(ValueError, match="shapes differ"):
        frequency_loss(x, y[..., :4])


def test_gradient_loss_ignores_a_constant_offset_and_sees_edges():
    x = torch.zeros(1, 3, 2, 6, 6)
    assert gradient_loss(x + 0.7, x) == 0
    edge = x.clone()
    edge[..., 3:] = 1.0  # a vertical edge: one column of unit horizontal differences out of 5
    torch.testing.assert_close(gradient_loss(edge, x), torch.tensor(0.5 * (0 + 1 / 5)))


def test_grid_excess_loss_is_the_grid_energy_above_the_reference_and_removes_a_pattern():
    from gvr.metrics.image import grid_energy
    from gvr.ops.resize import resize_video

    g = torch.Generator().manual_seed(0)
    real = resize_video(torch.rand(2, 3, 2, 8, 8, generator=g) * 1.6 - 0.8, (32, 32), "bicubic").clamp(-1, 1)
    dots = torch.zeros(32, 32)
    dots[::4, ::4] = 0.2  # a 4-px pattern of the same sign, as token seams
    fake = real + dots
    assert grid_excess_loss(real, real) == 0
    assert grid_excess_loss(real, fake) == 0  # less pattern than the reference costs nothing

    def energy(v):  # the metric on [0, 1] frames, one value per frame
        return grid_energy(((v + 1) / 2).permute(0, 2, 1, 3, 4).flatten(0, 1))

    want = (energy(fake) - energy(real)).clamp(min=0).mean()
    torch.testing.assert_close(grid_excess_loss(fake, real), want, rtol=1e-4, atol=1e-4)
    assert want > 5  # 8-bit levels
    assert grid_excess_loss(fake, real, period=3) < 0.5 * want  # another period barely sees it

    # Its gradient removes the pattern and stays finite on flat frames (no pattern at all).
    x = fake.clone().requires_grad_(True)
    grid_excess_loss(x, real).backward()
    assert grid_excess_loss(x.detach() - 0.1 * x.grad / x.grad.abs().max(), real) < 0.5 * want
    flat = torch.zeros(1, 3, 1, 16, 16, requires_grad=True)
    grid_excess_loss(flat, flat.detach() + dots[:16, :16]).backward()
    assert torch.isfinite(flat.grad).all()
    with pytest.raises(ValueError, match="shapes differ"):
        grid_excess_loss(fake, real[..., :16])


def test_relativistic_losses_and_approximate_r1():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    torch.testing.assert_close(relativistic_d_loss(real, fake), (torch.nn.functional.softplus(torch.tensor([-2.0, 0.0]))).mean())
    torch.testing.assert_close(relativistic_g_loss(real, fake), (torch.nn.functional.softplus(torch.tensor([2.0, 0.0]))).mean())
    x = torch.randn(2, 3, 2, 8, 8)
    assert approximate_r1(lambda v: v.mean(dim=(1, 2, 3, 4)) * 0 + 1, x, 0.1) == 0  # constant D: no penalty
    linear = lambda v: v.sum(dim=(1, 2, 3, 4))  # noqa: E731  D(x + s n) - D(x) = s * sum(n): variance s^2 N
    g = torch.Generator().manual_seed(0)
    r1 = approximate_r1(linear, torch.zeros(64, 3, 2, 8, 8), 0.1, g)
    assert r1 == pytest.approx(0.01 * 3 * 2 * 8 * 8, rel=0.3)


def test_video_discriminator_shapes_and_errors():
    d = VideoDiscriminator((8, 16))
    video = torch.randn(2, 3, 3, 32, 24)
    assert d(video, torch.zeros_like(video)).shape == (2, 1, 3, 8, 6)
    with pytest.raises(ValueError, match="needs `cond`"):
        d(video)
    assert VideoDiscriminator((8,), conditional=False)(video).shape == (2, 1, 3, 16, 12)
    with pytest.raises(ValueError, match="positive"):
        VideoDiscriminator(())


def test_distillation_checks_its_settings():
    with pytest.raises(ValueError, match=">= 0"):
        Distillation("t.ckpt", pixel_weight=-1)
    with pytest.raises(ValueError, match="teacher_steps"):
        Distillation("t.ckpt", teacher_steps=0)
    with pytest.raises(ValueError, match="needs a discriminator"):
        Distillation("t.ckpt", adversarial_weight=0.1)
    with pytest.raises(ValueError, match="grid_period"):
        Distillation("t.ckpt", grid_period=1)
    assert Distillation("t.ckpt", discriminator=VideoDiscriminator((4,))).discriminator is None  # unused: not built in


# ---- the recipe on a module --------------------------------------------------------------------------------


def student_like(teacher: VSRModule, distill: Distillation, window: tuple[int, int] = (64, 64), **overrides) -> VSRModule:
    """A student with the teacher's sizes (and `overrides`), Swin attention of `window` and the given recipe."""
    from gvr.models import SimpleGVR, SwinAttention

    net = teacher.backbone
    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8,
                         spatial_op=SwinAttention(window), temporal_op=SwinAttention(window, across_frames=True), **overrides)
    if not overrides:
        assert sum(p.numel() for p in backbone.parameters()) == sum(p.numel() for p in net.parameters())
    objective = FlowObjective(source=teacher.objective.source, sample_steps=1, s_range=(0.0, 0.0),
                              s_inference=teacher.objective.s_inference)
    return VSRModule(backbone, teacher.codec, objective, scale=teacher.hparams.scale, lr=1e-3, distill=distill)


def batch_of(teacher: VSRModule, seed: int = 0) -> dict:
    from gvr.ops.resize import resize_video

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 3, 3, 6, 8, generator=g) * 1.6 - 0.8
    hr = resize_video(coarse, (24, 32), "bilinear")  # smooth: the LR clip holds most of it
    return {"hr": hr, "lr": resize_video(hr, (12, 16), "bicubic")}


def test_student_windows_covering_the_clip_start_as_the_teacher(tiny_vsr_ckpt):
    teacher = load_gvr_module(tiny_vsr_ckpt)
    student = student_like(teacher, Distillation(tiny_vsr_ckpt, teacher_steps=1))
    student.distill.load_teacher(student, init_student=True)
    batch = batch_of(teacher)
    z0, c = student.latents(batch)
    loss, terms = student.distill.training_loss(student, z0, c, torch.Generator().manual_seed(1), batch)
    # Windows wider than the grid are frame / full attention: the fresh student is the teacher, one step each.
    assert terms["distill"] < 1e-10
    assert torch.isfinite(loss) and set(terms) == {"distill", "pixel", "frequency"}


def test_a_student_with_a_seam_refiner_starts_as_the_teacher_and_other_extras_are_refused(tiny_vsr_ckpt):
    teacher = load_gvr_module(tiny_vsr_ckpt)
    student = student_like(teacher, Distillation(tiny_vsr_ckpt, teacher_steps=1, grid_weight=1.0), out_refine=4)
    student.distill.load_teacher(student, init_student=True)  # the teacher has no refiner: it starts at zero
    batch = batch_of(teacher)
    z0, c = student.latents(batch)
    loss, terms = student.distill.training_loss(student, z0, c, torch.Generator().manual_seed(1), batch)
    assert terms["distill"] < 1e-10 and torch.isfinite(terms["grid"]) and terms["grid"] >= 0
    loss.backward()
    assert student.backbone.refiner.out.weight.grad.abs().sum() > 0  # and it trains
    with pytest.raises(ValueError, match="does not fit"):  # a non-zero extra would change the teacher's function
        student_like(teacher, Distillation(tiny_vsr_ckpt), cond_skip=True).distill.load_teacher(
            student_like(teacher, Distillation(tiny_vsr_ckpt), cond_skip=True), init_student=True)


def test_teacher_of_another_scale_or_source_is_refused(tiny_vsr_ckpt):
    from gvr.flow import FlowSource

    teacher = load_gvr_module(tiny_vsr_ckpt)
    student = student_like(teacher, Distillation(tiny_vsr_ckpt))
    student.hparams.scale = 4.0
    with pytest.raises(ValueError, match="x2.0 model"):
        student.distill.load_teacher(student, init_student=True)
    student = student_like(teacher, Distillation(tiny_vsr_ckpt))
    student.objective.source = FlowSource(anchor="pixel", sigma=0.0)
    with pytest.raises(ValueError, match="flow source"):
        student.distill.load_teacher(student, init_student=True)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        student_like(teacher, Distillation("nope.ckpt")).distill.load_teacher(student, init_student=True)


def test_student_loss_falls_and_the_discriminator_learns_only_its_own_loss(tiny_vsr_ckpt):
    torch.manual_seed(0)
    teacher = load_gvr_module(tiny_vsr_ckpt)
    recipe = Distillation(tiny_vsr_ckpt, teacher_steps=2, adversarial_weight=0.1, discriminator=VideoDiscriminator((8, 16)))
    student = student_like(teacher, recipe, window=(2, 2))
    recipe.load_teacher(student, init_student=True)
    batch = batch_of(teacher)
    z0, c = student.latents(batch)

    # The discriminator's loss moves the discriminator only; the generator's adversarial loss the student only.
    _, terms = recipe.training_loss(student, z0, c, torch.Generator().manual_seed(0), batch)
    d_params, s_params = list(recipe.discriminator.parameters()), list(student.backbone.parameters())
    grads = torch.autograd.grad(terms["d"] + terms["r1"], d_params + s_params, allow_unused=True)
    assert all(gr is None or gr.abs().sum() == 0 for gr in grads[len(d_params):])
    assert any(gr is not None and gr.abs().sum() > 0 for gr in grads[: len(d_params)])
    grads = torch.autograd.grad(terms["adversarial"], d_params + s_params, allow_unused=True)
    assert all(gr is None or gr.abs().sum() == 0 for gr in grads[: len(d_params)])
    assert any(gr is not None and gr.abs().sum() > 0 for gr in grads[len(d_params):])

    opt = torch.optim.AdamW(recipe.parameter_groups(s_params, 1e-2)[0]["params"], lr=1e-2)
    student_loss = []
    for step in range(25):  # the same batch and noise: the student's own terms must fall
        _, terms = recipe.training_loss(student, z0, c, torch.Generator().manual_seed(0), batch)
        own = terms["distill"] + terms["pixel"] + 0.1 * terms["frequency"]
        opt.zero_grad()
        own.backward()
        opt.step()
        student_loss.append(own.item())
    # The teacher's target (from pure noise, 2 steps) and the ground truth pull apart: the sum falls to a compromise.
    assert student_loss[-1] < 0.93 * student_loss[0], student_loss
    assert all(b < a for a, b in zip(student_loss, student_loss[1:])), student_loss


def test_gvr_distill_writes_a_student_that_upscale_test_and_score_take(tiny_data, tiny_vsr_ckpt, tmp_path, capsys):
    log_dir = tmp_path / "distill"
    from gvr.commands.distill import main as distill_main

    cli = distill_main(distill_args(tiny_data, log_dir, tiny_vsr_ckpt, 4, "--model.distill.teacher_steps", "2",
                                    "--model.distill.adversarial_weight", "0.05",
                                    "--model.distill.discriminator", "gvr.models.VideoDiscriminator",
                                    "--model.distill.discriminator.channels", "[8, 16]",
                                    "--model.distill.grid_weight", "0.1", "--model.backbone.out_refine", "4"))
    metrics = cli.trainer.callback_metrics
    assert cli.trainer.global_step == 4
    for key in ("train/distill", "train/pixel", "train/frequency", "train/grid", "train/d", "train/r1", "train/adversarial",
                "val/psnr_teacher", "val/grid"):
        assert torch.isfinite(metrics[key]), key
    ckpt = str(log_dir / "checkpoints" / "last.ckpt")
    assert not any(k.startswith("distill.teacher") for k in torch.load(ckpt, weights_only=False)["state_dict"])

    # gvr upscale: one step by default, the right size, frame count and range.
    student = load_gvr_module(ckpt)
    assert student.objective.sample_steps == 1 and student.distill.teacher is None  # no teacher read to serve
    lr = torch.rand(1, 3, 3, 20, 24) * 2 - 1
    out = student.upscale_clip(lr, (40, 48))
    assert out.shape == (1, 3, 3, 40, 48) and out.min() >= -1 and out.max() <= 1
    up = tmp_path / "up.mp4"
    main(["upscale", tiny_data["val_video"], "--ckpt", ckpt, "--output", str(up)])
    src, dst = probe_video(tiny_data["val_video"]), probe_video(up)
    assert (dst.width, dst.height, dst.frames) == (2 * src.width, 2 * src.height, src.frames)

    # gvr score on its output, gvr test on the checkpoint.
    capsys.readouterr()
    from gvr.data.video import read_video, write_video

    frames, fps = read_video(up)
    ref = tmp_path / "ref.mp4"
    write_video(ref, frames, fps=fps, crf=0)
    main(["score", str(up), "--reference", str(ref), "--metrics", "psnr", "--no-progress"])
    assert json.loads(capsys.readouterr().out)["metrics"]["psnr"] > 30  # against its own lossless re-encode

    from test_benchmark import _test_args

    lightning_main(_test_args(tiny_data, ckpt, tmp_path / "bench", tiny_data["val"]))
    summary = json.loads((tmp_path / "bench" / "metrics.json").read_text())
    assert "model" in summary["methods"] and summary["methods"]["model"]["mean"]["psnr"] > 0


def test_gvr_distill_refuses_a_config_without_a_teacher(tiny_data, tmp_path):
    from gvr.commands.distill import main as distill_main

    with pytest.raises(ValueError, match="needs model.distill"):
        distill_main(tiny_cli_args(tiny_data, tmp_path, "--trainer.max_steps", "1"))


# ---- the adversarial budget --------------------------------------------------------------------------------


def test_budget_gate_is_full_to_the_budget_and_zero_at_twice_it():
    from gvr.lit.distillation import budget_gate

    assert [budget_gate(m, 2e-4) for m in (0.0, 1e-4, 2e-4)] == [1.0, 1.0, 1.0]
    assert budget_gate(3e-4, 2e-4) == pytest.approx(0.5)
    assert [budget_gate(m, 2e-4) for m in (4e-4, 1e-2)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="adversarial_budget must be > 0"):
        Distillation("t.ckpt", adversarial_budget=0.0)
    with pytest.raises(ValueError, match="needs distill_weight > 0"):
        Distillation("t.ckpt", distill_weight=0.0, adversarial_budget=1e-3)
    with pytest.raises(ValueError, match="budget_decay"):
        Distillation("t.ckpt", adversarial_budget=1e-3, budget_decay=1.0)


def test_a_budget_without_the_gan_is_said_and_gates_nothing(caplog):
    with caplog.at_level("WARNING", logger="gvr.lit.distillation"):
        recipe = Distillation("t.ckpt", adversarial_weight=0.0, adversarial_budget=6e-4)
    assert "adversarial_budget 0.0006 has no effect without the GAN" in caplog.text
    assert recipe.discriminator is None and "budget_mse" not in recipe.state_dict()


def test_the_budget_scales_the_generators_adversarial_loss_by_the_running_mean_of_the_teacher_mse(tiny_vsr_ckpt):
    teacher = load_gvr_module(tiny_vsr_ckpt)
    batch = batch_of(teacher)

    def run(budget):
        torch.manual_seed(0)  # the same discriminator initialisation in every recipe
        recipe = Distillation(tiny_vsr_ckpt, teacher_steps=2, adversarial_weight=0.1, adversarial_budget=budget,
                              discriminator=VideoDiscriminator((8, 16)))
        student = student_like(teacher, recipe, window=(2, 2))
        recipe.load_teacher(student, init_student=True)
        z0, c = student.latents(batch)
        total, terms = recipe.training_loss(student, z0, c, torch.Generator().manual_seed(0), batch)
        return recipe, total, terms

    free, total_free, terms_free = run(None)
    mse = terms_free["distill"].item()
    assert mse > 0 and "adversarial_gate" not in terms_free and "budget_mse" not in free.state_dict()
    # A budget of 2/3 of the MSE: the first batch sets the running mean to its MSE, and the gate is 2 - 1.5 = 0.5.
    gated, total_gated, terms = run(mse / 1.5)
    assert terms["adversarial_gate"].item() == pytest.approx(0.5, abs=1e-5)
    assert gated.state_dict()["budget_mse"].item() == pytest.approx(mse)
    assert terms["adversarial"].item() == pytest.approx(terms_free["adversarial"].item(), rel=1e-5)
    expected = total_free.item() - 0.5 * 0.1 * terms["adversarial"].item()
    assert total_gated.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    # A budget far above the MSE leaves the loss as without one.
    _, total_loose, terms = run(mse * 100)
    assert terms["adversarial_gate"].item() == 1.0 and total_loose.item() == pytest.approx(total_free.item(), rel=1e-6)

    # The running mean: decay * previous + (1 - decay) * this batch's, and it travels in the state dict.
    gated.budget_mse.fill_(4 * mse)
    assert gated._budget_gate(torch.tensor(0.0)) == pytest.approx(max(0.0, 2 - 0.95 * 4 * 1.5))
    assert gated.budget_mse.item() == pytest.approx(0.95 * 4 * mse)
    again = Distillation(tiny_vsr_ckpt, adversarial_weight=0.1, adversarial_budget=mse / 1.5,
                         discriminator=VideoDiscriminator((8, 16)))
    again.load_state_dict(gated.state_dict())
    assert again.budget_mse.item() == pytest.approx(0.95 * 4 * mse)


def test_feature_loss_is_the_relative_squared_distance_per_block():
    t = [torch.ones(1, 4, 2), torch.full((1, 4, 2), 3.0)]
    s = [torch.zeros(1, 4, 2), torch.full((1, 4, 2), 4.0)]
    # block 0: 8 / 8 = 1; block 1: 8 * 1 / (8 * 9) = 1 / 9; their mean
    assert feature_loss(s, t).item() == pytest.approx((1 + 1 / 9) / 2)
    assert feature_loss(t, t).item() == 0.0
    assert feature_loss([2 * x for x in s], [2 * x for x in t]).item() == pytest.approx((1 + 1 / 9) / 2)  # scale-free
    with pytest.raises(ValueError, match="1 student blocks against 2"):
        feature_loss(s[:1], t)
    with pytest.raises(ValueError, match="block 0 shapes differ"):
        feature_loss([torch.zeros(1, 3, 2)], [torch.zeros(1, 4, 2)])


def test_block_outputs_records_each_block_per_call_and_nothing_once_closed():
    from gvr.models import SimpleGVR

    net = SimpleGVR(latent_channels=4, dim=16, depth=3, heads=2, upsampler_channels=4)
    x = torch.randn(1, 4, 1, 4, 4)
    args = (x, torch.ones(1), torch.randn(1, 4, 1, 2, 2), torch.zeros(1))
    with block_outputs(net) as h:
        net(*args)
        assert len(h) == 3 and all(o.shape == (1, 4, 16) for o in h)
        net(*args)
    assert len(h) == 6 and torch.equal(h[0], h[3])
    net(*args)  # closed: the hooks are gone
    assert len(h) == 6 and not any(b._forward_hooks for b in net.blocks)
    with block_outputs(net, enabled=False) as h:
        net(*args)
    assert h == []
    with pytest.raises(ValueError, match="DiT blocks"):
        with block_outputs(torch.nn.Linear(2, 2)):
            pass


def test_the_feature_term_is_zero_for_the_teachers_own_function_and_trains_the_student(tiny_vsr_ckpt):
    teacher = load_gvr_module(tiny_vsr_ckpt)
    batch = batch_of(teacher)
    same = student_like(teacher, Distillation(tiny_vsr_ckpt, teacher_steps=1, feature_weight=1.0))
    same.distill.load_teacher(same, init_student=True)
    z0, c = same.latents(batch)
    _, terms = same.distill.training_loss(same, z0, c, torch.Generator().manual_seed(1), batch)
    assert terms["feature"] < 1e-10  # windows covering the clip: the same hidden states, block by block

    recipe = Distillation(tiny_vsr_ckpt, teacher_steps=2, distill_weight=0.0, pixel_weight=0.0, frequency_weight=0.0,
                          feature_weight=1.0)
    student = student_like(teacher, recipe, window=(2, 2))
    recipe.load_teacher(student, init_student=True)
    _, terms = recipe.training_loss(student, z0, c, torch.Generator().manual_seed(1), batch)
    assert set(terms) == {"feature"} and terms["feature"] > 0  # 2x2 windows: other hidden states
    with torch.no_grad():  # a student further from its teacher than the windows alone make it
        torch.manual_seed(0)
        for p in student.backbone.blocks.parameters():
            p.add_(0.05 * torch.randn_like(p))
    opt = torch.optim.AdamW(student.backbone.parameters(), lr=1e-4)
    losses = []
    for _ in range(10):
        _, terms = recipe.training_loss(student, z0, c, torch.Generator().manual_seed(1), batch)
        opt.zero_grad()
        terms["feature"].backward()
        opt.step()
        losses.append(terms["feature"].item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_feature_term_needs_the_teachers_depth_and_condition(tiny_vsr_ckpt):
    from gvr.models import SimpleGVR

    teacher = load_gvr_module(tiny_vsr_ckpt)
    deeper = student_like(teacher, Distillation(tiny_vsr_ckpt, feature_weight=1.0))
    deeper.backbone = SimpleGVR(latent_channels=12, dim=32, depth=2, heads=2, upsampler_channels=8)
    with pytest.raises(ValueError, match="teacher .* has 1 and the student 2"):
        deeper.distill.load_teacher(deeper, init_student=False)
    student = student_like(teacher, Distillation(tiny_vsr_ckpt, feature_weight=1.0))
    student.objective.s_inference = teacher.objective.s_inference + 0.1
    with pytest.raises(ValueError, match="s_inference"):
        student.distill.load_teacher(student, init_student=False)
