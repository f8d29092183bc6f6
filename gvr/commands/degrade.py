"""``gvr degrade INPUT --kind classic|flow --output OUT``: apply one training degradation to a video.

Lets users see what the training pipeline does to their own footage. ``classic`` writes the low-resolution
result (each side divided by ``--scale``, rounded half up); ``flow`` keeps the input's resolution. ``.mp4``
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
from gvr.seeding import generator

KINDS = {"classic": "gvr.data.degradations.ClassicDegradation", "flow": "gvr.data.degradations.FlowDegradation"}


def build_degradation(kind: str, config: str | None):
    """The degradation of ``kind``, from a YAML file (``{class_path, init_args}``, optionally under ``degradation:``)."""
    from jsonargparse import ArgumentParser

    from gvr.data.degradations import Degradation

    spec: dict = {"class_path": KINDS[kind]}
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
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    if kind == "classic":
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="gvr degrade", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="video file (anything PyAV decodes)")
    p.add_argument("--kind", required=True, choices=sorted(KINDS), help="which degradation to apply")
    p.add_argument("--output", "-o", required=True, help="output .mp4 (H.264) or .mkv (lossless FFV1)")
    p.add_argument("--config", default=None, help="YAML with the degradation's class_path / init_args")
    p.add_argument("--seed", type=int, default=0, help="seed of the degradation's randomness")
    p.add_argument("--scale", type=float, default=2.5, help="downscale factor of the classic degradation")
    p.add_argument("--chunk", type=int, default=32, help="frames processed at a time")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    args = p.parse_args(argv)
    try:
        degradation = build_degradation(args.kind, args.config)
        summary = degrade_video(args.input, args.output, args.kind, degradation, args.seed, args.scale, args.chunk,
                                args.overwrite)
    except (VideoError, ValueError, FileNotFoundError, FileExistsError) as err:
        sys.exit(f"gvr degrade: error: {err}")
    print(json.dumps(summary))
