"""Base-model side of the cascade: the BaseModel interface, gvr's own LatentDiT, sampling, adapters."""

from gvr.base.latent_dit import LatentDiT
from gvr.base.model import BaseModel, BaseModelLoader
from gvr.base.sampling import generate_latent, refine_latent

__all__ = ["BaseModel", "BaseModelLoader", "LatentDiT", "generate_latent", "refine_latent"]
