"""PSNR / SSIM / VMAF and seconds per frame of a checkpoint against bicubic and Lanczos on held-out real clips.

    python benchmarks/quality.py --ckpt logs/stage1/checkpoints/last.ckpt --steps 1 4 10
    python benchmarks/quality.py --ckpt CKPT --upscale-kw color_fix=wavelet     # any upscale_video keyword

1. Ground truth: ``--clips`` clips of ``--frames`` frames from each source, centred in equal segments of the
   video, centre-cropped to ``--crop`` rounded down so that crop / scale is a whole number of LR pixels
   (scale = the checkpoint's ``hparams.scale``). A photo gives ``--clips`` fixed camera-path clips
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
   the seams of 4x4-pixel tokens, which raises VMAF while it spoils the frame), then the mean over clips; s/frame is the wall time of the upscale alone (gvr: the ``upscale_video`` call, LR
   decode and FFV1 encode included; scoring and reading the output back excluded).

Writes ``results.json``, ``table.md`` and one ``<source>.png`` (LR nearest | bicubic | lanczos | gvr ... | GT,
middle frame of the middle clip) under ``--out`` (default ``logs/quality/<ckpt-stem>_x<scale>/``), with the
LR clips in ``lr/``. The functions (`make_clips`, `score_method`, `format_table`, ...) serve other scripts:
``import benchmarks.quality`` from the repository root, or ``from quality import ...`` beside it.
"""

import argparse
import importlib.util
import inspect
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from gvr.data.degradations import BicubicDownsample
from gvr.data.manifest import read_manifest
from gvr.data.video import frames_to_tensor, probe_video, read_video, tensor_to_frames, write_video

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_SOURCES = ("data/samples/bikes.mp4", "data/manifests/images_val.jsonl")
DEFAULT_METRICS = ("psnr", "ssim", "vmaf", "grid")
IMAGE_FPS = 24.0  # frame rate given to clips made from photos
ImageMotion = Literal["camera", "static"]

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


