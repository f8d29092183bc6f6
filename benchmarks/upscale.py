"""Seconds per output frame and peak memory of `gvr upscale` with the tiny preset (prints a table).

    python benchmarks/upscale.py                      # random-weight tiny model as in configs/stage1.yaml
    python benchmarks/upscale.py --ckpt last.ckpt     # a trained checkpoint

Each configuration runs in a fresh subprocess so that its peak resident memory is its own. Speed does
not depend on the weights, so the default needs no training run.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = [(96, 128), (144, 176), (160, 288)]
STEPS = [1, 10, 50]


def single(args) -> None:
    import torch

    from gvr.codecs import PatchCodec
    from gvr.data.video import write_video
    from gvr.models import SimpleGVR
    from gvr.module import VSRModule
    from gvr.upscale import load_module, upscale_video

    torch.set_num_threads(args.threads)
    if args.ckpt:
        module = load_module(args.ckpt)
    else:
        backbone = SimpleGVR(latent_channels=48, dim=128, depth=4, heads=4, upsampler_channels=32)
        module = VSRModule(backbone, PatchCodec(spatial_factor=4), scale=args.scale).eval()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        rng = np.random.default_rng(0)
        write_video(src, rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8), fps=24)
        start = time.perf_counter()
        summary = upscale_video(module, str(src), str(dst), steps=args.steps, chunk=args.chunk, overlap=args.overlap, progress=False)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **summary}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None, help="trained checkpoint (default: random tiny model)")
    p.add_argument("--scale", type=float, default=2.5, help="scale of the random model")
    p.add_argument("--frames", type=int, default=17, help="input frames")
    p.add_argument("--chunk", type=int, default=17)
    p.add_argument("--overlap", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES), help="input HxW list")
    p.add_argument("--steps-list", default=",".join(map(str, STEPS)), help="Euler step counts")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--height", type=int, help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single:
        return single(args)
    print(f"gvr upscale, tiny preset, {args.frames} frames, chunk {args.chunk}, {args.threads} threads")
    print("| input | output | steps | s / output frame | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        h, w = map(int, size.split("x"))
        for steps in map(int, args.steps_list.split(",")):
            cmd = [sys.executable, __file__, "--single", "--height", str(h), "--width", str(w), "--steps", str(steps),
                   "--frames", str(args.frames), "--chunk", str(args.chunk), "--overlap", str(args.overlap),
                   "--threads", str(args.threads), "--scale", str(args.scale)] + (["--ckpt", args.ckpt] if args.ckpt else [])
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            ow, oh = r["output_size"]
            print(f"| {w}x{h} | {ow}x{oh} | {steps} | {r['seconds'] / r['frames']:.3f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
