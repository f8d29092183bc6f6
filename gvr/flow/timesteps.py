"""Training-time samplers of the flow time ``t`` in [0, 1] (``t = 1`` is noise).

Each sampler is a small configurable object with ``sample(n, generator, device) -> (n,)``.
"""

import json
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import Tensor


class TimestepSampler(ABC):
    """Draws flow times for a batch."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        """Return ``n`` times in [0, 1] as a float32 tensor on ``device``."""

    def _uniform(self, n: int, generator: torch.Generator | None, device) -> Tensor:
        return torch.rand(n, generator=generator, device=getattr(generator, "device", "cpu")).to(device)


class UniformTimesteps(TimestepSampler):
    """``t ~ U[0, 1]``."""

    def sample(self, n, generator=None, device="cpu"):
        return self._uniform(n, generator, device)


class LogitNormalTimesteps(TimestepSampler):
    """``t = sigmoid(x)``, ``x ~ N(mean, std)`` (SD3's logit-normal sampling).

    Args:
        mean: mean of the underlying normal.
        std: standard deviation of the underlying normal.
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        if std <= 0:
            raise ValueError(f"LogitNormalTimesteps: std must be positive, got {std}")
        self.mean, self.std = mean, std

    def sample(self, n, generator=None, device="cpu"):
        x = torch.randn(n, generator=generator, device=getattr(generator, "device", "cpu"))
        return torch.sigmoid(x * self.std + self.mean).to(device)


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Resolution shift of flow time (SD3 / Wan): ``shift t / (1 + (shift - 1) t)``; > 1 favours noise."""
    return shift * t / (1 + (shift - 1) * t)


class ShiftedTimesteps(TimestepSampler):
    """Uniform time pushed towards noise by :func:`shift_time`.

    Args:
        shift: time shift factor (1 = uniform; 3 is common at high resolution).
    """

    def __init__(self, shift: float = 3.0):
        if shift <= 0:
            raise ValueError(f"ShiftedTimesteps: shift must be positive, got {shift}")
        self.shift = shift

    def sample(self, n, generator=None, device="cpu"):
        return shift_time(self._uniform(n, generator, device), self.shift)


class DetailAwareTimesteps(TimestepSampler):
    """The paper's detail-aware sampler: ``t`` drawn from a measured density over [0, 1].

    The file (written by the timestep analysis) is JSON ``{"t": [...], "density": [...]}``: a grid of
    times in increasing order and a non-negative density at each. The density is piecewise linear
    between grid points (zero outside) and is sampled exactly by inverting its CDF.

    Args:
        path: JSON file with the keys ``t`` and ``density``.
    """

    def __init__(self, path: str):
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(
                f"DetailAwareTimesteps: no distribution file at {file}; make one with "
                "`gvr analyze-timesteps` or point `path` to an existing JSON file"
            )
        try:
            data = json.loads(file.read_text())
            t = torch.tensor(data["t"], dtype=torch.float64)
            p = torch.tensor(data["density"], dtype=torch.float64)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"DetailAwareTimesteps: {file} is not a JSON object with 't' and 'density' lists ({err})") from err
        if t.ndim != 1 or t.shape != p.shape or len(t) < 2:
            raise ValueError(f"DetailAwareTimesteps: {file} needs 't' and 'density' of the same length >= 2")
        if (t < 0).any() or (t > 1).any() or (t.diff() <= 0).any():
            raise ValueError(f"DetailAwareTimesteps: {file}: 't' must increase strictly inside [0, 1]")
        if (p < 0).any() or not torch.isfinite(p).all() or p.sum() <= 0:
            raise ValueError(f"DetailAwareTimesteps: {file}: 'density' must be finite, >= 0 and not all zero")
        area = 0.5 * (p[1:] + p[:-1]) * t.diff()  # trapezoid rule is exact for a piecewise-linear density
        self.total = float(area.sum())
        self.grid, self.raw = t, p
        self.cdf = torch.cat([torch.zeros(1, dtype=torch.float64), area.cumsum(0)]) / self.total

    def pdf(self, t: Tensor) -> Tensor:
        """Normalised density at ``t`` (integrates to 1 over [0, 1])."""
        t = t.double()
        inside = (t >= self.grid[0]) & (t <= self.grid[-1])
        i = torch.searchsorted(self.grid, t.clamp(self.grid[0], self.grid[-1]), right=True).clamp(1, len(self.grid) - 1)
        t0, t1, p0, p1 = self.grid[i - 1], self.grid[i], self.raw[i - 1], self.raw[i]
        value = p0 + (p1 - p0) * (t - t0) / (t1 - t0)
        return torch.where(inside, value, torch.zeros_like(value)) / self.total

    def sample(self, n, generator=None, device="cpu"):
        u = self._uniform(n, generator, "cpu").double()
        i = torch.searchsorted(self.cdf, u, right=True).clamp(1, len(self.cdf) - 1)
        t0, p0, p1 = self.grid[i - 1], self.raw[i - 1], self.raw[i]
        dt = self.grid[i] - t0
        slope = (p1 - p0) / dt
        mass = (u - self.cdf[i - 1]) * self.total  # unnormalised mass to cover inside the interval
        # Solve p0 x + slope x^2 / 2 = mass for x in [0, dt], in the cancellation-free form.
        x = 2 * mass / (p0 + torch.sqrt(torch.clamp(p0 * p0 + 2 * slope * mass, min=0)))
        x = torch.nan_to_num(x, nan=0.0).clamp(min=0).minimum(dt)
        return (t0 + x).float().to(device)
