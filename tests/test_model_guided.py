"""Model-guided degradation (SDEdit-like, latent space) and `gvr degrade --kind model`."""

import json

import pytest
import torch
from conftest import moving_frames

from gvr.base import LatentDiT
from gvr.cli import main
from gvr.codecs import PatchCodec
from gvr.data.degradations import ModelGuidedDegradation
from gvr.data.video import probe_video, write_video
from gvr.ops.resize import resize


def _random_base() -> LatentDiT:
    net = LatentDiT(latent_channels=12, dim=32, depth=1, heads=2)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


def _degradation(**kw) -> ModelGuidedDegradation:
    return ModelGuidedDegradation(base=_random_base(), codec=PatchCodec(spatial_factor=2), **kw)


def test_alpha_zero_gives_the_clean_downsample():
    hr = torch.rand(3, 3, 24, 32) * 2 - 1
    out = _degradation(alpha_range=(0.0, 0.0))(hr, (12, 16), torch.Generator().manual_seed(0))
    # PatchCodec is lossless, so with alpha = 0 the result is the bicubic downsample itself.
    torch.testing.assert_close(out, resize(hr, (12, 16), "bicubic", True).clamp(-1, 1), atol=1e-5, rtol=0)


def test_model_guided_is_seeded_sized_and_changes_the_clip():
    hr = torch.rand(3, 3, 24, 32) * 2 - 1
    deg = _degradation(steps=3)
    a = deg(hr, (12, 16), torch.Generator().manual_seed(1))
    b = deg(hr, (12, 16), torch.Generator().manual_seed(1))
    c = deg(hr, (12, 16), torch.Generator().manual_seed(2))
    assert a.shape == (3, 3, 12, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert (a - resize(hr, (12, 16), "bicubic", True).clamp(-1, 1)).abs().mean() > 1e-3


def test_alpha_draws_stay_in_range():
    alpha, eps = _degradation(alpha_range=(0.3, 0.4)).draw(1000, (1000, 2), torch.Generator().manual_seed(0))
    assert alpha.min() >= 0.3 and alpha.max() <= 0.4 and eps.shape == (1000, 2)
    assert 0.34 < alpha.mean() < 0.36


def test_constructor_errors():
    from gvr.lit import BaseCheckpoint

    with pytest.raises(ValueError, match="with its codec"):
        ModelGuidedDegradation(_random_base())
    with pytest.raises(ValueError, match="with its codec"):
        ModelGuidedDegradation(BaseCheckpoint("nope.ckpt"), codec=PatchCodec(spatial_factor=2))
    with pytest.raises(ValueError, match="alpha"):
        _degradation(alpha_range=(0.5, 0.4))
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        ModelGuidedDegradation(BaseCheckpoint("nope.ckpt")).degrade_latent(torch.zeros(1, 12, 1, 4, 4), torch.Generator())


def test_gvr_degrade_kind_model_writes_the_lr_video(tiny_base_ckpt, tmp_path, capsys):
    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(7, 40, 48), fps=24, crf=0)
    out = tmp_path / "model.mkv"
    main(["degrade", str(src), "--kind", "model", "--base-ckpt", tiny_base_ckpt, "--output", str(out), "--scale", "2"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (24, 20, 7) and summary["kind"] == "model"
    with pytest.raises(SystemExit, match="base model checkpoint .* not found"):
        main(["degrade", str(src), "--kind", "model", "--base-ckpt", str(tmp_path / "missing.ckpt"),
              "--output", str(tmp_path / "x.mp4")])
