"""PatchCodec: a weight-free, lossless latent codec (space-to-depth, optional causal time packing)."""

from typing import Literal

import torch
from einops import rearrange
from torch import Tensor

from gvr.codecs.codec import LatentCodec


class PatchCodec(LatentCodec):
    """Weight-free codec: folds `f x f` pixel patches (and `tf` frames) into channels, then normalises.

    With `temporal_factor=4` frames are packed causally like a video VAE: the first frame is replicated
    4 times into the first latent frame, each following group of 4 frames forms one latent frame, so
    `T' = (T - 1) / 4 + 1`. Decoding averages the 4 copies of the first frame (the least-squares inverse
    of the replication), so `decode(encode(x)) == x` up to float rounding. Latents are
    `(pixels - shift) * scale`; natural video has pixel std about 0.5, hence the default scale of 2.

    Args:
        spatial_factor: side of the square pixel patch folded into channels (1 = no spatial compression).
        temporal_factor: frames folded into channels: 1 (none) or 4 (causal, first frame alone).
        shift: subtracted from pixels before scaling.
        scale: multiplies the shifted pixels so that latents have about unit variance.
    """

    def __init__(
        self,
        spatial_factor: int = 8,
        temporal_factor: Literal[1, 4] = 1,
        shift: float = 0.0,
        scale: float = 2.0,
    ) -> None:
        super().__init__()
        if spatial_factor < 1:
            raise ValueError(f"PatchCodec: spatial_factor must be >= 1, got {spatial_factor}")
        if temporal_factor not in (1, 4):
            raise ValueError(f"PatchCodec: temporal_factor must be 1 or 4, got {temporal_factor}")
        if scale <= 0:
            raise ValueError(f"PatchCodec: scale must be > 0, got {scale}")
        self._spatial_factor = spatial_factor
        self._temporal_factor = temporal_factor
        self.shift = shift
        self.scale = scale
        self._identity = dict(spatial_factor=spatial_factor, temporal_factor=temporal_factor, shift=float(shift), scale=float(scale))

    @property
    def latent_channels(self) -> int:
        return 3 * self._spatial_factor**2 * self._temporal_factor

    @property
    def spatial_factor(self) -> int:
        return self._spatial_factor

    @property
    def temporal_factor(self) -> int:
        return self._temporal_factor

    def _encode(self, x: Tensor) -> Tensor:
        f, tf = self._spatial_factor, self._temporal_factor
        if tf > 1:  # the first frame fills a whole group on its own
            x = torch.cat([x[:, :, :1].expand(-1, -1, tf, -1, -1), x[:, :, 1:]], dim=2)
        z = rearrange(x, "b c (t k) (h p) (w q) -> b (c k p q) t h w", k=tf, p=f, q=f)
        return (z - self.shift) * self.scale

    def _decode(self, z: Tensor) -> Tensor:
        f, tf = self._spatial_factor, self._temporal_factor
        x = rearrange(z / self.scale + self.shift, "b (c k p q) t h w -> b c (t k) (h p) (w q)", k=tf, p=f, q=f)
        if tf > 1:
            x = torch.cat([x[:, :, :tf].mean(dim=2, keepdim=True), x[:, :, tf:]], dim=2)
        return x
