"""Tables, verdicts and plots of the paper's ablations: pure functions over per-seed scores of each arm.

An ablation is a set of *arms* trained with one budget, data, start and seed set, each scored per seed on the
same held-out clips. The paper's finding is written as *claims*, each a comparison of two arms on one metric:

- ``better``: arm ``a`` scores better than arm ``b`` (higher, or lower for the metrics of `LOWER_IS_BETTER`);
- ``no_worse``: arm ``a`` scores no worse than arm ``b`` (e.g. sparse attention keeps full attention's quality).

The verdict rule, stated once: ``d`` is the mean difference a - b, signed so that positive favours ``a``, and
the *spread* is the larger of the two arms' seed ranges (max - min over seeds), and at least the metric's
resolution (`RESOLUTION`: 0.05 dB PSNR, 0.002 SSIM, 0.5 VMAF, ...), below which no difference is read.

- ``better``: reproduced when ``d > spread``, not reproduced when ``d < -spread``, otherwise inconclusive;
- ``no_worse``: reproduced when ``d >= -spread``, not reproduced otherwise;
- fewer than two seeds in either arm, or a QUICK run (a harness check): inconclusive whatever ``d``.

An ablation is reproduced when all its claims are, not reproduced when any is not, otherwise inconclusive.
`write_outputs` writes ``results.json`` (``ablations: {name: {arms: {arm: {psnr, ..., seeds}}, claims, ...}}``),
``table.md`` and one bar plot per ablation (``<name>.png``: one bar per arm, error bars over seeds).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gvr.analysis.plot import bar_plot

LOWER_IS_BETTER = frozenset({"lpips", "dists", "grid", "s_per_frame", "ewarp", "flicker"})
LABELS = {"psnr": "PSNR", "ssim": "SSIM", "vmaf": "VMAF", "grid": "4-px grid", "lpips": "LPIPS", "dists": "DISTS",
          "s_per_frame": "s/frame", "gflops": "GFLOPs"}
RESOLUTION = {"psnr": 0.05, "ssim": 0.002, "vmaf": 0.5, "grid": 0.01, "lpips": 0.002, "dists": 0.002}
Verdict = Literal["reproduced", "not reproduced", "inconclusive"]


@dataclass(frozen=True)
class Claim:
    """One finding of the paper: arm ``a`` is ``kind`` than arm ``b`` on ``metric``."""

    metric: str
    a: str
    b: str
    kind: Literal["better", "no_worse"] = "better"

    def text(self) -> str:
        relation = "better than" if self.kind == "better" else "no worse than"
        return f"{self.a} {relation} {self.b} on {LABELS.get(self.metric, self.metric)}"


def summarise_arm(per_seed: Mapping[str, Sequence[float]], seeds: Sequence[int]) -> dict:
    """``{metric: mean, ..., "spread": {metric: max - min}, "per_seed": {metric: [...]}, "seeds": [...]}``."""
    if not per_seed:
        raise ValueError("summarise_arm: no metrics")
    lengths = {len(v) for v in per_seed.values()}
    if lengths != {len(seeds)}:
        raise ValueError(f"summarise_arm: {len(seeds)} seeds but per-seed lists of lengths {sorted(lengths)}")
    out: dict = {m: float(np.mean(v)) for m, v in per_seed.items()}
    out["spread"] = {m: float(np.max(v) - np.min(v)) for m, v in per_seed.items()}
    out["per_seed"] = {m: [float(x) for x in v] for m, v in per_seed.items()}
    out["seeds"] = [int(s) for s in seeds]
    return out


def judge(arms: Mapping[str, dict], claim: Claim, quick: bool = False) -> dict:
    """The verdict of ``claim`` on summarised ``arms`` (see the module's rule), with its figures."""
    missing = [arm for arm in (claim.a, claim.b) if arm not in arms]
    if missing:
        raise ValueError(f"claim {claim.text()!r}: no arm {', '.join(missing)} (arms: {', '.join(arms)})")
    a, b = arms[claim.a], arms[claim.b]
    if claim.metric not in a or claim.metric not in b:
        raise ValueError(f"claim {claim.text()!r}: the arms have no {claim.metric!r} score")
    sign = -1.0 if claim.metric in LOWER_IS_BETTER else 1.0
    diff = sign * (a[claim.metric] - b[claim.metric])
    spread = max(a["spread"][claim.metric], b["spread"][claim.metric], RESOLUTION.get(claim.metric, 0.0))
    if quick or min(len(a["seeds"]), len(b["seeds"])) < 2:
        verdict: Verdict = "inconclusive"
    elif claim.kind == "better":
        verdict = "reproduced" if diff > spread else "not reproduced" if diff < -spread else "inconclusive"
    else:
        verdict = "reproduced" if diff >= -spread else "not reproduced"
    return {**asdict(claim), "claim": claim.text(), "diff": diff, "threshold": spread, "verdict": verdict}


def overall(verdicts: Sequence[dict]) -> Verdict:
    """Reproduced when every claim is, not reproduced when any is not, otherwise inconclusive."""
    kinds = [v["verdict"] for v in verdicts]
    if kinds and all(k == "reproduced" for k in kinds):
        return "reproduced"
    return "not reproduced" if "not reproduced" in kinds else "inconclusive"


def ablation_result(arms: Mapping[str, dict], claims: Sequence[Claim], quick: bool = False, **info) -> dict:
    """One ablation's entry of ``results.json``: its arms, each claim judged, the overall verdict and ``info``
    (e.g. ``paper``, ``regime``, ``test_set``, ``seconds``); ``quick`` leaves every claim inconclusive."""
    judged = [judge(arms, c, quick) for c in claims]
    return {**info, "arms": dict(arms), "claims": judged, "verdict": overall(judged)}


def _cell(arm: dict, metric: str) -> str:
    if metric not in arm:
        return "-"
    digits = 4 if metric in ("ssim", "lpips", "dists", "s_per_frame") else 2
    return f"{arm[metric]:.{digits}f} ± {arm['spread'][metric] / 2:.{digits}f}"


def format_markdown(results: Mapping) -> str:
    """``table.md``: per ablation, one row per arm (mean ± half the seed range), the paper's figures, the verdicts."""
    lines = ["Mean over seeds ± half their range. A verdict's threshold is the larger seed range of the two arms, "
             "and at least the metric's resolution (0.05 dB PSNR, 0.5 VMAF); a difference inside it is inconclusive." + (" QUICK run: a few steps per arm, a harness check, not a result." if results.get("quick")
                                else "")]
    for name, ab in results["ablations"].items():
        arms = ab["arms"]
        metrics = [m for m in LABELS if any(m in arm for arm in arms.values())]
        lines += ["", f"### {name}: {ab['verdict']}", ""]
        for key in ("regime", "test_set", "paper"):
            if ab.get(key):
                lines.append(f"- {key.replace('_', ' ')}: {ab[key]}")
        if ab.get("gflops"):  # analytic, the same for every seed
            lines.append("- GFLOPs of one forward on a training clip: " + ", ".join(
                f"{arm} {value:.2f}" for arm, value in ab["gflops"].items() if value is not None))
        lines += ["", "| arm | seeds | " + " | ".join(LABELS[m] for m in metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for arm_name, arm in arms.items():
            lines.append(f"| {arm_name} | {len(arm['seeds'])} | " + " | ".join(_cell(arm, m) for m in metrics) + " |")
        lines.append("")
        for c in ab["claims"]:
            lines.append(f"- {c['claim']}: {c['verdict']} (difference {c['diff']:+.4g}, threshold {c['threshold']:.4g})")
    return "\n".join(lines) + "\n"


def plot_ablation(path: str | Path, name: str, ablation: Mapping, metric: str | None = None) -> Path:
    """Bar plot of one ablation on ``metric`` (default: its first claim's): mean and seed range of each arm."""
    metric = metric or (ablation["claims"][0]["metric"] if ablation["claims"] else "psnr")
    bars = {arm: (a[metric], min(a["per_seed"][metric]), max(a["per_seed"][metric]))
            for arm, a in ablation["arms"].items() if metric in a}
    return bar_plot(path, bars, title=f"{name}: {ablation['verdict']}", ylabel=LABELS.get(metric, metric))


def write_outputs(results: Mapping, out: str | Path) -> list[Path]:
    """``results.json``, ``table.md`` and ``<ablation>.png`` under ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "table.md"]
    written[0].write_text(json.dumps(results, indent=1))
    written[1].write_text(format_markdown(results))
    for name, ablation in results["ablations"].items():
        written.append(plot_ablation(out / f"{name}.png", name, ablation))
    return written
