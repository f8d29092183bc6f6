"""Attention operators for long and high-resolution video: temporal units, Swin windows, sparse local.

All three are `AttentionOp`s (contract in `gvr.models.attention`) that restrict which keys each query
sees, so that the attention cost grows about linearly with the clip instead of quadratically:

- `TemporalUnitsAttention`: full attention within units of `unit` frames, partition shifted by half a
  unit on odd layers (Swin-style in time), so that information crosses unit borders over depth.
- `SwinAttention`: 2D shifted-window attention within each frame (the paper's baseline).
- `SparseLocalAttention`: MoBA-like; each 2D block of a frame attends to itself plus the `top_k` most
  relevant other blocks of the whole clip.

Grids that are not a multiple of the window/block are zero-padded at the bottom/right; padded tokens are
masked out as keys, and their outputs are cropped away.
"""

import logging
import math
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from gvr.models.attention import AttentionOp
from gvr.models.flex import flex_available, sparse_local_flex, temporal_units_flex

Backend = Literal["auto", "sdpa", "flex"]
log = logging.getLogger(__name__)


def use_flex(backend: str, x: Tensor) -> bool:
    """Whether an op with `backend` runs its FlexAttention path on `x` ("auto": on CUDA when available).

    "flex" on CPU falls back to the SDPA path when gradients are needed: torch has no FlexAttention
    backward on CPU.
    """
    if backend == "flex":
        if not flex_available():
            raise RuntimeError("backend 'flex' needs torch.nn.attention.flex_attention (torch >= 2.5)")
        if not x.is_cuda and torch.is_grad_enabled() and x.requires_grad:
            _warn_no_cpu_backward()
            return False
        return True
    return backend == "auto" and x.is_cuda and flex_available()


@lru_cache(maxsize=1)
def _warn_no_cpu_backward() -> None:
    log.warning("FlexAttention has no backward on CPU: attention ops with backend 'flex' use their SDPA paths "
                "while gradients are needed")


def _check_backend(owner: str, backend: str) -> str:
    if backend not in ("auto", "sdpa", "flex"):
        raise ValueError(f"{owner}: backend must be auto, sdpa or flex, got {backend!r}")
    return backend

PAD = -1  # region label of padding token slots (see `_region_labels`)


def _check_pair(name: str, value: tuple[int, int]) -> tuple[int, int]:
    """Return `value` as a tuple of two positive ints, or raise ValueError naming `name`."""
    value = tuple(value)
    if len(value) != 2 or any(not isinstance(s, int) or s < 1 for s in value):
        raise ValueError(f"{name} must be two positive ints (h, w), got {value}")
    return value


def _to_blocks(
    x: Tensor, grid: tuple[int, int, int], size: tuple[int, int], shift: tuple[int, int] = (0, 0)
) -> Tensor:
    """Cut each frame of `x` `(B, heads, T*H*W, d)` into 2D blocks: `(B, heads, T*I*J, P*R, d)`.

    Each frame is first rolled cyclically up/left by `shift` (h, w), then zero-padded at the bottom/right
    to whole blocks of `size = (P, R)` tokens; blocks are ordered (t i j), tokens in a block (p r).
    """
    t, h, w = grid
    p, r = size
    x = rearrange(x, "b n (t h w) d -> b n t h w d", t=t, h=h)
    if any(shift):
        x = x.roll((-shift[0], -shift[1]), dims=(3, 4))
    x = F.pad(x, (0, 0, 0, -w % r, 0, -h % p))
    return rearrange(x, "b n t (i p) (j r) d -> b n (t i j) (p r) d", p=p, r=r)


def _from_blocks(
    x: Tensor, grid: tuple[int, int, int], size: tuple[int, int], shift: tuple[int, int] = (0, 0)
) -> Tensor:
    """Inverse of `_to_blocks`: `(B, heads, T*I*J, P*R, d)` -> `(B, heads, T*H*W, d)`."""
    t, h, w = grid
    p, r = size
    x = rearrange(x, "b n (t i j) (p r) d -> b n t (i p) (j r) d", t=t, i=math.ceil(h / p), p=p)
    x = x[:, :, :, :h, :w]
    if any(shift):
        x = x.roll(shift, dims=(3, 4))
    return rearrange(x, "b n t h w d -> b n (t h w) d")


def _axis_labels(length: int, block: int, s: int, device: torch.device) -> Tensor:
    """Labels along one axis rolled by `s` and padded to whole blocks: 0 body, 1 wrapped around, `PAD` padding."""
    pos = torch.arange(length + (-length % block), device=device)
    return torch.where(pos < length - s, 0, torch.where(pos < length, 1, PAD))


