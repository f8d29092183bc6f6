"""The detail stabiliser of `gvr upscale --stabilize` against its strength, on held-out clips: quality and steadiness.

    python benchmarks/stabilize.py --ckpt "stage 1=logs/stage1/checkpoints/last.ckpt" --strengths 0 0.5 0.85
    python benchmarks/stabilize.py --ckpt student=logs/distill_anyscale/checkpoints/average.ckpt --scale 4
    python benchmarks/stabilize.py --ckpt CKPT --testset data/testset --variants bicubic model

Every checkpoint runs through `gvr.inference.upscale.upscale_video` (as `benchmarks/quality.py` runs it) once per
``--strengths`` value (0: the plain output), beside bicubic and Lanczos, on the held-out clips of
`benchmarks/quality.py` (``--clips``, ``--frames``, ``--crop``, plain bicubic LR) or on each variant of a
`gvr testset` folder. Scores: PSNR, SSIM, VMAF, the 4-px grid, E*warp and flicker (`gvr.metrics.temporal`,
lower is steadier; the ground truth's own E*warp is printed under each table) and s/frame (the whole
``upscale_video`` call, so the stabiliser's flow is in it). Writes ``results.json`` and ``table.md`` to ``--out``.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import (  # noqa: E402
    DEFAULT_METRICS,
    bicubic,
    default_sources,
    gvr_method,
    lanczos,
    load_testset_clips,
    make_clips,
    parse_ckpts,
    score_method,
    table_of,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", required=True, metavar="[NAME=]PATH")
    p.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 0.85])
    p.add_argument("--scale", type=float, default=None, help="factor (default: the first checkpoint's data.scale)")
    p.add_argument("--clips", type=int, default=2)
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--crop", type=int, default=160)
    p.add_argument("--sources", nargs="+", default=None, help="videos, photos, manifests (default: quality.py's)")
    p.add_argument("--testset", default=None, metavar="DIR", help="a `gvr testset` folder instead of the held-out clips")
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="logs/stabilize")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    from gvr.pipeline import load_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    if any(not 0 <= a < 1 for a in args.strengths):
        raise SystemExit(f"--strengths must lie in [0, 1), got {args.strengths}")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    models = [(name, load_pipeline(path)) for name, path in parse_ckpts(args.ckpt)]
    scale = args.scale or models[0][1].scale
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.testset:
            sets = load_testset_clips(args.testset, args.variants, scale)
        else:
            sources = args.sources or default_sources()
            crop = (args.crop, args.crop)
            sets = {"held-out": make_clips(sources, scale, tmp, args.clips, args.frames, crop)}
        tables, results = [], {}
        for variant, clips in sets.items():
            rows = [score_method(name, method, clips, metrics) for name, method in
                    (("bicubic", bicubic), ("lanczos", lanczos))]
            for name, model in models:
                for strength in args.strengths:
                    label = f"gvr {name}" + (f", stabilize {strength:g}" if strength else "")
                    method = gvr_method(model, tmp, scale=scale, force_scale=True, stabilize=strength)
                    rows.append(score_method(label, method, clips, metrics, warmup=1))
                    print(f"{variant}: {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].mean.items()),
                          flush=True)
            results[variant] = {r.name: r.mean for r in rows}
            tables.append(f"### {variant} (x{scale:g}, {len(clips)} clips)\n\n{table_of(rows, clips, metrics, 'cpu')}")
    (out / "results.json").write_text(json.dumps({"scale": scale, "strengths": args.strengths, "sets": results},
                                                 indent=1))
    (out / "table.md").write_text("\n\n".join(tables) + "\n")
    print("\n\n".join(tables))
    return results


if __name__ == "__main__":
    main()
