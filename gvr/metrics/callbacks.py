"""Callbacks with side effects: validation previews to TensorBoard and PNG."""

import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from gvr.data.video import tensor_to_frames


def side_by_side(*videos: torch.Tensor, frame: int | None = None) -> np.ndarray:
    """One frame (middle by default) of each ``(3, T, H, W)`` video, placed left to right: uint8 (H, W*n, 3)."""
    t = videos[0].shape[1]
    k = t // 2 if frame is None else frame
    return np.concatenate([tensor_to_frames(v[:, k : k + 1].float().cpu())[0] for v in videos], axis=1)


class ValidationPreview(L.Callback):
    """Logs the first validation clips side by side (``bicubic | output | hr`` by default) to TensorBoard and PNG.

    Args:
        num_clips: how many clips of the first validation batch to show (stacked vertically).
        save_png: also write ``<log_dir>/previews/step_<N>.png``.
        keys: the videos of ``validation_step``'s output dict to place left to right.
    """

    def __init__(self, num_clips: int = 2, save_png: bool = True, keys: tuple[str, ...] = ("bicubic", "output", "hr")):
        self.num_clips, self.save_png, self.keys = num_clips, save_png, tuple(keys)

    @rank_zero_only
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx != 0 or trainer.sanity_checking or not isinstance(outputs, dict):
            return
        n = min(self.num_clips, *(outputs[k].shape[0] for k in self.keys))
        rows = [side_by_side(*(outputs[k][i] for k in self.keys)) for i in range(n)]
        sheet = np.concatenate(rows, axis=0)
        step = trainer.global_step
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            experiment.add_image("val/" + "|".join(self.keys), sheet, step, dataformats="HWC")
        if self.save_png and trainer.log_dir is not None:
            folder = Path(trainer.log_dir) / "previews"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sheet).save(folder / f"step_{step:07d}.png")


class StepTimer(L.Callback):
    """Prints seconds per optimizer step and peak accelerator memory when training ends (rank 0).

    The first ``skip`` steps (compilation, allocator and data-loader warm-up) are left out of the mean. Also logs
    ``perf/step_seconds`` every step. ``gvr fit ... --trainer.callbacks+=gvr.metrics.callbacks.StepTimer``.
    """

    def __init__(self, skip: int = 2):
        self.skip = skip
        self.times: list[float] = []
        self._start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._start is None:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self.times.append(time.perf_counter() - self._start)
        pl_module.log("perf/step_seconds", self.times[-1], on_step=True, on_epoch=False, rank_zero_only=True)

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        timed = self.times[self.skip :] or self.times
        if not timed:
            return
        mean = sum(timed) / len(timed)
        peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**30 if pl_module.device.type == "cuda" else float("nan")
        print(f"StepTimer: {len(self.times)} steps, {mean:.3f} s/step over the last {len(timed)} "
              f"(first: {self.times[0]:.2f} s), peak accelerator memory {peak:.1f} GiB", flush=True)