def _region_labels(
    hw: tuple[int, int], size: tuple[int, int], device: torch.device, shift: tuple[int, int] = (0, 0)
) -> Tensor:
    """Region label of every token slot of the blocks of one frame cut by `_to_blocks`, `(I*J, P*R)`.

    Along each axis of length L rolled by s, rolled positions [0, L - s) hold the original tokens [s, L)
    ("body", 0), positions [L - s, L) the tokens [0, s) that wrapped around ("wrapped", 1), and
    positions >= L padding. A slot's label combines both axes (2 * label_h + label_w), or is `PAD` where
    either axis is padding. Two tokens of one block may attend to each other iff their labels are equal:
    no token attends across the wrap-around, and real tokens never see padding.
    """

    (h, w), (p, r) = hw, size
    lh, lw = _axis_labels(h, p, shift[0], device)[:, None], _axis_labels(w, r, shift[1], device)[None, :]
    labels = torch.where((lh == PAD) | (lw == PAD), PAD, 2 * lh + lw)  # (I*P, J*R)
    return rearrange(labels, "(i p) (j r) -> (i j) (p r)", p=p, r=r)


class TemporalUnitsAttention(AttentionOp):
    """Full attention within units of `unit` consecutive frames; odd layers shift the units by `unit // 2`.

    On even layers the units are frames [0, U), [U, 2U), ... (the last one shorter when U does not
    divide T). On odd layers the partition is shifted Swin-style: the clip is rolled cyclically by
    U // 2 frames, cut into units, and masked so that no token attends across the wrap-around, then
    rolled back. That leaves the groups [0, U // 2), [U // 2, U // 2 + U), ..., [.., T), which this op
    attends directly, unit by unit: the same result as roll + mask, but with no (U*H*W)^2 mask, fewer
    FLOPs, and at most three mask-free SDPA calls (first, whole, last units), so flash kernels apply.
    Clips of at most `unit` frames are never shifted: every layer is full attention.

    Args:
        unit: latent frames per temporal unit (5 in the paper: the 17-frame training length).
        backend: "sdpa" (unit by unit, any device), "flex" (one FlexAttention call with a block mask;
            see `gvr.models.flex` for where it is compiled), or "auto" (flex on CUDA, sdpa elsewhere).
    """

    extends_in_time = True  # units of `unit` latent frames, whatever the clip length

    def __init__(self, unit: int = 5, backend: Backend = "auto"):
        super().__init__()
        if not isinstance(unit, int) or unit < 1:
            raise ValueError(f"TemporalUnitsAttention: unit must be a positive int, got {unit!r}")
        self.unit = unit
        self.backend = _check_backend("TemporalUnitsAttention", backend)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        self.check_grid(q, grid)
        t, h, w = grid
        shift = self.unit // 2 if layer_index % 2 and t > self.unit else 0
        if use_flex(self.backend, q):
            return temporal_units_flex(q, k, v, grid, self.unit, shift)
        whole_end = shift + (t - shift) // self.unit * self.unit
        # (first frame, end frame, frames per unit): the wrapped part, the whole units, the remainder.
        spans = [(0, shift, shift), (shift, whole_end, self.unit), (whole_end, t, t - whole_end)]
        outs = []
        for start, end, frames in spans:
            if start == end:
                continue
            q_s, k_s, v_s = (
                rearrange(x[:, :, start * h * w : end * h * w], "b n (g l) d -> (b g) n l d", l=frames * h * w)
                for x in (q, k, v)
            )
            out = F.scaled_dot_product_attention(q_s, k_s, v_s)
            outs.append(rearrange(out, "(b g) n l d -> b n (g l) d", b=q.shape[0]))
        return torch.cat(outs, dim=2)


