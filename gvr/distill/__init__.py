"""One-step distillation: a student served with one Euler step, trained against a multi-step teacher."""

from gvr.distill.discriminator import VideoDiscriminator
from gvr.distill.losses import (
    approximate_r1,
    frequency_loss,
    gradient_loss,
    grid_excess_loss,
    relativistic_d_loss,
    relativistic_g_loss,
)
from gvr.distill.recipe import Distillation

__all__ = [
    "Distillation",
    "VideoDiscriminator",
    "approximate_r1",
    "frequency_loss",
    "gradient_loss",
    "grid_excess_loss",
    "relativistic_d_loss",
    "relativistic_g_loss",
]
