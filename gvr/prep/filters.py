"""Step 3, filter: keep the clips whose measures pass the thresholds, drop the rest with their reasons.

Defaults follow common practice of video-generation data pipelines (Open-Sora, Panda-70M, LTX-Video):
drop blurry clips (low variance of the Laplacian), dark or washed-out ones (low mean luma or large
near-black / near-white areas), static ones (almost no optical flow), too small or too short ones and,
where a learned score exists, low-quality ones. The figures were checked against the embedded samples: the
motion-blurred first scene of ``bikes`` (sharpness 31) is dropped, the sharp scenes (52..366) are kept.
"""

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

MEASURES = ("sharpness", "luma", "dark", "bright", "motion", "motion_peak", "short_side", "frames", "duration", "quality")


class FilterRecipe:
    """Thresholds of the ``filter:`` section of configs/prep.yaml; None switches a test off.

    Args:
        min_sharpness: drop as ``blurry`` below this variance of the Laplacian.
        min_luma: drop as ``dark`` below this mean luma (0..255).
        max_dark: drop as ``dark`` when more than this fraction of pixels is near black.
        max_bright: drop as ``bright`` when more than this fraction of pixels is near white.
        min_motion: drop as ``static`` below this mean optical flow (pixels per frame). Off by default: a steady
            shot of a small moving subject (a hand moving an object, 2% of the frame) has a mean near 0.15.
        min_motion_peak: drop as ``static`` when even the fastest-moving 1% of the frame moves less than this
            (pixels per frame): nothing moves (a still, a static shot with sensor noise: about 0.1).
        max_motion: drop as ``shaky`` above this mean optical flow.
        min_short_side: drop as ``small`` when the frame's short side is below this (pixels).
        min_frames: drop as ``short`` below this many frames.
        min_duration: drop as ``short`` below this many seconds.
        min_quality: drop as ``low_quality`` below this learned score (clips without a score pass).
    """

    def __init__(
        self,
        min_sharpness: float | None = 40.0,
        min_luma: float | None = 30.0,
        max_dark: float | None = 0.5,
        max_bright: float | None = 0.5,
        min_motion: float | None = None,
        min_motion_peak: float | None = 0.5,
        max_motion: float | None = None,
        min_short_side: int | None = 256,
        min_frames: int | None = 17,
        min_duration: float | None = 0.5,
        min_quality: float | None = 30.0,
    ):
        self.min_sharpness, self.min_luma, self.max_dark, self.max_bright = min_sharpness, min_luma, max_dark, max_bright
        self.min_motion, self.max_motion, self.min_short_side = min_motion, max_motion, min_short_side
        self.min_motion_peak = min_motion_peak
        self.min_frames, self.min_duration, self.min_quality = min_frames, min_duration, min_quality

    def tests(self) -> list[tuple[str, str, str, float]]:
        """The active tests as ``(reason, measure, "min" | "max", bound)``, in the order reasons are reported."""
        table = [
            ("small", "short_side", "min", self.min_short_side),
            ("short", "frames", "min", self.min_frames),
            ("short", "duration", "min", self.min_duration),
            ("dark", "luma", "min", self.min_luma),
            ("dark", "dark", "max", self.max_dark),
            ("bright", "bright", "max", self.max_bright),
            ("blurry", "sharpness", "min", self.min_sharpness),
            ("static", "motion", "min", self.min_motion),
            ("static", "motion_peak", "min", self.min_motion_peak),
            ("shaky", "motion", "max", self.max_motion),
            ("low_quality", "quality", "min", self.min_quality),
        ]
        return [(r, m, side, float(b)) for r, m, side, b in table if b is not None]


def reasons(clip: dict, recipe: FilterRecipe) -> list[str]:
    """Why ``clip`` is dropped (empty: kept); a measure missing from the record passes its test."""
    out = []
    for reason, measure, side, bound in recipe.tests():
        value = clip.get(measure)
        if value is None:
            continue
        if (side == "min" and value < bound) or (side == "max" and value > bound):
            if reason not in out:
                out.append(reason)
    return out


