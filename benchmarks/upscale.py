"""Seconds per output frame and peak memory of `gvr upscale`: the one-step students, the teacher at 1-50 steps,
and Real-ESRGAN x4plus (ncnn, CPU) on the same clips in the same run (prints tables).

    python benchmarks/upscale.py                       # make benchmark-upscale: the trained models if present
    python benchmarks/upscale.py --student S.ckpt --teacher T.ckpt --frames 9

Models: ``--student`` (default logs/distill/checkpoints/last.ckpt, `make distill`), ``--sharp`` (the sharp
student with its seam refiner, default logs/distill_sharp/checkpoints/average.ckpt, `make distill-sharp`) and
``--teacher`` (default logs/stage1_x4/checkpoints/last.ckpt, `make stage1-x4`); a missing checkpoint is
replaced by a random-weight model of the same config (configs/distill.yaml, configs/distill_sharp.yaml,
configs/stage1_x4.yaml): speed does not depend on the weights. Every row is `gvr upscale`'s whole path (decode the mp4, the codec, the network calls of every
chunk, colour conversion, encode), with its default chunking (the student takes the clip in one window,
the full-attention teacher one training clip at a time), in a fresh subprocess so that its peak resident
memory is its own. The last column, seconds per output megapixel, shows how the cost grows with the frame:
flat for the windowed student, growing for the teacher's full attention.

Real-ESRGAN x4plus runs through ncnn on the CPU (`gvr.baselines.realesrgan`; ``make realesrgan`` fetches its
files) on the same clip with the same threads, decode and encode included; it is skipped with a message where
its files or the ncnn package are absent.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (name, input side, Euler steps): x4 outputs of 144, 240, 384 and 480 pixels square. The teacher's full
# attention makes its 4, 10 and 50 steps affordable at the smallest size only (each step costs the same).
ROWS = [
    ("student", 36, 1), ("student", 60, 1), ("student", 96, 1), ("student", 120, 1),
    ("sharp", 36, 1), ("sharp", 60, 1), ("sharp", 96, 1), ("sharp", 120, 1),
    ("teacher", 36, 1), ("teacher", 60, 1), ("teacher", 96, 1), ("teacher", 120, 1),
    ("teacher", 36, 4), ("teacher", 36, 10), ("teacher", 36, 50),
    ("realesrgan", 36, 0), ("realesrgan", 60, 0), ("realesrgan", 96, 0), ("realesrgan", 120, 0),
]
MODELS = {"student": ("logs/distill/checkpoints/last.ckpt", "configs/distill.yaml"),
          "sharp": ("logs/distill_sharp/checkpoints/average.ckpt", "configs/distill_sharp.yaml"),
          "teacher": ("logs/stage1_x4/checkpoints/last.ckpt", "configs/stage1_x4.yaml")}


def build(ckpt: str | None, config: str):
    """The checkpoint's module, or a random-weight module of `config` (its data scale and clip length)."""

    from gvr.inference.upscale import load_module
    from gvr.lit.vsr_module import VSRModule
    from gvr.ops.config import instantiate_section, load_config

    if ckpt and Path(ckpt).is_file():
        return load_module(ckpt)
    module = instantiate_section(config, "model", VSRModule).eval()
    data = load_config(config).get("data", {})
    module.hparams.scale = float(data.get("scale", module.hparams.scale))  # linked from data.scale by the CLI
    module.hparams.train_frames = data.get("num_frames")  # linked from data.num_frames by the CLI
    return module


def random_clip(path: Path, frames: int, side: int) -> None:
    from gvr.data.video import write_video

    rng = np.random.default_rng(0)
    write_video(path, rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8), fps=24)


def single(args) -> None:
    import torch

    from gvr.inference.upscale import upscale_video

    torch.set_num_threads(args.threads)
    module = build(args.ckpt, args.config)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        random_clip(src, args.frames, args.side)
        start = time.perf_counter()
        summary = upscale_video(module, str(src), str(dst), steps=args.steps, chunk=args.chunk or None,
                                progress=False, max_frames=args.max_frames)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **summary}))


