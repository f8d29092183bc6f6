"""3D rotary position embedding (RoPE) over the (t, h, w) token grid.

Each head's channels are cut into three bands, one per axis, split as in Wan 2.1: `h` and `w` get
`2 * (head_dim // 6)` channels each and `t` the rest (`head_dim = 32` -> t 12, h 10, w 10;
`head_dim = 96` -> t 32, h 32, w 32). Within a band, channel pairs `(2i, 2i + 1)` are rotated by the
angle `position * theta ** (-2i / band)`, so `q . k` after rotation depends only on the offset between
the two tokens, and the rotation keeps norms. Positions are integer token indices, which works for any
grid (odd, non-square, any number of frames).
"""

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

Rope = Tensor  # unit complex rotations e^{i angle}, (T*H*W, head_dim // 2) complex64


class Rope3D(nn.Module):
    """Computes (and caches, per grid and device) the rotations of a (T, H, W) token grid.

    Args:
        head_dim: channels per attention head (even, at least 6).
        theta: base of the geometric frequency ladder.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        if head_dim % 2 or head_dim < 6:
            raise ValueError(f"Rope3D: head_dim must be even and >= 6, got {head_dim}")
        band = 2 * (head_dim // 6)
        self.bands = (head_dim - 2 * band, band, band)  # channels of the t, h, w axes
        self.theta = theta
        self._cache: dict[tuple[tuple[int, int, int], torch.device], Rope] = {}

    def forward(self, grid: tuple[int, int, int], device: torch.device) -> Rope:
        """Return the rotations `(T*H*W, head_dim // 2)` complex64, tokens in `(t h w)` order."""
        key = (tuple(grid), torch.device(device))
        if key not in self._cache:
            # Plain tensors even when first called under inference_mode (validation), so that a later
            # training step may save them for backward.
            with torch.inference_mode(False), torch.no_grad():
                self._cache[key] = self._compute(grid).to(device)
        return self._cache[key]

    def _compute(self, grid: tuple[int, int, int]) -> Rope:
        """Rotations of the grid's tokens, computed in float64 on the CPU."""
        t, h, w = grid
        at, ah, aw = (self._axis_angles(n, band) for n, band in zip(grid, self.bands))
        angle = torch.cat(
            [
                repeat(at, "t f -> t h w f", h=h, w=w),
                repeat(ah, "h f -> t h w f", t=t, w=w),
                repeat(aw, "w f -> t h w f", t=t, h=h),
            ],
            dim=-1,
        )
        angle = rearrange(angle, "t h w f -> (t h w) f")
        return torch.polar(torch.ones_like(angle), angle).to(torch.complex64)

    def _axis_angles(self, size: int, band: int) -> Tensor:
        """Angles `(size, band // 2)` of positions `0..size-1` on one axis."""
        freqs = self.theta ** (-torch.arange(0, band, 2, dtype=torch.float64) / band)
        return torch.arange(size, dtype=torch.float64)[:, None] * freqs


def apply_rope(x: Tensor, rope: Rope) -> Tensor:
    """Rotate the channel pairs `(2i, 2i + 1)` of `x` `(B, heads, N, head_dim)` by `rope`, in float32."""
    pairs = torch.view_as_complex(rearrange(x.float(), "... (f r) -> ... f r", r=2).contiguous())
    return rearrange(torch.view_as_real(pairs * rope), "... f r -> ... (f r)").type_as(x)
