"""Quality against the scale factor: `benchmarks/quality.py` at each of ``--factors`` for every checkpoint, in one run.

    python benchmarks/scales.py --ckpt anyscale=logs/anyscale/checkpoints/last.ckpt \\
        --ckpt x2.5=logs/anyscale_control_x25/checkpoints/last.ckpt --factors 2 2.5 2.8 3 4 --force-scale --realesrgan

Every factor gets its own held-out clips (the GT crop is rounded so that the LR is whole pixels at that factor;
`gvr.data.heldout.fit_crop`) and its own quality run (bicubic, Lanczos, Real-ESRGAN x4plus [+ Lanczos] when
asked, each checkpoint through ``upscale_video(scale=F)``), written to ``--out``/x<F>/. A single-scale
checkpoint refuses the factors it was not trained for unless ``--force-scale`` (its rows are then marked
"forced"). Writes ``--out``/results.json (factor -> method -> mean scores), ``table.md`` (PSNR, VMAF and
s/frame per factor) and ``vmaf.png`` / ``psnr.png`` (one line per method over the factors).
"""

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (benchmarks/quality.py, beside this file)

from gvr.analysis.plot import line_plot  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", nargs="+", action="extend", required=True, metavar="[NAME=]PATH")
    p.add_argument("--factors", type=float, nargs="+", default=[2.0, 2.5, 2.8, 3.0, 4.0])
    p.add_argument("--force-scale", action="store_true", help="run single-scale checkpoints at every factor")
    p.add_argument("--realesrgan", nargs="?", const="data/weights/realesrgan", default=None, metavar="DIR")
    p.add_argument("--out", default="logs/scales", help="output folder")
    p.add_argument("--reuse", action="store_true",
                   help="take a factor's scores from --out/x<F>/results.json where a finished run left one")
    p.add_argument("--quality-args", nargs=argparse.REMAINDER, default=[],
                   help="the rest goes to benchmarks/quality.py as it is (e.g. --clips 2 --crop 160 --metrics psnr,vmaf)")
    return p


def table(results: dict[float, dict[str, dict]], metrics: tuple[str, ...] = ("psnr", "vmaf", "s_per_frame")) -> str:
    """Markdown: one row per method, one column per (factor, metric); "-" where a method has no row at a factor."""
    factors = sorted(results)
    methods = list(dict.fromkeys(m for f in factors for m in results[f]))
    head = "| method | " + " | ".join(f"x{f:g} {quality_label(k)}" for f in factors for k in metrics) + " |"
    rule = "|---|" + "---:|" * (len(factors) * len(metrics))
    rows = []
    for m in methods:
        cells = []
        for f in factors:
            scores = results[f].get(m)
            cells += ["-" if scores is None or k not in scores else f"{scores[k]:.3g}" if k == "s_per_frame"
                      else f"{scores[k]:.2f}" for k in metrics]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def quality_label(metric: str) -> str:
    return {"psnr": "PSNR", "vmaf": "VMAF", "s_per_frame": "s/frame"}.get(metric, metric)


def method_key(name: str) -> str:
    """A method's row name without its step count, so one checkpoint is one line over the factors; Real-ESRGAN is
    one line too (x4 directly, "+ Lanczos" to any other factor). Only the trailing ``(N steps...)`` goes, so a
    name with brackets of its own (``gvr x4 (single scale)``) keeps them."""
    return re.sub(r" \(\d+ steps[^()]*\)$", "", name).removesuffix(" + Lanczos")


def ckpt_digests(ckpt_args: list[str]) -> dict[str, str | None]:
    """Checkpoint name -> SHA-256 of its bytes now (None: no such file), as `benchmarks/quality.py` records them."""
    return {name: quality.file_sha256(path) if Path(path).is_file() else None
            for name, path in quality.parse_ckpts(ckpt_args)}


def stale(summary: dict, q_args: list[str], digests: dict[str, str | None]) -> str | None:
    """Why a finished quality run cannot stand for ``q_args`` now (None: it can): it must have been run with the
    same arguments and its checkpoints must hold the same bytes (``digests``, `ckpt_digests`: a retrained
    checkpoint at the same path is another model)."""
    if summary.get("argv") != q_args:
        return "it was run with other arguments" if "argv" in summary else "it does not record its arguments"
    changed = [name for name, digest in digests.items() if summary.get("ckpt_sha256", {}).get(name) != digest]
    return f"checkpoint {', '.join(changed)} changed since" if changed else None


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    out = Path(args.out)
    results: dict[float, dict[str, dict]] = {}
    digests = ckpt_digests(args.ckpt) if args.reuse else {}  # once for every factor: the files do not change here
    for factor in args.factors:
        done = out / f"x{factor:g}" / "results.json"
        q_args = ["--ckpt", *args.ckpt, "--scale", str(factor), "--out", str(out / f"x{factor:g}"), *args.quality_args]
        if args.force_scale:
            q_args.append("--force-scale")
        if args.realesrgan:
            q_args += ["--realesrgan", args.realesrgan]
        if args.reuse and done.is_file():
            summary = json.loads(done.read_text())
            why = stale(summary, q_args, digests)
            if why is None:
                results[factor] = {method_key(name): method["mean"] for name, method in summary["methods"].items()}
                continue
            print(f"x{factor:g}: not reusing {done}: {why}; scoring again")
        summary = quality.main(q_args)
        results[factor] = {method_key(name): method["mean"] for name, method in summary["methods"].items()}
    text = table(results)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"factors": args.factors, "ckpt": args.ckpt,
                                                  "force_scale": args.force_scale,
                                                  "methods": {f"{f:g}": r for f, r in results.items()}}, indent=1))
    (out / "table.md").write_text(text + "\n")
    factors = sorted(results)
    if len(factors) < 2:  # a line needs two factors; the tables above are the result
        print(f"one factor (x{factors[0]:g}): vmaf.png and psnr.png not drawn")
        return results
    for metric in ("vmaf", "psnr"):
        series = {m: [results[f][m][metric] for f in factors] for m in results[factors[0]]
                  if all(m in results[f] and metric in results[f][m] for f in factors)}
        if not series:  # no method has this metric at every factor (e.g. --metrics without it)
            print(f"no {metric} at every factor: {metric}.png not drawn")
            continue
        lows = [v for ys in series.values() for v in ys]
        span = (min(lows) - 1, max(lows) + 1)
        line_plot(out / f"{metric}.png", factors, series, title=f"{quality_label(metric)} against the scale factor",
                  xlabel="factor (HR / LR)", ylabel=quality_label(metric), y_range=span)
    return results


if __name__ == "__main__":
    main()
