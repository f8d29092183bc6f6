"""Hard scene cuts in a stream of frames (PySceneDetect's ContentDetector), and the scenes they bound.

`gvr prep` splits a corpus at the cuts; `gvr upscale` never lets a window or a cross-fade straddle one, so the
frames after a cut come out as if the video started there.
"""

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from gvr.data.video import frames_to_uint8

THRESHOLD = 27.0  # ContentDetector's default cut threshold (mean HSV change, 0..255)
MIN_SCENE_LEN = 15  # ContentDetector's default: fewest frames between two cuts
DETECT_WIDTH = 320  # frames shrink to at most this width before detection (speed; cuts are coarse)


class CutDetector:
    """PySceneDetect's ContentDetector fed one uint8 RGB frame at a time: `push` says whether a new scene starts at
    that frame. It looks at no later frame, so it serves a stream as well as a file."""

    def __init__(self, threshold: float = THRESHOLD, min_scene_len: int = MIN_SCENE_LEN, width: int = DETECT_WIDTH):
        from scenedetect.detectors import ContentDetector

        self.detector, self.width, self.frames = ContentDetector(threshold=threshold, min_scene_len=min_scene_len), width, 0

    def push(self, rgb: np.ndarray) -> bool:
        h, w = rgb.shape[:2]
        rgb = frames_to_uint8(rgb)  # 16-bit frames: their top 8 bits are plenty to see a cut
        if w > self.width:
            rgb = cv2.resize(rgb, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        cuts = self.detector.process_frame(self.frames, np.ascontiguousarray(rgb[..., ::-1]))  # it expects BGR
        self.frames += 1
        return any(0 < c == self.frames - 1 for c in cuts)


def detect_cuts(frames: Iterable[np.ndarray], threshold: float = THRESHOLD, min_scene_len: int = MIN_SCENE_LEN,
                width: int = DETECT_WIDTH) -> tuple[list[int], int]:
    """Scene cuts (first frame of each new scene) of uint8 RGB frame chunks (T, H, W, 3), and the frame count."""
    detector, cuts = CutDetector(threshold, min_scene_len, width), []
    for chunk in frames:
        for rgb in chunk:
            if detector.push(rgb):
                cuts.append(detector.frames - 1)
    return cuts, detector.frames


def scenes(cuts: Sequence[int], frames: int, min_frames: int = 1) -> list[tuple[int, int]]:
    """``(start, end)`` frame ranges of the scenes of a ``frames``-frame video cut before each frame in ``cuts``.

    A scene shorter than ``min_frames`` (a flash between two cuts) joins the scene before it (the first one, the
    scene after it), so that every range is long enough to upscale; the ranges cover the video in order.
    """
    if frames < 1 or min_frames < 1:
        raise ValueError(f"scenes: need frames >= 1 and min_frames >= 1, got {frames} and {min_frames}")
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < frames), frames]
    ranges = [[a, b] for a, b in zip(bounds[:-1], bounds[1:])]
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and (end - start < min_frames or merged[-1][1] - merged[-1][0] < min_frames):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]