def explain(clip: dict, recipe: FilterRecipe) -> list[str]:
    """Each failed test of ``clip`` as ``"reason: measure value < min bound"`` (or ``> max``), in `reasons` order."""
    out = []
    for reason, measure, side, bound in recipe.tests():
        value = clip.get(measure)
        if value is not None and ((side == "min" and value < bound) or (side == "max" and value > bound)):
            out.append(f"{reason}: {measure} {value:.3g} {'<' if side == 'min' else '>'} {side} {bound:g}")
    return out


def split(clips: Iterable[dict], recipe: FilterRecipe) -> Iterator[tuple[dict, list[str]]]:
    """``(clip, reasons)`` for each clip, as a stream."""
    for clip in clips:
        yield clip, reasons(clip, recipe)


class Histograms:
    """Fixed-bin histograms of each measure over a stream: ranges from a first pass, counts from a second."""

    def __init__(self, bins: int = 40):
        self.bins = bins
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.sums: dict[str, float] = {}

    def see_range(self, clip: dict) -> None:
        """First pass: widen each measure's range to hold this clip's value."""
        for m in MEASURES:
            v = clip.get(m)
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.lo[m], self.hi[m] = min(self.lo.get(m, v), v), max(self.hi.get(m, v), v)

    def edges(self, m: str) -> np.ndarray:
        lo, hi = self.lo[m], self.hi[m]
        return np.linspace(lo, hi if hi > lo else lo + 1, self.bins + 1)

    def add(self, clip: dict) -> None:
        """Second pass: count this clip's values."""
        for m in self.lo:
            v = clip.get(m)
            if isinstance(v, (int, float)) and math.isfinite(v):
                counts = self.counts.setdefault(m, np.zeros(self.bins, np.int64))
                counts[min(self.bins - 1, int(np.searchsorted(self.edges(m), v, side="right")) - 1)] += 1
                self.sums[m] = self.sums.get(m, 0.0) + v

    def table(self, recipe: FilterRecipe) -> str:
        """Min, mean and max of each measure, with its thresholds."""
        lines = [f"{'measure':<14}{'min':>10}{'mean':>10}{'max':>10}  thresholds"]
        for m, counts in self.counts.items():
            bounds = ", ".join(f"{side} {bound:g}" for _, measure, side, bound in recipe.tests() if measure == m)
            mean = self.sums[m] / max(1, int(counts.sum()))
            lines.append(f"{m:<14}{self.lo[m]:>10.3g}{mean:>10.3g}{self.hi[m]:>10.3g}  {bounds}")
        return "\n".join(lines)

    def plot(self, folder: Path, recipe: FilterRecipe) -> list[Path]:
        """One PNG per measure (``hist_<measure>.png``) with its thresholds drawn as dashed red lines."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for m, counts in self.counts.items():
            edges = self.edges(m)
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4878a8")
            for reason, measure, side, bound in recipe.tests():
                if measure == m:
                    ax.axvline(bound, color="red", linestyle="--", label=f"{side} {bound:g} ({reason})")
                    ax.legend(fontsize=7)
            ax.set_xlabel(m)
            ax.set_ylabel("clips")
            fig.tight_layout()
            path = folder / f"hist_{m}.png"
            fig.savefig(path, dpi=80)
            plt.close(fig)
            written.append(path)
        return written


def summary_table(total: int, kept: int, reasons_count: Counter, unreadable: Counter) -> str:
    """The printed summary: clips kept and dropped, by reason, and unreadable files by reason."""
    lines = [f"{'':<24}{'count':>8}{'share':>8}"]

    def row(name: str, n: int, of: int) -> None:
        lines.append(f"{name:<24}{n:>8}{(n / of if of else 0):>8.1%}")

    row("clips", total, total)
    row("kept", kept, total)
    row("dropped", total - kept, total)
    for reason, n in sorted(reasons_count.items(), key=lambda kv: -kv[1]):
        row(f"  {reason}", n, total)
    files = sum(unreadable.values())
    if files:
        lines.append(f"{'unreadable files':<24}{files:>8}")
        for reason, n in sorted(unreadable.items()):
            lines.append(f"{'  ' + reason:<24}{n:>8}")
    return "\n".join(lines)
