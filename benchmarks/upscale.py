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

SIZES = [(48, 48), (96, 96), (154, 154)]  # x2.5 -> 120, 240 and 385 pixels square
STEPS = [1, 10]


def single(args) -> None:
    import torch

    from gvr.config import instantiate_section
    from gvr.data.video import write_video
    from gvr.module import VSRModule
    from gvr.upscale import load_module, upscale_video

    torch.set_num_threads(args.threads)
    if args.ckpt:
        module = load_module(args.ckpt)
    else:
        module = instantiate_section(args.config, "model", VSRModule).eval()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        rng = np.random.default_rng(0)
        write_video(src, rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8), fps=24)
        start = time.perf_counter()
        summary = upscale_video(module, str(src), str(dst), steps=args.steps, chunk=args.chunk or None,
                                overlap=args.overlap, tile=args.tile or None, progress=False, max_frames=args.max_frames)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **summary}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None, help="trained checkpoint (default: random tiny model)")
    p.add_argument("--config", default="configs/stage1.yaml", help="config whose model section builds the random model")
    p.add_argument("--frames", type=int, default=9, help="input frames")
    p.add_argument("--chunk", type=int, default=5, help="frames per temporal chunk (0: gvr upscale's automatic choice)")
    p.add_argument("--max-frames", type=int, default=121, help="longest window of temporal-unit models (--chunk 0)")
    p.add_argument("--overlap", type=int, default=1, help="frames shared by neighbouring chunks")
    p.add_argument("--tile", type=int, default=24, help="spatial tile in LR latent pixels (0: no tiling)")
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
    print(f"gvr upscale, {args.ckpt or args.config}, {args.frames} frames, chunk {args.chunk}, tile {args.tile}, "
          f"{args.threads} threads")
    print("| input | output | steps | s / output frame | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        h, w = map(int, size.split("x"))
        for steps in map(int, args.steps_list.split(",")):
            cmd = [sys.executable, __file__, "--single", "--height", str(h), "--width", str(w), "--steps", str(steps),
                   "--frames", str(args.frames), "--chunk", str(args.chunk), "--overlap", str(args.overlap),
                   "--threads", str(args.threads), "--config", args.config, "--tile", str(args.tile)] + (["--ckpt", args.ckpt] if args.ckpt else [])
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            ow, oh = r["output_size"]
            print(f"| {w}x{h} | {ow}x{oh} | {steps} | {r['seconds'] / r['frames']:.3f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
