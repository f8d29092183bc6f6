"""Clip datasets: decoded HR windows of real videos paired with their degraded LR version.

Every item is a pure function of ``(seed, index)``: the training set is a long stream of random
clips whose randomness is derived from the index alone, so a run resumed at step N sees exactly the
clips an uninterrupted run would have seen, in any dataloader worker.
"""

import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from gvr.data.degradations.degradation import Degradation
from gvr.data.errors import DataError
from gvr.data.scales import ScaleDraw
from gvr.data.video import VideoError, frames_to_tensor, read_video
from gvr.ops.seeding import generator

log = logging.getLogger(__name__)



def item_generator(seed: int, index: int) -> torch.Generator:
    """The generator that owns all randomness of item ``index``."""
    return generator(seed, index)


def lr_size_for(hr_size: tuple[int, int], scale: float, multiple: int) -> tuple[int, int]:
    """LR frame size for an HR size at ``scale``, rounded to a multiple of ``multiple`` (>= one multiple)."""
    return tuple(max(multiple, multiple * round(side / scale / multiple)) for side in hr_size)  # type: ignore[return-value]


class ClipDataset(Dataset):
    """What every clip dataset shares (videos, photos, prep shards): items of ``num_frames`` HR frames of
    ``hr_size`` (height, width) and their LR version by ``degradation`` at the factor ``scale``, the LR size
    rounded to ``size_multiple`` (`lr_size_for`); with ``scales`` (`gvr.data.scales.ScaleDraw`, training for every
    factor of a range) each item's sizes are those of its step's factor instead (`sizes_at`).
    ``check_multiple``: the HR crop must itself be a multiple of ``size_multiple`` (the codec's grid)."""

    def __init__(self, num_frames: int, hr_size: tuple[int, int], scale: float, degradation: Degradation,
                 size_multiple: int = 8, scales: ScaleDraw | None = None, check_multiple: bool = True):
        self.num_frames, self.hr_size, self.scale, self.degradation = num_frames, tuple(hr_size), scale, degradation
        self.size_multiple, self.scales = size_multiple, scales
        if check_multiple and any(side % size_multiple for side in self.hr_size):
            raise ValueError(f"hr_size {self.hr_size} must be a multiple of size_multiple={size_multiple}")
        self.lr_size = lr_size_for(self.hr_size, scale, size_multiple)

    def sizes_at(self, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(hr, lr)`` sizes of item ``index``: the fixed ``hr_size`` and ``lr_size``, or its step's under
        ``scales`` (whose ``hr_min`` may shrink the HR crop so that the grids make the factor more exactly)."""
        if self.scales is None:
            return self.hr_size, self.lr_size
        return self.scales.sizes(self.hr_size, index, self.size_multiple)

    def hr_size_at(self, index: int) -> tuple[int, int]:
        """The HR crop of item ``index`` (`sizes_at`)."""
        return self.sizes_at(index)[0]

    def lr_size_at(self, index: int) -> tuple[int, int]:
        """The LR size of item ``index`` (`sizes_at`)."""
        return self.sizes_at(index)[1]


class VideoClipDataset(ClipDataset):
    """HR/LR clip pairs cut from the videos of a manifest.

    Training items are random windows (video chosen by its number of windows, random start, random
    crop, random horizontal flip); evaluation items are ``clips_per_video`` evenly spaced windows of
    each video with a centre crop. The LR clip is ``degradation(hr)`` at :func:`lr_size_for` size,
    seeded by the item index; with ``scales`` (`gvr.data.scales.ScaleDraw`, training for every factor of a range)
    at the size of the item's step's factor instead.
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
        clips_per_video: int = 1,
        seed: int = 0,
        cache_frames: bool = True,
        lr_only: bool = False,
        skip_errors: bool = False,
        scales: ScaleDraw | None = None,
    ):
        super().__init__(num_frames, hr_size, scale, degradation, size_multiple, scales)
        self.train, self.seed, self.cache_frames = train, seed, cache_frames
        self.lr_only, self.skip_errors = lr_only, skip_errors
        self.records = [r for r in records if self._usable(r)]
        if not self.records:
            raise DataError(
                f"no video in the manifest has >= {num_frames} frames and at least {self.hr_size[1]}x{self.hr_size[0]} "
                f"pixels ({len(records)} listed); lower data.num_frames / data.hr_size or add videos"
            )
        self.windows = [r["frames"] - num_frames + 1 for r in self.records]
        self.length = length if train else clips_per_video * len(self.records)
        self.clips_per_video = clips_per_video
        self._cache: dict[str, np.ndarray] = {}

    def _usable(self, record: dict) -> bool:
        need = self.lr_size if self.lr_only else self.hr_size
        ok = record["frames"] >= self.num_frames and record["height"] >= need[0] and record["width"] >= need[1]
        if not ok:
            log.warning("skipping %s: %d frames of %dx%d, clips need %d frames of %dx%d", record["path"],
                        record["frames"], record["width"], record["height"], self.num_frames, self.hr_size[1], self.hr_size[0])
        return ok

    def __len__(self) -> int:
        return self.length

    def _read(self, record: dict, start: int) -> np.ndarray:
        if not self.cache_frames:
            return read_video(record["path"], start, self.num_frames)[0]
        if record["path"] not in self._cache:
            self._cache[record["path"]] = read_video(record["path"])[0]
        return self._cache[record["path"]][start : start + self.num_frames]

    def _locate(self, index: int, g: torch.Generator) -> tuple[dict, int, int, int, bool]:
        """Video, start frame, crop top/left and flip of item ``index``."""
        (hh, ww) = self.hr_size_at(index)
        if self.train:
            v = int(torch.multinomial(torch.tensor(self.windows, dtype=torch.float), 1, generator=g))
            r = self.records[v]
            start = int(torch.randint(self.windows[v], (1,), generator=g))
            top = int(torch.randint(r["height"] - hh + 1, (1,), generator=g))
            left = int(torch.randint(r["width"] - ww + 1, (1,), generator=g))
            return r, start, top, left, bool(torch.rand(1, generator=g) < 0.5)
        v, k = divmod(index, self.clips_per_video)
        r = self.records[v]
        start = round(k * (self.windows[v] - 1) / max(1, self.clips_per_video - 1)) if self.clips_per_video > 1 else (self.windows[v] - 1) // 2
        return r, start, (r["height"] - hh) // 2, (r["width"] - ww) // 2, False

    def __getitem__(self, index: int) -> dict:
        if index < 0 or (not self.train and index >= self.length):
            raise IndexError(index)
        g = item_generator(self.seed, index)
        record, start, top, left, flip = self._locate(index, g)
        try:
            frames = self._read(record, start)
        except VideoError as err:
            if not self.skip_errors:
                raise
            # Evaluation goes on without this clip; the writer counts it. Zero tensors keep batches collatable.
            log.warning("skipping clip %d of %s: %s", index, record["path"], err)
            item = self._item(np.zeros((self.num_frames, *self.hr_size, 3), np.uint8), record, start, g, False, index)
            return {**item, "skipped": str(err)}
        if self.lr_only:
            # No ground truth: the video itself is the LR input, centre-cropped to the LR size.
            (h, w), (H, W) = self.lr_size, (record["height"], record["width"])
            lr = frames_to_tensor(np.ascontiguousarray(frames[:, (H - h) // 2 : (H - h) // 2 + h, (W - w) // 2 : (W - w) // 2 + w]))
            return {"lr": lr, "index": index, "start": start, "path": record["path"],
                    "caption": record.get("caption", ""), "skipped": ""}
        (hh, ww) = self.hr_size_at(index)
        frames = frames[:, top : top + hh, left : left + ww]
        item = self._item(frames, record, start, g, flip, index)
        return {**item, "skipped": ""} if self.skip_errors else item

    def _item(self, frames: np.ndarray, record: dict, start: int, g: torch.Generator, flip: bool, index: int) -> dict:
        if flip:
            frames = frames[:, :, ::-1]
        hr = frames_to_tensor(np.ascontiguousarray(frames))  # (3, T, H, W) in [-1, 1]
        lr = self.degradation(hr, self.lr_size_at(index), g)
        return {"hr": hr, "lr": lr, "index": index, "start": start, "path": record["path"],
                "caption": record.get("caption", "")}
