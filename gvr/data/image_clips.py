"""Still photographs as video clips: a smooth random camera path over a photo, rendered frame by frame.

Like :class:`gvr.data.dataset.VideoClipDataset`, every item is a pure function of ``(seed, index)``: the
photo, its scale, the camera path and the degradation are all drawn from the item's generator, so photo
clips can join the resumable training stream (:class:`MixedClipDataset`).
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from gvr.data.dataset import ClipDataset, item_generator
from gvr.data.degradations.degradation import Degradation
from gvr.data.errors import DataError
from gvr.data.scales import ScaleDraw
from gvr.data.video import frames_to_tensor
from gvr.ops.seeding import generator

log = logging.getLogger(__name__)

LEVEL_STEP = 1.5  # frames of a clip share one antialiased copy while their scales stay within this factor of it
DETAIL_CELL = 8  # working-copy pixels per cell of the gradient map that steers clips towards detail
MARGIN = 3  # pixels (at the frame's scale) kept around a frame's footprint for the bicubic kernel
_MIX_KEY = 7  # folded into (seed, index) for MixedClipDataset's source draw, apart from the items' own draws


@dataclass(frozen=True)
class CameraPath:
    """What each frame of a photo clip sees, in working-copy coordinates (pixel ``i`` spans ``[i, i + 1]``).

    ``image``: the photo's number in the dataset's records; ``centres`` (T, 2): x, y of the frame centre;
    ``scales`` (T,): working-copy pixels per output pixel (>= 1: frames never upsample the photo); ``angles``
    (T,): camera roll in degrees; ``flip``: mirror the frames.
    """

    image: int
    centres: np.ndarray
    scales: np.ndarray
    angles: np.ndarray
    flip: bool


def _affine(scale: float, angle: float) -> np.ndarray:
    """2x2 map of a camera with ``scale`` source pixels per output pixel, rolled by ``angle`` degrees."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return scale * np.array([[cos, -sin], [sin, cos]])


