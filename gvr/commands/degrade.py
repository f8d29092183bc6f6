"""``gvr degrade INPUT --kind classic|flow|model --output OUT``: apply one training degradation to a video.

Lets users see what the training pipeline does to their own footage. ``classic`` and ``model`` write the
low-resolution result (each side divided by ``--scale``, rounded half up; ``model`` is the base model's
SDEdit-like refinement of the bicubic downsample, decoded); ``flow`` keeps the input's resolution. ``.mp4``
outputs are H.264, ``.mkv`` outputs lossless FFV1. Long videos are processed in chunks; the flow
degradation carries the previous frame across chunk borders so no frame loses its predecessor.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from tqdm.auto import tqdm

from gvr.data.video import VideoError, VideoWriter, frames_to_tensor, iter_frames, probe_video, tensor_to_frames
from gvr.ops.files import check_output
from gvr.ops.seeding import generator

KINDS = {
    "classic": "gvr.data.degradations.ClassicDegradation",
    "flow": "gvr.data.degradations.FlowDegradation",
    "model": "gvr.data.degradations.ModelGuidedDegradation",
}
DEFAULT_BASE_CKPT = "logs/base/checkpoints/last.ckpt"  # where `gvr base fit --config configs/base.yaml` writes it


def build_degradation(kind: str, config: str | None, base_ckpt: str | None = None):
    """The degradation of ``kind``, from a YAML file (``{class_path, init_args}``, optionally under ``degradation:``).

    For ``model`` without a config, ``base_ckpt`` (default: the embedded base model) gives the base model.
    """
    from jsonargparse import ArgumentParser

    from gvr.data.degradations import Degradation

    spec: dict = {"class_path": KINDS[kind]}
    if kind == "model" and config is None:
        ckpt = base_ckpt or DEFAULT_BASE_CKPT
        if not Path(ckpt).is_file():
            raise FileNotFoundError(f"base model checkpoint {ckpt} not found: train one with "
                                    "`gvr base fit --config configs/base.yaml` or pass --base-ckpt")
        spec["init_args"] = {"base": {"class_path": "gvr.lit.BaseCheckpoint", "init_args": {"path": ckpt}}}
    if config is not None:
        data = yaml.safe_load(Path(config).read_text()) or {}
        spec = data.get("degradation", data)
        if not isinstance(spec, dict) or spec.get("class_path", KINDS[kind]).split(".")[-1] != KINDS[kind].split(".")[-1]:
            raise ValueError(f"{config} does not configure a {KINDS[kind].split('.')[-1]} (needed by --kind {kind})")
        spec = {"class_path": KINDS[kind], **{k: v for k, v in spec.items() if k != "class_path"}}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(Degradation, "degradation")
    return parser.instantiate_classes(parser.parse_object({"degradation": spec})).degradation


def degrade_video(source: str, output: str, kind: str, degradation, seed: int = 0, scale: float = 2.5,
                  chunk: int = 32, overwrite: bool = False, progress: bool = True) -> dict:
    """Degrade ``source`` chunk by chunk into ``output``; returns a summary of sizes and frames."""
    info = probe_video(source)
    check_output(source, output, overwrite)
    if kind in ("classic", "model"):
        size = (max(1, math.floor(info.height / scale + 0.5)), max(1, math.floor(info.width / scale + 0.5)))
    else:
        size = (info.height, info.width)
    previous: np.ndarray | None = None
    with VideoWriter(output, info.fps, size[1], size[0], overwrite=overwrite) as writer, \
            tqdm(total=info.frames, unit="frame", desc=f"degrade ({kind})", disable=not progress) as bar:
        for k, frames in enumerate(iter_frames(source, chunk)):
            g = generator(seed, k)
            if kind == "flow":
                context = frames if previous is None else np.concatenate([previous, frames])
                out = degradation.degrade_frames(context, g)[len(context) - len(frames):]
                previous = frames[-1:]
            else:
                out = tensor_to_frames(degradation(frames_to_tensor(frames), size, g))
            writer.write(out)
            bar.update(len(frames))
    return {"input": source, "output": output, "kind": kind, "input_size": [info.width, info.height],
            "output_size": [size[1], size[0]], "frames": info.frames, "fps": info.fps}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr degrade", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="video file (anything PyAV decodes)")
    p.add_argument("--kind", required=True, choices=sorted(KINDS), help="which degradation to apply")
    p.add_argument("--output", "-o", required=True, help="output .mp4 (H.264) or .mkv (lossless FFV1)")
    p.add_argument("--config", default=None, help="YAML with the degradation's class_path / init_args")
    p.add_argument("--seed", type=int, default=0, help="seed of the degradation's randomness")
    p.add_argument("--scale", type=float, default=2.5, help="downscale factor of the classic and model degradations")
    p.add_argument("--base-ckpt", default=None, help=f"base model of --kind model (default {DEFAULT_BASE_CKPT})")
    p.add_argument("--chunk", type=int, default=None, help="frames processed at a time (default 32; 5 for model)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    try:
        degradation = build_degradation(args.kind, args.config, args.base_ckpt)
        chunk = args.chunk or (5 if args.kind == "model" else 32)
        summary = degrade_video(args.input, args.output, args.kind, degradation, args.seed, args.scale, chunk,
                                args.overwrite)
    except (VideoError, ValueError, FileNotFoundError, FileExistsError) as err:
        sys.exit(f"gvr degrade: error: {err}")
    print(json.dumps(summary))
