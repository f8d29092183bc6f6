"""The Lightning side: the VSR and base-model LightningModules, their shared base, distillation, checkpoints,
weight averaging, the FSDP2 strategy and the `gvr test` scoring callback."""

from gvr.lit.averaging import CheckpointAverage
from gvr.lit.base_module import BaseModule
from gvr.lit.checkpoints import BaseCheckpoint, RunCheckpoint, StopCheckpoint, load_gvr_module
from gvr.lit.distillation import Distillation
from gvr.lit.flow_module import CodecFlowModule
from gvr.lit.scoring import BenchmarkWriter
from gvr.lit.strategies import FSDP2Strategy
from gvr.lit.vsr_module import VSRModule

__all__ = [
    "BaseCheckpoint",
    "BaseModule",
    "BenchmarkWriter",
    "CheckpointAverage",
    "CodecFlowModule",
    "Distillation",
    "FSDP2Strategy",
    "RunCheckpoint",
    "StopCheckpoint",
    "VSRModule",
    "load_gvr_module",
]
