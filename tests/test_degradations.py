"""Degradations: exact LR sizes, reproducibility, each step on its own, noise levels, compression, errors."""

import math
import pickle
import random

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gvr.data.degradations.classic import ClassicDegradation, gaussian_kernels
from gvr.data.degradations.degradation import BicubicDownsample

OFF = dict(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, codec_prob=0.0)
ALL_ON = dict(blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0, codec_prob=1.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_clip(t: int = 4, h: int = 64, w: int = 80, seed: int = 0) -> torch.Tensor:
    """(3, T, H, W) in [-1, 1]: smooth random grey texture, gentle colour tint, a flat square with sharp edges."""
    luma = torch.rand(1, t, h // 8, w // 8, generator=gen(seed)) * 1.6 - 0.8
    tint = torch.rand(3, 1, 2, 2, generator=gen(seed + 1)) * 0.4 - 0.2  # natural video carries little chroma detail
    clip = F.interpolate(luma, size=(h, w), mode="bicubic") + F.interpolate(tint, size=(h, w), mode="bilinear")
    clip[:, :, h // 4 : h // 2, w // 4 : w // 2] = 0.7
    return clip.clamp(-1, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two clips in [-1, 1]."""
    return 10 * math.log10(4 / F.mse_loss(a, b).item())


@pytest.mark.parametrize("degradation", [ClassicDegradation(**ALL_ON), ClassicDegradation(), BicubicDownsample()])
@pytest.mark.parametrize(
    ("hr_shape", "lr_size"),
    [((3, 4, 37, 51), (13, 18)), ((3, 1, 64, 64), (23, 29)), ((3, 2, 16, 16), (21, 25)), ((3, 3, 9, 9), (1, 1))],
)
def test_exact_size_range_dtype(degradation, hr_shape, lr_size):
    hr = torch.rand(*hr_shape, generator=gen(1)) * 2 - 1
    lr = degradation(hr, lr_size, gen())
    assert lr.shape == (3, hr_shape[1], *lr_size)
    assert lr.dtype == torch.float32 and lr.is_contiguous()
    assert torch.isfinite(lr).all() and lr.min() >= -1 and lr.max() <= 1


def test_reproducible_from_the_generator_alone():
    d, hr = ClassicDegradation(**ALL_ON), smooth_clip(t=5)
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    first = d(hr, (25, 31), gen(7))
    torch.manual_seed(2), random.seed(2), np.random.seed(2)  # global RNG state must not matter
    for seed in (8, 7, 9, 7):  # other calls in between must not matter either
        assert torch.equal(first, d(hr, (25, 31), gen(seed))) == (seed == 7)
    assert torch.equal(first, pickle.loads(pickle.dumps(d))(hr, (25, 31), gen(7)))  # as in a dataloader worker


@pytest.mark.parametrize("mode", ["bicubic", "bilinear", "area"])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_only_equals_plain_resize(mode, antialias):
    probs = tuple(float(m == mode) for m in ("bicubic", "bilinear", "area"))
    d = ClassicDegradation(**OFF, resize_mode_probs=probs, resize_antialias=antialias)
    hr = smooth_clip()
    frames = hr.permute(1, 0, 2, 3)  # (T, 3, H, W)
    kwargs = {} if mode == "area" else dict(align_corners=False, antialias=antialias)
    expected = F.interpolate(frames, size=(27, 35), mode=mode, **kwargs).clamp(-1, 1).permute(1, 0, 2, 3)
    torch.testing.assert_close(d(hr, (27, 35), gen()), expected, atol=1e-6, rtol=0)


def test_bicubic_downsample_is_plain_bicubic():
    hr = smooth_clip()
    expected = F.interpolate(hr.permute(1, 0, 2, 3), size=(27, 35), mode="bicubic", antialias=True).permute(1, 0, 2, 3)
    torch.testing.assert_close(BicubicDownsample()(hr, (27, 35), gen()), expected.clamp(-1, 1))


@pytest.mark.parametrize("step", ["blur_prob", "noise_prob", "jpeg_prob", "codec_prob"])
def test_each_step_alone_changes_the_output(step):
    hr, size = smooth_clip(), (27, 35)
    clean = ClassicDegradation(**OFF)(hr, size, gen())
    lr = ClassicDegradation(**{**OFF, step: 1.0})(hr, size, gen())
    assert 0 < (lr - clean).abs().mean() < 0.2


def test_gaussian_kernels_match_kornia_and_rotate():
    sx, sy = torch.tensor([0.8, 2.5]), torch.tensor([0.8, 1.2])
    k = gaussian_kernels(11, sx, sy, 0.0)
    torch.testing.assert_close(k, kornia.filters.get_gaussian_kernel2d((11, 11), torch.stack([sy, sx], 1)))
    torch.testing.assert_close(gaussian_kernels(11, sx, sy, math.pi / 2), k.transpose(1, 2), atol=1e-7, rtol=0)
    torch.testing.assert_close(k.sum((1, 2)), torch.ones(2))


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_has_the_requested_sigma(gray):
    hr = torch.zeros(3, 4, 64, 64)  # mid grey: no clipping
    d = ClassicDegradation(**{**OFF, "noise_prob": 1.0}, noise_poisson_prob=0.0, noise_gray_prob=float(gray),
                           noise_gaussian_sigma=(10.0, 10.0))
    lr = d(hr, (64, 64), gen())
    assert lr.std().item() == pytest.approx(2 * 10 / 255, rel=0.03)  # sigma on 0..255 -> [-1, 1] scale
    assert torch.equal(lr[0], lr[1]) == gray


def test_poisson_noise_follows_the_signal_level():
    hr = torch.zeros(3, 4, 64, 64)  # level 127.5 of 255: photon std sqrt(127.5)
    d = ClassicDegradation(**{**OFF, "noise_prob": 1.0}, noise_poisson_prob=1.0, noise_gray_prob=0.0,
                           noise_poisson_scale=(1.0, 1.0))
    assert d(hr, (64, 64), gen()).std().item() == pytest.approx(2 * math.sqrt(127.5) / 255, rel=0.03)


def test_noise_strength_drifts_within_its_range():
    hr = torch.zeros(3, 24, 48, 48)
    d = ClassicDegradation(**{**OFF, "noise_prob": 1.0}, noise_poisson_prob=0.0, noise_gaussian_sigma=(5.0, 10.0),
                           noise_gaussian_step=1.0)
    sigma = d(hr, (48, 48), gen()).std(dim=(0, 2, 3)) * 255 / 2  # per frame, on 0..255
    assert sigma.min() > 5 * 0.95 and sigma.max() < 10 * 1.05
    assert (sigma[1:] - sigma[:-1]).abs().max() < 1.0 + 0.5  # step plus estimation error
    assert sigma.max() - sigma.min() > 0.5


@pytest.mark.parametrize(
    ("step", "mild", "strong"),
    [("jpeg", {"jpeg_quality": (95, 95)}, {"jpeg_quality": (30, 30)}),
     ("codec", {"codec_crf": (18, 18)}, {"codec_crf": (35, 35)})],
)
def test_compression_lowers_psnr_but_keeps_the_picture(step, mild, strong):
    hr, size = smooth_clip(t=5), (48, 64)
    clean = ClassicDegradation(**OFF)(hr, size, gen())
    scores = [psnr(ClassicDegradation(**{**OFF, f"{step}_prob": 1.0}, **kw)(hr, size, gen()), clean)
              for kw in (mild, strong)]
    assert 50 > scores[0] > scores[1] > 22, scores


def test_lossless_codec_keeps_colours():
    """At CRF 0 only the 8-bit yuv420p conversion remains: no brightness or colour shift."""
    hr, size = smooth_clip(t=3), (48, 64)
    clean = ClassicDegradation(**OFF)(hr, size, gen())
    lr = ClassicDegradation(**{**OFF, "codec_prob": 1.0}, codec_crf=(0, 0))(hr, size, gen())
    assert psnr(lr, clean) > 45
    assert (lr - clean).mean(dim=(1, 2, 3)).abs().max() * 127.5 < 0.25  # in 8-bit levels


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"blur_prob": 1.5}, "blur_prob"), ({"codec_prob": -0.1}, "codec_prob"),
     ({"blur_sigma": (3.0, 0.2)}, "blur_sigma"), ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
     ({"blur_kernel_size": (8, 21)}, "blur_kernel_size"),
     ({"noise_gaussian_sigma": (-1.0, 2.0)}, "noise_gaussian_sigma"),
     ({"jpeg_quality": (0, 50)}, "jpeg_quality"), ({"codec_crf": (10, 60)}, "codec_crf"),
     ({"jpeg_quality_step": -1.0}, "jpeg_quality_step"), ({"resize_mode_probs": (0.0, 0.0, 0.0)}, "resize_mode_probs")],
)
def test_bad_constructor_args_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ClassicDegradation(**kwargs)


@pytest.mark.parametrize(
    ("hr", "lr_size"),
    [(torch.zeros(3, 8, 8), (4, 4)), (torch.zeros(4, 2, 8, 8), (4, 4)),
     (torch.zeros(3, 2, 8, 8, dtype=torch.uint8), (4, 4)),
     (torch.zeros(3, 2, 8, 8), (0, 4)), (torch.zeros(3, 2, 8, 8), (4.5, 4)), (torch.zeros(3, 2, 8, 8), (4,))],
)
def test_bad_input_raises(hr, lr_size):
    for degradation in (ClassicDegradation(), BicubicDownsample()):
        with pytest.raises(ValueError, match=type(degradation).__name__):
            degradation(hr, lr_size, gen())


def test_mixture_degradation_picks_components_by_weight_reproducibly():
    from gvr.data.degradations import BicubicDownsample, ClassicDegradation, MixtureDegradation

    hr = torch.rand(3, 2, 20, 20) * 2 - 1
    mix = MixtureDegradation([BicubicDownsample(), ClassicDegradation(codec_prob=0.0)], [3.0, 1.0])
    clean = BicubicDownsample()(hr, (8, 8), torch.Generator())
    picks = [mix.choose(torch.Generator().manual_seed(i)) for i in range(400)]
    assert 0.65 < picks.count(0) / 400 < 0.85
    for i in range(6):
        a = mix(hr, (8, 8), torch.Generator().manual_seed(i))
        assert torch.equal(a, mix(hr, (8, 8), torch.Generator().manual_seed(i)))  # reproducible
        assert torch.equal(a, clean) == (picks[i] == 0)  # the clean component returns exactly bicubic
    with pytest.raises(ValueError):
        MixtureDegradation([BicubicDownsample()], [1.0, 2.0])
    with pytest.raises(ValueError):
        MixtureDegradation([])
