"""Metrics by name, and `score_videos`: one video (against a reference, or alone) -> the mean of each metric.

Each `MetricSpec` says how to build a metric (from an optional weights path), whether it needs a reference
and how `score_videos` feeds it:

- ``frames``: any run of consecutive frames (PSNR, SSIM, LPIPS, MUSIQ, ...): the mean over frames.
- ``stream``: consecutive chunks of one video, in order (VMAF, whose motion feature spans frames; the
  temporal measures E*warp and flicker, which compare consecutive frames).
- ``clips``: non-overlapping 16-frame clips, each one sample of the output and reference sets (FVD).
- ``video``: the whole video in one update (DOVER samples its own views).

Another module adds a metric with `register_metric`. DOVER is registered here by name and imported only
when used (``gvr.metrics.dover.DOVERMetric(weights=...)``).

Alignment: frame ``i`` of the output is compared with frame ``i`` of the reference. Both must have the
same frame size (no resizing: a VSR output is scored at the reference's resolution) and the same number of
frames (a mismatch usually means dropped or duplicated frames, which would misalign every later frame);
``max_frames`` scores a common prefix instead. Full-reference metrics without a reference, a missing weight
file or a video too short for FVD make a metric *unavailable*: it is skipped with its reason and the others
are still scored, unless ``strict``.
"""

import importlib
import inspect
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import zip_longest
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from tqdm.auto import tqdm

from gvr.data.video import PathLike, frames_to_tensor, iter_frames, probe_video
from gvr.metrics.weights import MissingWeights, WeightFile, resolve_weights

Feed = Literal["frames", "stream", "clips", "video"]
FVD_CLIP = 16  # frames per FVD clip (StyleGAN-V / TATS protocol)


@dataclass(frozen=True)
class MetricSpec:
    """How to build one named metric and feed it."""

    name: str
    build: Callable[[str | None, bool], Metric]  # (weights path or folder | None, pretrained) -> Metric
    reference: bool  # True: full-reference (update(output, reference)); False: update(output)
    feed: Feed
    help: str


REGISTRY: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add (or replace) a metric under ``spec.name``."""
    REGISTRY[spec.name] = spec
    return spec


def build_metric(name: str, weights: str | None = None, pretrained: bool = True) -> Metric:
    """The metric registered as ``name``.

    Raises:
        KeyError: unknown name. MissingWeights: its weight file is not on disk.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown metric '{name}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[name].build(weights, pretrained)


def lazy(module: str, cls: str, **fixed) -> Callable[[str | None, bool], Metric]:
    """A builder importing ``module.cls`` only when called; ``weights`` / ``pretrained`` passed where accepted."""

    def build(weights: str | None, pretrained: bool) -> Metric:
        target = getattr(importlib.import_module(module), cls)
        params = inspect.signature(target).parameters
        kwargs = dict(fixed)
        if "weights" in params:
            kwargs["weights"] = weights
        if "pretrained" in params:
            kwargs["pretrained"] = pretrained
        return target(**kwargs)

    return build


def _fvd(weights: str | None, pretrained: bool) -> Metric:
    from gvr.metrics.frechet import FrechetVideoDistance
    from gvr.metrics.i3d import WEIGHTS_SOURCE, InceptionI3d, load_i3d

    if not pretrained:
        return FrechetVideoDistance(InceptionI3d())
    spec = WeightFile("i3d_pretrained_400.pt", WEIGHTS_SOURCE)
    return FrechetVideoDistance(load_i3d(resolve_weights("fvd", spec, weights)))


