"""Pure nn.Modules: the SimpleGVR DiT, its latent upsampler and the attention operators."""

from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.discriminator import VideoDiscriminator
from gvr.models.dit import PRESETS, SimpleGVR
from gvr.models.refiner import SeamRefiner
from gvr.models.sparse_attention import SparseLocalAttention, SwinAttention, TemporalUnitsAttention
from gvr.models.upsampler import LatentUpsampler, Res3D

__all__ = [
    "PRESETS",
    "AttentionOp",
    "FrameAttention",
    "FullAttention",
    "LatentUpsampler",
    "Res3D",
    "SeamRefiner",
    "SimpleGVR",
    "SparseLocalAttention",
    "SwinAttention",
    "TemporalUnitsAttention",
    "VideoDiscriminator",
]