class SwinAttention(AttentionOp):
    """Shifted-window attention (Swin): 2D windows within each frame, or 3D windows through the clip.

    Each frame is cut into windows of `window` (h, w) tokens; on odd layers the windows are shifted by
    half a window (cyclic roll + mask, then roll back). Frames not a multiple of the window are padded
    with masked tokens. An axis no longer than its window gets one window of the whole axis, unshifted.
    Per frame (`across_frames` False) it is the paper's high-resolution baseline and a linear-cost
    replacement of `FrameAttention`. With `across_frames` a window holds the same (h, w) patch of
    `frames` consecutive frames (Video Swin): time is cut into units of `frames` frames (None: the whole
    clip), shifted by half a unit on odd layers like the windows in space, so a linear-cost replacement of
    `FullAttention` whose cost per frame stays flat in pixels and in clip length.

    Args:
        window: window size in tokens (h, w).
        across_frames: windows span frames (3D) instead of one frame (2D).
        frames: frames per 3D window (with `across_frames`); None takes the whole clip.
    """

    @property
    def extends_in_time(self) -> bool:
        return self.frames is not None  # 3D windows of a fixed number of frames

    def __init__(self, window: tuple[int, int] = (8, 8), across_frames: bool = False, frames: int | None = None):
        super().__init__()
        self.window = _check_pair("SwinAttention: window", window)
        if frames is not None and (not across_frames or frames < 1):
            raise ValueError(f"SwinAttention: frames ({frames}) needs across_frames and must be >= 1")
        self.across_frames, self.frames = across_frames, frames

    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        self.check_grid(q, grid)
        b, t, hw = q.shape[0], grid[0], grid[1:]
        size = tuple(min(s, length) for s, length in zip(self.window, hw))
        shift = tuple(s // 2 if layer_index % 2 and length > s else 0 for s, length in zip(size, hw))
        masked = any(shift) or any(length % s for s, length in zip(size, hw))
        labels = _region_labels(hw, size, q.device, shift) if masked else None  # (g, l)
        if not self.across_frames:
            return self._frame_windows(q, k, v, grid, size, shift, labels)

        # 3D windows: units of `unit` frames, shifted by half a unit on odd layers (roll + pad + mask in time too).
        unit = min(self.frames or t, t)
        tshift = unit // 2 if layer_index % 2 and t > unit else 0
        tlabels = _axis_labels(t, unit, tshift, q.device)  # (u * unit,)
        masked = masked or tshift > 0 or t % unit > 0

        def into(x: Tensor) -> Tensor:  # (b, n, t*h*w, d) -> (b*g*u, n, unit*l, d)
            x = rearrange(_to_blocks(x, grid, size, shift), "b n (t g) l d -> b n g t l d", t=t)
            x = F.pad(x.roll(-tshift, dims=3) if tshift else x, (0, 0, 0, 0, 0, -t % unit))
            return rearrange(x, "b n g (u f) l d -> (b g u) n (f l) d", f=unit)

        q, k, v = (into(x) for x in (q, k, v))
        mask = None
        if masked:  # a slot's label joins its space and time regions; PAD if either is padding
            g = math.ceil(hw[0] / size[0]) * math.ceil(hw[1] / size[1])
            space = labels if labels is not None else torch.zeros(g, size[0] * size[1], dtype=torch.long, device=q.device)
            joint = torch.where((space[:, None, :] == PAD) | (tlabels[None, :, None] == PAD), PAD,
                                space[:, None, :] + 4 * tlabels[None, :, None])  # (g, u*unit, l)
            joint = rearrange(joint, "g (u f) l -> (g u) (f l)", f=unit)
            mask = repeat(joint[:, :, None] == joint[:, None, :], "w l m -> (b w) 1 l m", b=b)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = rearrange(out, "(b g u) n (f l) d -> b n g (u f) l d", b=b, f=unit, u=len(tlabels) // unit)[:, :, :, :t]
        out = out.roll(tshift, dims=3) if tshift else out
        return _from_blocks(rearrange(out, "b n g t l d -> b n (t g) l d"), grid, size, shift)

    @staticmethod
    def _frame_windows(q, k, v, grid, size, shift, labels) -> Tensor:
        """2D windows: attend within each frame's windows (mask from the region `labels` where needed)."""
        b, t = q.shape[0], grid[0]
        q, k, v = (rearrange(_to_blocks(x, grid, size, shift), "b n (t g) l d -> (b t g) n l d", t=t) for x in (q, k, v))
        mask = None
        if labels is not None:
            mask = repeat(labels[:, :, None] == labels[:, None, :], "g l m -> (b t g) 1 l m", b=b, t=t)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return _from_blocks(rearrange(out, "(b t g) n l d -> b n (t g) l d", b=b, t=t), grid, size, shift)


class SparseLocalAttention(AttentionOp):
    """MoBA-like sparse attention: each 2D block attends to itself and its `top_k` most relevant blocks.

    Each frame's token grid is cut into blocks of `block` (h, w) tokens. The relevance of key block j to
    query block i is `mean(q over block i) . mean(k over block j)`, per batch element and head; every
    query block attends to its own block plus the `top_k` most relevant other blocks of the whole clip
    (any frame, future frames included; all other blocks when the clip has at most `top_k` of them).
    The selected key/value blocks are gathered a chunk of query blocks at a time (`gather_tokens` key
    tokens per batch element and head), so memory scales with the clip, never with (T*H*W)^2. Frames
    not a multiple of the block are zero-padded; padded tokens are never attended and do not count in
    the means. Block selection is not differentiable (as in MoBA): gradients flow through the attention
    over the selected blocks.

    Args:
        block: block size in tokens (h, w); the paper uses 9 x 12.
        top_k: other blocks each query block attends to, besides its own (1 in the paper).
        backend: "sdpa" (gather the selected blocks, any device), "flex" (FlexAttention with the routing
            as a block mask; see `gvr.models.flex`), or "auto" (flex on CUDA, sdpa elsewhere).
    """

    gather_tokens = 2**12  # SDPA path: key tokens gathered per (batch, head) at a time (bounds the copies)

    def __init__(self, block: tuple[int, int] = (9, 12), top_k: int = 1, backend: Backend = "auto"):
        super().__init__()
        self.block = _check_pair("SparseLocalAttention: block", block)
        if not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"SparseLocalAttention: top_k must be an int >= 0, got {top_k!r}")
        self.top_k = top_k
        self.backend = _check_backend("SparseLocalAttention", backend)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        self.check_grid(q, grid)
        b, n = q.shape[:2]
        t, h, w = grid

        # 1. Blocks (b, n, m, l, d), m = T*I*J blocks of l = P*R slots; which slots hold real tokens.
        q, k, v = (_to_blocks(x, grid, self.block) for x in (q, k, v))
        labels = _region_labels((h, w), self.block, q.device)
        real = repeat(labels != PAD, "g l -> (t g) l", t=t)  # (m, l)

        # 2. Route: own block first, then the top_k others, as block indices (b, n, m, s), s = 1 + top_k.
        selected = self.select_blocks(q, k, real)
        s = selected.shape[-1]
        if use_flex(self.backend, q):
            return _from_blocks(sparse_local_flex(q, k, v, real, selected), grid, self.block)

        # 3. Gather the selected key/value blocks and attend to them (padding masked as keys), a chunk of
        #    query blocks at a time so that the gathered copies stay small whatever the clip's length.
        batch, head = torch.arange(b, device=q.device)[:, None, None], torch.arange(n, device=q.device)[None, :, None]
        padded = h % self.block[0] or w % self.block[1]
        out = torch.empty_like(q)
        step = max(1, self.gather_tokens // (s * q.shape[3]))  # query blocks a chunk
        for i in range(0, q.shape[2], step):
            sel = selected[:, :, i : i + step]  # (b, n, c, s)
            k_c, v_c = (rearrange(x[batch, head, sel.flatten(2)], "b n (c s) l d -> b (n c) (s l) d", s=s) for x in (k, v))
            mask = rearrange(real[sel], "b n c s l -> b (n c) 1 (s l)") if padded else None
            q_c = rearrange(q[:, :, i : i + step], "b n c l d -> b (n c) l d")
            out[:, :, i : i + step] = rearrange(
                F.scaled_dot_product_attention(q_c, k_c, v_c, attn_mask=mask), "b (n c) l d -> b n c l d", n=n
            )
        return _from_blocks(out, grid, self.block)

    def select_blocks(self, q: Tensor, k: Tensor, real: Tensor) -> Tensor:
        """Blocks each query block attends to, `(B, heads, M, 1 + top_k)`: its own, then the most relevant.

        `q, k` are zero-padded blocks `(B, heads, M, P*R, d)`, `real` `(M, P*R)` marks real token slots.
        """
        m = q.shape[2]
        count = real.sum(dim=-1, keepdim=True)  # (m, 1)
        dtype = torch.promote_types(q.dtype, torch.float32)  # low-precision inputs route in float32
        # Padding is zero, so a sum over the block is a sum over its real tokens.
        q_mean, k_mean = (x.detach().sum(dim=-2, dtype=dtype) / count for x in (q, k))  # (b, n, m, d)
        relevance = q_mean @ k_mean.transpose(-1, -2)  # (b, n, m query blocks, m key blocks)
        relevance.diagonal(dim1=-2, dim2=-1).fill_(-math.inf)
        others = relevance.topk(min(self.top_k, m - 1), dim=-1).indices  # (b, n, m, top_k)
        own = torch.arange(m, device=q.device).expand(*others.shape[:-1])[..., None]
        return torch.cat([own, others], dim=-1)
