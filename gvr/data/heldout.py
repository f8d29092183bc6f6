"""Ground-truth clips of held-out sources for benchmarks: windows of a video, or camera-path clips over a photo.

`read_source` turns one video or photo into ``(tag, uint8 frames (T, H, W, 3), fps)`` clips, centre-cropped by
`fit_crop` to a size whose LR side is a whole number of pixels at the scale (so that LR -> HR is exact). The
quality benchmark (``benchmarks/quality.py``) and the base-model-like test set (`gvr.data.testset`) read
their clips through it, so both score the same frames.
"""

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from gvr.data.degradations import BicubicDownsample
from gvr.data.manifest import read_manifest
from gvr.data.video import probe_video, read_video, tensor_to_frames

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
IMAGE_FPS = 24.0  # frame rate given to clips made from photos
ImageMotion = Literal["camera", "static"]


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


def clip_starts(total: int, frames: int, clips: int) -> list[int]:
    """Starts of ``clips`` windows of ``frames`` frames centred in equal segments of ``total`` frames."""
    if total < frames:
        raise ValueError(f"a source of {total} frames is shorter than one {frames}-frame clip")
    starts = [math.floor((k + 0.5) * total / clips - frames / 2 + 0.5) for k in range(clips)]
    return sorted({min(max(s, 0), total - frames) for s in starts})


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Video and image paths of ``sources``: files as given, ``.jsonl`` manifests replaced by their paths.

    A manifest path that does not exist as written is looked up beside the manifest (`read_manifest`).
    """
    paths = []
    for source in sources:
        if source.endswith(".jsonl"):
            paths.extend(record["path"] for record in read_manifest(source))
        else:
            paths.append(source)
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
    if image_motion == "camera":
        return [(f"cam{k}", video, IMAGE_FPS) for k, video in enumerate(camera_clips(path, clips, frames, size, seed))]
    return [("still", centre_crop(np.repeat(image[None], frames, axis=0), size), IMAGE_FPS)]
