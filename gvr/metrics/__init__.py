"""Video metrics (torchmetrics objects) and the callbacks that score and log them.

Light names are imported here; the network-backed metrics load their libraries (lpips, vmaf-torch, pyiqa)
only when first used: ``from gvr.metrics import FrameLPIPS`` imports ``gvr.metrics.lpips`` on demand.
"""

import importlib

from gvr.metrics.registry import REGISTRY, MetricSpec, build_metric, register_metric, score_videos
from gvr.metrics.weights import MissingWeights, WeightFile, resolve_weights

_LAZY = {
    "FramePSNR": "gvr.metrics.image",
    "FrameSSIM": "gvr.metrics.image",
    "FrameLPIPS": "gvr.metrics.lpips",
    "VideoVMAF": "gvr.metrics.vmaf",
    "FrameMUSIQ": "gvr.metrics.iqa",
    "FrameCLIPIQA": "gvr.metrics.iqa",
    "FrameMANIQA": "gvr.metrics.iqa",
    "FrechetVideoDistance": "gvr.metrics.frechet",
}

__all__ = ["REGISTRY", "MetricSpec", "MissingWeights", "WeightFile", "build_metric", "register_metric",
           "resolve_weights", "score_videos", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gvr.metrics' has no attribute '{name}'")
