"""A small conditional video discriminator for the adversarial term of one-step distillation."""

import torch
from torch import Tensor, nn

from gvr.models.upsampler import group_norm


class VideoDiscriminator(nn.Module):
    """Patch discriminator over space-time: strided 3D convolutions to a map of real/fake logits.

    Conditional on the input when ``conditional``: it sees the video beside the bicubic upsampling of its
    LR input (6 channels), so it judges detail that is consistent with the input rather than any sharp
    texture. Each stage halves height and width (time is kept) with a ``(3, 4, 4)`` convolution, then
    GroupNorm and LeakyReLU; a final ``(3, 3, 3)`` convolution gives one logit per patch and frame.

    Args:
        channels: widths of the downsampling stages (one stage each).
        conditional: concatenate the upsampled input to the video.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), conditional: bool = True):
        super().__init__()
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"VideoDiscriminator: channels must be positive widths, got {channels}")
        self.conditional = conditional
        layers: list[nn.Module] = []
        width = 6 if conditional else 3
        for i, out in enumerate(channels):
            layers += [nn.Conv3d(width, out, (3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1))]
            layers += [group_norm(out)] if i else []  # no norm on the first stage (DCGAN / PatchGAN)
            layers += [nn.LeakyReLU(0.2)]
            width = out
        layers += [nn.Conv3d(width, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, video: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, 1, T, h, w)`` of a pixel video ``(B, 3, T, H, W)`` in [-1, 1] and its upsampled input."""
        if self.conditional:
            if cond is None or cond.shape != video.shape:
                raise ValueError("VideoDiscriminator: a conditional discriminator needs `cond` shaped like the video "
                                 f"(got {None if cond is None else tuple(cond.shape)} for {tuple(video.shape)})")
            video = torch.cat([video, cond], dim=1)
        return self.net(video)
