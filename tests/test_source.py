"""The flow's source (pure noise or the anchored input), exact LR->HR maps, colour correction, noise keys."""

import inspect

import pytest
import torch

from gvr.codecs import PatchCodec
from gvr.flow import FlowObjective, FlowSource
from gvr.lit.vsr_module import VSRModule, training_noise_key
from gvr.models import SimpleGVR
from gvr.ops.colorfix import color_fix
from gvr.ops.resize import resize_frames


def _module(source=None, factor=2, **kwargs):
    """A tiny VSRModule with ``source``; ``kwargs`` go to the `FlowObjective` (its arguments) or the module."""
    backbone = SimpleGVR(latent_channels=3 * factor * factor, dim=32, depth=1, heads=2, upsampler_channels=8)
    flow = {k: kwargs.pop(k) for k in list(kwargs) if k in inspect.signature(FlowObjective).parameters}
    return VSRModule(backbone, PatchCodec(spatial_factor=factor), FlowObjective(source=source, **flow), ema_decay=0,
                     **kwargs).eval()


def test_pure_noise_is_the_paper_flow():
    source, eps = FlowSource(), torch.randn(2, 4, 1, 3, 3)
    assert source.upsample(torch.randn(2, 4, 1, 2, 2), (3, 3)) is None
    assert source.start(None, eps) is eps and source.network_input(eps, None) is eps


def test_anchored_source_is_the_upsampled_input_plus_scaled_noise():
    c, eps = torch.randn(1, 12, 2, 4, 5), torch.randn(1, 12, 2, 10, 12)
    source = FlowSource(anchor="latent", sigma=0.25, resize="bilinear")
    anchor = source.upsample(c, (10, 12))
    torch.testing.assert_close(anchor, resize_frames(c, (10, 12)))
    torch.testing.assert_close(source.start(anchor, eps), anchor + 0.25 * eps)
    torch.testing.assert_close(source.network_input(anchor + eps, anchor), eps)
    assert FlowSource(anchor="latent", residual_input=False).network_input(eps, anchor) is eps


def test_pixel_anchor_is_decode_bicubic_encode():
    codec = PatchCodec(spatial_factor=2)
    lr = torch.rand(1, 3, 2, 8, 10) * 2 - 1
    c = codec.encode(lr)
    got = FlowSource(anchor="pixel", sigma=0.1).upsample(c, (10, 12), codec=codec)
    want = codec.encode(resize_frames(lr, (20, 24), mode="bicubic").clamp(-1, 1))
    torch.testing.assert_close(got, want)
    # Given the LR pixels, it skips the decode and gives the same.
    torch.testing.assert_close(FlowSource(anchor="pixel").upsample(c, (10, 12), codec=codec, lr_pixels=lr), want)


@pytest.mark.parametrize("kwargs", [dict(anchor="bad"), dict(sigma=-1.0), dict(anchor="none", sigma=0.0), dict(resize="area")])
def test_flow_source_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        FlowSource(**kwargs)


