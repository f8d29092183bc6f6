"""WanBaseModel: diffusers' Wan2.1 text-to-video transformer as the cascade's base model.

Wan2.1 is trained with the same rectified flow as gvr (``x_t = (1 - sigma) x0 + sigma eps``; the network
predicts ``eps - x0``; diffusers passes ``timestep = 1000 sigma``), on the normalised latents of its VAE,
which ``gvr.codecs.DiffusersVAE(kind="wan")`` produces. So its output is the velocity of
:class:`gvr.base.model.BaseModel` as it is. Text comes as precomputed umT5 features (the text encoder is
not loaded): a safetensors file with a ``null`` entry (the empty prompt, ``(L, 4096)``) and optionally a
``prompt`` entry, used with classifier-free guidance when ``guidance_scale != 1``.
"""

import logging
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from gvr.base.model import BaseModel

log = logging.getLogger(__name__)

SOURCE = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
NULL_TOKENS = 512  # diffusers' WanPipeline pads umT5 features to max_sequence_length = 512


class WanBaseModel(BaseModel):
    """A local Wan2.1 T2V checkpoint (``WanTransformer3DModel``) seen as a :class:`BaseModel`.

    Args:
        path: local diffusers checkpoint folder (pipeline root) or the transformer folder with ``subfolder: null``.
        subfolder: folder of the transformer inside ``path``.
        dtype: dtype of the weights and of the computation.
        text_embeddings: safetensors file of precomputed umT5 features: ``null`` (empty prompt) and optionally
            ``prompt``, each ``(L, text_dim)``; null uses all-zero features (an approximation; logged).
        guidance_scale: classifier-free guidance between ``prompt`` and ``null`` (1 = the text alone, no guidance).
    """

    def __init__(
        self,
        path: str,
        subfolder: str | None = "transformer",
        dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16",
        text_embeddings: str | None = None,
        guidance_scale: float = 1.0,
    ):
        super().__init__()
        embeddings = _load_embeddings(text_embeddings)  # shapes are checked in _setup, against the config
        if guidance_scale != 1 and "prompt" not in embeddings:
            raise ValueError("WanBaseModel: guidance_scale != 1 needs a 'prompt' entry in text_embeddings")
        if "null" not in embeddings:
            log.warning("WanBaseModel: no precomputed null-prompt features; using zeros (an approximation of umT5(''))")
        self._setup(_load_transformer(path, subfolder, dtype), embeddings, guidance_scale, source=text_embeddings)

    @classmethod
    def from_model(cls, transformer: torch.nn.Module, null: Tensor | None = None) -> "WanBaseModel":
        """Wrap an in-memory ``WanTransformer3DModel`` (tests, notebooks); ``null`` defaults to zeros."""
        model = cls.__new__(cls)
        BaseModel.__init__(model)
        model._setup(transformer, {} if null is None else {"null": null}, 1.0, source=None)
        return model

    def _setup(self, transformer: torch.nn.Module, embeddings: dict[str, Tensor], guidance_scale: float,
               source: str | None) -> None:
        """Freeze the transformer, read its channels, check the text features (from `source`) and keep them as buffers."""
        self.transformer = transformer.requires_grad_(False).eval()
        cfg = transformer.config
        self.latent_channels, self.text_dim, self.guidance_scale = cfg.in_channels, cfg.text_dim, guidance_scale
        for key, value in embeddings.items():
            if value.ndim != 2 or value.shape[1] != self.text_dim:
                raise ValueError(f"WanBaseModel: {source}[{key!r}] must be (L, {self.text_dim}), got {tuple(value.shape)}")
        if "null" not in embeddings:  # the null prompt as all-zero features
            embeddings = {**embeddings, "null": torch.zeros(NULL_TOKENS, self.text_dim)}
        self.register_buffer("null", embeddings["null"], persistent=False)
        self.register_buffer("prompt", embeddings.get("prompt", embeddings["null"]), persistent=False)

    def null_text(self, batch: int) -> Tensor:
        """The prompt features (``prompt`` when given, else the null prompt) for ``batch`` samples."""
        return self.prompt.expand(batch, -1, -1)

    def _run(self, x: Tensor, t: Tensor, text: Tensor) -> Tensor:
        dtype = self.transformer.dtype
        out = self.transformer(hidden_states=x.to(dtype), timestep=t * 1000, encoder_hidden_states=text.to(dtype),
                               return_dict=False)[0]
        return out.to(x.dtype)

    @torch.no_grad()
    def velocity(self, c_t: Tensor, t: Tensor, text: Tensor | None = None) -> Tensor:
        self.check_latent(c_t)
        text = self.null_text(c_t.shape[0]) if text is None else text
        v = self._run(c_t, t, text)
        if self.guidance_scale != 1:
            v_null = self._run(c_t, t, self.null.expand(c_t.shape[0], -1, -1))
            v = v_null + self.guidance_scale * (v - v_null)
        return v


def _load_transformer(path: str, subfolder: str | None, dtype: str) -> torch.nn.Module:
    try:
        from diffusers import WanTransformer3DModel
    except ImportError as e:
        raise ImportError("WanBaseModel needs diffusers: pip install 'gvr[diffusers]'") from e
    folder = Path(path, subfolder) if subfolder else Path(path)
    if not (folder / "config.json").is_file() or not any(folder.glob("diffusion_pytorch_model*")):
        raise FileNotFoundError(
            f"WanBaseModel: no WanTransformer3DModel at '{folder}' (needs config.json and diffusion_pytorch_model "
            f"weights). Download it once, e.g. `hf download {SOURCE} --include 'transformer/*' --local-dir DIR`, "
            "then set path: DIR (subfolder: transformer)."
        )
    return WanTransformer3DModel.from_pretrained(path, subfolder=subfolder, torch_dtype=getattr(torch, dtype),
                                                 local_files_only=True)


def _load_embeddings(path: str | None) -> dict[str, Tensor]:
    """The ``null`` / ``prompt`` entries of a safetensors file of umT5 features (empty when ``path`` is None)."""
    if path is None:
        return {}
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise FileNotFoundError(f"WanBaseModel: text_embeddings file {path} not found (umT5 features as safetensors)")
    return {k: v.float() for k, v in load_file(path).items() if k in ("null", "prompt")}
