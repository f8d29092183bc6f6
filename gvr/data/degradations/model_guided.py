"""Model-guided degradation (latent space, SDEdit-like): real video pushed through the base model's own flow.

Downsample the HR clip to the base resolution, encode it to ``c0``, noise it to ``alpha ~ U[lo, hi]``
(``c_alpha = (1 - alpha) c0 + alpha eps``) and integrate the base model's flow ODE back to 0. The result
keeps the structure of the real video and carries the base model's own artefacts. The pair cache keeps it
as a latent (:meth:`ModelGuidedDegradation.degrade_latent`); as a :class:`Degradation` it decodes back to
pixels, which is what ``gvr degrade --kind model`` shows.
"""

import torch
from torch import Tensor

from gvr.base.model import BaseModel, BaseModelLoader
from gvr.base.sampling import refine_latent
from gvr.codecs.codec import LatentCodec
from gvr.data.degradations.degradation import Degradation, check_input
from gvr.ops.resize import resize


class ModelGuidedDegradation(Degradation):
    """SDEdit-like degradation by a base model, in its latent space.

    ``base`` is either a base model with its ``codec`` (e.g. ``gvr.base.wan.WanBaseModel`` with the Wan VAE as
    ``DiffusersVAE``) or a loader that brings both on first use, e.g. ``gvr.lit.BaseCheckpoint`` for a
    ``gvr base fit`` checkpoint (``configs/pairs.yaml``).

    Args:
        base: the base model adapter (with ``codec``), or a `BaseModelLoader` (without).
        codec: the base model's latent codec (the VSR model's too); None with a loader.
        alpha_range: range of the noise level ``alpha`` the latent is pushed to (paper: [0.3, 0.4]).
        steps: Euler steps of the base model from ``alpha`` back to 0.
        device: where the base model runs.
    """

    def __init__(
        self,
        base: BaseModel | BaseModelLoader,
        codec: LatentCodec | None = None,
        alpha_range: tuple[float, float] = (0.3, 0.4),
        steps: int = 10,
        device: str = "cpu",
    ):
        if not 0 <= alpha_range[0] <= alpha_range[1] <= 1 or steps < 1:
            raise ValueError(f"ModelGuidedDegradation: need 0 <= alpha_lo <= alpha_hi <= 1 and steps >= 1, got "
                             f"{alpha_range}, {steps}")
        if isinstance(base, BaseModelLoader) != (codec is None):
            raise ValueError("ModelGuidedDegradation: give a base model with its codec, or a loader (e.g. "
                             "gvr.lit.BaseCheckpoint) without one")
        self.alpha_range, self.steps, self.device = tuple(alpha_range), steps, device
        self.loader = base if isinstance(base, BaseModelLoader) else None
        self._base, self._codec = (None, None) if self.loader else (base, codec)
        self._ready = False

    def _load(self) -> tuple[BaseModel, LatentCodec]:
        """The base model and codec on `device` in eval mode: loaded (or moved) on first use, then reused."""
        if not self._ready:
            if self._base is None:
                self._base, self._codec = self.loader.load(self.device)
            self._base, self._codec = self._base.to(self.device).eval(), self._codec.to(self.device)
            self._ready = True
        return self._base, self._codec

    @property
    def codec(self) -> LatentCodec:
        return self._load()[1]

    @property
    def base(self) -> BaseModel:
        return self._load()[0]

    def draw(self, batch: int, shape: tuple[int, ...], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The random part: ``alpha`` ``(B,)`` uniform in ``alpha_range`` and the noise ``eps`` of ``shape``."""
        lo, hi = self.alpha_range
        alpha = lo + (hi - lo) * torch.rand(batch, generator=generator)
        return alpha, torch.randn(shape, generator=generator)

    def degrade_latent(self, c0: Tensor, generator: torch.Generator, text: Tensor | None = None) -> Tensor:
        """Degrade clean base-resolution latents ``c0`` ``(B, C, T, h, w)``; ``text`` defaults to the null prompt."""
        base, _ = self._load()
        alpha, eps = self.draw(c0.shape[0], tuple(c0.shape), generator)
        dev = torch.device(self.device)
        out = refine_latent(base, c0.to(dev), alpha.to(dev), eps.to(dev), self.steps, text)
        return out.to(c0.device)

    def encode_lr(self, hr: Tensor, lr_size: tuple[int, int]) -> Tensor:
        """HR clip ``(3, T, H, W)`` -> bicubic to ``lr_size`` -> padded to what the codec takes -> latent ``(1, C, T', h, w)``."""
        _, codec = self._load()
        lr = resize(hr, lr_size, "bicubic", True).clamp(-1, 1)
        padded, _ = codec.pad_to_valid(lr[None].float().to(self.device))
        return codec.encode(padded)

    def __call__(self, hr: Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> Tensor:
        size = check_input(hr, lr_size, type(self).__name__)
        _, codec = self._load()
        c = self.degrade_latent(self.encode_lr(hr, size), generator)
        with torch.no_grad():
            out = codec.decode(c)[0, :, : hr.shape[1], : size[0], : size[1]]
        return out.clamp(-1, 1).to(hr.device, hr.dtype)
