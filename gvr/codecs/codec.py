"""LatentCodec: the frozen map between pixel videos and the latent space the VSR model works in."""

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LatentCodec(nn.Module, ABC):
    """A frozen pixel <-> latent codec.

    Pixels are `(B, 3, T, H, W)` in [-1, 1]; latents are normalised `(B, C, T', H / f, W / f)` with
    `f = spatial_factor` and `T' = latent_frames(T)`. Time is compressed causally like in video VAEs:
    with `tf = temporal_factor > 1` the first frame stands alone and `T = 1 + k * tf`.

    Codecs are never trained: `encode` / `decode` run under `torch.no_grad()`, subclasses freeze their
    weights, and the module stays in eval mode when its parent calls `.train()`. Subclasses implement
    the three factor properties, `_encode` and `_decode`; the public methods validate shapes first.
    """

    @property
    @abstractmethod
    def latent_channels(self) -> int:
        """Channels C of a latent."""

    @property
    @abstractmethod
    def spatial_factor(self) -> int:
        """Pixels per latent cell along height and width."""

    @property
    @abstractmethod
    def temporal_factor(self) -> int:
        """Frames per latent frame (the first latent frame holds a single frame when > 1)."""

    @abstractmethod
    def _encode(self, x: Tensor) -> Tensor:
        """Valid pixels (B, 3, T, H, W) -> normalised latent."""

    @abstractmethod
    def _decode(self, z: Tensor) -> Tensor:
        """Normalised latent (B, C, T', h, w) -> pixels."""

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Pixels (B, 3, T, H, W) in [-1, 1] -> normalised latent (B, C, T', H / f, W / f)."""
        self.check_input(x)
        return self._encode(x)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Normalised latent (B, C, T', h, w) -> pixels (B, 3, pixel_frames(T'), h * f, w * f), roughly in [-1, 1]."""
        if z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"{type(self).__name__}.decode: expected a latent (B, {self.latent_channels}, T, h, w), "
                f"got shape {tuple(z.shape)}"
            )
        return self._decode(z)

    def decode_with_grad(self, z: Tensor) -> Tensor:
        """`decode` with gradients flowing back to `z` (the codec's weights stay frozen): pixel-space losses of
        a latent model, e.g. one-step distillation (`gvr.lit.distillation`)."""
        if z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"{type(self).__name__}.decode_with_grad: expected a latent (B, {self.latent_channels}, T, h, w), "
                f"got shape {tuple(z.shape)}"
            )
        return self._decode(z)

    def describe(self) -> dict:
        """What identifies this codec's latent space (class and the arguments that change latents).

        Caches of latents record it and refuse to be read by a model with another codec.
        """
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", **getattr(self, "_identity", {})}

    def latent_frames(self, frames: int) -> int:
        """Latent frames for `frames` pixel frames: T if temporal_factor is 1, else (T - 1) // tf + 1."""
        tf = self.temporal_factor
        return frames if tf == 1 else (frames - 1) // tf + 1

    def pixel_frames(self, latent_frames: int) -> int:
        """Pixel frames decoded from `latent_frames` latent frames (inverse of `latent_frames` on valid T)."""
        tf = self.temporal_factor
        return latent_frames if tf == 1 else (latent_frames - 1) * tf + 1

    def valid_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Smallest encodable (T, H, W) at least as large as the given one."""
        f, tf = self.spatial_factor, self.temporal_factor
        return 1 + math.ceil((frames - 1) / tf) * tf, math.ceil(height / f) * f, math.ceil(width / f) * f

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless `x` is (B, 3, T, H, W) with f | H, f | W and T = 1 + k * tf."""
        name, f, tf = type(self).__name__, self.spatial_factor, self.temporal_factor
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected pixels (B, 3, T, H, W), got shape {tuple(x.shape)}")
        t, h, w = x.shape[2:]
        if h % f or w % f:
            raise ValueError(
                f"{name}: height and width must be multiples of spatial_factor={f}, got H={h}, W={w} "
                f"(pad with pad_to_valid and crop after decoding)"
            )
        if (t - 1) % tf:
            raise ValueError(
                f"{name}: the number of frames must be 1 + k * temporal_factor={tf} (1, {1 + tf}, {1 + 2 * tf}, "
                f"...), got T={t} (pad with pad_to_valid and crop after decoding)"
            )

    def pad_to_valid(
        self, x: Tensor, mode: Literal["reflect", "replicate"] = "replicate"
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Pad (..., T, H, W) at the end of each axis to `valid_size`; crop back with `y[..., :T, :H, :W]`.

        Time repeats the last frame; space mirrors (`reflect`, needs H and W above the padding) or repeats
        (`replicate`) the bottom row and right column. Returns the padded clip and the original (T, H, W).
        """
        t, h, w = x.shape[-3:]
        vt, vh, vw = self.valid_size(t, h, w)
        if mode == "reflect" and (vh - h >= h or vw - w >= w):
            raise ValueError(f"{type(self).__name__}.pad_to_valid: frames of {h}x{w} are too small to reflect-pad")
        x = F.pad(x, (0, 0, 0, 0, 0, vt - t), mode="replicate")
        return F.pad(x, (0, vw - w, 0, vh - h, 0, 0), mode=mode), (t, h, w)

    def train(self, mode: bool = True) -> "LatentCodec":
        """Keep eval mode whatever `mode` the parent module asks for: codecs are frozen."""
        return super().train(False)
