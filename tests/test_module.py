"""VSRModule: the training objective, EMA, sampling shapes and the overfit check."""

import pytest
import torch

from gvr.codecs import PatchCodec
from gvr.flow import FlowObjective
from gvr.lit.flow_module import ema_update
from gvr.lit.vsr_module import VSRModule
from gvr.models import SimpleGVR


def _module(**kw) -> VSRModule:
    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8)
    return VSRModule(backbone, PatchCodec(spatial_factor=2), **{"scale": 2.5, **kw})


def test_latent_channel_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="latent_channels=12.*48-channel"):
        VSRModule(SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8), PatchCodec(spatial_factor=4))
    with pytest.raises(ValueError, match="s_range"):
        _module(objective=FlowObjective(s_range=(0.6, 0.3)))


@pytest.mark.parametrize("lr_size,out_size,frames", [((10, 14), (25, 35), 3), ((9, 13), (23, 31), 2), ((8, 8), (21, 19), 1)])
def test_upscale_clip_gives_exact_sizes_for_odd_inputs_and_fractional_scales(lr_size, out_size, frames):
    module = _module().eval()
    lr = torch.rand(1, 3, frames, *lr_size) * 2 - 1
    out = module.upscale_clip(lr, out_size, steps=2)
    assert out.shape == (1, 3, frames, *out_size) and out.abs().max() <= 1


def test_upscale_clip_noise_depends_on_absolute_frame_index():
    module = _module().eval()
    a = module._frame_noise((1, 12, 4, 3, 3), seed=0, frame_offset=0)
    b = module._frame_noise((1, 12, 4, 3, 3), seed=0, frame_offset=2)
    torch.testing.assert_close(a[:, :, 2:], b[:, :, :2])  # frames 2 and 3 share their noise
    assert not torch.equal(a[:, :, 0], b[:, :, 0])


def test_ema_follows_the_closed_form():
    module = _module(ema_decay=0.9)
    with torch.no_grad():
        for p in module.backbone.parameters():
            p.add_(1.0)
    before = [e.clone() for e in module.ema.parameters()]
    ema_update(module.ema, module.backbone, 0, module.hparams.ema_decay)  # global_step 0: decay min(0.9, 1/10) = 0.1
    for e, b, p in zip(module.ema.parameters(), before, module.backbone.parameters()):
        torch.testing.assert_close(e, 0.1 * b + 0.9 * p)


def test_overfitting_one_clip_drives_the_loss_down():
    torch.manual_seed(0)
    module = _module(objective=FlowObjective(timesteps=None))
    hr = torch.rand(1, 3, 2, 16, 16) * 2 - 1
    lr = torch.nn.functional.interpolate(hr[0].transpose(0, 1), size=(8, 8), mode="area").transpose(0, 1)[None]
    opt = torch.optim.AdamW(module.backbone.parameters(), lr=3e-3)
    losses = []
    for step in range(300):
        loss = module.flow_loss(module.encode(hr), module.encode(lr), torch.Generator().manual_seed(step % 8))  # 8 fixed noise draws
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.3 * first, (first, last)
