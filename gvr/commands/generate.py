"""``gvr generate --base BASE.ckpt --vsr VSR.ckpt --output OUT.mp4``: the whole cascade, end to end.

1. The base model samples a low-resolution latent from noise (its own flow ODE, ``--base-steps`` Euler steps).
2. SimpleGVR upsamples that latent directly, in the same latent space (no decode / re-encode in between).
3. The codec decodes the high-resolution latent and the video is written (H.264 ``.mp4`` or FFV1 ``.mkv``).

``--save-base`` also writes the decoded base-resolution video, to compare with the upscaled one.
"""

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import torch

from gvr.data.video import VideoError, tensor_to_frames, write_video

DEFAULT_BASE = "logs/base/checkpoints/last.ckpt"
DEFAULT_VSR = "logs/stage2/checkpoints/last.ckpt"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default=DEFAULT_BASE, help=f"base model checkpoint of `gvr base fit` (default {DEFAULT_BASE})")
    p.add_argument("--vsr", default=DEFAULT_VSR, help=f"SimpleGVR checkpoint of `gvr fit` (default {DEFAULT_VSR})")
    p.add_argument("--output", "-o", required=True, help="output .mp4 (H.264) or .mkv (FFV1)")
    p.add_argument("--frames", type=int, default=3, help="frames to generate (rounded up to what the codec takes)")
    p.add_argument("--height", type=int, default=32, help="base-resolution frame height in pixels")
    p.add_argument("--width", type=int, default=32, help="base-resolution frame width in pixels")
    p.add_argument("--num-videos", type=int, default=1, help="videos to generate; 2 or more are stacked vertically")
    p.add_argument("--base-steps", type=int, default=None, help="Euler steps of the base model (default: its sample_steps)")
    p.add_argument("--steps", type=int, default=None, help="Euler steps of SimpleGVR (default: its sample_steps)")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: the checkpoint's s_inference)")
    p.add_argument("--prompt", default=None, help="caption for a text-conditioned SimpleGVR (the base model's own text "
                   "is its config's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the written video")
    p.add_argument("--save-base", default=None, help="also write the decoded base-resolution video here")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return p


def write(path: str, video: torch.Tensor, fps: float, overwrite: bool) -> None:
    """Write ``(B, 3, T, H, W)`` pixels in [-1, 1], the B videos stacked vertically."""
    write_video(path, tensor_to_frames(torch.cat(list(video.float().cpu()), dim=-2)), fps, overwrite=overwrite)


@torch.no_grad()
def generate(args: argparse.Namespace) -> dict:
    from gvr.lit.checkpoints import load_gvr_module
    from gvr.ops.resize import output_size

    for path in (args.output, args.save_base):
        if path is not None and not args.overwrite and Path(path).exists():
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    base = load_gvr_module(args.base, "BaseModule", args.device)
    vsr = load_gvr_module(args.vsr, "VSRModule", args.device)
    if args.prompt is not None and vsr.text_encoder is None:
        raise ValueError("this SimpleGVR takes no text: drop --prompt")
    if base.codec.describe() != vsr.codec.describe():
        raise ValueError(f"the base model's codec {base.codec.describe()} differs from SimpleGVR's {vsr.codec.describe()}: "
                         "a cascade needs one latent space")
    codec = vsr.codec
    frames, height, width = codec.valid_size(args.frames, args.height, args.width)
    f = codec.spatial_factor
    shape = (args.num_videos, codec.latent_channels, codec.latent_frames(frames), height // f, width // f)

    # 1. Base model: noise -> low-resolution latent.
    c0 = base.sample(shape, steps=args.base_steps, seed=args.seed)
    # 2. SimpleGVR: low-resolution latent -> high-resolution latent.
    # c0 covers the padded base frame: its HR grid extends it at the exact ratio of the requested sizes.
    out_h, out_w = output_size(args.height, args.width, vsr.hparams.scale)
    ratio = (out_h / args.height, out_w / args.width)
    grid = tuple(math.ceil(n * r) for n, r in zip(c0.shape[-2:], ratio))
    captions = None if args.prompt is None else [args.prompt] * c0.shape[0]
    z0 = vsr.upscale_latent(c0, grid, steps=args.steps, s=args.s, seed=args.seed, captions=captions, ratio=ratio)
    # 3. Decode and write.
    hr = codec.decode(z0.float())[:, :, : args.frames, :out_h, :out_w].clamp(-1, 1)
    write(args.output, hr, args.fps, args.overwrite)
    if args.save_base:
        lr = codec.decode(c0.float())[:, :, : args.frames, : args.height, : args.width].clamp(-1, 1)
        write(args.save_base, lr, args.fps, args.overwrite)
    return {"output": args.output, "base_video": args.save_base, "frames": args.frames, "videos": args.num_videos,
            "base_size": [args.width, args.height], "output_size": [out_w, out_h], "base_latent": list(shape),
            "scale": vsr.hparams.scale}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if min(args.frames, args.height, args.width, args.num_videos) < 1:
        sys.exit("gvr generate: error: --frames, --height, --width and --num-videos must be >= 1")
    try:
        summary = generate(args)
    except (VideoError, ValueError, FileNotFoundError, FileExistsError) as err:
        sys.exit(f"gvr generate: error: {err}")
    print(json.dumps(summary))