def render(image: np.ndarray, path: CameraPath, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames (T, H, W, 3) of `path` over `image` (h, w, 3): one bicubic affine warp per frame.

    Frames that shrink the photo read an antialiased (area-averaged) copy of the clip's region made once
    per scale level, so the warp itself never shrinks by more than ``LEVEL_STEP``: no aliasing when zooming out.
    """
    (hh, ww), (ih, iw) = size, image.shape[:2]
    base = max(1.0, float(path.scales.min()))
    levels = np.floor(np.log(np.maximum(path.scales / base, 1.0)) / math.log(LEVEL_STEP) + 1e-9).astype(int)
    corners = np.array([[-ww / 2, -hh / 2], [ww / 2, -hh / 2], [-ww / 2, hh / 2], [ww / 2, hh / 2]])
    maps = [_affine(s, a) for s, a in zip(path.scales, path.angles)]  # output offset -> working-copy offset
    frames, copies = [], {}
    for centre, linear, level in zip(path.centres, maps, levels):
        if level not in copies:
            # 1. The region all frames of this level cover, area-downscaled to this level's scale.
            pts = np.concatenate([c + corners @ m.T for c, m, lv in zip(path.centres, maps, levels) if lv == level])
            r = base * LEVEL_STEP**level
            x0, y0 = (max(0, math.floor(v - MARGIN * r)) for v in pts.min(0))
            x1, y1 = (min(n, math.ceil(v + MARGIN * r)) for v, n in zip(pts.max(0), (iw, ih)))
            x0, y0, x1, y1 = min(x0, iw - 1), min(y0, ih - 1), max(x1, x0 + 1), max(y1, y0 + 1)
            region = image[y0:y1, x0:x1].astype(np.float32)
            if r > 1:
                out_w, out_h = max(1, round((x1 - x0) / r)), max(1, round((y1 - y0) / r))
                region = cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA)
            factor = np.array([(x1 - x0) / region.shape[1], (y1 - y0) / region.shape[0]])  # working px per region px
            copies[level] = (region, np.array([x0, y0]), factor)
        region, origin, factor = copies[level]
        # 2. Output pixel index (x, y) -> region pixel index: centre + linear @ (x + 0.5 - W/2, y + 0.5 - H/2).
        offset = (centre - origin + linear @ np.array([0.5 - ww / 2, 0.5 - hh / 2])) / factor - 0.5
        warp = np.concatenate([linear / factor[:, None], offset[:, None]], axis=1)
        frame = cv2.warpAffine(region, warp, (ww, hh), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT_101)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    frames = np.stack(frames)
    return np.ascontiguousarray(frames[:, :, ::-1]) if path.flip else frames


@dataclass
class PhotoCamera:
    """How a photo becomes a moving clip: the camera of `ImageClipDataset` (its arguments of the same names).

    Args:
        short_side: photos are first scaled so that their short side is uniform in this range (no upscaling).
        max_shift: largest camera pan over a photo along each axis, in HR pixels per frame.
        max_zoom: largest zoom rate over a photo, relative change of scale per frame.
        max_rotation: largest camera roll rate over a photo, in degrees per frame.
        easing: camera paths at constant speed ("linear") or starting and stopping smoothly.
        detail_tries: start positions drawn per clip; the one seeing the most detail is kept.
    """

    short_side: tuple[int, int] = (720, 1440)
    max_shift: float = 3.0
    max_zoom: float = 0.01
    max_rotation: float = 0.2
    easing: Literal["linear", "ease_in_out"] = "linear"
    detail_tries: int = 4


@dataclass
class PhotoClips:
    """Photographs as clips beside the videos (`VideoDataModule.photos`, ``make images`` writes the manifests).

    Args:
        train: manifest of photos whose camera-path clips join training (data/manifests/images_train.jsonl).
        ratio: fraction of training clips made from photos, a seeded draw per clip index (`MixedClipDataset`).
        val: manifest of held-out photos (data/manifests/images_val.jsonl) whose clips are validated after the
            held-out videos' (one loader, the same metrics).
        val_clips: fixed validation clips per held-out photo.
        camera: how a photo becomes a moving clip (`PhotoCamera`; ``--data.photos.camera.max_shift 2``).
    """

    train: str | None = None
    ratio: float = 0.0
    val: str | None = None
    val_clips: int = 2
    camera: PhotoCamera = field(default_factory=PhotoCamera)

    def __post_init__(self):
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"data.photos.ratio must be in [0, 1], got {self.ratio}")


class ImageClipDataset(ClipDataset):
    """HR/LR clip pairs made from still photographs by moving a virtual camera over them.

    Per clip: the photo is scaled (antialiased) so that its short side is uniform in ``short_side`` (as
    large as video frames), then a camera pans at a constant random velocity, zooms and rolls at random
    rates, with sub-pixel start positions, and each frame is one bicubic affine warp cropping ``hr_size``;
    half the training clips are mirrored. Evaluation items are ``clips_per_image`` fixed clips per photo.
    The LR clip is ``degradation(hr)``, as for video clips; items carry the same keys (``start`` is 0).

    Args:
        records: photo manifest records (``{"path", ...}``, ``make images`` writes them).
        num_frames: frames per clip.
        hr_size: HR crop as (height, width); a multiple of ``size_multiple``.
        scale: super-resolution factor, HR size / LR size.
        degradation: how LR clips are made from HR clips.
        size_multiple: HR and LR sizes are rounded to multiples of this.
        train: random clips from an endless stream (True) or fixed evaluation clips (False).
        length: training items per epoch.
        clips_per_image: evaluation clips per photo.
        seed: seed of the clips and of the degradation.
        short_side: the photo is first scaled so that its short side (pixels) is uniform in this range (never upscaled).
        max_shift: largest camera pan along each axis, in HR pixels per frame.
        max_zoom: largest zoom rate, relative change of scale per frame (in or out).
        max_rotation: largest roll rate, in degrees per frame.
        easing: "linear" moves at constant speed; "ease_in_out" starts and stops smoothly (smoothstep).
        detail_tries: start positions drawn per clip; the one seeing the most image gradient is kept (1: uniform).
        cache_images: keep decoded photos (at most ``short_side[1]`` on their short side) in memory.
        scales: per-step factors of a range (`gvr.data.scales.ScaleDraw`) instead of ``scale``, for training.
    """

    def __init__(
        self,
        records: list[dict],
        num_frames: int,
        hr_size: tuple[int, int],
        scale: float,
        degradation: Degradation,
        size_multiple: int = 8,
        train: bool = True,
        length: int = 1000,
        clips_per_image: int = 2,
        seed: int = 0,
        short_side: tuple[int, int] = (720, 1440),
        max_shift: float = 3.0,
        max_zoom: float = 0.01,
        max_rotation: float = 0.2,
        easing: Literal["linear", "ease_in_out"] = "linear",
        detail_tries: int = 4,
        cache_images: bool = True,
        scales: ScaleDraw | None = None,
    ):
        super().__init__(num_frames, hr_size, scale, degradation, size_multiple, scales)
        if not 0 < short_side[0] <= short_side[1]:
            raise ValueError(f"short_side must be (low, high) with 0 < low <= high, got {short_side}")
        self.train, self.seed, self.cache_images = train, seed, cache_images
        self.short_side, self.easing, self.detail_tries = tuple(short_side), easing, max(1, detail_tries)
        self.max_shift, self.max_zoom, self.max_rotation = max_shift, max_zoom, max_rotation
        self.records, self.sizes = [], []  # sizes: (width, height) of each photo's working copy
        for record in records:
            size = self._probe(record)
            if size is not None:
                self.records.append(record)
                self.sizes.append(size)
        if not self.records:
            raise DataError(f"no usable photo in the manifest ({len(records)} listed): each needs at least "
                             f"{self.hr_size[1]}x{self.hr_size[0]} pixels and must decode")
        self.length = length if train else clips_per_image * len(self.records)
        self.clips_per_image = clips_per_image
        self._cache: dict[str, np.ndarray] = {}
        self._details: dict[str, np.ndarray] = {}  # integral images of each photo's gradient map

    def _probe(self, record: dict) -> tuple[int, int] | None:
        """Working-copy size (width, height) of a photo that decodes and is large enough, else None (logged)."""
        try:
            with Image.open(record["path"]) as im:
                w, h = im.size[::-1] if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else im.size  # as displayed
                im.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # JPEG: a fast reduced decode still reads every byte
                im.load()
        except (OSError, SyntaxError, ValueError) as err:
            log.warning("skipping photo %s: %s", record["path"], err)
            return None
        k = min(1.0, self.short_side[1] / min(w, h))
        size = (max(1, round(w * k)), max(1, round(h * k)))
        if size[0] < self.hr_size[1] or size[1] < self.hr_size[0]:
            log.warning("skipping photo %s: %dx%d, clips need %dx%d", record["path"], w, h, *self.hr_size[::-1])
            return None
        return size

    def __len__(self) -> int:
        return self.length

    def _load(self, i: int) -> np.ndarray:
        """Photo ``i`` as uint8 (h, w, 3) at its working-copy size (antialiased when reduced)."""
        path, size = self.records[i]["path"], self.sizes[i]
        if path in self._cache:
            return self._cache[path]
        with Image.open(path) as im:
            if im.getexif().get(0x0112, 1) == 1:
                im.draft("RGB", size)  # JPEG: decode at the smallest DCT scale still >= size
            im = ImageOps.exif_transpose(im).convert("RGB")
            if im.size != size:
                im = im.resize(size, Image.Resampling.LANCZOS)
            image = np.asarray(im)
        if self.cache_images:
            self._cache[path] = image
        return image

    def _detail(self, i: int, low: np.ndarray, high: np.ndarray) -> float:
        """Mean gradient magnitude of photo ``i`` over the working-copy box ``[low, high)`` (x, y)."""
        path = self.records[i]["path"]
        if path not in self._details:
            grey = cv2.cvtColor(self._load(i), cv2.COLOR_RGB2GRAY).astype(np.float32)
            grad = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
            cells = (max(1, grey.shape[1] // DETAIL_CELL), max(1, grey.shape[0] // DETAIL_CELL))
            self._details[path] = cv2.integral(cv2.resize(grad, cells, interpolation=cv2.INTER_AREA))
        table = self._details[path]
        cells = np.array([table.shape[1] - 1, table.shape[0] - 1])  # (columns, rows)
        lo = np.clip(np.floor(low * cells / self.sizes[i]), 0, cells - 1).astype(int)
        hi = np.clip(np.ceil(high * cells / self.sizes[i]), lo + 1, cells).astype(int)
        (x0, y0), (x1, y1) = lo, hi
        return float(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]) / ((y1 - y0) * (x1 - x0))

    def camera_path(self, index: int, g: torch.Generator | None = None) -> CameraPath:
        """The photo and camera path of item ``index`` (drawn from ``g``, by default the item's generator)."""
        g = item_generator(self.seed, index) if g is None else g

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * float(torch.rand(1, generator=g))

        t, (hh, ww) = self.num_frames, self.hr_size_at(index)
        if self.train:
            i = int(torch.randint(len(self.records), (1,), generator=g))
        else:
            i = index // self.clips_per_image
        w, h = self.sizes[i]
        # 1. Scale: working-copy pixels per output pixel so that the short side matches a video frame's.
        base = max(1.0, min(w, h) / min(uniform(*self.short_side), min(w, h)))
        u = np.linspace(0.0, 1.0, t) if t > 1 else np.zeros(1)
        if self.easing == "ease_in_out":
            u = u * u * (3 - 2 * u)
        zoom = uniform(-self.max_zoom, self.max_zoom) * (t - 1)
        scales = base * np.exp(zoom * u)
        scales = scales / min(1.0, scales.min())  # the most zoomed-in frame still reads >= 1 photo pixel per pixel
        angles = uniform(-self.max_rotation, self.max_rotation) * (t - 1) * u
        speed = np.array([uniform(-self.max_shift, self.max_shift) for _ in range(2)])  # HR px per frame
        shift = speed * (t - 1) * math.exp(np.log(scales).mean())  # the whole clip's travel, in working-copy px
        # 2. Start centre: every frame's footprint stays inside the photo (no motion along an axis that cannot fit).
        rad = np.radians(angles)
        cos, sin = np.abs(np.cos(rad)), np.abs(np.sin(rad))
        extent = scales[:, None] * (np.stack([ww / 2 * cos + hh / 2 * sin, ww / 2 * sin + hh / 2 * cos], 1) + MARGIN)
        ranges = []
        for axis, n in enumerate((w, h)):
            low, high = (extent[:, axis] - u * shift[axis]).max(), (n - extent[:, axis] - u * shift[axis]).min()
            if low > high:
                shift[axis] = 0.0
                low, high = extent[:, axis].max(), (n - extent[:, axis]).min()
            ranges.append((low, high) if low <= high else (n / 2, n / 2))
        starts = np.array([[uniform(*ranges[0]), uniform(*ranges[1])] for _ in range(self.detail_tries)])
        # 3. Of several start positions, keep the one whose clip sees the most image gradient (photos are often
        # mostly bokeh and sky, which teach a super-resolution model little).
        if len(starts) > 1:
            box = extent.max(0) + np.abs(shift) / 2  # half size of the box around the clip's middle that it sweeps
            scores = [self._detail(i, c - box, c + box) for c in starts + shift / 2]
            starts = starts[int(np.argmax(scores))][None]
        flip = self.train and bool(torch.rand(1, generator=g) < 0.5)
        return CameraPath(i, starts[0] + u[:, None] * shift, scales, angles, flip)

    def __getitem__(self, index: int) -> dict:
        if index < 0 or (not self.train and index >= self.length):
            raise IndexError(index)
        g = item_generator(self.seed, index)
        path = self.camera_path(index, g)
        frames = render(self._load(path.image), path, self.hr_size_at(index))
        hr = frames_to_tensor(frames)  # (3, T, H, W) in [-1, 1]
        lr = self.degradation(hr, self.lr_size_at(index), g)
        record = self.records[path.image]
        return {"hr": hr, "lr": lr, "index": index, "start": 0, "path": record["path"],
                "caption": record.get("caption", "")}


class MixedClipDataset(Dataset):
    """The training stream of video and photo clips: item ``i`` is ``images[i]`` with probability ``image_ratio``.

    The choice is a draw seeded by ``(seed, i)`` alone, so the mixed stream stays a pure function of the
    index (exact resume, any worker). Its length is that of ``videos`` (the epoch).
    """

    def __init__(self, videos: Dataset, images: Dataset, image_ratio: float, seed: int = 0):
        if not 0 <= image_ratio <= 1:
            raise ValueError(f"image_ratio must be in [0, 1], got {image_ratio}")
        self.videos, self.images, self.image_ratio, self.seed = videos, images, image_ratio, seed

    def __len__(self) -> int:
        return len(self.videos)

    def is_image(self, index: int) -> bool:
        """Whether item ``index`` comes from the photos."""
        return float(torch.rand(1, generator=generator(self.seed, index, _MIX_KEY))) < self.image_ratio

    def __getitem__(self, index: int) -> dict:
        return (self.images if self.is_image(index) else self.videos)[index]
