"""Latent codecs: the weight-free PatchCodec and diffusers video VAEs loaded from local paths."""

from gvr.codecs.codec import LatentCodec
from gvr.codecs.diffusers_vae import DiffusersVAE
from gvr.codecs.patch import PatchCodec

__all__ = ["DiffusersVAE", "LatentCodec", "PatchCodec"]
