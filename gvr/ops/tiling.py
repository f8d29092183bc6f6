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


def _windows(lr_size: int, hr_size: int, tile: int, overlap: int, ratio: float, margin: int) -> list[tuple]:
    """Tiles along one axis: (lr crop start, lr crop end, hr start, hr end, hr overlap before, hr overlap after, offset).

    Tile ``k`` owns the LR span ``[a, b)`` of :func:`tile_starts` and the HR window ``[round(a r), round(b r))``
    (the last one ends at ``hr_size``); its LR crop adds ``margin`` pixels of context on both sides, and
    ``offset`` is the crop position that the HR window's first edge maps to under the global ratio ``r``.
    """
    starts = tile_starts(lr_size, tile, overlap)
    spans = [(s, min(s + tile, lr_size)) for s in starts]
    hr = [(round(a * ratio), round(b * ratio)) for a, b in spans]
    hr[-1] = (hr[-1][0], hr_size)
    out = []
    for k, ((a, b), (ha, hb)) in enumerate(zip(spans, hr)):
        before = hr[k - 1][1] - ha if k > 0 else 0
        after = hb - hr[k + 1][0] if k + 1 < len(hr) else 0
        ca, cb = max(0, a - margin), min(lr_size, b + margin)
        out.append((ca, cb, ha, hb, before, after, ha / ratio - ca))
    return out


def tiled(net: Callable[..., Tensor], tile: int, overlap: int, margin: int = 2) -> Callable[..., Tensor]:
    """Wrap ``net(x, t, c, s, *extra, ratio=, offset=) -> v`` so it runs on LR tiles of ``tile`` latent pixels.

    ``x`` is the HR state ``(B, C, T, H, W)``, ``c`` the LR condition ``(B, C', T, h, w)``, and the wrapped
    function takes the global ``ratio`` (HR / LR latent pixels per axis; None: ``(H / h, W / w)``). Each tile
    runs the network on an HR window and the LR crop around it (``margin`` extra LR pixels of context), told
    the exact ratio and the crop's offset, so every tile sees the same global LR->HR map as the whole frame;
    the velocities are blended with linear ramps where windows overlap (``overlap`` LR pixels). ``extra``
    arguments (text features and their mask) are not spatial and reach every tile whole. Inputs no larger
    than one tile pass straight through.
    """

    def velocity(x: Tensor, t: Tensor, c: Tensor, s: Tensor, *extra, ratio: tuple[float, float] | None = None) -> Tensor:
        (hh, ww), (h, w) = x.shape[-2:], c.shape[-2:]
        if h <= tile and w <= tile:
            return net(x, t, c, s, *extra, ratio=ratio)
        ratio = ratio if ratio is not None else (hh / h, ww / w)
        out = torch.zeros_like(x)
        total = torch.zeros(hh, ww, dtype=x.dtype, device=x.device)
        for ya, yb, ha, hb, hb0, hb1, oy in _windows(h, hh, tile, overlap, ratio[0], margin):
            for xa, xb, wa, wb, wb0, wb1, ox in _windows(w, ww, tile, overlap, ratio[1], margin):
                v = net(x[..., ha:hb, wa:wb], t, c[..., ya:yb, xa:xb], s, *extra, ratio=ratio, offset=(oy, ox))
                weight = torch.outer(ramp_weights(hb - ha, hb0, hb1), ramp_weights(wb - wa, wb0, wb1)).to(x)
                out[..., ha:hb, wa:wb] += v * weight
                total[ha:hb, wa:wb] += weight
        return out / total

    return velocity
