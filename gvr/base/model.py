"""BaseModel: the base text-to-video model's rectified-flow velocity, in the VSR model's latent space.

The cascade needs two things from the base model: generating a low-resolution latent from noise
(``gvr generate``) and the SDEdit-like model-guided degradation (noise a real latent to ``alpha`` and
integrate back to 0). Both only need the velocity of its flow ODE, ``v = eps - c0`` at ``c_t =
(1 - t) c0 + t eps`` (the same convention as the VSR model, ``t = 1`` is noise). Adapters wrap gvr's
own small DiT (:mod:`gvr.base.latent_dit`) and diffusers' Wan2.1 transformer (:mod:`gvr.base.wan`).
"""

from abc import ABC, abstractmethod

from torch import Tensor, nn

from gvr.codecs.codec import LatentCodec


class BaseModel(nn.Module, ABC):
    """A frozen or trainable base video generator seen through its flow velocity.

    Subclasses set ``latent_channels`` and ``text_dim`` (None for an unconditional model) and implement
    :meth:`velocity`. ``null_text(batch)`` gives the embedding of the empty prompt for text models.
    """

    latent_channels: int
    text_dim: int | None = None

    @abstractmethod
    def velocity(self, c_t: Tensor, t: Tensor, text: Tensor | None = None) -> Tensor:
        """Velocity ``(B, C, T, h, w)`` at the noisy latent ``c_t`` and flow times ``t`` ``(B,)`` in [0, 1]."""

    def null_text(self, batch: int) -> Tensor | None:
        """Text features of the empty prompt for ``batch`` samples; None for unconditional models."""
        return None

    def check_latent(self, c: Tensor) -> None:
        """Raise ValueError unless ``c`` is a ``(B, latent_channels, T, h, w)`` latent."""
        if c.ndim != 5 or c.shape[1] != self.latent_channels:
            raise ValueError(
                f"{type(self).__name__}: expected a latent (B, {self.latent_channels}, T, h, w), got {tuple(c.shape)}"
            )


class BaseModelLoader(ABC):
    """Where a base model and its latent codec come from when they are loaded on first use (e.g. a checkpoint
    file, `gvr.lit.BaseCheckpoint`): a config names the model without building it, and a cache can record
    which weights it used (:meth:`digest`)."""

    @abstractmethod
    def load(self, device: str) -> tuple[BaseModel, LatentCodec]:
        """The base model (eval mode) and its codec on ``device``."""

    def digest(self) -> str | None:
        """A fingerprint of the weights (e.g. the file's SHA-256), or None when there is none."""
        return None
