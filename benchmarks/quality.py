"""PSNR / SSIM / VMAF and seconds per frame of a checkpoint against bicubic and Lanczos on held-out real clips.

    python benchmarks/quality.py --ckpt logs/stage1/checkpoints/last.ckpt --steps 1 4 10
    python benchmarks/quality.py --ckpt CKPT --upscale-kw color_fix=wavelet     # any upscale_video keyword
    python benchmarks/quality.py --ckpt logs/stage1/checkpoints/last.ckpt logs/stage2/checkpoints/last.ckpt \
        --testset data/testset                       # several checkpoints; the base-model-like test set

1. Ground truth: ``--clips`` clips of ``--frames`` frames from each source, centred in equal segments of the
   video, centre-cropped to ``--crop`` rounded down so that crop / scale is a whole number of LR pixels
   (scale = ``--scale``, else the checkpoint's ``hparams.scale``). A photo gives ``--clips`` fixed camera-path clips
   (`gvr.data.image_clips`), or with ``--image-motion static`` one clip of the frame repeated.
2. LR: antialiased bicubic downsampling of the 8-bit GT (torch ``F.interpolate(mode="bicubic",
   antialias=True)`` through `gvr.data.degradations.BicubicDownsample`, gvr's clean degradation), rounded
   to uint8 and written losslessly (FFV1 ``.mkv``; checked by decoding it back).
3. Methods, each to exactly the GT size: gvr through `gvr.inference.upscale.upscale_video` on that file, writing FFV1
   (lossless, so the score is the model's alone); bicubic (`gvr.ops.resize.resize_video`, the baseline
   of ``gvr test`` and validation: torch's antialias path, whose upsampling kernel is PIL's a = -0.5 rather
   than the a = -0.75 of ``antialias=False``); Lanczos (PIL ``Image.LANCZOS``, 3 lobes); with ``--realesrgan``
   (skipped with a message where its files are absent; ``make realesrgan`` fetches them), Real-ESRGAN x4plus
   through ncnn on the CPU (`gvr.baselines.realesrgan`, ``--threads`` threads): at x4 directly, at any other scale
   (2.5, 2.8) x4 and then Lanczos down to the GT size.
4. Per clip PSNR and SSIM on RGB (`gvr.metrics.image`, scikit-image's definitions), VMAF (`gvr.metrics.vmaf`)
   and the 4-pixel grid score of the output (`gvr.metrics.image.grid_energy`: a pattern repeating every 4 pixels,
   the seams of 4x4-pixel tokens, which raises VMAF while it spoils the frame), the temporal measures E*warp x1e-3
   and flicker (`gvr.metrics.temporal`: the warping error along the ground truth's DIS flow, and the luma
   temporal change against the ground truth's; lower is steadier), then the mean over clips; s/frame is the wall time of the upscale alone (gvr: the ``upscale_video`` call, LR
   decode and FFV1 encode included; scoring and reading the output back excluded).

With ``--testset DIR`` (``make testset``, `gvr.data.testset`) steps 1-2 are replaced by a finished test set:
its ground truth and each variant's LR (plain bicubic, flow-based, model-guided by the base model), and every
method is scored on every variant (one table each; ``results.json`` then holds ``variants: {name: ...}``).
Several ``--ckpt [NAME=]PATH`` give one gvr row each (the same factor).

Writes ``results.json``, ``table.md`` and one ``<source>.png`` (LR nearest | bicubic | lanczos | gvr ... | GT,
middle frame of the middle clip) under ``--out`` (default ``logs/quality/<ckpt-stem>_x<scale>/``), with the
LR clips in ``lr/``. The functions (`make_clips`, `score_method`, `format_table`, ...) serve other scripts:
``import benchmarks.quality`` from the repository root, or ``from quality import ...`` beside it.
"""

import argparse
import inspect
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gvr.data.degradations import BicubicDownsample
from gvr.data.heldout import (  # noqa: F401  (re-exported: other scripts import them from here)
    IMAGE_EXTS,
    IMAGE_FPS,
    ImageMotion,
    camera_clips,
    centre_crop,
    clip_starts,
    expand_sources,
    fit_crop,
    load_image,
    read_source,
)
from gvr.data.video import frames_to_tensor, read_video, tensor_to_frames, write_video
from gvr.prep.jobs import file_sha256

