"""Spatial tiling of the velocity network: coverage, exact blending, pass-through."""

import pytest
import torch

from gvr.ops.tiling import ramp_weights, tile_starts, tiled


def test_ramps_of_overlapping_windows_sum_to_one():
    a, b = ramp_weights(10, 0, 4), ramp_weights(10, 4, 0)
    torch.testing.assert_close(a[6:] + b[:4], torch.ones(4))
    assert a[:6].eq(1).all() and b[4:].eq(1).all()


@pytest.mark.parametrize("size,tile,overlap", [(10, 16, 4), (16, 16, 4), (40, 16, 4), (41, 12, 3)])
def test_tile_starts_cover_with_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, size) == size
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        tile_starts(size, 4, 4)


def _local_net(x, t, c, s, ratio=None, offset=(0.0, 0.0)):
    """A velocity that only looks at its own position: tiling it must change nothing."""
    from gvr.ops.resize import resize_frames

    up = resize_frames(c, x.shape[-2:], ratio, offset, mode="nearest")
    return 2 * x + up * s.view(-1, 1, 1, 1, 1) + t.view(-1, 1, 1, 1, 1)


def test_tiled_equals_untiled_for_a_position_local_network():
    x, c = torch.randn(2, 3, 2, 48, 40), torch.randn(2, 3, 2, 24, 20)
    t, s = torch.tensor([0.3, 0.7]), torch.tensor([0.4, 0.5])
    whole = _local_net(x, t, c, s, ratio=(2.0, 2.0))
    torch.testing.assert_close(tiled(_local_net, tile=8, overlap=3)(x, t, c, s, ratio=(2.0, 2.0)), whole)


def test_small_inputs_pass_straight_through():
    calls = []

    def net(x, t, c, s, ratio=None, offset=None):
        calls.append(x.shape)
        return x

    x = torch.randn(1, 3, 1, 16, 16)
    tiled(net, tile=8, overlap=2)(x, torch.zeros(1), torch.randn(1, 3, 1, 8, 8), torch.zeros(1))
    assert calls == [x.shape]
    tiled(net, tile=4, overlap=1)(x, torch.zeros(1), torch.randn(1, 3, 1, 8, 8), torch.zeros(1))
    assert len(calls) == 1 + 9  # 3 x 3 tiles


def test_module_upscale_with_tiles_has_exact_size():
    from gvr.codecs import PatchCodec
    from gvr.lit.vsr_module import VSRModule
    from gvr.models import SimpleGVR

    module = VSRModule(SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8), PatchCodec(spatial_factor=2)).eval()
    lr = torch.rand(1, 3, 2, 30, 34) * 2 - 1
    out = module.upscale_clip(lr, (75, 85), steps=2, tile=6, tile_overlap=2)
    assert out.shape == (1, 3, 2, 75, 85) and torch.isfinite(out).all()


def _resize_net(x, t, c, s, ratio=None, offset=(0.0, 0.0)):
    """A velocity that reads the condition through the exact LR->HR map (as SimpleGVR's upsampler does)."""
    from gvr.ops.resize import resize_frames

    return x * t.view(-1, 1, 1, 1, 1) + resize_frames(c, x.shape[-2:], ratio, offset)


@pytest.mark.parametrize("ratio,lr", [(2.5, (24, 20)), (2.8125, (32, 21))])
def test_tiles_see_the_global_lr_to_hr_map(ratio, lr):
    """Tiled equals untiled at non-integer ratios: every tile reads the condition where the whole frame would."""
    import math

    hr = tuple(math.ceil(n * ratio) for n in lr)
    x, c = torch.randn(1, 3, 2, *hr), torch.randn(1, 3, 2, *lr)
    t, s = torch.tensor([0.3]), torch.tensor([0.4])
    whole = _resize_net(x, t, c, s, ratio=(ratio, ratio))
    torch.testing.assert_close(tiled(_resize_net, tile=8, overlap=3)(x, t, c, s, ratio=(ratio, ratio)), whole)


def test_stretching_tiles_would_differ():
    """The check above has teeth: tiles stretched edge to edge (the old behaviour) do not match."""
    from gvr.ops.resize import resize_frames

    def stretch(x, t, c, s, ratio=None, offset=(0.0, 0.0)):
        return resize_frames(c, x.shape[-2:])

    x, c = torch.randn(1, 3, 1, 90, 60), torch.randn(1, 3, 1, 32, 21)
    whole = _resize_net(x, torch.zeros(1), c, torch.zeros(1), ratio=(2.8125, 2.8125))
    assert not torch.allclose(tiled(stretch, tile=8, overlap=3)(x, torch.zeros(1), c, torch.zeros(1), ratio=(2.8125, 2.8125)), whole, atol=1e-3)
