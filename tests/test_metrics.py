"""gvr.metrics: Fréchet distance against an independent formula, PSNR / SSIM (RGB and Y) against scikit-image
on real frames, the FVD metric, and the I3D extractor's checkpoint layout."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from gvr.data.video import frames_to_tensor, read_video
from gvr.metrics.frechet import FrechetVideoDistance, feature_stats, frechet_distance
from gvr.metrics.i3d import InceptionI3d, load_i3d
from gvr.metrics.image import FramePSNR, FrameSSIM, rgb_to_y, ssim

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"

# 1. Fréchet distance


def reference_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """tr((S1 S2)^1/2) as the sum of sqrt-eigenvalues of the symmetric S1^1/2 S2 S1^1/2 (no sqrtm)."""
    w, v = linalg.eigh(sigma1)
    root1 = (v * np.sqrt(w.clip(min=0))) @ v.T
    inner = linalg.eigvalsh(root1 @ sigma2 @ root1).clip(min=0)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(inner).sum())


def gaussian_samples(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift


def test_feature_stats_is_mean_and_biased_covariance():
    x = gaussian_samples(np.random.default_rng(0), 50, 6, 1.0)
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, (x - mu).T @ (x - mu) / len(x), rtol=1e-12)  # 1/N, not 1/(N-1)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_stats(x[:1])


def test_frechet_distance_closed_form_1d():
    # N(0, 2^2) vs N(1, 3^2): (0 - 1)^2 + (2 - 3)^2
    distance = frechet_distance(np.zeros(1), np.array([[4.0]]), np.ones(1), np.array([[9.0]]))
    assert distance == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("n, d", [(400, 16), (12, 32)])  # full rank, and singular (fewer samples than dims)
def test_frechet_distance_matches_reference(n, d):
    rng = np.random.default_rng(d)
    stats1 = feature_stats(gaussian_samples(rng, n, d, 0.0))
    stats2 = feature_stats(gaussian_samples(rng, n, d, 0.3))
    expected = reference_frechet(*stats1, *stats2)
    assert frechet_distance(*stats1, *stats2) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(*stats1, *stats1)) < 1e-6 * np.trace(stats1[1])


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# 2. PSNR and SSIM on RGB and Y against scikit-image


def test_rgb_to_y_is_bt601_studio_range():
    black, white, red = torch.zeros(3), torch.ones(3), torch.tensor([1.0, 0.0, 0.0])
    frames = torch.stack([black, white, red]).view(3, 3, 1, 1)
    expected = torch.tensor([16.0, 235.0, 16 + 65.481]) / 255
    torch.testing.assert_close(rgb_to_y(frames).flatten(), expected, rtol=0, atol=1e-4)  # white is 234.999


def luma(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float64 Y in [0, 1], MATLAB rgb2ycbcr's formula."""
    return (16 + frames / 255 @ np.array([65.481, 128.553, 24.966])) / 255


@pytest.mark.skipif(not (SAMPLES / "bikes.mp4").exists(), reason="run `make samples` for the real sample videos")
@pytest.mark.parametrize("channel", ["rgb", "y"])
def test_psnr_ssim_match_scikit_image_on_real_frames(channel):
    target, _ = read_video(SAMPLES / "bikes.mp4", start=0, num_frames=2)  # (2, 272, 640, 3)
    noise = np.random.default_rng(0).normal(0, 12, size=target.shape)
    preds = (target + noise).clip(0, 255).round().astype(np.uint8)
    psnr, ssim = FramePSNR(channel=channel), FrameSSIM(channel=channel)
    for metric in (psnr, ssim):
        metric.update(frames_to_tensor(preds)[None], frames_to_tensor(target)[None])

    if channel == "rgb":
        pairs, data_range, ssim_args = zip(target, preds), 255, {"channel_axis": -1}
    else:
        pairs, data_range, ssim_args = zip(luma(target), luma(preds)), 1.0, {}
    pairs = list(pairs)
    expected_psnr = np.mean([peak_signal_noise_ratio(t, p, data_range=data_range) for t, p in pairs])
    expected_ssim = np.mean(
        [
            structural_similarity(
                t, p, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, **ssim_args
            )
            for t, p in pairs
        ]
    )
    assert 20 < expected_psnr < 35 and 0.3 < expected_ssim < 0.95  # a real, clearly degraded pair
    assert psnr.compute().item() == pytest.approx(expected_psnr, abs=1e-5)  # dB; measured < 1e-6
    assert ssim.compute().item() == pytest.approx(expected_ssim, abs=1e-5)  # float32, centred: measured < 4e-6


def test_frame_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="'rgb' or 'y'"):
        FramePSNR(channel="Y")
    frames = torch.rand(2, 3, 11, 11)  # one window
    assert ssim(frames, frames).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="window"):
        ssim(frames[..., :10], frames[..., :10])


# 3. FVD


