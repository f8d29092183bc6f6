"""Frame-wise PSNR and SSIM of pixel videos, as VSR papers report them (per frame, then averaged)."""

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio

# BT.601 luma of MATLAB's rgb2ycbcr for RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B, on 0..255.
Y_WEIGHTS, Y_OFFSET = (65.481, 128.553, 24.966), 16.0


def to_uint8(x: Tensor) -> Tensor:
    """Video in [-1, 1] -> uint8 of the same shape, rounded like a saved video."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_unit_frames(x: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` in [-1, 1] -> ``(B*T, C, H, W)`` in [0, 1], quantised to 8 bits like a saved video."""
    return rearrange(to_uint8(x).float() / 255.0, "b c t h w -> (b t) c h w")


def rgb_to_y(frames: Tensor) -> Tensor:
    """RGB ``(N, 3, H, W)`` in [0, 1] -> BT.601 luma ``(N, 1, H, W)`` in [16, 235] / 255, unrounded as in BasicSR."""
    weights = frames.new_tensor(Y_WEIGHTS)
    return (Y_OFFSET + torch.einsum("nchw,c->nhw", frames, weights)).unsqueeze(1) / 255.0


def ssim(preds: Tensor, target: Tensor, sigma: float = 1.5, radius: int = 5) -> Tensor:
    """SSIM ``(N,)`` of frames ``(N, C, H, W)`` in [0, 1]: Wang et al.'s Gaussian SSIM, channels averaged.

    As ssim.m, BasicSR and scikit-image (``gaussian_weights=True, use_sample_covariance=False``), the map is
    averaged over the pixels whose whole window lies inside the frame (torchmetrics also averages a padded
    border). The frames are centred before the moments: the variances ``E[x^2] - E[x]^2`` cancel, and
    uncentred float32 is off by about 2e-5 (centred: a few 1e-6).
    """
    channels, height, width = preds.shape[1:]
    if min(height, width) <= 2 * radius:
        raise ValueError(f"ssim: frames {height}x{width} are not larger than the {2 * radius + 1}-pixel window")
    offset = target.float().mean(dim=(2, 3), keepdim=True)  # (n, c, 1, 1); variances ignore it
    x, y = preds.float() - offset, target.float() - offset
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    gauss = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (torch.outer(gauss, gauss) / gauss.sum() ** 2).expand(5 * channels, 1, -1, -1)
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (n, 5 c, h, w)
    moments = F.conv2d(moments, kernel, groups=5 * channels)  # no padding: (n, 5 c, h - 2 r, w - 2 r)
    mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    mu_x, mu_y = mu_x + offset, mu_y + offset
    c1, c2 = 0.01**2, 0.03**2  # (K1 L)^2, (K2 L)^2 with L = 1
    ssim_map = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


class FrameMean(Metric):
    """Mean over all frames of a per-frame score between two videos ``(B, C, T, H, W)`` in [-1, 1]."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, channel: Literal["rgb", "y"] = "rgb"):
        """Args:
        channel: score the RGB frames, or their BT.601 luma (Y of MATLAB's rgb2ycbcr) as most VSR papers do.
        """
        super().__init__()
        if channel not in ("rgb", "y"):
            raise ValueError(f"{type(self).__name__}: channel must be 'rgb' or 'y', got {channel!r}")
        self.channel = channel
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-frame scores ``(N,)`` of ``(N, C, H, W)`` frames in [0, 1]."""
        raise NotImplementedError

    def frames(self, x: Tensor) -> Tensor:
        """The 8-bit frames that are scored: RGB, or their luma."""
        frames = to_unit_frames(x)
        return rgb_to_y(frames) if self.channel == "y" else frames

    def update(self, preds: Tensor, target: Tensor) -> None:
        values = self.score(self.frames(preds), self.frames(target))
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class FramePSNR(FrameMean):
    """PSNR (dB, peak 1 = 255 on 8 bits) per 8-bit frame on RGB or Y, averaged over frames."""

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


class FrameSSIM(FrameMean):
    """SSIM (Gaussian window 11, sigma 1.5, no border; see `ssim`) per 8-bit frame on RGB or Y, averaged over frames."""

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return ssim(preds, target)


def grid_energy(frames: Tensor, period: int = 4, blur: int = 5, border: int = 8, eps: float = 0.0) -> Tensor:
    """Periodic-pattern artefact score ``(N,)`` of frames ``(N, C, H, W)`` in [0, 1], in 8-bit levels.

    The high-pass of each frame (the frame minus its ``blur`` x ``blur`` box blur, reflected at the edges,
    ``border`` pixels cropped, fewer on frames too small for it) is averaged over each of the ``period**2``
    pixel phases ``(y mod period, x mod period)``; the score is the standard deviation of those phase means,
    channels averaged. Natural content has no preferred phase (about 0; JPEG sources show their 8x8 blocks a
    little); a pattern that repeats every ``period`` pixels with the same sign, such as the seams of patch
    tokens (4x4 pixels for PatchCodec x2 with 2x2 patches), scores its amplitude; block edges whose sign
    varies (nearest-neighbour upsampling) score little. Lower is better. ``eps`` is added to the variance
    before its square root, so that a loss built on the score (`gvr.lit.distill_losses.grid_excess_loss`) has a finite
    gradient on frames without any pattern.
    """
    if min(frames.shape[-2:]) < max(period, blur // 2 + 1):
        raise ValueError(f"grid_energy: frames {tuple(frames.shape[-2:])} are smaller than one {period}-pixel period")
    border = min(border, (min(frames.shape[-2:]) - period) // 2)  # small frames: a narrower border
    pad = blur // 2
    smooth = F.avg_pool2d(F.pad(frames, (pad, pad, pad, pad), mode="reflect"), blur, stride=1)
    high = (frames - smooth)[..., border : frames.shape[-2] - border, border : frames.shape[-1] - border]
    h, w = (n // period * period for n in high.shape[-2:])
    phases = rearrange(high[..., :h, :w], "n c (y p) (x q) -> n c (p q) (y x)", p=period, q=period).mean(-1)
    return ((phases.var(dim=-1, unbiased=False) + eps).sqrt() * 255).mean(dim=1)


class FrameGrid(FrameMean):
    """`grid_energy` of the output frames (the reference is not used), on luma by default, averaged over frames."""

    higher_is_better = False

    def __init__(self, channel: Literal["rgb", "y"] = "y", period: int = 4):
        super().__init__(channel)
        self.period = period

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return grid_energy(preds, self.period)
