"""Degradations that turn HR clips into LR training inputs."""

from gvr.data.degradations.classic import ClassicDegradation
from gvr.data.degradations.degradation import BicubicDownsample, Degradation
from gvr.data.degradations.flow import FlowDegradation
from gvr.data.degradations.mixture import MixtureDegradation
from gvr.data.degradations.model_guided import ModelGuidedDegradation

__all__ = ["BicubicDownsample", "ClassicDegradation", "Degradation", "FlowDegradation", "MixtureDegradation", "ModelGuidedDegradation"]
