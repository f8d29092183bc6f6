"""Classical upsampling baselines that every learned model is scored against."""

from typing import Literal

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

Interpolation = Literal["bicubic", "bilinear", "nearest"]


def resize_video(x: Tensor, size: tuple[int, int], mode: Interpolation = "bicubic") -> Tensor:
    """Resize every frame of a pixel video ``(B, C, T, H, W)`` in [-1, 1] to ``size`` = (height, width)."""
    b = x.shape[0]
    frames = rearrange(x, "b c t h w -> (b t) c h w")
    kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
    out = F.interpolate(frames.float(), size=size, mode=mode, **kwargs).clamp(-1, 1)
    return rearrange(out, "(b t) c h w -> b c t h w", b=b)
