"""Helpers that the 2-process sharded-training runs of tests/test_sharded.py import by class path (PYTHONPATH=tests)."""

import json
from pathlib import Path

import lightning as L
import torch
from torch import nn

from gvr.codecs import PatchCodec


class ShardProbe(L.Callback):
    """Writes ``rank{r}.json`` into ``out`` at the end of fit: this rank's loss and dataset indices at each step,
    and how many parameters of the trained network and of its EMA this rank holds (its shard) against their total."""

    def __init__(self, out: str):
        self.out = Path(out)
        self.losses: dict[int, float] = {}
        self.indices: dict[int, list[int]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"].detach().float())
        if isinstance(batch, dict) and "index" in batch:
            self.indices[trainer.global_step] = [int(i) for i in batch["index"]]

    def on_train_end(self, trainer, pl_module) -> None:
        from torch.distributed.tensor import DTensor

        held = {}
        for name in ("backbone", "ema"):
            params = list(getattr(pl_module, name).parameters())
            held[name] = {
                "local": sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in params),
                "total": sum(p.numel() for p in params),
                "sharded": all(isinstance(p, DTensor) for p in params),
            }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps({"losses": self.losses, "indices": self.indices, "held": held}))


class WeightedPatchCodec(PatchCodec):
    """PatchCodec with a frozen weight, as a real VAE has: checkpoints leave it out, resumes must not miss it."""

    def __init__(self, spatial_factor: int = 2):
        super().__init__(spatial_factor=spatial_factor)
        self.gain = nn.Parameter(torch.ones(1), requires_grad=False)
