"""Base-model side of the cascade: the BaseModel interface, gvr's own LatentDiT, sampling, adapters."""

from gvr.base.dit import LatentDiT
from gvr.base.model import BaseModel
from gvr.base.sampling import generate_latent, refine_latent

__all__ = ["BaseModel", "LatentDiT", "generate_latent", "refine_latent"]