DEFAULT_SOURCES = ("data/samples/bikes.mp4", "data/manifests/images_val.jsonl")
DEFAULT_METRICS = ("psnr", "ssim", "vmaf", "grid", "ewarp", "flicker")


def default_sources() -> list[str]:
    """The held-out video, plus the held-out photos where `make images` has written their manifest."""
    return [DEFAULT_SOURCES[0]] + [s for s in DEFAULT_SOURCES[1:] if Path(s).exists()]

# clip -> uint8 (T, H, W, 3) at the GT size, or (those frames, seconds) when the method times itself
Method = Callable[["Clip"], np.ndarray | tuple[np.ndarray, float]]


@dataclass
class Clip:
    """One ground-truth clip and its lossless LR version."""

    name: str  # "<source stem>_<tag>"
    source: str
    tag: str  # where in the source: a video's start frame; "camK" or "still" for a photo
    gt: np.ndarray  # uint8 (T, H, W, 3)
    lr: np.ndarray  # uint8 (T, H / scale, W / scale, 3)
    lr_path: Path  # FFV1 .mkv holding exactly `lr`
    fps: float


@dataclass
class MethodResult:
    """Scores of one method: per clip, their mean, and the middle frame of each clip's output."""

    name: str
    clips: list[dict]  # {"clip", "source", "seconds", "frames", metric: value}
    mean: dict[str, float]  # metric: mean over clips, plus "s_per_frame" (total seconds / total frames)
    previews: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # clip name -> uint8 (H, W, 3)

    def by_source(self) -> dict[str, dict[str, float]]:
        """Mean of each metric (and s/frame) over the clips of each source."""
        groups: dict[str, list[dict]] = {}
        for row in self.clips:
            groups.setdefault(row["source"], []).append(row)
        metrics = [m for m in self.mean if m != "s_per_frame"]
        return {source: {**{m: float(np.mean([r[m] for r in rows])) for m in metrics},
                         "s_per_frame": sum(r["seconds"] for r in rows) / sum(r["frames"] for r in rows)}
                for source, rows in groups.items()}

    def to_json(self) -> dict:
        return {"mean": self.mean, "by_source": self.by_source(), "clips": self.clips}


# 1. Ground truth and LR clips --------------------------------------------------------------------------


def downsample(gt: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> antialiased bicubic (torch, PIL's kernel) to ``size``, rounded to uint8."""
    lr = BicubicDownsample(antialias=True)(frames_to_tensor(gt), size, torch.Generator())
    return tensor_to_frames(lr)


def make_clips(
    sources: Sequence[str],
    scale: float,
    workdir: str | Path,
    clips: int = 3,
    frames: int = 9,
    crop: tuple[int, int] = (240, 240),
    image_motion: ImageMotion = "camera",
    seed: int = 0,
) -> list[Clip]:
    """GT clips of every source (videos, photos, ``.jsonl`` manifests of either; see `read_source`) and their LR.

    The LR clips are written losslessly to ``workdir/lr/<name>.mkv`` (FFV1) and decoded back to check it.
    """
    made = []
    for path in expand_sources(sources):
        for tag, gt, fps in read_source(path, clips, frames, crop, scale, image_motion, seed):
            lr = downsample(gt, (round(gt.shape[1] / scale), round(gt.shape[2] / scale)))
            name = f"{Path(path).stem}_{tag}"
            lr_path = Path(workdir) / "lr" / f"{name}.mkv"
            write_video(lr_path, lr, fps, overwrite=True)
            if not np.array_equal(read_video(lr_path)[0], lr):
                raise RuntimeError(f"{lr_path} does not decode to the frames written: the LR clip is not lossless")
            made.append(Clip(name, path, tag, gt, lr, lr_path, fps))
    if not made:
        raise ValueError(f"no clips from sources {list(sources)}")
    return made


# 2. Methods --------------------------------------------------------------------------------------------


def bicubic(clip: Clip) -> np.ndarray:
    """Bicubic upsampling to the GT size (`gvr.ops.resize.resize_video`, clamped and rounded)."""
    from gvr.ops.resize import resize_video

    out = resize_video(frames_to_tensor(clip.lr)[None], clip.gt.shape[1:3], "bicubic")
    return tensor_to_frames(out[0])


def lanczos(clip: Clip) -> np.ndarray:
    """Lanczos (PIL, 3 lobes) upsampling to the GT size, frame by frame."""
    h, w = clip.gt.shape[1:3]
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.LANCZOS)) for f in clip.lr])


