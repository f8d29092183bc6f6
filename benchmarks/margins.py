"""Margins over bicubic against the single-scale controls' margins, from the results of `benchmarks/scales.py` runs.

    python benchmarks/margins.py logs/scales_controls/results.json logs/scales_students/results.json \\
        --control 2="gvr x2" 2.5="gvr x2.5" 2.8="gvr x2.8" 3="gvr x3" 4="gvr x4" \\
        --mean "student=gvr student s0,gvr student s1" --out logs/margins

Issue 23's target for a model that serves every factor: above the baseline (bicubic) by at least what the
single-scale model trained at that factor gains over it, at every factor. The runs may be separate (each control
at its own factor, the students at all of them); their baseline rows must agree to the last digit, or the clips
were not the same and the margins would not compare (an error names the factor and the files). ``--mean`` adds a
row that is the mean of several (seeds), with their spread. Writes ``--out``/margins.md and margins.json.
"""

import argparse
import json
from pathlib import Path

METRICS = ("psnr", "vmaf")
TIMINGS = ("s_per_frame",)  # differ between runs on the same clips (what else ran beside): never compared


def load(paths: list[str | Path], baseline: str = "bicubic") -> dict[float, dict[str, dict]]:
    """factor -> method -> mean scores over every ``results.json`` of `benchmarks/scales.py`; a method found twice at
    a factor must have the same scores in both (the baseline always is, where the clips are the same); timings may
    differ, and the first run's is kept."""
    merged: dict[float, dict[str, dict]] = {}
    origin: dict[tuple[float, str], str] = {}
    for path in paths:
        saved = json.loads(Path(path).read_text())
        for key, methods in saved["methods"].items():
            factor = float(key)
            for name, scores in methods.items():
                seen = merged.setdefault(factor, {}).get(name)
                if seen is None:
                    merged[factor][name] = scores
                    origin[factor, name] = str(path)
                elif any(abs(seen[m] - scores[m]) > 1e-9 for m in (seen.keys() & scores.keys()) - set(TIMINGS)):
                    what = "the clips differ" if name == baseline else "name them apart"
                    raise ValueError(f"x{factor:g}: '{name}' has other scores in {path} than in "
                                     f"{origin[factor, name]} ({what})")
    return merged


def add_means(results: dict[float, dict[str, dict]], groups: dict[str, list[str]]) -> None:
    """Add, at each factor where all its members are, a row ``name`` with their mean and ``spread`` (max - min)."""
    for name, members in groups.items():
        for rows in results.values():
            if not all(m in rows for m in members):
                continue
            metrics = [k for k in METRICS if all(k in rows[m] for m in members)]
            rows[name] = {k: sum(rows[m][k] for m in members) / len(members) for k in metrics}
            rows[name]["spread"] = {k: max(rows[m][k] for m in members) - min(rows[m][k] for m in members)
                                    for k in metrics}
            rows[name]["members"] = list(members)


def margins(results: dict[float, dict[str, dict]], controls: dict[float, str], baseline: str = "bicubic",
            methods: list[str] | None = None) -> dict[float, dict[str, dict]]:
    """factor -> method -> metric -> ``{margin, control, over}``: the method's gain over ``baseline``, the control's
    gain at that factor and ``margin - control`` (>= 0: met). Factors without a control are left out."""
    out: dict[float, dict[str, dict]] = {}
    for factor, control in sorted(controls.items()):
        rows = results.get(factor)
        if rows is None:
            have = ", ".join(f"x{f:g}" for f in sorted(results))
            raise ValueError(f"x{factor:g}: no results at this factor (have: {have})")
        for needed in (baseline, control):
            if needed not in rows:
                raise ValueError(f"x{factor:g}: no '{needed}' row in the results (have: {', '.join(sorted(rows))})")
        base, ctl = rows[baseline], rows[control]
        names = [m for m in (methods or rows) if m in rows and m not in (baseline, control)]
        out[factor] = {}
        for name in names:
            row = {}
            for k in METRICS:
                if k in rows[name] and k in ctl and k in base:
                    gain, target = rows[name][k] - base[k], ctl[k] - base[k]
                    row[k] = {"margin": gain, "control": target, "over": gain - target}
            out[factor][name] = row
    return out


def table(found: dict[float, dict[str, dict]], controls: dict[float, str], results: dict[float, dict[str, dict]],
          baseline: str = "bicubic") -> str:
    """Markdown: one row per (factor, method), its margins over the baseline against the control's, met or short."""
    lines = ["| factor | method | PSNR margin (dB) | control's | | VMAF margin | control's | |",
             "|---|---|---:|---:|---|---:|---:|---|"]
    for factor, methods in found.items():
        for name, row in methods.items():
            cells = []
            for k in METRICS:
                if k not in row:
                    cells += ["-", "-", ""]
                    continue
                r = row[k]
                spread = results[factor][name].get("spread", {}).get(k)
                mark = "met" if r["over"] >= 0 else f"short by {-r['over']:.2f}"
                cells += [f"{r['margin']:+.2f}" + (f" (spread {spread:.2f})" if spread is not None else ""),
                          f"{r['control']:+.2f}", mark]
            lines.append(f"| x{factor:g} | {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Margins are ``method - {baseline}``; the control at each factor: "
                 + ", ".join(f"x{f:g} '{c}'" for f, c in sorted(controls.items())) + ".")
    return "\n".join(lines)


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"{what}: expected KEY=VALUE, got '{item}'")
        out[key] = value
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="results.json files of benchmarks/scales.py")
    p.add_argument("--control", nargs="+", required=True, metavar="FACTOR=METHOD",
                   help="the single-scale control's row at each factor")
    p.add_argument("--mean", nargs="+", default=[], metavar="NAME=A,B,...", help="a row that is the mean of rows")
    p.add_argument("--methods", nargs="+", default=None, help="the rows to judge (default: all but the baseline)")
    p.add_argument("--baseline", default="bicubic")
    p.add_argument("--out", default=None, help="folder for margins.md and margins.json (default: print only)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    try:
        controls = {float(f): m for f, m in parse_pairs(args.control, "--control").items()}
    except ValueError as e:
        raise SystemExit(f"--control: a factor must be a number ({e})") from None
    groups = {name: [m.strip() for m in members.split(",")]
              for name, members in parse_pairs(args.mean, "--mean").items()}
    for path in args.results:
        if not Path(path).is_file():
            raise SystemExit(f"no results file {path} (benchmarks/scales.py writes <out>/results.json)")
    try:
        results = load(args.results, args.baseline)
        add_means(results, groups)
        found = margins(results, controls, args.baseline, args.methods)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    text = table(found, controls, results, args.baseline)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "margins.md").write_text(text + "\n")
        (out / "margins.json").write_text(json.dumps({"results": args.results, "baseline": args.baseline,
                                                      "controls": {f"{f:g}": c for f, c in controls.items()},
                                                      "margins": {f"{f:g}": r for f, r in found.items()}}, indent=1))
    return found


if __name__ == "__main__":
    main()
