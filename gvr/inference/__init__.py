"""Inference: upscale videos and photos with a trained checkpoint, and the prediction writer of `gvr predict`."""

from gvr.inference.writer import VideoPredictionWriter

__all__ = ["VideoPredictionWriter"]