def anchor(clip: Clip) -> np.ndarray:
    """gvr's pixel anchor U: bicubic with a = -0.75 (`F.interpolate` / `grid_sample`), what an untrained anchored
    model returns; shows how much a trained model adds over its own starting point."""
    from gvr.ops.resize import resize_frames

    out = resize_frames(frames_to_tensor(clip.lr)[None], tuple(clip.gt.shape[1:3]), mode="bicubic").clamp(-1, 1)
    return tensor_to_frames(out[0])


def nearest(clip: Clip) -> np.ndarray:
    """Nearest-neighbour upsampling to the GT size (PIL): the LR pixels as they are, for previews."""
    h, w = clip.gt.shape[1:3]
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.NEAREST)) for f in clip.lr])


def realesrgan_method(folder: str, threads: int) -> Method:
    """``clip -> (frames, seconds)``: Real-ESRGAN x4plus (ncnn, CPU) x4, then Lanczos (PIL) to the GT size where
    that is not 4x the LR (a non-integer scale such as 2.5); model loading is not timed."""
    from gvr.baselines.realesrgan import RealESRGAN

    model = RealESRGAN(folder, threads=threads)

    def run(clip: Clip) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = model.resize(clip.lr, tuple(clip.gt.shape[1:3]))
        return out, time.perf_counter() - start

    return run


def gvr_method(module, workdir: str | Path, steps: int | None = None, s: float | None = None, chunk: int | None = None,
               seed: int = 0, **upscale_kw) -> Method:
    """``clip -> (frames, seconds)``: `gvr.inference.upscale.upscale_video` on the clip's LR file, its output FFV1 (lossless).

    The seconds are the ``upscale_video`` call's (LR decode and FFV1 encode included, reading the output back not).

    ``upscale_kw`` go to ``upscale_video`` as they are (a keyword it does not take is a TypeError now, not later).
    """
    from gvr.inference.upscale import upscale_video

    accepted = inspect.signature(upscale_video).parameters
    unknown = sorted(k for k in upscale_kw if k not in accepted)
    if unknown:
        raise TypeError(f"upscale_video takes no {', '.join(unknown)}; it takes {', '.join(list(accepted)[3:])}")

    def run(clip: Clip) -> tuple[np.ndarray, float]:
        out = Path(workdir) / f"{clip.name}.mkv"
        start = time.perf_counter()
        upscale_video(module, str(clip.lr_path), str(out), steps=steps, s=s, chunk=chunk, seed=seed, overwrite=True,
                      progress=False, **upscale_kw)
        return read_video(out)[0], time.perf_counter() - start  # reading the output back is not timed

    return run


# 3. Scores ---------------------------------------------------------------------------------------------


def build_metrics(names: Sequence[str], device: str | torch.device = "cpu") -> dict:
    """The metric objects of ``names`` (psnr, ssim: RGB frame means; vmaf: VideoVMAF on BT.709 luma; grid: the
    4-pixel periodic-pattern score of the output alone, `gvr.metrics.image.grid_energy`, lower is better)."""
    from gvr.metrics.image import FrameGrid, FramePSNR, FrameSSIM
    from gvr.metrics.temporal import Flicker, WarpError

    makers = {"psnr": FramePSNR, "ssim": FrameSSIM, "grid": FrameGrid, "ewarp": WarpError, "flicker": Flicker}
    if "vmaf" in names:
        from gvr.metrics.vmaf import VideoVMAF

        makers["vmaf"] = VideoVMAF
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_METRICS)}")
    return {n: makers[n]().to(device) for n in names}