def test_exact_resize_equals_interpolate_when_the_ratio_is_the_size_ratio():
    x = torch.randn(1, 3, 2, 7, 9)
    for mode in ("bilinear", "bicubic"):
        torch.testing.assert_close(resize_frames(x, (17, 22), (17 / 7, 22 / 9), mode=mode), resize_frames(x, (17, 22), mode=mode),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("h,w,scale,factor", [(100, 60, 2.5, 8), (35, 44, 2.5, 2), (32, 48, 2.8125, 8)])
def test_upscale_maps_lr_to_hr_by_the_exact_ratio(h, w, scale, factor):
    """A fresh model (zero velocity) with the pixel anchor and sigma 0 returns U(c): bicubic of the input.

    The padded LR clip (e.g. 100 -> 104 rows at f = 8) must extend the output past its crop, never be stretched
    onto it (the old grid drifted by pixels towards the bottom-right).
    """
    from gvr.ops.resize import output_size

    module = _module(FlowSource(anchor="pixel", sigma=0.0), factor=factor, scale=scale)
    lr = torch.rand(1, 3, 2, h, w) * 2 - 1
    size = output_size(h, w, scale)
    out = module.upscale_clip(lr, size, steps=1)
    torch.testing.assert_close(out, resize_frames(lr, size, mode="bicubic").clamp(-1, 1), atol=1e-4, rtol=0)


def test_anchored_sampling_uses_the_training_definition():
    """One Euler step from x1 = U(c) + sigma eps with the velocity x1 - z0 lands exactly on z0."""
    module = _module(FlowSource(anchor="latent", sigma=0.5))
    c, z0 = torch.randn(1, 12, 2, 4, 4), torch.randn(1, 12, 2, 10, 10)
    anchor = module.objective.anchor(c, (10, 10), module.codec)
    x1 = module.objective.source.start(anchor, module._frame_noise(z0.shape, seed=0, frame_offset=0))

    class Oracle(torch.nn.Module):  # the true velocity (x_t - z0) / t of the straight path, fed the residual state
        def forward(self, x, t, c, s, ratio=None, offset=(0.0, 0.0)):
            state = x + anchor if module.objective.source.residual_input else x
            return (state - z0) / t.view(-1, 1, 1, 1, 1)

    module.ema = None
    module.backbone = Oracle()
    torch.testing.assert_close(module.upscale_latent(c, (10, 10), steps=1), z0)
    torch.testing.assert_close(module.upscale_latent(c, (10, 10), steps=4), z0, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(x1, z0)


def test_training_loss_of_the_anchored_flow_is_zero_for_the_true_velocity():
    module = _module(FlowSource(anchor="pixel", sigma=0.3))
    lr = torch.rand(2, 3, 2, 8, 8) * 2 - 1
    z0, c = module.encode(torch.rand(2, 3, 2, 20, 20) * 2 - 1), module.encode(lr)
    g = torch.Generator().manual_seed(0)
    # Recompute the draws the loss makes (t, s, eps, c-noise) to build the oracle.
    flow = module.objective
    t = flow.timesteps.sample(2, torch.Generator().manual_seed(0))
    g2 = torch.Generator().manual_seed(0)
    flow.timesteps.sample(2, g2)
    torch.rand(2, generator=g2)
    eps = torch.randn(z0.shape, generator=g2)
    x1 = flow.source.start(flow.anchor(c, (10, 10), module.codec, lr_pixels=lr), eps)

    class Oracle(torch.nn.Module):
        def forward(self, x, tt, c, s):
            assert torch.equal(tt, t)
            return x1 - z0

    module.backbone = Oracle()
    assert module.flow_loss(z0, c, g, lr_pixels=lr).item() < 1e-10


def test_micro_batches_of_an_accumulated_step_draw_different_noise():
    assert training_noise_key(7, 0, 1, 0) == training_noise_key(7, 5, 1, 0)
    keys = {training_noise_key(7, i, 4, 0) for i in range(8, 12)}
    assert len(keys) == 4  # four micro-batches, four keys, all of step 7
    assert training_noise_key(7, 8, 4, 1) not in keys  # and per rank


def test_color_fix_removes_a_colour_cast_and_keeps_detail():
    ref = torch.rand(1, 3, 2, 32, 32) * 1.6 - 0.8
    detail = 0.1 * torch.randn(1, 3, 2, 32, 32)
    cast = torch.tensor([0.15, -0.1, 0.05]).view(1, 3, 1, 1, 1)
    out = (ref + detail + cast).clamp(-1, 1)
    for kind in ("wavelet", "adain"):
        fixed = color_fix(out, ref, kind)
        err_before = (out - ref).mean((0, 2, 3, 4)).abs().max()
        err_after = (fixed - ref).mean((0, 2, 3, 4)).abs().max()
        assert err_after < 0.2 * err_before, kind
    torch.testing.assert_close(color_fix(ref, ref, "wavelet"), ref.clamp(-1, 1))
    assert color_fix(out, ref, "none") is out
    with pytest.raises(ValueError):
        color_fix(out, ref[..., :16], "wavelet")


def test_upscale_clip_applies_the_models_colour_fix():
    lr = torch.rand(1, 3, 2, 12, 12) * 2 - 1
    plain = _module(FlowSource(anchor="pixel", sigma=0.1)).upscale_clip(lr, (30, 30), steps=1)
    fixed = _module(FlowSource(anchor="pixel", sigma=0.1), color_fix="wavelet").upscale_clip(lr, (30, 30), steps=1)
    assert fixed.shape == plain.shape and not torch.equal(fixed, plain)
    with pytest.raises(ValueError, match="color_fix"):
        _module(color_fix="hsv")


def test_a_fresh_data_prediction_model_returns_the_anchor_at_any_step_count():
    """Zero-initialised output + data prediction + residual input: the untrained model is U(c), here bicubic."""
    module = _module(FlowSource(anchor="pixel", sigma=0.5), prediction="data")
    lr = torch.rand(1, 3, 2, 12, 16) * 2 - 1
    want = resize_frames(lr, (30, 40), mode="bicubic").clamp(-1, 1)
    for steps in (1, 3):
        torch.testing.assert_close(module.upscale_clip(lr, (30, 40), steps=steps), want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="prediction"):
        _module(prediction="noise")


def test_velocity_from_data_matches_the_straight_path():
    from gvr.flow import interpolate, velocity_from_data

    z0, x1, t = torch.randn(2, 4, 1, 3, 3), torch.randn(2, 4, 1, 3, 3), torch.tensor([0.3, 1.0])
    torch.testing.assert_close(velocity_from_data(interpolate(z0, x1, t), z0, t), x1 - z0)
