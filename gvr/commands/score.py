"""``gvr score OUTPUT [--reference REF] [--metrics psnr,ssim,...]``: score one video, print JSON with each metric's mean.

Full-reference metrics compare frame ``i`` of OUTPUT with frame ``i`` of REF (same size and frame count;
``--max-frames N`` scores a common prefix). Without ``--reference`` only no-reference metrics are scored.
Weights are read from local files only: ``--weights-dir DIR`` (searched for every metric), or a YAML
``--config`` with ``weights_dir: DIR`` and/or ``weights: {lpips: PATH, musiq: PATH, ...}``, then each
library's usual cache folder. A metric whose weights are missing is listed under ``unavailable`` with the
file it wanted and where to get it, and the others are still scored; ``--strict`` makes that an error.

metrics: METRICS
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

from gvr.data.video import VideoError
from gvr.metrics.registry import DEFAULT_FULL_REFERENCE, DEFAULT_NO_REFERENCE, REGISTRY, Unavailable, score_videos
from gvr.metrics.weights import MissingWeights


def parser() -> argparse.ArgumentParser:
    listing = "; ".join(f"{name} ({spec.help}{'' if spec.reference else ', no reference'})"
                        for name, spec in REGISTRY.items())
    p = argparse.ArgumentParser(prog="gvr score", description=__doc__.replace("METRICS", listing),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="the video to score")
    p.add_argument("--reference", "-r", default=None, help="ground-truth video, frame-aligned with OUTPUT")
    p.add_argument("--metrics", "-m", default=None,
                   help=f"comma-separated names (default: {','.join(DEFAULT_FULL_REFERENCE)} with a reference, "
                        f"{','.join(DEFAULT_NO_REFERENCE)} without)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights-dir", default=None, help="folder holding the weight files")
    weights.add_argument("--config", default=None, help="YAML with weights_dir and/or weights: {metric: path}")
    p.add_argument("--strict", action="store_true", help="a metric that cannot be scored is an error")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--max-frames", type=int, default=None, help="score only the first N frames")
    p.add_argument("--chunk", type=int, default=16, help="frames decoded and scored at a time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def read_config(path: str) -> tuple[dict[str, str], str | None]:
    """``(weights, weights_dir)`` from a YAML file (top level, or under a ``score:`` key)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    data = data.get("score", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or set(data) - {"weights", "weights_dir"}:
        raise ValueError(f"{path}: expected a mapping with 'weights' and/or 'weights_dir', got {data!r}")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict) or set(weights) - set(REGISTRY):
        raise ValueError(f"{path}: 'weights' must map metric names ({', '.join(REGISTRY)}) to paths, got {weights!r}")
    return {k: str(v) for k, v in weights.items()}, data.get("weights_dir")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        weights, weights_dir = read_config(args.config) if args.config else ({}, args.weights_dir)
        result = score_videos(args.output, args.reference, metrics, weights=weights, weights_dir=weights_dir,
                              strict=args.strict, device=args.device, max_frames=args.max_frames, chunk=args.chunk,
                              progress=not args.no_progress)
    except (VideoError, ValueError, KeyError, MissingWeights, Unavailable, ImportError, OSError) as err:
        sys.exit(f"gvr score: error: {err}")
    print(json.dumps(result, indent=2))
