"""Frame-wise PSNR and SSIM of pixel videos, as VSR papers report them (per frame, then averaged)."""

import torch
from einops import rearrange
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def to_unit_frames(x: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` in [-1, 1] -> ``(B*T, C, H, W)`` in [0, 1], quantised to 8 bits like a saved video."""
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 255.0
    return rearrange(x, "b c t h w -> (b t) c h w")


class FrameMean(Metric):
    """Mean over all frames of a per-frame score between two videos ``(B, C, T, H, W)`` in [-1, 1]."""

    higher_is_better = True
    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        """Per-frame scores ``(N,)`` of ``(N, C, H, W)`` frames in [0, 1]."""
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        values = self.score(to_unit_frames(preds), to_unit_frames(target))
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class FramePSNR(FrameMean):
    """RGB PSNR (dB) per 8-bit frame, averaged over frames."""

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


class FrameSSIM(FrameMean):
    """RGB SSIM (Gaussian window 11, sigma 1.5) per 8-bit frame, averaged over frames."""

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none")