class TinyExtractor(nn.Module):
    """A random stand-in for I3D: uint8 videos -> 6 features (BatchNorm to check eval mode is kept)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(3 * 8, 6), nn.BatchNorm1d(6))

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        assert videos.dtype == torch.uint8
        return self.proj(F.adaptive_avg_pool3d(videos.float() / 255, 2).flatten(1))


def test_fvd_is_zero_against_itself_and_grows_with_a_shift():
    torch.manual_seed(0)
    videos = torch.rand(24, 3, 4, 8, 8) * 2 - 1
    fvd = FrechetVideoDistance(TinyExtractor())
    fvd.train()  # a parent LightningModule switching to train mode must not reach the extractor
    assert not fvd.extractor.training
    for batch in videos.split(10):  # uneven batches, both sides
        fvd.update(batch, real=True)
    fvd.update(videos, real=False)
    assert abs(fvd.compute().item()) < 1e-6

    fvd.reset()
    shifted = (videos * 0.5 + 0.3).clamp(-1, 1)
    fvd.update(videos, real=True)
    fvd.update(shifted, real=False)
    with torch.no_grad():
        quantised = ((torch.stack([videos, shifted]).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        features = [fvd.extractor(q).double().numpy() for q in quantised]
    expected = frechet_distance(*feature_stats(features[0]), *feature_stats(features[1]))
    assert expected > 1e-2  # against < 1e-6 for the set itself
    assert fvd.compute().item() == pytest.approx(expected, rel=1e-6)


def test_fvd_needs_two_clips_a_side():
    fvd = FrechetVideoDistance(TinyExtractor())
    fvd.update(torch.zeros(1, 3, 4, 8, 8), real=True)
    fvd.update(torch.zeros(3, 3, 4, 8, 8), real=False)
    with pytest.raises(ValueError, match="N >= 2"):
        fvd.compute()


# 4. I3D: the layout of i3d_pretrained_400.pt (VideoGPT / TATS / cd-fvd pytorch_i3d.InceptionI3d(400))

I3D_UNITS = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"] + [
    f"Mixed_{block}.{branch}"
    for block in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c")
    for branch in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")
]
I3D_KEYS = {
    f"{unit}.{suffix}"
    for unit in I3D_UNITS
    for suffix in ("conv3d.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
} | {"logits.conv3d.weight", "logits.conv3d.bias"}
I3D_SHAPES = {
    "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
    "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
    "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
    "Mixed_4b.b1b.conv3d.weight": (208, 96, 3, 3, 3),
    "Mixed_5c.b3b.conv3d.weight": (128, 832, 1, 1, 1),
    "Mixed_5c.b2b.bn.running_var": (128,),
    "logits.conv3d.weight": (400, 1024, 1, 1, 1),
    "logits.conv3d.bias": (400,),
}


@pytest.fixture(scope="module")
def i3d() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d().eval()


def test_i3d_state_dict_matches_the_checkpoint_layout(i3d):
    state = i3d.state_dict()
    assert len(I3D_KEYS) == 287
    assert {k for k in state if not k.endswith("num_batches_tracked")} == I3D_KEYS
    assert {k: tuple(state[k].shape) for k in I3D_SHAPES} == I3D_SHAPES
    assert all(m.eps == 1e-5 for m in i3d.modules() if isinstance(m, nn.BatchNorm3d))


def test_load_i3d_is_strict_and_tolerates_missing_batch_counters(i3d, tmp_path):
    checkpoint = {k: v for k, v in i3d.state_dict().items() if k in I3D_KEYS}  # as the released file
    torch.save(checkpoint, tmp_path / "i3d_pretrained_400.pt")
    loaded = load_i3d(tmp_path / "i3d_pretrained_400.pt")
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(loaded.state_dict(), i3d.state_dict(), rtol=0, atol=0)

    torch.save({k: v for k, v in checkpoint.items() if k != "logits.conv3d.bias"}, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match="logits.conv3d.bias"):
        load_i3d(tmp_path / "partial.pt")
    with pytest.raises(FileNotFoundError, match=r"missing\.pt.*i3d_pretrained_400\.pt.*TATS"):
        load_i3d(tmp_path / "missing.pt")


def test_i3d_forward_gives_400_logits(i3d):
    videos = torch.randint(0, 256, (1, 3, InceptionI3d.min_frames, 32, 40), dtype=torch.uint8)
    with torch.no_grad():
        logits = i3d(videos)
    assert logits.shape == (1, 400) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=">= 9 frames"):
        i3d(videos[:, :, :8])


def test_grid_energy_scores_a_four_pixel_pattern_and_not_natural_content():
    import torch.nn.functional as F

    from gvr.metrics.image import FrameGrid, grid_energy

    torch.manual_seed(0)
    smooth = F.interpolate(torch.rand(2, 3, 16, 16), size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    assert grid_energy(smooth).max() < 0.5  # bicubic upsampling: no preferred phase
    cells = torch.zeros(1, 1, 64, 64)
    cells[..., ::4, ::4] = 16 / 255  # a dot every 4 pixels, 16 levels high
    base = 0.5 * torch.ones(1, 1, 64, 64)
    dots = grid_energy(base + cells).item()
    # phase means: 16 * (1 - 1/25) at the dot phase, its blur leak elsewhere -> std ~ sqrt(15) / 16 * 15.4 levels
    assert 3.0 < dots < 4.5, dots
    assert grid_energy(base + 2 * cells).item() == pytest.approx(2 * dots, rel=1e-5)  # linear in the amplitude
    assert grid_energy(base + cells, period=3).item() < 0.5 * dots  # another period does not see it
    on_content = grid_energy(smooth[:1, :1] * 0.8 + cells).item()  # the same dots over real content
    assert on_content == pytest.approx(dots, abs=0.5) and on_content > 10 * grid_energy(smooth).max().item()
    video = (base + cells).expand(1, 3, 64, 64)[:, :, None].repeat(1, 1, 2, 1, 1) * 2 - 1  # (B, C, T, H, W) in [-1, 1]
    metric = FrameGrid(channel="rgb")
    metric.update(video, torch.zeros_like(video))  # the reference is ignored
    assert not FrameGrid.higher_is_better and metric.compute().item() == pytest.approx(dots, abs=0.3)  # 8-bit rounding
