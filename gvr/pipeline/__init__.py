"""A trained VSR model at inference, without Lightning: `VSRPipeline` and `load_pipeline` (``gvr upscale``)."""

from gvr.pipeline.checkpoint import load_pipeline
from gvr.pipeline.vsr import VSRPipeline

__all__ = ["VSRPipeline", "load_pipeline"]