for _spec in (
    MetricSpec("psnr", lazy("gvr.metrics.image", "FramePSNR", channel="rgb"), True, "frames", "PSNR (dB) on RGB"),
    MetricSpec("psnr_y", lazy("gvr.metrics.image", "FramePSNR", channel="y"), True, "frames", "PSNR (dB) on BT.601 Y"),
    MetricSpec("ssim", lazy("gvr.metrics.image", "FrameSSIM", channel="rgb"), True, "frames", "SSIM on RGB"),
    MetricSpec("ssim_y", lazy("gvr.metrics.image", "FrameSSIM", channel="y"), True, "frames", "SSIM on BT.601 Y"),
    MetricSpec("lpips", lazy("gvr.metrics.lpips", "FrameLPIPS"), True, "frames", "LPIPS v0.1 AlexNet (lower is better)"),
    MetricSpec("vmaf", lazy("gvr.metrics.vmaf", "VideoVMAF", stream=True), True, "stream", "VMAF v0.6.1 on luma"),
    MetricSpec("ewarp", lazy("gvr.metrics.temporal", "WarpError", flow="dis", stream=True), True, "stream",
               "E*warp x1000: warping error along the ground truth's DIS flow, occlusions masked (lower is better)"),
    MetricSpec("ewarp_raft", lazy("gvr.metrics.temporal", "WarpError", flow="raft", stream=True), True, "stream",
               "E*warp x1000 along RAFT-large flow (needs its weights; lower is better)"),
    MetricSpec("flicker", lazy("gvr.metrics.temporal", "Flicker", stream=True), True, "stream",
               "luma temporal change against the reference's, 0..255 (lower is better)"),
    MetricSpec("fvd", _fvd, True, "clips", "FVD (I3D, 16-frame clips; lower is better)"),
    MetricSpec("musiq", lazy("gvr.metrics.iqa", "FrameMUSIQ"), False, "frames", "MUSIQ KonIQ (pyiqa)"),
    MetricSpec("clipiqa", lazy("gvr.metrics.iqa", "FrameCLIPIQA"), False, "frames", "CLIP-IQA RN50 (pyiqa)"),
    MetricSpec("maniqa", lazy("gvr.metrics.iqa", "FrameMANIQA"), False, "frames", "MANIQA KonIQ (pyiqa)"),
    MetricSpec("dover", lazy("gvr.metrics.dover", "DOVERMetric"), False, "video", "DOVER technical/aesthetic/overall"),
):
    register_metric(_spec)

DEFAULT_FULL_REFERENCE = ("psnr", "psnr_y", "ssim", "ssim_y", "lpips", "vmaf", "ewarp", "flicker")
DEFAULT_NO_REFERENCE = ("musiq", "clipiqa", "maniqa", "dover")


class Unavailable(RuntimeError):
    """A metric cannot be scored on these inputs (raised by `score_videos` only when ``strict``)."""


def _chunks(path: PathLike, chunk: int, limit: int) -> Iterator[np.ndarray]:
    """Consecutive uint8 chunks ``(t, H, W, 3)`` of the first ``limit`` frames."""
    seen = 0
    for frames in iter_frames(path, chunk):
        if seen >= limit:
            return
        yield frames[: limit - seen]
        seen += len(frames)


def _value(result) -> float | dict[str, float]:
    if isinstance(result, Mapping):
        return {k: _value(v) for k, v in result.items()}
    return float(result.item() if isinstance(result, Tensor) else result)


