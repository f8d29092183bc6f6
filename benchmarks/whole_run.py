"""Whole runs, process start-up included: ``gvr upscale`` against Real-ESRGAN x4plus, one process per clip.

    python benchmarks/whole_run.py --ckpt logs/distill_anyscale/checkpoints/average.ckpt --scale 4 \\
        --clips logs/scales/x4/lr/*.mkv

The in-process seconds per frame of `benchmarks/quality.py` leave out what a user waits for besides the network:
starting Python, importing torch, reading the checkpoint. Here every clip is one fresh process, as a user's
shell loop would run it: ``gvr upscale CLIP --ckpt CKPT --scale F -o OUT.mkv`` (FFV1), and for Real-ESRGAN a
``python -c`` that loads the ncnn network, upscales x4 (then Lanczos to the factor, its own practice) and writes
FFV1. The start-up is timed apart as the same processes doing everything but the frames (gvr: import and load
the checkpoint; Real-ESRGAN: import and load the network), once each. Prints a markdown table and writes
``--out``/whole_run.json. Run it alone on the machine: it times wall clock.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REALESRGAN_RUN = """
import sys
from gvr.baselines.realesrgan import RealESRGAN
from gvr.data.video import read_video, write_video
from gvr.ops.resize import output_size
net = RealESRGAN(sys.argv[1], threads=int(sys.argv[2]))
if sys.argv[3] != "-":
    frames, fps = read_video(sys.argv[3])
    size = output_size(frames.shape[1], frames.shape[2], float(sys.argv[5]))
    write_video(sys.argv[4], net.resize(frames, size), fps, overwrite=True)
"""
GVR_LOAD = "import sys; from gvr.pipeline import load_pipeline; load_pipeline(sys.argv[1])"  # what gvr upscale loads


def timed(cmd: list[str]) -> float:
    """Wall seconds of one process; its failure is an error with its stderr."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--clips", nargs="+", required=True, help="LR video files (e.g. benchmarks/quality.py's lr/*.mkv)")
    p.add_argument("--realesrgan", default="data/weights/realesrgan")
    p.add_argument("--threads", type=int, default=2, help="ncnn threads of Real-ESRGAN")
    p.add_argument("--out", default="logs/whole_run")
    args = p.parse_args(argv)
    py, gvr = sys.executable, str(Path(sys.executable).with_name("gvr"))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        gvr_runs = [timed([gvr, "upscale", clip, "--ckpt", args.ckpt, "--scale", str(args.scale), "--force-scale",
                           "-o", f"{tmp}/gvr_{k}.mkv", "--overwrite"]) for k, clip in enumerate(args.clips)]
        esr_runs = [timed([py, "-c", REALESRGAN_RUN, args.realesrgan, str(args.threads), clip, f"{tmp}/esr_{k}.mkv",
                           str(args.scale)]) for k, clip in enumerate(args.clips)]
        rows["gvr upscale"] = {"total_s": sum(gvr_runs), "per_clip_s": gvr_runs, "startup_s": timed([py, "-c", GVR_LOAD, args.ckpt])}
        rows["Real-ESRGAN x4plus"] = {"total_s": sum(esr_runs), "per_clip_s": esr_runs,
                                      "startup_s": timed([py, "-c", REALESRGAN_RUN, args.realesrgan, str(args.threads), "-"])}
    n = len(args.clips)
    lines = [f"{n} clips at x{args.scale:g}, one process each ({Path(args.ckpt).name} for gvr):", "",
             "| method | whole runs (s) | per clip (s) | start-up per process (s) | start-up share |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['total_s']:.1f} | {r['total_s'] / n:.1f} | {r['startup_s']:.1f} | "
                     f"{min(1.0, n * r['startup_s'] / r['total_s']):.0%} |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"ckpt": args.ckpt, "scale": args.scale, "clips": args.clips, "methods": rows, "table": "\n".join(lines)}
    (out / "whole_run.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