def single_realesrgan(args) -> None:
    """Real-ESRGAN x4plus (ncnn, CPU) on the clip `single` makes: decode, upscale, encode, timed like gvr's."""
    from gvr.baselines.realesrgan import RealESRGAN
    from gvr.data.video import read_video, write_video

    model = RealESRGAN(args.realesrgan, threads=args.threads, tile=args.realesrgan_tile)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        random_clip(src, args.frames, args.side)
        start = time.perf_counter()
        frames, fps = read_video(src)
        out = model.upscale(frames)
        write_video(dst, out, fps=fps)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "frames": len(out),
                      "output_size": [out.shape[2], out.shape[1]]}))


def run_row(args, name: str, side: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--single", "--method", "realesrgan" if name == "realesrgan" else "gvr",
           "--side", str(side), "--frames", str(args.frames), "--threads", str(args.threads)]
    if name == "realesrgan":
        cmd += ["--realesrgan", args.realesrgan, "--realesrgan-tile", str(args.realesrgan_tile)]
    else:
        ckpt, config = getattr(args, name), MODELS[name][1]
        cmd += ["--steps", str(steps), "--config", config, "--chunk", str(args.chunk), "--max-frames", str(args.max_frames)]
        cmd += ["--ckpt", ckpt] if ckpt else []
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"{name} at {side}x{side}, {steps} steps failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default=MODELS["student"][0], help="one-step student checkpoint (`make distill`)")
    p.add_argument("--sharp", default=MODELS["sharp"][0], help="sharp one-step student (`make distill-sharp`)")
    p.add_argument("--teacher", default=MODELS["teacher"][0], help="teacher checkpoint (`make stage1-x4`)")
    p.add_argument("--frames", type=int, default=9, help="input frames")
    p.add_argument("--rows", default=None, help="subset of rows, NAME:SIDE:STEPS comma-separated (default: all of ROWS)")
    p.add_argument("--chunk", type=int, default=0, help="frames per temporal window (0: gvr upscale's automatic choice)")
    p.add_argument("--max-frames", type=int, default=121, help="longest window of temporal-unit models (--chunk 0)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--realesrgan", default="data/weights/realesrgan",
                   help="folder of the Real-ESRGAN x4plus ncnn files (`make realesrgan`)")
    p.add_argument("--realesrgan-tile", type=int, default=200, help="Real-ESRGAN tile in LR pixels (0: whole frames)")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", choices=["gvr", "realesrgan"], default="gvr", help=argparse.SUPPRESS)
    p.add_argument("--side", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ckpt", default=None, help=argparse.SUPPRESS)
    p.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single:
        return single_realesrgan(args) if args.method == "realesrgan" else single(args)
    from gvr.baselines.realesrgan import unavailable

    rows = ROWS if args.rows is None else [(n, int(a), int(b)) for n, a, b in (r.split(":") for r in args.rows.split(","))]
    skip = unavailable(args.realesrgan)
    if skip and any(n == "realesrgan" for n, _, _ in rows):
        print(f"Real-ESRGAN rows skipped: {skip}")
        rows = [r for r in rows if r[0] != "realesrgan"]
    for name in sorted({n for n, _, _ in rows if n in MODELS}, key=list(MODELS).index):
        path = getattr(args, name)
        print(f"{name}: {path if Path(path).is_file() else 'random weights of ' + MODELS[name][1] + f' ({path} absent)'}")
    print(f"{args.frames} frames of a random clip, x4, {args.threads} threads, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start\n")
    print("| method | input | output | steps | chunk | s / output frame | s / output megapixel | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, side, steps in rows:
        r = run_row(args, name, side, steps)
        ow, oh = r["output_size"]
        per_frame = r["seconds"] / r["frames"]
        label = {"student": "gvr student", "sharp": "gvr sharp student", "teacher": "gvr teacher", "realesrgan": "Real-ESRGAN x4plus (ncnn)"}[name]
        print(f"| {label} | {side}x{side} | {ow}x{oh} | {steps or '-'} | {r.get('chunk', '-')} | {per_frame:.3f} | "
              f"{per_frame / (ow * oh / 1e6):.2f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