def score_videos(
    output: PathLike,
    reference: PathLike | None = None,
    metrics: Iterable[str] | None = None,
    weights: Mapping[str, str] | None = None,
    weights_dir: str | None = None,
    strict: bool = False,
    device: str | torch.device = "cpu",
    max_frames: int | None = None,
    chunk: int = FVD_CLIP,
    pretrained: bool = True,
    progress: bool = False,
) -> dict:
    """Mean of each metric over the frames of ``output`` (against ``reference`` for full-reference metrics).

    Args:
        output: the video to score.
        reference: the ground truth, frame-aligned with ``output`` (same size and frame count); None scores
            only no-reference metrics.
        metrics: registered names; None: the full-reference defaults with a reference, else the no-reference ones.
        weights: per metric, its weight file or a folder holding it (e.g. ``{"lpips": "alexnet-owt-7be5be79.pth"}``).
        weights_dir: a folder searched for every metric without an entry in ``weights``.
        strict: an unavailable metric is an error instead of an entry in ``unavailable``.
        device: torch device the metrics run on.
        max_frames: score only the first frames (both videos need at least that many).
        chunk: frames decoded and scored at a time.
        pretrained: False builds the networks with random weights (tests and timing only).
        progress: show a tqdm bar over frames.

    Returns:
        ``{"output", "reference", "frames", "width", "height", "metrics": {name: mean}, "unavailable":
        {name: reason}, "seconds": {name: time spent}}``; DOVER's mean is a dict of its three scores.

    Raises:
        KeyError: an unknown metric name. ValueError: the videos are not frame-aligned. VideoError: unreadable
        input. MissingWeights / Unavailable / ImportError: with ``strict``, the first unavailable metric.
    """
    names = list(metrics) if metrics is not None else list(
        DEFAULT_FULL_REFERENCE if reference is not None else DEFAULT_NO_REFERENCE)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise KeyError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    if chunk < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"score_videos: chunk and max_frames must be >= 1, got {chunk} and {max_frames}")

    # 1. Frame alignment.
    info = probe_video(output)
    frames = info.frames if max_frames is None else max_frames
    if reference is not None:
        ref = probe_video(reference)
        if (ref.width, ref.height) != (info.width, info.height):
            raise ValueError(f"'{output}' is {info.width}x{info.height} but the reference '{reference}' is "
                             f"{ref.width}x{ref.height}: metrics compare frames of one size (resize the output first)")
        if max_frames is None and ref.frames != info.frames:
            raise ValueError(f"'{output}' has {info.frames} frames but the reference '{reference}' has {ref.frames}: "
                             f"frames would be misaligned; pass max_frames (--max-frames) to score a common prefix")
        shortest = min(ref.frames, info.frames)
    else:
        shortest = info.frames
    if frames > shortest:
        raise ValueError(f"max_frames={max_frames} but a video has only {shortest} frames")

    # 2. Build what can be built; the rest is unavailable with its reason.
    built: dict[str, Metric] = {}
    unavailable: dict[str, str] = {}

    def skip(name: str, reason: str, error: Exception | None = None) -> None:
        if strict:
            raise (error if error is not None else Unavailable(f"{name}: {reason}"))
        unavailable[name] = reason

    for name in names:
        spec = REGISTRY[name]
        if spec.reference and reference is None:
            skip(name, "needs a reference video (--reference)")
            continue
        if spec.feed == "clips" and frames < 2 * FVD_CLIP:
            skip(name, f"needs at least {2 * FVD_CLIP} frames (two {FVD_CLIP}-frame clips per video), got {frames}")
            continue
        path = (weights or {}).get(name, weights_dir)
        try:
            built[name] = spec.build(path, pretrained).to(device)
        except MissingWeights as e:
            skip(name, e.reason, e)
        except ImportError as e:
            skip(name, f"cannot import its implementation: {e}", e)

    # 3. One pass over the frames, feeding every metric.
    seconds = dict.fromkeys(built, 0.0)
    clip_buffers: dict[str, list[tuple[Tensor, Tensor]]] = {n: [] for n in built if REGISTRY[n].feed == "clips"}
    whole: list[np.ndarray] = []
    needs_whole = any(REGISTRY[n].feed == "video" for n in built)
    outputs = _chunks(output, chunk, frames)
    references = _chunks(reference, chunk, frames) if reference is not None else iter(())
    with tqdm(total=frames, unit="frame", desc="score", disable=not progress) as bar:
        for out_frames, ref_frames in zip_longest(outputs, references):
            out = frames_to_tensor(out_frames)[None].to(device)  # (1, 3, t, h, w)
            ref = frames_to_tensor(ref_frames)[None].to(device) if ref_frames is not None else None
            if needs_whole:
                whole.append(out_frames)
            for name, metric in built.items():
                spec, start = REGISTRY[name], time.perf_counter()
                if spec.feed in ("frames", "stream") and spec.reference:
                    metric.update(out, ref)
                elif spec.feed in ("frames", "stream"):
                    metric.update(out)
                elif spec.feed == "clips":
                    _feed_clips(metric, clip_buffers[name], out, ref)
                seconds[name] += time.perf_counter() - start
            bar.update(out.shape[2])
        if needs_whole:
            video = frames_to_tensor(np.concatenate(whole))[None].to(device)
            for name in (n for n in built if REGISTRY[n].feed == "video"):
                start = time.perf_counter()
                built[name].update(video)
                seconds[name] += time.perf_counter() - start

    # 4. Means.
    values = {}
    for name, metric in built.items():
        start = time.perf_counter()
        values[name] = _value(metric.compute())
        seconds[name] += time.perf_counter() - start
    return {
        "output": str(output), "reference": None if reference is None else str(reference), "frames": frames,
        "width": info.width, "height": info.height, "metrics": values, "unavailable": unavailable,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def _feed_clips(metric: Metric, buffer: list, out: Tensor, ref: Tensor) -> None:
    """Collect frames into 16-frame clips and add each complete clip pair to the FVD sets (a short tail is dropped)."""
    buffer.append((out, ref))
    have = sum(o.shape[2] for o, _ in buffer)
    if have < FVD_CLIP:
        return
    out_all = torch.cat([o for o, _ in buffer], dim=2)
    ref_all = torch.cat([r for _, r in buffer], dim=2)
    full = math.floor(have / FVD_CLIP) * FVD_CLIP
    for k in range(0, full, FVD_CLIP):
        metric.update(out_all[:, :, k:k + FVD_CLIP], real=False)
        metric.update(ref_all[:, :, k:k + FVD_CLIP], real=True)
    buffer.clear()
    if full < have:
        buffer.append((out_all[:, :, full:], ref_all[:, :, full:]))
