"""Peak memory and time of `gvr upscale` against video length and resolution (prints a table).

    python benchmarks/inference.py [--lengths 9,17,33,65,129] [--sizes 32x32,64x64] [--steps 2]

Two tiny models with random weights (speed and memory do not depend on the weights):
- ``full``: configs/stage1.yaml (3D attention over the whole window), chunked in windows of 17 frames;
- ``units``: configs/stage3.yaml (interleaving temporal units), which `gvr upscale` runs over the whole clip
  in one window up to ``--max-frames`` frames and in overlapping windows beyond.
Each case runs in a fresh subprocess (benchmarks/upscale.py --single) so its peak RSS is its own. With
windows of bounded length, memory must stay flat as the video gets longer.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = {"full": ("configs/stage1.yaml", 17), "units": ("configs/stage3.yaml", 0)}  # chunk 0: automatic


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="9,17,33,65,129", help="input frame counts")
    p.add_argument("--sizes", default="32x32,64x64", help="input HxW list (output x2.5)")
    p.add_argument("--steps", type=int, default=2, help="Euler steps")
    p.add_argument("--max-frames", type=int, default=33, help="longest window of the temporal-unit model")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    script = str(Path(__file__).with_name("upscale.py"))
    print(f"gvr upscale, tiny models with random weights, {args.steps} Euler steps, {args.threads} threads, "
          f"temporal-unit windows up to {args.max_frames} frames")
    print("| model | input | output | frames | windows | window | s / output frame | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (config, chunk) in MODELS.items():
        for size in args.sizes.split(","):
            h, w = map(int, size.split("x"))
            for frames in map(int, args.lengths.split(",")):
                cmd = [sys.executable, script, "--single", "--config", config, "--height", str(h), "--width", str(w),
                       "--frames", str(frames), "--steps", str(args.steps), "--chunk", str(chunk), "--overlap", "4",
                       "--tile", "0", "--threads", str(args.threads), "--max-frames", str(args.max_frames)]
                r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
                ow, oh = r["output_size"]
                print(f"| {name} | {w}x{h} | {ow}x{oh} | {frames} | {r['chunks']} | {r['chunk']} | "
                      f"{r['seconds'] / frames:.3f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
