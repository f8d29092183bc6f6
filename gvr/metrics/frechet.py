"""Fréchet distance between Gaussian fits of features, and FVD as a torchmetrics Metric."""

import numpy as np
import torch
from scipy import linalg
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gvr.metrics.image import to_uint8


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and biased (1/N) covariance ``(D, D)`` in float64 of features ``(N, D)``, as FVD uses."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"feature_stats: expected features (N >= 2, D), got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False, bias=True)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` in float64.

    As pytorch-fid / StyleGAN-V: the matrix square root is ``scipy.linalg.sqrtm``; when it is not finite
    (a singular product), ``eps`` is added to both diagonals and it is taken again; the imaginary part
    that numerical error leaves is dropped once its diagonal is below 1e-3.

    Raises:
        ValueError: mismatched shapes, or a significant imaginary component.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes {mu1.shape} {sigma1.shape} vs {mu2.shape} {sigma2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(d)
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3:
            raise ValueError(f"frechet_distance: sqrtm has an imaginary component of {imaginary:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


class FrechetVideoDistance(Metric):
    """FVD between real and generated videos ``(B, C, T, H, W)`` in [-1, 1], the lower the better.

    Each video is quantised to uint8 like a saved file and mapped by `extractor` to one feature vector;
    at `compute` the two feature sets are fitted with Gaussians (float64, biased covariance) and compared
    with `frechet_distance`. Every clip counts once: score whole sets, never resampled ones. Features are
    kept (not running sums), so DDP gathers them with ``cat``. Call `update`, not `forward`: a batch alone
    has no meaningful FVD.
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, extractor: nn.Module):
        """Args:
        extractor: maps uint8 videos ``(B, 3, T, H, W)`` to features ``(B, D)``, e.g. ``gvr.metrics.i3d.load_i3d``;
            frozen here and kept in eval mode.
        """
        super().__init__()
        self.extractor = extractor.eval().requires_grad_(False)
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("fake_features", default=[], dist_reduce_fx="cat")

    def train(self, mode: bool = True) -> "FrechetVideoDistance":
        """Keep the extractor in eval mode (its BatchNorm statistics) whatever mode a parent module sets."""
        super().train(mode)
        self.extractor.eval()
        return self

    def update(self, videos: Tensor, real: bool) -> None:
        with torch.no_grad():
            features = self.extractor(to_uint8(videos))
        if features.ndim != 2 or features.shape[0] != videos.shape[0]:
            raise ValueError(f"FrechetVideoDistance: the extractor must return (B, D), got {tuple(features.shape)}")
        (self.real_features if real else self.fake_features).append(features.double())

    def compute(self) -> Tensor:
        real, fake = (dim_zero_cat(f).cpu().numpy() for f in (self.real_features, self.fake_features))
        distance = frechet_distance(*feature_stats(real), *feature_stats(fake))
        return torch.tensor(distance, dtype=torch.float32)
