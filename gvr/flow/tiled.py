"""Spatial tiling of a velocity network, blended at every step (bounded memory at any resolution).

The LR condition is cut into overlapping tiles; each tile and the matching window of the HR state go
through the network, and the velocities are averaged in the overlaps with linear ramps. Blending the
velocity at every Euler step (rather than the finished tiles) keeps the tiles on one trajectory, so no
seam appears where they meet.
"""

from collections.abc import Callable

import torch
from torch import Tensor


def ramp_weights(n: int, before: int, after: int) -> Tensor:
    """Weights of ``n`` positions that rise linearly over the ``before`` first and fall over the ``after`` last.

    Two windows that overlap by ``k`` with ``after = before = k`` have weights summing to exactly 1 there.
    """
    i = torch.arange(n, dtype=torch.float32)
    return torch.minimum(torch.minimum(torch.ones(n), (i + 1) / (before + 1)), (n - i) / (after + 1))


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of windows of ``tile`` covering ``size`` with at least ``overlap`` shared; the last ends at ``size``."""
    if not 0 <= overlap < tile:
        raise ValueError(f"need 0 <= tile overlap < tile, got overlap={overlap}, tile={tile}")
    if size <= tile:
        return [0]
    return list(range(0, size - tile, tile - overlap)) + [size - tile]


def _windows(lr_size: int, hr_size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int, int, int]]:
    """(lr start, lr end, hr start, hr end, hr overlap before, hr overlap after) along one axis."""
    ratio = hr_size / lr_size
    starts = tile_starts(lr_size, tile, overlap)
    spans = [(s, min(s + tile, lr_size)) for s in starts]
    hr = [(round(a * ratio), round(b * ratio)) for a, b in spans]
    out = []
    for k, ((a, b), (ha, hb)) in enumerate(zip(spans, hr)):
        before = hr[k - 1][1] - ha if k > 0 else 0
        after = hb - hr[k + 1][0] if k + 1 < len(hr) else 0
        out.append((a, b, ha, hb, before, after))
    return out


def tiled(net: Callable[..., Tensor], tile: int, overlap: int) -> Callable[..., Tensor]:
    """Wrap ``net(x, t, c, s, *extra) -> v`` so it runs on LR tiles of ``tile`` latent pixels (``overlap`` shared).

    ``x`` is the HR state ``(B, C, T, H, W)``, ``c`` the LR condition ``(B, C', T, h, w)``; a tile of ``c``
    is matched with the HR window at the same relative position. ``extra`` arguments (text features and
    their mask) are not spatial and reach every tile whole. Inputs no larger than one tile pass straight
    through.
    """

    def velocity(x: Tensor, t: Tensor, c: Tensor, s: Tensor, *extra) -> Tensor:
        (hh, ww), (h, w) = x.shape[-2:], c.shape[-2:]
        if h <= tile and w <= tile:
            return net(x, t, c, s, *extra)
        out = torch.zeros_like(x)
        total = torch.zeros(hh, ww, dtype=x.dtype, device=x.device)
        for ya, yb, ha, hb, hb0, hb1 in _windows(h, hh, tile, overlap):
            for xa, xb, wa, wb, wb0, wb1 in _windows(w, ww, tile, overlap):
                v = net(x[..., ha:hb, wa:wb], t, c[..., ya:yb, xa:xb], s, *extra)
                weight = torch.outer(ramp_weights(hb - ha, hb0, hb1), ramp_weights(wb - wa, wb0, wb1)).to(x)
                out[..., ha:hb, wa:wb] += v * weight
                total[ha:hb, wa:wb] += weight
        return out / total

    return velocity
