"""Inference: upscale videos and photos with a trained checkpoint, and the prediction writer of `gvr predict`.

The prediction writer is a Lightning callback: it is imported on first use, so that ``gvr upscale`` (which runs a
`gvr.pipeline.VSRPipeline`) starts without Lightning."""

__all__ = ["VideoPredictionWriter"]


def __getattr__(name: str):
    if name == "VideoPredictionWriter":
        from gvr.inference.writer import VideoPredictionWriter

        return VideoPredictionWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
