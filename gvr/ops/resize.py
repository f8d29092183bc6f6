"""The one resize of gvr, and the LR->HR grid arithmetic.

Every resize of pixels or latents goes through :func:`resize` (one ``F.interpolate`` call, pixel-centre
aligned): the degradations' downsampling of single clips, :func:`resize_video` (the bicubic / bilinear /
nearest baselines every model is scored against, and the bicubic view of the input) and
:func:`resize_frames` (the latent upsampler's resize and the flow's source, with an exact LR->HR map for
padded clips and tiles). :func:`output_size` is the output frame size of a scale factor.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

Interpolation = Literal["bicubic", "bilinear", "nearest"]
ResizeMode = Literal["bicubic", "bilinear", "area"]  # what a degradation may downsample with


def resize(x: Tensor, size: tuple[int, int], mode: ResizeMode | Interpolation, antialias: bool) -> Tensor:
    """Resize every (H, W) slice of ``x`` (N, C, H, W), e.g. a clip (3, T, H, W), to ``size`` (any factor).

    ``antialias`` low-passes bicubic / bilinear downsampling; ``area`` averages anyway and ``nearest`` picks,
    both ignore it.
    """
    if mode in ("area", "nearest"):
        return F.interpolate(x, size=size, mode=mode)
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)


def resize_video(x: Tensor, size: tuple[int, int], mode: Interpolation = "bicubic") -> Tensor:
    """Resize every frame of a pixel video ``(B, C, T, H, W)`` in [-1, 1] to ``size`` = (height, width), antialiased,
    in float32, clamped to [-1, 1]: the classical baselines."""
    b = x.shape[0]
    frames = rearrange(x, "b c t h w -> (b t) c h w")
    out = resize(frames.float(), size, mode, antialias=True).clamp(-1, 1)
    return rearrange(out, "(b t) c h w -> b c t h w", b=b)


def resize_frames(
    x: Tensor,
    size: tuple[int, int],
    ratio: tuple[float, float] | None = None,
    offset: tuple[float, float] = (0.0, 0.0),
    mode: str = "bilinear",
) -> Tensor:
    """Resize every frame of `x` `(B, C, T, h, w)` to `(B, C, T, *size)`, pixel-centre aligned.

    With `ratio` None the frame is stretched edge to edge (`F.interpolate`, `align_corners=False`, ratio
    `size / (h, w)` per axis; antialiased when an axis shrinks). With `ratio = (ry, rx)` the map is exact
    instead: output position `y` (in pixel-edge units) reads input position `y / ry + offset[0]`, so an output
    grid that is not exactly `ratio` times the input (a padded clip, a tile of a larger frame) is neither
    stretched nor shifted; positions past the input's edge take the border value (as `F.interpolate` does).
    `mode` is "bilinear" or "bicubic". Computed in float32 and returned in the input dtype.
    """
    b, _, _, h, w = x.shape
    frames = rearrange(x.float(), "b c t h w -> (b t) c h w")
    if ratio is None and offset == (0.0, 0.0):
        frames = resize(frames, size, mode, antialias=size[0] < h or size[1] < w)
    else:
        ratio = ratio if ratio is not None else (size[0] / h, size[1] / w)
        frames = F.grid_sample(frames, exact_grid(size, (h, w), ratio, offset, frames.device).expand(len(frames), -1, -1, -1),
                               mode=mode, padding_mode="border", align_corners=False)
    return rearrange(frames, "(b t) c h w -> b c t h w", b=b).type_as(x)


def exact_grid(
    size: tuple[int, int], source: tuple[int, int], ratio: tuple[float, float], offset: tuple[float, float], device
) -> Tensor:
    """`grid_sample` grid `(1, H, W, 2)` reading output pixel centre `i + 0.5` at input `(i + 0.5) / ratio + offset`."""
    axes = []
    for n, m, r, o in zip(size, source, ratio, offset):
        edge = (torch.arange(n, device=device, dtype=torch.float64) + 0.5) / r + o  # input position, pixel-edge units
        axes.append((2 * edge / m - 1).float())  # normalised for align_corners=False
    gy, gx = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Output frame size: each side times ``scale``, rounded half up (``floor(x * scale + 0.5)``)."""
    return math.floor(height * scale + 0.5), math.floor(width * scale + 0.5)
