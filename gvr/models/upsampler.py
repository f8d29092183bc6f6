"""Latent upsampler: resizes the LR latent `c` to the HR latent grid, at any (non-integer) scale.

`c -> Res3D -> Res3D -> bilinear resize (per frame) -> Res3D -> Res3D`, as in SimpleGVR. The resize is
plain bilinear interpolation to the target `(H, W)` given at forward, so one network serves every scale
factor; the convolutions before and after it learn to prepare and sharpen the latent around it.
"""

import math

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from gvr.ops.resize import resize_frames


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm of each frame on its own, in float32; returns the input dtype.

    Per-frame statistics keep the blocks causal in time and independent of the clip length.
    """

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        frames = rearrange(x.float(), "b c t h w -> (b t) c h w")
        frames = F.group_norm(frames, self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        return rearrange(frames, "(b t) c h w -> b c t h w", b=b).type_as(x)


def group_norm(channels: int) -> FrameGroupNorm:
    """Per-frame GroupNorm with up to 32 groups that divide `channels`."""
    return FrameGroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class Res3D(nn.Module):
    """3D convolution residual block: GroupNorm-SiLU-Conv3d(3x3x3)-GroupNorm-SiLU-Conv3d(3x3x3) + skip.

    Time padding is causal: each convolution sees the current and the two previous frames, with the
    first frame replicated before the clip. Output frame `i` depends only on input frames `<= i`, like the
    causal video VAE whose first latent frame encodes an image on its own; a single frame (an image) is
    processed exactly as the first frame of a clip. Space is zero-padded. The skip is a 1x1x1
    convolution when the channel count changes.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=(0, 1, 1))
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=(0, 1, 1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv3d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Map `x` `(B, in_channels, T, H, W)` to `(B, out_channels, T, H, W)`."""
        h = temporal_conv(self.conv1, causal_pad(F.silu(self.norm1(x))))
        h = temporal_conv(self.conv2, causal_pad(F.silu(self.norm2(h))))
        return self.skip(x) + h


def temporal_conv(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """``conv(x)`` for a Conv3d without time padding; on CPU as one 2D convolution of each output frame.

    CPU builds of torch run Conv3d through an unoptimised im2col kernel (``slow_conv3d``, about 7x slower than
    the equivalent 2D convolution here); output frame ``i`` of a ``(kt, kh, kw)`` kernel is a 2D convolution
    of input frames ``i .. i + kt - 1`` stacked in channels, with the kernel's time taps stacked the same way.
    Same weights (the module is untouched), same result; CUDA keeps cuDNN's Conv3d.
    """
    kt = conv.kernel_size[0]
    if x.is_cuda or conv.padding[0] != 0 or conv.stride[0] != 1 or conv.dilation[0] != 1 or conv.groups != 1:
        return conv(x)
    b = x.shape[0]
    frames = rearrange(x.unfold(2, kt, 1), "b c t h w k -> (b t) (k c) h w")
    weight = rearrange(conv.weight, "o i k p q -> o (k i) p q")
    y = F.conv2d(frames, weight, conv.bias, stride=conv.stride[1:], padding=conv.padding[1:], dilation=conv.dilation[1:])
    return rearrange(y, "(b t) o h w -> b o t h w", b=b)


def causal_pad(x: Tensor) -> Tensor:
    """Replicate the first frame twice before the clip: `(B, C, T, H, W) -> (B, C, T + 2, H, W)`."""
    return F.pad(x, (0, 0, 0, 0, 2, 0), mode="replicate")


class LatentUpsampler(nn.Module):
    """Resizes a latent to a given latent grid: Res3D -> Res3D -> bilinear resize -> Res3D -> Res3D.

    With `expand_time = e > 1` it is the "wide" variant of the later SimpleGVR version: the first block
    widens to `channels * e` and the channels are unpacked into `e` sub-frames per latent frame
    (`b (c e) t h w -> b c (t e) h w`), so that the second block and the resize work at the pixel frame
    rate (e = 4 for a VAE that compresses time 4x); after the third block the sub-frames are packed back
    into channels and the last block maps them to `out_channels`. `e = 1` is the plain upsampler.

    Args:
        in_channels: channels of the input latent.
        out_channels: channels of the output latent.
        channels: width of the residual blocks.
        expand_time: sub-frames per latent frame in the middle blocks ("wide" variant); 1 disables.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 128, expand_time: int = 1):
        super().__init__()
        if expand_time < 1:
            raise ValueError(f"LatentUpsampler: expand_time must be >= 1, got {expand_time}")
        self.expand_time = expand_time
        wide = channels * expand_time
        self.blocks = nn.ModuleList(
            [Res3D(in_channels, wide), Res3D(channels, channels), Res3D(channels, channels), Res3D(wide, out_channels)]
        )

    def forward(
        self, c: Tensor, size: tuple[int, int], ratio: tuple[float, float] | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> Tensor:
        """Map `c` `(B, in_channels, T, h, w)` to `(B, out_channels, T, *size)`, `size = (H, W)`.

        `ratio` and `offset` fix the LR->HR map of the resize exactly (see `resize_frames`); None stretches.
        """
        e = self.expand_time
        x = self.blocks[0](c)  # (b, channels * e, t, h, w)
        x = rearrange(x, "b (c e) t h w -> b c (t e) h w", e=e)
        x = self.blocks[1](x)
        x = resize_frames(x, size, ratio, offset)
        x = self.blocks[2](x)
        x = rearrange(x, "b c (t e) h w -> b (c e) t h w", e=e)
        return self.blocks[3](x)
