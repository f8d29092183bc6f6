"""The detail-aware timestep analysis (pure functions).

A trained model integrates the flow ODE from noise; at every Euler step its clean-sample estimate
``x0_hat = z_t - t v`` is taken to the DCT domain, and the change of the high-frequency coefficients
between consecutive steps measures how much detail the model creates there. That change per unit of
``t``, normalised to a density over [0, 1], is the training distribution of the detail-aware sampler
(:class:`gvr.flow.timesteps.DetailAwareTimesteps` reads it from ``{"t": [...], "density": [...]}``).
"""

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor


def dct_matrix(n: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """Orthonormal DCT-II matrix ``(n, n)``: ``X[k] = sum_i M[k, i] x[i]`` (scipy's ``dct(norm="ortho")``)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= math.sqrt(2.0)
    return m.to(dtype=dtype, device=device)


def dct2(x: Tensor) -> Tensor:
    """Orthonormal 2D DCT-II over the last two dims (each frame of a ``(..., H, W)`` tensor)."""
    h, w = x.shape[-2:]
    mh, mw = dct_matrix(h, x.dtype, x.device), dct_matrix(w, x.dtype, x.device)
    return mh @ x @ mw.T


def high_frequency_mask(h: int, w: int, cutoff: float, device: torch.device | str = "cpu") -> Tensor:
    """Boolean ``(h, w)``: DCT coefficients whose radial frequency is at least ``cutoff``.

    DCT-II index ``k`` of ``n`` samples is the frequency ``k / (2n)`` cycles a pixel, i.e. the fraction
    ``k / n`` of Nyquist; the radial fraction is ``sqrt((u / h)^2 + (v / w)^2)``. ``cutoff`` 0.5 keeps
    the coefficients beyond half of Nyquist; 0 keeps all of them.
    """
    if not 0 <= cutoff < math.sqrt(2):
        raise ValueError(f"high_frequency_mask: cutoff must lie in [0, sqrt(2)), got {cutoff}")
    fu = torch.arange(h, device=device, dtype=torch.float64)[:, None] / h
    fv = torch.arange(w, device=device, dtype=torch.float64)[None, :] / w
    mask = torch.sqrt(fu**2 + fv**2) >= cutoff
    if not mask.any():
        raise ValueError(f"high_frequency_mask: cutoff {cutoff} keeps no coefficient of a {h}x{w} frame")
    return mask


def high_frequency_change(
    before: Tensor, after: Tensor, cutoff: float = 0.5, norm: Literal["l2", "l1"] = "l2"
) -> Tensor:
    """Per-sample size of the change of the high-frequency DCT coefficients between two ``(B, ...,  H, W)``.

    ``l2`` is the root mean square and ``l1`` the mean absolute change over the kept coefficients of
    every channel and frame, so clips of any size compare. The DCT is linear: it is taken of the difference.
    """
    if before.shape != after.shape:
        raise ValueError(f"high_frequency_change: shapes differ, {tuple(before.shape)} vs {tuple(after.shape)}")
    diff = dct2((after - before).double())
    kept = diff[..., high_frequency_mask(*diff.shape[-2:], cutoff, diff.device)]  # (B, ..., n kept)
    kept = kept.flatten(1)
    if norm == "l2":
        return kept.pow(2).mean(1).sqrt()
    if norm == "l1":
        return kept.abs().mean(1)
    raise ValueError(f"high_frequency_change: norm must be 'l2' or 'l1', got {norm!r}")


def change_rate(changes: Tensor, timesteps: Tensor) -> tuple[Tensor, Tensor]:
    """Detail created per unit of ``t`` between consecutive Euler steps.

    ``changes[i]`` ``(S - 1, B)`` is the :func:`high_frequency_change` between the estimates at
    ``timesteps[i]`` and ``timesteps[i + 1]``. Returns the interval midpoints ``(S - 1,)`` and
    ``changes / |t_i - t_{i+1}|`` ``(S - 1, B)``, so that non-uniform schedules compare.
    """
    if changes.ndim != 2 or len(timesteps) < len(changes) + 1:
        raise ValueError(f"change_rate: need changes (S - 1, B) and >= S times, got {tuple(changes.shape)} and {len(timesteps)}")
    t = timesteps[: len(changes) + 1].double().cpu()
    dt = (t[:-1] - t[1:]).abs()
    return (t[1:] + t[:-1]) / 2, changes.double().cpu() / dt[:, None]


def to_density(t: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    """A piecewise-linear density over [0, 1] through ``(t, value)`` points, as DetailAwareTimesteps reads it.

    Points are sorted by ``t``; the end values are held out to ``t = 0`` and ``t = 1`` so every time can
    be drawn; the result integrates to 1 (trapezoid rule, exact for a piecewise-linear density).
    """
    if t.ndim != 1 or t.shape != value.shape or len(t) < 1:
        raise ValueError(f"to_density: need matching 1-D t and value, got {tuple(t.shape)} and {tuple(value.shape)}")
    order = torch.argsort(t)
    t, value = t[order].double(), value[order].double().clamp(min=0)
    if not torch.isfinite(value).all() or value.sum() <= 0:
        raise ValueError("to_density: values must be finite and not all zero")
    if t[0] > 0:
        t, value = torch.cat([t.new_zeros(1), t]), torch.cat([value[:1], value])
    if t[-1] < 1:
        t, value = torch.cat([t, t.new_ones(1)]), torch.cat([value, value[-1:]])
    area = (0.5 * (value[1:] + value[:-1]) * t.diff()).sum()
    return t, value / area


def mass_between(t: Tensor, density: Tensor, lo: float, hi: float) -> float:
    """Probability of ``[lo, hi]`` under the piecewise-linear density (exact: trapezoids on its breakpoints)."""
    t, density = t.double().cpu(), density.double().cpu()
    inner = t[(t > lo) & (t < hi)]
    grid = torch.cat([torch.tensor([lo], dtype=torch.float64), inner, torch.tensor([hi], dtype=torch.float64)])
    values = torch.from_numpy(np.interp(grid.numpy(), t.numpy(), density.numpy(), left=0.0, right=0.0))
    return float(torch.trapezoid(values, grid))
