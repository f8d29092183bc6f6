"""Conditioning embedders: scalars per sample (flow time `t`, condition noise level `s`) and text."""

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features `(B, dim)` of the scalars `x` `(B,)`, `[cos | sin]`, computed in float32.

    Frequencies form a geometric ladder from 1 down to `1 / max_period` (DiT `timestep_embedding`).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs  # (b, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """Embeds one scalar per sample into a `dim` vector: sinusoids of `scale * x`, then a SiLU MLP (DiT).

    `SimpleGVR` has two of them, for `t` and for `s`; their outputs are summed into the conditioning
    vector that drives adaLN. The sinusoids are computed in float32 whatever the input dtype, and the MLP
    runs in the dtype of its own weights (kept float32 by `_keep_in_fp32_modules`).

    Args:
        dim: width of the embedding.
        freq_dim: number of sinusoidal features (even).
        scale: multiplies the input, given in [0, 1], so that the sinusoids resolve it (1000 as DiT steps).
    """

    def __init__(self, dim: int, freq_dim: int = 256, scale: float = 1000.0):
        super().__init__()
        if freq_dim % 2:
            raise ValueError(f"ScalarEmbedder: freq_dim must be even, got {freq_dim}")
        self.freq_dim = freq_dim
        self.scale = scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        """Embed `x` `(B,)` into `(B, dim)`."""
        features = sinusoidal_embedding(self.scale * x.float(), self.freq_dim)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class TextProjection(nn.Module):
    """Projects text-encoder features to the model width: Linear -> GELU(tanh) -> Linear (PixArt-alpha).

    Args:
        text_dim: width of the text-encoder features.
        dim: model width.
    """

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))

    def forward(self, text: Tensor) -> Tensor:
        """Project `text` `(B, L, text_dim)` to `(B, L, dim)`."""
        return self.mlp(text)


class RatioEmbedder(nn.Module):
    """Embeds the LR->HR ratio per axis ``(ry, rx)`` into a ``dim`` vector, for a model that serves any scale.

    Each axis's ``log2`` ratio (0 at x1, 1 at x2, 2 at x4) gets ``freq_dim / 2`` sinusoids of ``scale * log2 r``
    (as `ScalarEmbedder` does for ``t``); the two halves are concatenated and mapped by a SiLU MLP whose last
    layer starts at zero (`SimpleGVR` zeroes it), so that adding the embedding to ``emb(t) + emb(s)`` leaves a
    model's outputs unchanged until training moves it. Log ratios make x2 -> x4 the same step as x1 -> x2, and
    two axes keep an anamorphic resize (another ratio per axis) apart from its transpose.

    Args:
        dim: width of the embedding.
        freq_dim: number of sinusoidal features over both axes (a multiple of 4).
        scale: multiplies ``log2 r`` before the sinusoids.
    """

    def __init__(self, dim: int, freq_dim: int = 256, scale: float = 1000.0):
        super().__init__()
        if freq_dim % 4:
            raise ValueError(f"RatioEmbedder: freq_dim must be a multiple of 4, got {freq_dim}")
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, ratio: Tensor) -> Tensor:
        """Embed ``ratio`` ``(B, 2)`` (HR / LR per axis, > 0) into ``(B, dim)``."""
        if ratio.ndim != 2 or ratio.shape[1] != 2:
            raise ValueError(f"RatioEmbedder: ratio must be (B, 2), got {tuple(ratio.shape)}")
        logs = torch.log2(ratio.float())
        features = torch.cat([sinusoidal_embedding(self.scale * logs[:, i], self.freq_dim // 2) for i in range(2)], -1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))