def score_frames(out: np.ndarray, gt: np.ndarray, metrics: dict,
                 device: str | torch.device = "cpu") -> dict[str, float]:
    """Each metric of uint8 frames ``out`` against ``gt`` (T, H, W, 3): the mean over the clip's frames."""
    if out.shape != gt.shape:
        raise ValueError(f"output frames {out.shape} differ from the ground truth {gt.shape}")
    pred, target = (frames_to_tensor(x)[None].to(device) for x in (out, gt))
    values = {}
    for name, metric in metrics.items():
        metric.reset()
        metric.update(pred, target)
        values[name] = float(metric.compute())
    return values


def score_method(name: str, method: Method, clips: Sequence[Clip], metrics: Sequence[str] = DEFAULT_METRICS,
                 device: str | torch.device = "cpu", warmup: int = 0) -> MethodResult:
    """Run ``method`` on every clip, time it (or take the seconds it reports), and score its output against the GT.

    ``warmup`` untimed runs on the first clip come first (lazy compilation, allocator, caches).
    """
    built = build_metrics(metrics, device)
    for _ in range(warmup):
        method(clips[0])
    rows, previews = [], {}
    for clip in clips:
        start = time.perf_counter()
        out = method(clip)
        seconds = time.perf_counter() - start
        if isinstance(out, tuple):
            out, seconds = out
        rows.append({"clip": clip.name, "source": clip.source, "frames": len(out), "seconds": seconds,
                     **score_frames(out, clip.gt, built, device)})
        previews[clip.name] = out[len(out) // 2]
    mean = {m: float(np.mean([r[m] for r in rows])) for m in metrics}
    mean["s_per_frame"] = sum(r["seconds"] for r in rows) / sum(r["frames"] for r in rows)
    return MethodResult(name, rows, mean, previews)


def deltas(results: Sequence[MethodResult], baseline: str = "bicubic", prefix: str = "gvr") -> dict[str, dict]:
    """Metric differences ``method - baseline`` of every method whose name starts with ``prefix``."""
    base = next((r for r in results if r.name == baseline), None)
    if base is None:
        return {}
    return {r.name: {m: v - base.mean[m] for m, v in r.mean.items() if m != "s_per_frame"}
            for r in results if r.name.startswith(prefix)}


def format_table(results: Sequence[MethodResult], baseline: str = "bicubic") -> str:
    """Markdown table (method | PSNR | SSIM | VMAF | s/frame), then each gvr row's difference to ``baseline``."""
    labels = {"psnr": ("PSNR (dB)", ".2f"), "ssim": ("SSIM", ".4f"), "vmaf": ("VMAF", ".2f"), "grid": ("4-px grid", ".2f"),
              "ewarp": ("E*warp x1e-3", ".3f"), "flicker": ("flicker", ".3f")}
    metrics = [m for m in labels if m in results[0].mean]
    lines = ["| method | " + " | ".join(labels[m][0] for m in metrics) + " | s/frame |",
             "|---|" + "---|" * (len(metrics) + 1)]
    for r in results:
        cells = [format(r.mean[m], labels[m][1]) for m in metrics] + [f"{r.mean['s_per_frame']:.4f}"]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    diffs = deltas(results, baseline)
    lines += [""] if diffs else []
    for name, diff in diffs.items():
        cells = ", ".join(f"{labels[m][0]} {diff[m]:+{labels[m][1]}}" for m in metrics)
        lines.append(f"- {name} - {baseline}: {cells}")
    return "\n".join(lines)


# 4. Previews -------------------------------------------------------------------------------------------


def wrap_label(label: str, width: float, length) -> list[str]:
    """``label`` in lines of at most ``width`` pixels by ``length(text)``; words stay whole unless one alone is wider."""
    lines: list[str] = []
    for word in label.split():
        if lines and length(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while len(word) > 1 and length(word) > width:  # a word wider than the panel: cut it
            cut = 1
            while cut < len(word) and length(word[: cut + 1]) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or [""]


def side_by_side(clip: Clip, results: Sequence[MethodResult], path: str | Path, band: int = 16) -> None:
    """PNG of the middle frame: LR nearest | each method | GT, with a label band above each panel."""
    panels = [("LR (nearest)", nearest(clip)[len(clip.gt) // 2])]
    panels += [(r.name, r.previews[clip.name]) for r in results if clip.name in r.previews]
    panels.append(("GT", clip.gt[len(clip.gt) // 2]))
    h, w = clip.gt.shape[1:3]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = [wrap_label(label, w - 6, measure.textlength) for label, _ in panels]  # a long name never runs over its neighbour
    band = max(band, 12 * max(len(ls) for ls in lines) + 4)
    sheet = Image.new("RGB", (w * len(panels), h + band), "white")
    draw = ImageDraw.Draw(sheet)
    for k, ((_, frame), label_lines) in enumerate(zip(panels, lines)):
        sheet.paste(Image.fromarray(frame), (k * w, band))
        for i, line in enumerate(label_lines):
            draw.text((k * w + 3, 2 + 12 * i), line, fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


# 5. The command ----------------------------------------------------------------------------------------


def parse_value(text: str):
    """``KEY=VALUE`` value: int, float, true/false, none/null, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_kw(pairs: Iterable[str]) -> dict:
    """``["a=1", "b=wavelet"]`` -> ``{"a": 1, "b": "wavelet"}``."""
    kw = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {pair!r}")
        kw[key.replace("-", "_")] = parse_value(value)
    return kw


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", required=True, metavar="[NAME=]PATH",
                   help="VSR checkpoint(s) written by `gvr fit`, one gvr row each (NAME defaults to the run folder)")
    p.add_argument("--steps", type=int, nargs="+", default=None, help="Euler step counts, one gvr row each "
                   "(default: the checkpoint's sample_steps)")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: the checkpoint's)")
    p.add_argument("--chunk", type=int, default=None, help="frames per window of upscale_video (default: its own)")
    p.add_argument("--clips", type=int, default=3, help="clips per video")
    p.add_argument("--frames", type=int, default=9, help="frames per clip")
    p.add_argument("--crop", type=int, nargs="+", default=[240], help="GT crop H [W], rounded down to whole LR pixels")
    p.add_argument("--sources", nargs="+", default=None, help="videos, images and .jsonl manifests (default: "
                   f"{DEFAULT_SOURCES[0]}, plus {DEFAULT_SOURCES[1]} where it exists)")
    p.add_argument("--image-motion", choices=["camera", "static"], default="camera",
                   help="photos become camera-path clips (gvr.data.image_clips) or static clips")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="comma-separated subset of " + ",".join(DEFAULT_METRICS))
    p.add_argument("--upscale-kw", "--extra", dest="upscale_kw", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="keyword arguments of gvr.inference.upscale.upscale_video (e.g. tile=16)")
    p.add_argument("--realesrgan", nargs="?", const="data/weights/realesrgan", default=None, metavar="DIR",
                   help="add Real-ESRGAN x4plus (ncnn) from DIR (default data/weights/realesrgan, `make realesrgan`); "
                   "skipped with a message where its files are absent")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed gvr (and Real-ESRGAN) runs on the first clip before timing")
    p.add_argument("--device", default="cpu", help="torch device of the model and the metrics")
    p.add_argument("--seed", type=int, default=0, help="noise seed of gvr")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--testset", default=None, metavar="DIR", help="score on a `gvr testset` folder (`make testset`: "
                   "held-out clips with bicubic / flow / model-guided LR) instead of --sources")
    p.add_argument("--variants", nargs="+", default=None, help="the test set's variants to score (default: all)")
    p.add_argument("--scale", type=float, default=None,
                   help="the factor to score at (default: the checkpoints' data.scale, which must then agree); gvr gets "
                        "it as `gvr upscale --scale` does, and a checkpoint trained for another refuses it")
    p.add_argument("--force-scale", action="store_true",
                   help="score single-scale checkpoints at a --scale they were not trained for (a warning, not an error)")
    p.add_argument("--out", default=None, help="output folder (default: logs/quality/<ckpt-stem>_x<scale>)")
    return p


def parse_ckpts(items: Sequence[str]) -> list[tuple[str, str]]:
    """``["stage2=logs/stage2/checkpoints/last.ckpt", "PATH"]`` -> ``[(name, path)]``; a bare PATH is named after
    its run folder (``logs/<run>/checkpoints/x.ckpt`` -> ``<run>``), or its stem."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            path = item
            p = Path(item)
            name = p.parent.parent.name if p.parent.name == "checkpoints" and p.parent.parent.name else p.stem
        out.append((name, path))
    return out


def load_testset_clips(folder: str | Path, variants: Sequence[str] | None, scale: float) -> dict[str, list[Clip]]:
    """Variant -> the clips of a `gvr testset` folder with that variant's LR; its scale must be ``scale``."""
    from gvr.data.testset import read_testset

    manifest, clips = read_testset(folder, variants)
    if abs(float(manifest["scale"]) - scale) > 1e-9:
        raise SystemExit(f"the test set at {folder} is x{manifest['scale']:g}, the checkpoint(s) x{scale:g}")
    return {v: [Clip(c.name, c.source, c.tag, c.gt, c.lr[v], c.lr_paths[v], c.fps) for c in clips]
            for v in (variants or manifest["variants"])}


def evaluate(clips: Sequence[Clip], modules: Sequence[tuple[str, object]], args, metrics: Sequence[str],
             upscale_kw: dict, scale: float) -> list[MethodResult]:
    """Bicubic, Lanczos, U, Real-ESRGAN (when asked and present) and each checkpoint at each step count."""
    results = [score_method(name, method, clips, metrics, args.device)
               for name, method in (("bicubic", bicubic), ("lanczos", lanczos), ("U: bicubic a=-0.75", anchor))]
    if args.realesrgan:
        from gvr.baselines.realesrgan import unavailable

        reason = unavailable(args.realesrgan)
        if reason:
            print(reason)
        else:
            name = "Real-ESRGAN x4plus" + ("" if scale == 4 else " + Lanczos")
            method = realesrgan_method(args.realesrgan, args.threads or torch.get_num_threads())
            results.append(score_method(name, method, clips, metrics, args.device, args.warmup))
    suffix = "".join(f", {k}={v}" for k, v in upscale_kw.items())
    named = any("=" in item for item in args.ckpt or [])  # a NAME=PATH keeps its name even alone (for merging runs)
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt_name, module in modules:
            label = ("gvr" if len(modules) == 1 and not named else ckpt_name if ckpt_name.startswith("gvr")
                     else f"gvr {ckpt_name}")
            for steps in args.steps or [int(module.objective.sample_steps)]:
                method = gvr_method(module, tmp, steps, args.s, args.chunk, args.seed, scale=scale,
                                    force_scale=args.force_scale, **upscale_kw)
                results.append(score_method(f"{label} ({steps} steps{suffix})", method, clips, metrics, args.device,
                                            args.warmup))
    return results


def table_of(results: Sequence[MethodResult], clips: Sequence[Clip], metrics: Sequence[str], device) -> str:
    """`format_table` plus, with the grid and E*warp metrics, the ground truth's own scores (E*warp is not 0 for
    the ground truth: the flow is estimated, and a sharper video shows its errors more)."""
    table = format_table(results)
    if "grid" in metrics:  # the ground truth's own score: what natural content (and its JPEG blocks) gives
        grid = build_metrics(["grid"], device)["grid"]
        gt_grid = float(np.mean([score_frames(c.gt, c.gt, {"grid": grid}, device)["grid"] for c in clips]))
        table += f"\n- 4-px grid of the ground truth itself: {gt_grid:.2f}"
    if "ewarp" in metrics:
        ewarp = build_metrics(["ewarp"], device)["ewarp"]
        gt_ewarp = float(np.mean([score_frames(c.gt, c.gt, {"ewarp": ewarp}, device)["ewarp"] for c in clips]))
        table += f"\n- E*warp x1e-3 of the ground truth itself: {gt_ewarp:.3f}"
    return table


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    from gvr.inference.upscale import load_module

    if args.threads:
        torch.set_num_threads(args.threads)
    if len(args.crop) not in (1, 2):
        raise SystemExit("--crop takes H or H W")
    crop = (args.crop[0], args.crop[-1])
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    upscale_kw = parse_kw(args.upscale_kw)
    sources = args.sources or default_sources()

    ckpts = parse_ckpts(args.ckpt)
    modules = [(name, load_module(path, args.device)) for name, path in ckpts]
    scales = {float(m.hparams.scale) for _, m in modules}
    if args.scale is None and len(scales) != 1:
        raise SystemExit(f"the checkpoints upscale by different factors {sorted(scales)}; compare them at one (--scale)")
    scale = args.scale if args.scale is not None else scales.pop()
    for name, module in modules:  # before any clip is made: a factor a checkpoint refuses is a clear error now
        try:
            module.check_scale(scale, args.force_scale)
        except ValueError as err:
            raise SystemExit(f"{name}: {err}") from None
    stem = Path(ckpts[0][1]).stem if len(ckpts) == 1 else "_".join(name for name, _ in ckpts)
    out_dir = Path(args.out or f"logs/quality/{stem}_x{scale:g}{'_testset' if args.testset else ''}")
    start = time.perf_counter()
    if args.testset:
        sets = load_testset_clips(args.testset, args.variants, scale)
        described = f"the test set {args.testset} (LR per variant, lossless FFV1)"
    else:
        sets = {"bicubic": make_clips(sources, scale, out_dir, args.clips, args.frames, crop, args.image_motion,
                                      args.seed)}
        described = "LR by antialiased bicubic, lossless FFV1"

    variants, header, text = {}, "", []
    for variant, clips in sets.items():
        results = evaluate(clips, modules, args, metrics, upscale_kw, scale)
        table = table_of(results, clips, metrics, args.device)
        gt_sizes = sorted({f"{c.gt.shape[1]}x{c.gt.shape[2]}" for c in clips})
        lr_sizes = sorted({f"{c.lr.shape[1]}x{c.lr.shape[2]}" for c in clips})
        header = (f"{', '.join(Path(p).name if len(ckpts) == 1 else n for n, p in ckpts)} x{scale:g}: {len(clips)} "
                  f"clips of {len(clips[0].gt)} frames from {', '.join(sorted({Path(c.source).name for c in clips}))}; "
                  f"GT {', '.join(gt_sizes)} (HxW), LR {', '.join(lr_sizes)}; {described}")
        title = f"LR: {variant}" if args.testset else ""
        print(header if not args.testset else f"{header}\n\n{title}")
        print(table)
        text.append((f"### {title}\n\n" if title else "") + table)
        variants[variant] = {"gt_sizes": gt_sizes, "lr_sizes": lr_sizes, "table": table,
                             "methods": {r.name: r.to_json() for r in results}, "deltas_vs_bicubic": deltas(results)}
        by_source: dict[str, list[Clip]] = {}
        for clip in clips:
            by_source.setdefault(clip.source, []).append(clip)
        for source, group in by_source.items():
            name = f"{Path(source).stem}{'_' + variant if args.testset else ''}.png"
            side_by_side(group[len(group) // 2], results, out_dir / name)
    summary = {
        "ckpt": ckpts[0][1] if len(ckpts) == 1 else dict(ckpts), "scale": scale, "force_scale": args.force_scale,
        "ckpt_sha256": {name: file_sha256(path) for name, path in ckpts},  # which weights gave these scores
        "argv": list(sys.argv[1:] if argv is None else argv),
        "frames": args.frames,
        "clips_per_video": args.clips, "crop": list(crop), "sources": sources, "testset": args.testset,
        "image_motion": args.image_motion, "metrics": metrics, "s": args.s, "seed": args.seed, "chunk": args.chunk,
        "upscale_kw": upscale_kw, "device": args.device,
        "downsample": "gvr testset variants" if args.testset else
        "torch F.interpolate bicubic antialias=True, rounded to uint8, FFV1",
        "seconds": time.perf_counter() - start,
    }
    if args.testset:
        summary["variants"] = variants
        summary["table"] = "\n\n".join(text)
    else:  # the layout of one LR set, as before
        only = variants["bicubic"]
        summary.update(gt_sizes=only["gt_sizes"], lr_sizes=only["lr_sizes"], methods=only["methods"],
                       deltas_vs_bicubic=only["deltas_vs_bicubic"], table=only["table"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "table.md").write_text(header + "\n\n" + summary["table"] + "\n")
    print(f"wrote {out_dir}/results.json, table.md and PNG side-by-sides in {summary['seconds']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
