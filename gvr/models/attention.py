"""Attention operators: how the tokens of a (T, H, W) grid attend to each other.

A DiT block projects q, k, v and hands them to an `AttentionOp`; it never knows which pattern the
operator applies. Full 3D attention, per-frame attention, and later temporal units with shifted
partitions, Swin windows or MoBA-like sparse local attention are all `AttentionOp`s, chosen in the
config (`spatial_op`, `temporal_op` of `SimpleGVR`) without touching the blocks.

Contract: `q, k, v` are `(B, heads, N, head_dim)` with `N = T * H * W` tokens in `(t h w)` order and
`grid = (T, H, W)`; the output has the shape of `q`. `layer_index` (the block's index) lets an operator
alternate its pattern over depth, e.g. shift its partition every other layer.
"""

from abc import ABC, abstractmethod

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class AttentionOp(nn.Module, ABC):
    """Base class of attention operators over a token grid (see the module docstring).

    Operators hold no per-layer state: one instance is shared by all blocks of a model.
    """

    @property
    def extends_in_time(self) -> bool:
        """True when the operator attends within windows of a fixed number of frames, so that its cost per
        frame is flat in clip length and a model built on it runs on any clip length (temporal units)."""
        return False

    @abstractmethod
    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        """Attend `q` to `k, v`, all `(B, heads, T*H*W, head_dim)`; return `(B, heads, T*H*W, head_dim)`."""

    @staticmethod
    def check_grid(q: Tensor, grid: tuple[int, int, int]) -> None:
        """Raise ValueError when the token count of `q` does not match `grid`."""
        t, h, w = grid
        if q.shape[2] != t * h * w:
            raise ValueError(f"attention: {q.shape[2]} tokens do not fill the grid (T, H, W) = {grid}")


class FullAttention(AttentionOp):
    """Every token attends to every token of the clip (3D spatio-temporal attention), via torch SDPA."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        self.check_grid(q, grid)
        return F.scaled_dot_product_attention(q, k, v)


class FrameAttention(AttentionOp):
    """Tokens attend only to the tokens of their own frame (spatial self-attention), via torch SDPA."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], layer_index: int) -> Tensor:
        self.check_grid(q, grid)
        t = grid[0]
        q, k, v = (rearrange(x, "b n (t s) d -> (b t) n s d", t=t) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return rearrange(out, "(b t) n s d -> b n (t s) d", t=t)