def fit_crop(crop: tuple[int, int], source_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """GT crop (H, W) no larger than ``crop`` and the source, each side a whole multiple of ``scale`` (LR exact).

    Each side becomes ``lr * scale`` for the largest whole ``lr`` whose product is an integer and fits.
    """
    sides = []
    for want, have in zip(crop, source_size):
        lr = math.floor(min(want, have) / scale + 1e-9)
        while lr > 0 and abs(lr * scale - round(lr * scale)) > 1e-6:
            lr -= 1
        if lr < 1:
            raise ValueError(f"crop {crop} of a {source_size[0]}x{source_size[1]} source leaves no whole LR pixel "
                             f"at x{scale:g}")
        sides.append(round(lr * scale))
    return sides[0], sides[1]


def centre_crop(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre ``size`` (H, W) window of uint8 frames (T, H, W, 3)."""
    h, w = frames.shape[1:3]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return np.ascontiguousarray(frames[:, top : top + size[0], left : left + size[1]])


def downsample(gt: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> antialiased bicubic (torch, PIL's kernel) to ``size``, rounded to uint8."""
    lr = BicubicDownsample(antialias=True)(frames_to_tensor(gt), size, torch.Generator())
    return tensor_to_frames(lr)


def clip_starts(total: int, frames: int, clips: int) -> list[int]:
    """Starts of ``clips`` windows of ``frames`` frames centred in equal segments of ``total`` frames."""
    if total < frames:
        raise ValueError(f"a source of {total} frames is shorter than one {frames}-frame clip")
    starts = [math.floor((k + 0.5) * total / clips - frames / 2 + 0.5) for k in range(clips)]
    return sorted({min(max(s, 0), total - frames) for s in starts})


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Video and image paths of ``sources``: files as given, ``.jsonl`` manifests replaced by their paths.

    A manifest path that does not exist as written is looked up beside the manifest.
    """
    paths = []
    for source in sources:
        if not source.endswith(".jsonl"):
            paths.append(source)
            continue
        for record in read_manifest(source):
            path = Path(record["path"])
            if not path.is_absolute() and not path.exists():
                path = Path(source).parent / path
            paths.append(str(path))
    return paths


def load_image(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a photo, turned upright by its EXIF orientation."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def camera_clips(path: str, clips: int, frames: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``clips`` fixed camera-path clips (T, H, W, 3) over a photo (`gvr.data.image_clips.ImageClipDataset`)."""
    from gvr.data.image_clips import ImageClipDataset

    dataset = ImageClipDataset([{"path": path}], frames, size, scale=1.0, degradation=BicubicDownsample(),
                               size_multiple=1, train=False, clips_per_image=clips, seed=seed)
    return [tensor_to_frames(dataset[k]["hr"]) for k in range(len(dataset))]


def read_source(path: str, clips: int, frames: int, crop: tuple[int, int], scale: float,
                image_motion: ImageMotion = "camera", seed: int = 0) -> list[tuple[str, np.ndarray, float]]:
    """``(tag, GT uint8 frames (T, H, W, 3), fps)`` of each clip of a video or a photo, cropped by `fit_crop`.

    A video gives ``clips`` windows (tag: the start frame) centre-cropped; a photo gives ``clips`` camera-path
    clips (tag ``camK``) or, with ``image_motion="static"`` or without `gvr.data.image_clips`, one static clip
    of its centre crop (tag ``still``).
    """
    if Path(path).suffix.lower() not in IMAGE_EXTS:
        info = probe_video(path)
        size = fit_crop(crop, (info.height, info.width), scale)
        return [(str(start), centre_crop(read_video(path, start, frames)[0], size), info.fps)
                for start in clip_starts(info.frames, frames, clips)]
    image = load_image(path)
    size = fit_crop(crop, image.shape[:2], scale)
    if image_motion == "camera" and importlib.util.find_spec("gvr.data.image_clips") is not None:
        return [(f"cam{k}", video, IMAGE_FPS) for k, video in enumerate(camera_clips(path, clips, frames, size, seed))]
    return [("still", centre_crop(np.repeat(image[None], frames, axis=0), size), IMAGE_FPS)]


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

    makers = {"psnr": FramePSNR, "ssim": FrameSSIM, "grid": FrameGrid}
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
    labels = {"psnr": ("PSNR (dB)", ".2f"), "ssim": ("SSIM", ".4f"), "vmaf": ("VMAF", ".2f"), "grid": ("4-px grid", ".2f")}
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


def side_by_side(clip: Clip, results: Sequence[MethodResult], path: str | Path, band: int = 16) -> None:
    """PNG of the middle frame: LR nearest | each method | GT, with a label band above each panel."""
    panels = [("LR (nearest)", nearest(clip)[len(clip.gt) // 2])]
    panels += [(r.name, r.previews[clip.name]) for r in results if clip.name in r.previews]
    panels.append(("GT", clip.gt[len(clip.gt) // 2]))
    h, w = clip.gt.shape[1:3]
    sheet = Image.new("RGB", (w * len(panels), h + band), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, frame) in enumerate(panels):
        sheet.paste(Image.fromarray(frame), (k * w, band))
        draw.text((k * w + 3, 2), label, fill="black")
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
    p.add_argument("--ckpt", required=True, help="VSR checkpoint written by `gvr fit`")
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
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="comma-separated subset of psnr,ssim,vmaf,grid")
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
    p.add_argument("--out", default=None, help="output folder (default: logs/quality/<ckpt-stem>_x<scale>)")
    return p


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
    sources = args.sources or [DEFAULT_SOURCES[0]] + [s for s in DEFAULT_SOURCES[1:] if Path(s).exists()]

    module = load_module(args.ckpt, args.device)
    scale = float(module.hparams.scale)
    out_dir = Path(args.out or f"logs/quality/{Path(args.ckpt).stem}_x{scale:g}")
    start = time.perf_counter()
    clips = make_clips(sources, scale, out_dir, args.clips, args.frames, crop, args.image_motion, args.seed)

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
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps or [int(module.hparams.sample_steps)]:
            method = gvr_method(module, tmp, steps, args.s, args.chunk, args.seed, **upscale_kw)
            name = f"gvr ({steps} steps{suffix})"
            results.append(score_method(name, method, clips, metrics, args.device, args.warmup))

    table = format_table(results)
    if "grid" in metrics:  # the ground truth's own score: what natural content (and its JPEG blocks) gives
        grid = build_metrics(["grid"], args.device)["grid"]
        gt_grid = float(np.mean([score_frames(c.gt, c.gt, {"grid": grid}, args.device)["grid"] for c in clips]))
        table += f"\n- 4-px grid of the ground truth itself: {gt_grid:.2f}"
    gt_sizes = sorted({f"{c.gt.shape[1]}x{c.gt.shape[2]}" for c in clips})
    lr_sizes = sorted({f"{c.lr.shape[1]}x{c.lr.shape[2]}" for c in clips})
    header = (f"{Path(args.ckpt).name} x{scale:g}: {len(clips)} clips of {args.frames} frames from "
              f"{', '.join(sorted({Path(c.source).name for c in clips}))}; GT {', '.join(gt_sizes)} (HxW), "
              f"LR {', '.join(lr_sizes)} by antialiased bicubic, lossless FFV1")
    print(header)
    print(table)
    summary = {
        "ckpt": args.ckpt, "scale": scale, "frames": args.frames, "clips_per_video": args.clips, "crop": list(crop),
        "sources": sources, "image_motion": args.image_motion, "gt_sizes": gt_sizes, "lr_sizes": lr_sizes, "metrics": metrics, "s": args.s,
        "seed": args.seed, "chunk": args.chunk, "upscale_kw": upscale_kw, "device": args.device,
        "downsample": "torch F.interpolate bicubic antialias=True, rounded to uint8, FFV1",
        "methods": {r.name: r.to_json() for r in results}, "deltas_vs_bicubic": deltas(results),
        "seconds": time.perf_counter() - start, "table": table,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(summary, indent=1))
    (out_dir / "table.md").write_text(header + "\n\n" + table + "\n")
    by_source: dict[str, list[Clip]] = {}
    for clip in clips:
        by_source.setdefault(clip.source, []).append(clip)
    for source, group in by_source.items():
        side_by_side(group[len(group) // 2], results, out_dir / f"{Path(source).stem}.png")
    print(f"wrote {out_dir}/results.json, table.md and {len(by_source)} PNG(s) in {summary['seconds']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
