"""BenchmarkWriter: ``gvr test`` scores the model and its baselines on every test clip and writes the tables.

For each test clip (``VSRModule.test_step`` hands over the decodable ones) the callback upscales it with the
model under test and any other checkpoints listed (the same steps, seed and captions for each), and makes the
baselines: plain bicubic, bilinear and nearest upsampling of the LR clip. Every
method is scored with the same metric objects (:mod:`gvr.metrics.registry`). At the end it writes, in the
log folder, ``metrics.json`` (per clip and mean, per method; unavailable metrics with the reason; skipped
clips) and ``metrics.md`` (one row per method), logs the table and a few side-by-side sheets to
TensorBoard, writes the side-by-sides as mp4 too, and prints the table.
"""

import json
import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from tqdm.auto import tqdm

from gvr.data.video import tensor_to_frames, write_video
from gvr.metrics.registry import FVD_CLIP, REGISTRY, build_metric
from gvr.metrics.weights import MissingWeights
from gvr.ops.resize import resize_video

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"lpips", "fvd", "ewarp", "ewarp_raft", "flicker"}


class BenchmarkWriter(L.Callback):
    """Scores the model and the baselines on the test set and writes ``metrics.json`` / ``metrics.md``.

    Args:
        metrics: metric names (``gvr score --help`` lists them); full-reference ones are skipped without ground truth.
        baselines: classical upsamplers scored beside the model: any of bicubic, bilinear, nearest.
        checkpoints: other ``gvr fit`` checkpoints to score on the same clips, as {name: path}.
        weights: weight file (or folder) per metric name, e.g. {lpips: /models/alexnet-owt-7be5be79.pth}.
        strict: a metric that cannot be scored (missing weights, too-short clips) is an error, not a note.
        steps: Euler steps of the model and the listed checkpoints (None: each one's sample_steps).
        num_videos: side-by-side videos (LR bicubic | methods... | ground truth) written and logged.
        output_dir: where to write; None is the trainer's log folder.
    """

    def __init__(
        self,
        metrics: list[str] = ("psnr", "psnr_y", "ssim", "ssim_y", "lpips", "vmaf", "ewarp", "flicker", "fvd", "dover", "musiq"),
        baselines: list[str] = ("bicubic", "bilinear", "nearest"),
        checkpoints: dict[str, str] | None = None,
        weights: dict[str, str] | None = None,
        strict: bool = False,
        steps: int | None = None,
        num_videos: int = 2,
        output_dir: str | None = None,
    ):
        unknown = [m for m in metrics if m not in REGISTRY] + [b for b in baselines if b not in ("bicubic", "bilinear", "nearest")]
        if unknown:
            raise ValueError(f"BenchmarkWriter: unknown metrics or baselines {unknown}; metrics: {sorted(REGISTRY)}")
        self.metric_names, self.baselines = list(metrics), list(baselines)
        self.checkpoints, self.weights = dict(checkpoints or {}), dict(weights or {})
        self.strict, self.steps, self.num_videos, self.output_dir = strict, steps, num_videos, output_dir

    # ---- setup -------------------------------------------------------------------------------------

    def on_test_start(self, trainer, pl_module) -> None:
        from gvr.lit.checkpoints import load_gvr_module

        self.unavailable: dict[str, str] = {}
        self.metrics: dict[str, dict] = {}  # method -> {name: Metric}
        self.others = {name: load_gvr_module(path, "VSRModule", str(pl_module.device)) for name, path in self.checkpoints.items()}
        self.methods = ["model", *self.others, *self.baselines]
        reference = not getattr(trainer.datamodule.hparams, "no_reference", False) if trainer.datamodule else True
        for name in self.metric_names:
            if REGISTRY[name].reference and not reference:
                self._unavailable(name, "needs ground truth (run without --data.no_reference)")
                continue
            try:
                built = {m: build_metric(name, self.weights.get(name)).to(pl_module.device) for m in self.methods}
            except (MissingWeights, ImportError, FileNotFoundError) as err:
                self._unavailable(name, str(err))
                continue
            for method, metric in built.items():
                self.metrics.setdefault(method, {})[name] = metric
        self.clips: list[dict] = []
        self.set_samples: dict[tuple[str, str], int] = {}  # FVD samples per (method, metric)
        self.skipped: list[dict] = []
        self.sheets: list[np.ndarray] = []
        self.bar = tqdm(desc="gvr test: clips", unit="clip", disable=not trainer.is_global_zero)

    def _unavailable(self, name: str, reason: str) -> None:
        if self.strict:
            raise RuntimeError(f"gvr test: metric {name} unavailable: {reason}")
        log.warning("metric %s unavailable: %s", name, reason)
        self.unavailable[name] = reason

    # ---- per clip ----------------------------------------------------------------------------------

    @torch.no_grad()
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        for i, reason in enumerate(batch.get("skipped", [])):
            if reason:
                self.skipped.append({"path": batch["path"][i], "reason": reason})
                log.warning("skipped %s: %s", batch["path"][i], reason)
        if outputs is None or "lr" not in outputs:
            return
        lr, hr, size = outputs["lr"], outputs.get("hr"), tuple(outputs["size"])
        upscale = dict(steps=self.steps, seed=batch_idx, captions=outputs.get("captions"))
        videos = {"model": pl_module.upscale_clip(lr, size, **upscale)}
        for name, module in self.others.items():
            videos[name] = module.upscale_clip(lr, size, **upscale)
        out = videos["model"]
        for mode in self.baselines:
            videos[mode] = resize_video(lr, size, mode)
        for b in range(out.shape[0]):
            row = {"path": outputs["path"][b], "start": int(outputs["start"][b]), "frames": int(out.shape[2])}
            for method, video in videos.items():
                row[method] = self._score(method, video[b : b + 1], None if hr is None else hr[b : b + 1])
            self.clips.append(row)
            if len(self.sheets) < self.num_videos:
                self.sheets.append(self._side_by_side(videos, hr, lr, b, size))
        self.bar.update(out.shape[0])

    def _score(self, method: str, video: Tensor, ref: Tensor | None) -> dict:
        scores = {}
        for name, metric in self.metrics.get(method, {}).items():
            spec = REGISTRY[name]
            if spec.feed == "clips":  # FVD: a set-level score; each 16-frame window is one sample
                for k in range(0, video.shape[2] - FVD_CLIP + 1, FVD_CLIP):
                    metric.update(video[:, :, k : k + FVD_CLIP], real=False)
                    metric.update(ref[:, :, k : k + FVD_CLIP], real=True)
                    self.set_samples[(method, name)] = self.set_samples.get((method, name), 0) + 1
                continue
            metric.update(video, ref) if spec.reference else metric.update(video)
            value = metric.compute()
            scores[name] = {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
            metric.reset()
        return scores

    def _side_by_side(self, videos: dict, hr: Tensor | None, lr: Tensor, b: int, size) -> np.ndarray:
        panels = [videos["bicubic"][b] if "bicubic" in videos else resize_video(lr[b : b + 1], size)[0]]
        panels += [videos[m][b] for m in videos if m != "bicubic"]
        if hr is not None:
            panels.append(hr[b])
        return tensor_to_frames(torch.cat([p.float().cpu() for p in panels], dim=-1))  # (T, H, W * n, 3)

    # ---- tables ------------------------------------------------------------------------------------

    def on_test_end(self, trainer, pl_module) -> None:
        self.bar.close()
        self._finish(trainer)

    @rank_zero_only
    def _finish(self, trainer) -> None:
        summary = {"methods": {}, "unavailable": self.unavailable, "skipped": self.skipped, "clips": len(self.clips)}
        for method in self.methods:
            mean: dict = {}
            for name, metric in self.metrics.get(method, {}).items():
                if REGISTRY[name].feed == "clips":
                    if self.set_samples.get((method, name), 0) >= 2:
                        mean[name] = float(metric.compute())
                    else:
                        self.unavailable.setdefault(name, f"needs at least 2 test clips of >= {FVD_CLIP} frames")
                    continue
                values = [c[method][name] for c in self.clips if name in c[method]]
                if values and isinstance(values[0], dict):
                    mean[name] = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
                elif values:
                    mean[name] = float(np.mean(values))
            summary["methods"][method] = {"mean": mean, "clips": [{"path": c["path"], "start": c["start"], **c[method]}
                                                                   for c in self.clips]}
        folder = Path(self.output_dir or trainer.log_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(summary, indent=1))
        table = markdown_table(summary)
        (folder / "metrics.md").write_text(table + "\n")
        print(table, flush=True)
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_text"):
            experiment.add_text("test/metrics", table, trainer.global_step)
        for k, frames in enumerate(self.sheets):
            write_video(folder / f"side_by_side_{k}.mp4", frames, fps=8, overwrite=True)
            if hasattr(experiment, "add_image"):
                experiment.add_image(f"test/side_by_side_{k}", frames[len(frames) // 2], trainer.global_step,
                                     dataformats="HWC")
        self.summary = summary


def markdown_table(summary: dict) -> str:
    """One row per method, one column per metric (dict-valued metrics expand to name/key columns)."""
    columns: list[tuple[str, str | None]] = []
    for method in summary["methods"].values():
        for name, value in method["mean"].items():
            keys = list(value) if isinstance(value, dict) else [None]
            columns += [(name, k) for k in keys if (name, k) not in columns]
    head = [("method", None), *columns]
    label = lambda n, k: n if k is None else f"{n} {k}"  # noqa: E731
    lines = ["| " + " | ".join(label(n, k) + (" ↓" if n in LOWER_IS_BETTER else "") for n, k in head) + " |",
             "|" + "---|" * len(head)]
    for method, data in summary["methods"].items():
        cells = [method]
        for name, key in columns:
            value = data["mean"].get(name)
            value = value.get(key) if isinstance(value, dict) else value
            cells.append("n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {name}: unavailable ({reason})" for name, reason in summary["unavailable"].items()]
    notes += [f"- skipped {s['path']}: {s['reason']}" for s in summary["skipped"]]
    footer = f"\n{summary['clips']} clips scored, {len(summary['skipped'])} skipped"
    return "\n".join(lines) + footer + ("\n" + "\n".join(notes) if notes else "")
