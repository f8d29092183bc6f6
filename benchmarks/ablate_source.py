"""Ablation of the flow's source: checkpoints trained with different sources x Euler step counts.

    python benchmarks/ablate_source.py --ckpt "pure noise=logs/stage1_paper/checkpoints/last.ckpt" \
        --ckpt "anchored sigma 0.1=logs/stage1/checkpoints/last.ckpt" --steps 1 2 4 10 50
    make ablate-source CKPTS='"noise=A.ckpt" "anchored=B.ckpt"'

Every checkpoint upscales the same held-out clips (those of `benchmarks/quality.py`: antialiased-bicubic LR,
lossless) at each step count; one table row per (checkpoint, steps) with PSNR, SSIM, VMAF and seconds per
output frame, under bicubic and Lanczos rows. All checkpoints must share one scale. Writes ``ablation.json``
and ``ablation.md`` under ``--out``.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DEFAULT_SOURCES, bicubic, format_table, gvr_method, lanczos, make_clips, parse_kw, score_method  # noqa: E402


def parse_ckpts(items: list[str]) -> list[tuple[str, str]]:
    """``NAME=PATH`` (or a bare path, named by its folder) -> (name, path) pairs."""
    pairs = []
    for item in items:
        name, _, path = item.rpartition("=")
        pairs.append((name or Path(path).parent.parent.name, path))
    return pairs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", action="append", required=True, help="NAME=PATH of a checkpoint (repeat)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 10, 50], help="Euler step counts")
    p.add_argument("--sources", nargs="+", default=None, help="videos / image manifests (default: bikes)")
    p.add_argument("--clips", type=int, default=2, help="clips per source")
    p.add_argument("--frames", type=int, default=5, help="frames per clip")
    p.add_argument("--crop", type=int, nargs="+", default=[120], help="GT crop H [W]")
    p.add_argument("--metrics", default="psnr,ssim,vmaf", help="comma-separated metrics")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: each checkpoint's)")
    p.add_argument("--chunk", type=int, default=None, help="frames per window (default: upscale's auto chunk)")
    p.add_argument("--upscale-kw", nargs="*", default=[], help="KEY=VALUE passed to upscale_video")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="logs/ablation", help="output folder")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    from gvr.inference.upscale import load_module

    if args.threads:
        torch.set_num_threads(args.threads)
    ckpts = parse_ckpts(args.ckpt)
    modules = [(name, load_module(path)) for name, path in ckpts]
    scales = {float(m.hparams.scale) for _, m in modules}
    if len(scales) != 1:
        raise SystemExit(f"all checkpoints must share one scale, got {sorted(scales)}")
    scale = scales.pop()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    crop = (args.crop[0], args.crop[-1])
    out = Path(args.out)
    start = time.perf_counter()
    clips = make_clips(args.sources or [DEFAULT_SOURCES[0]], scale, out, args.clips, args.frames, crop, "camera", args.seed)
    results = [score_method(n, m, clips, metrics) for n, m in (("bicubic", bicubic), ("lanczos", lanczos))]
    kw = parse_kw(args.upscale_kw)
    with tempfile.TemporaryDirectory() as tmp:
        for name, module in modules:
            for steps in args.steps:
                method = gvr_method(module, tmp, steps, args.s, args.chunk, args.seed, **kw)
                results.append(score_method(f"{name}, {steps} step{'s' * (steps > 1)}", method, clips, metrics, warmup=0))
                print(results[-1].name, {k: round(v, 3) for k, v in results[-1].mean.items()}, flush=True)
    table = format_table(results)
    header = (f"x{scale:g}, {len(clips)} clips of {args.frames} frames ({', '.join(sorted({Path(c.source).name for c in clips}))}), "
              f"GT {crop[0]}x{crop[1]}, LR by antialiased bicubic")
    print(header)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"scale": scale, "ckpts": dict(ckpts), "steps": args.steps, "chunk": args.chunk, "upscale_kw": kw, "table": table,
               "methods": {r.name: r.to_json() for r in results}, "seconds": time.perf_counter() - start}
    (out / "ablation.json").write_text(json.dumps(summary, indent=1))
    (out / "ablation.md").write_text(header + "\n\n" + table + "\n")
    return summary


if __name__ == "__main__":
    main()
