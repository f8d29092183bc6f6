"""SeamRefiner: a small convolution over the reassembled velocity that reaches across token borders."""

import torch
from torch import Tensor, nn


class SeamRefiner(nn.Module):
    """Zero-initialised residual refinement of the velocity on the latent grid (not in the paper).

    Each patch token of the DiT emits its own block of latent pixels through the final linear layer, so
    nothing in the model ties a block's edge to its neighbour's: trained for sharpness (a GAN, one step),
    the seams show as a pattern with the token period, every 4 pixels for PatchCodec x2 with 2x2
    patches (`gvr.metrics.image.grid_energy` scores it). Two ``1 x 3 x 3`` convolutions over the
    velocity and the upsampled condition (SiLU between, replicated borders) add a correction whose
    support crosses every token border. The last convolution starts at zero, so a model with a refiner
    computes exactly what the same model without one does until it trains (a teacher's weights load
    unchanged).

    Args:
        channels: latent channels of the velocity (in and out).
        cond_channels: channels of the upsampled condition stacked onto it.
        hidden: width of the hidden layer.
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"SeamRefiner: hidden must be >= 1, got {hidden}")
        conv = dict(kernel_size=(1, 3, 3), padding=(0, 1, 1), padding_mode="replicate")
        self.inp = nn.Conv3d(channels + cond_channels, hidden, **conv)
        self.out = nn.Conv3d(hidden, channels, **conv)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, v: Tensor, up: Tensor) -> Tensor:
        """``v + correction(v, up)`` for a velocity ``v`` ``(B, C, T, H, W)`` and the condition ``up`` on its grid."""
        return v + self.out(nn.functional.silu(self.inp(torch.cat([v, up.type_as(v)], dim=1))))
