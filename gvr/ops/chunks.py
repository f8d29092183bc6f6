"""Temporal chunks of a long video: the window plan and the cross-fade that blends overlapping windows."""

import numpy as np

from gvr.ops.tiling import ramp_weights

MIN_FRAMES = 2  # the shortest clip gvr upscales


def chunk_stride(chunk: int, overlap: int, align: int = 1) -> int:
    """Frames between the starts of neighbouring windows: ``chunk - overlap`` rounded down to a multiple of
    ``align`` (the codec's temporal factor), at least ``align``."""
    if not 0 <= overlap < chunk:
        raise ValueError(f"need 0 <= overlap < chunk, got overlap={overlap}, chunk={chunk}")
    return max(align, (chunk - overlap) // align * align)


def plan_chunks(frames: int, chunk: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` of at most ``chunk`` frames covering ``frames``, overlapping by >= ``overlap``.

    Every start is a multiple of the stride ``chunk - overlap`` rounded down to a multiple of ``align`` (the
    codec's temporal factor), so latent frames of neighbouring chunks line up and share their noise; the
    last window starts on that grid too and is cut at ``frames`` (it may be shorter than ``chunk``).
    """
    stride = chunk_stride(chunk, overlap, align)
    plan = [(0, min(chunk, frames))]
    while plan[-1][1] < frames:
        start = plan[-1][0] + stride
        plan.append((start, min(start + chunk, frames)))
    return plan


class ChunkBlender:
    """Accumulates overlapping chunk outputs with linear cross-fade weights and releases finished frames.

    ``add(start, frames, next_start)`` takes the HR frames ``(n, H, W, 3)`` (uint8, or float in [0, 255]; or
    uint16, then everything is uint16) of the
    window that begins at ``start``; frames before ``next_start`` (the next window's start, or None at the end)
    can no longer change and are returned as uint8 in order. Only frames that two windows share are held, as
    float weighted sums; a frame that one window alone covers passes straight through (a uint8 frame untouched),
    so a video upscaled in one window costs no float copy at all.
    """

    def __init__(self) -> None:
        self.dtype = np.dtype(np.uint8)  # what finished frames come out as: uint16 when given uint16 frames
        self.base = 0  # absolute index of the first frame held
        self.sum: np.ndarray | None = None  # weighted sums of the held (shared) frames
        self.weight: np.ndarray | None = None
        self.prev_end = 0

    def _accumulate(self, at: int, frames: np.ndarray, w: np.ndarray) -> None:
        if not len(frames):
            return
        if self.sum is None or not len(self.sum):
            self.base, self.sum, self.weight = at, np.zeros((0, *frames.shape[1:]), np.float32), np.zeros(0, np.float32)
        grow = at + len(frames) - self.base - len(self.sum)
        if grow > 0:
            self.sum = np.concatenate([self.sum, np.zeros((grow, *frames.shape[1:]), np.float32)])
            self.weight = np.concatenate([self.weight, np.zeros(grow, np.float32)])
        lo = at - self.base
        self.sum[lo : lo + len(frames)] += frames * w[:, None, None, None]
        self.weight[lo : lo + len(frames)] += w

    def _release(self, upto: int) -> list[np.ndarray]:
        """The held frames before absolute index ``upto``, blended, as a list of at most one uint8 array."""
        k = 0 if self.sum is None else max(0, min(upto - self.base, len(self.sum)))
        if k == 0:
            return []
        done = self.sum[:k] / self.weight[:k, None, None, None]
        self.sum, self.weight, self.base = self.sum[k:], self.weight[k:], self.base + k
        return [_to_int(done, self.dtype)]

    def add(self, start: int, frames: np.ndarray, next_start: int | None) -> np.ndarray:
        if frames.dtype == np.uint16:
            self.dtype = frames.dtype
        n = len(frames)
        end = start + n
        cut = end if next_start is None else min(end, next_start)  # frames before `cut` are finished after this add
        before = min(n, max(0, self.prev_end - start))  # frames shared with earlier windows
        after = end - cut  # frames shared with later windows
        w = ramp_weights(n, before, after).numpy()
        alone = max(before, n - after)  # frames [before, alone) of this window: weight exactly 1, nobody else's
        self._accumulate(start, frames[:before], w[:before])
        out = self._release(start + before if alone > before else cut)
        if alone > before:
            mid = frames[before:alone]
            out.append(mid if mid.dtype == self.dtype else _to_int(mid, self.dtype))
        self._accumulate(start + alone, frames[alone:], w[alone:])
        self.prev_end = end
        if len(out) == 1:
            return out[0]
        return np.concatenate(out) if out else np.zeros((0, *frames.shape[1:]), self.dtype)


def _to_int(frames: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.clip(np.rint(frames), 0, np.iinfo(dtype).max).astype(dtype)
