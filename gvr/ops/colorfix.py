"""Colour correction of an upscaled video against its input (pure functions on pixel videos).

Generative upscalers drift in colour and brightness; the usual fix (StableSR, SeedVR2 and FlashVSR ports)
keeps the output's high frequencies and takes the low frequencies, or the per-channel statistics, from the
input resized to the output size:

- ``wavelet``: a dilated a-trous wavelet split (the 3x3 binomial kernel at dilations 1, 2, 4, ...): output
  = the output's high-frequency bands + the reference's residual low band.
- ``adain``: each frame's per-channel mean and standard deviation are set to the reference's.

Videos are ``(B, 3, T, H, W)`` in [-1, 1]; the reference has the output's size (e.g. bicubic of the input).
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from gvr.ops.resize import resize_frames

ColorFix = Literal["none", "wavelet", "adain"]


def _frames(x: Tensor) -> Tensor:
    return rearrange(x.float(), "b c t h w -> (b t) c h w")


def wavelet_low(frames: Tensor, levels: int = 5) -> Tensor:
    """The low band after ``levels`` a-trous binomial blurs (dilation ``2**i``, replicate borders)."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=frames.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(frames.shape[1], 1, 3, 3)
    low = frames
    for i in range(levels):
        d = 2**i
        pad = F.pad(low, (d, d, d, d), mode="replicate")
        low = F.conv2d(pad, kernel, groups=frames.shape[1], dilation=d)
    return low


def color_fix(output: Tensor, reference: Tensor, kind: ColorFix = "wavelet", levels: int = 5) -> Tensor:
    """Correct ``output``'s colour against ``reference`` (same shape); "none" returns ``output`` unchanged."""
    if kind == "none":
        return output
    if output.shape != reference.shape:
        raise ValueError(f"color_fix: output {tuple(output.shape)} and reference {tuple(reference.shape)} differ in shape")
    b = output.shape[0]
    out, ref = _frames(output), _frames(reference)
    if kind == "wavelet":
        # The low band must not reach past the frame: cap the dilation at the frame size.
        levels = max(1, min(levels, math.floor(math.log2(min(out.shape[-2:])))))
        fixed = out - wavelet_low(out, levels) + wavelet_low(ref, levels)
    elif kind == "adain":
        mean_o, std_o = out.mean((-2, -1), keepdim=True), out.std((-2, -1), keepdim=True)
        mean_r, std_r = ref.mean((-2, -1), keepdim=True), ref.std((-2, -1), keepdim=True)
        fixed = (out - mean_o) / (std_o + 1e-6) * std_r + mean_r
    else:
        raise ValueError(f"color_fix: kind must be 'none', 'wavelet' or 'adain', got {kind!r}")
    return rearrange(fixed.clamp(-1, 1), "(b t) c h w -> b c t h w", b=b).to(output.dtype)


def color_fix_to_input(output: Tensor, lr: Tensor, kind: ColorFix = "wavelet") -> Tensor:
    """``output`` corrected against bicubic of its LR input ``lr`` resized to the output's size."""
    reference = resize_frames(lr.float(), tuple(output.shape[-2:]), mode="bicubic").clamp(-1, 1)
    return color_fix(output, reference, kind)
