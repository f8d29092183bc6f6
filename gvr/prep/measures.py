"""Step 2, measure: the figures each clip is filtered on, computed once and stored in its record.

- ``sharpness``: variance of the Laplacian of the luma, mean over sampled frames, at most
  ``sharpness_size`` pixels on the short side (larger frames are shrunk first, so scores compare across
  resolutions; blur detectors commonly flag values below ~100 at this scale).
- ``luma``: mean BT.709 luma (0..255); ``dark`` / ``bright``: fraction of pixels with luma <= 16 / >= 235.
- ``motion``: mean optical-flow magnitude (OpenCV DIS) between sampled pairs of consecutive frames, in
  pixels per frame at ``motion_size`` pixels on the short side; ``motion_peak``: its 99th percentile (how fast
  the fastest-moving 1% of the frame moves), which a small subject moving in a steady shot keeps high.
- ``short_side`` and ``duration`` (seconds) from the clip's record.
- ``quality``: a learned no-reference score (MUSIQ through :mod:`gvr.metrics.iqa`, about 0..100) when its
  weights are found; otherwise absent, with one logged message.
"""

import logging
from typing import Literal

import cv2
import numpy as np

from gvr.data.video import read_video

log = logging.getLogger(__name__)

DARK, BRIGHT = 16, 235  # BT.709 video-range black and white
WHOLE_CLIP_BYTES = 256 << 20  # decode a clip in one pass up to this size of RGB frames, else pair by pair


class MeasureRecipe:
    """What is measured and how (the ``measure:`` section of configs/prep.yaml).

    Args:
        samples: frames sampled evenly across a clip (each with its successor for the flow).
        sharpness_size: short side (pixels) above which frames are shrunk before the Laplacian.
        motion_size: short side (pixels) above which frames are shrunk before the optical flow.
        quality: learned quality score to add when its weights exist (None: none).
        quality_weights: weight file or folder of the quality network (None: the metric's default cache).
        quality_frames: frames scored by the quality network per clip.
    """

    def __init__(
        self,
        samples: int = 8,
        sharpness_size: int = 720,
        motion_size: int = 256,
        quality: Literal["musiq"] | None = "musiq",
        quality_weights: str | None = None,
        quality_frames: int = 2,
    ):
        if samples < 1 or quality_frames < 1:
            raise ValueError(f"measure: samples and quality_frames must be >= 1, got {samples}, {quality_frames}")
        self.samples, self.sharpness_size, self.motion_size = samples, sharpness_size, motion_size
        self.quality, self.quality_weights, self.quality_frames = quality, quality_weights, quality_frames


def shrink(image: np.ndarray, short_side: int) -> np.ndarray:
    """``image`` scaled (area filter) so that its short side is at most ``short_side``; never enlarged."""
    h, w = image.shape[:2]
    f = short_side / min(h, w)
    if f >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.709 luma (float32, 0..255) of uint8 RGB (..., 3)."""
    return rgb.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of a uint8 or float grey image."""
    return float(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F).var())


PEAK_PERCENTILE = 99  # motion_peak: how fast the fastest-moving 1% of the frame moves


def flow_magnitude(a: np.ndarray, b: np.ndarray) -> float:
    """Mean DIS optical-flow magnitude (pixels) from grey uint8 image ``a`` to ``b``."""
    return flow_stats(a, b)[0]


def flow_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and `PEAK_PERCENTILE`-th percentile of the DIS optical-flow magnitude (pixels) from ``a`` to ``b``."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    magnitude = np.linalg.norm(dis.calc(a, b, None), axis=-1)
    return float(magnitude.mean()), float(np.percentile(magnitude, PEAK_PERCENTILE))


def sample_positions(frames: int, samples: int) -> list[int]:
    """Evenly spaced frame numbers in ``[0, frames - 2]`` (each has a successor), at most ``samples`` of them."""
    last = max(0, frames - 2)
    return sorted({round(i * last / max(1, samples - 1)) for i in range(samples)})


def load_frames(record: dict, positions: list[int]) -> dict[int, np.ndarray]:
    """Frames ``p`` and ``p + 1`` of the clip for each sampled ``p`` (numbers relative to the clip's start).

    A clip of at most ``WHOLE_CLIP_BYTES`` is decoded in one pass; a longer one pair by pair (a seek to the
    keyframe before each), so a worker's memory stays bounded whatever the clip length.
    """
    path, start, n = record["path"], record["start"], record["frames"]
    wanted = sorted({q for p in positions for q in (p, p + 1) if q < n})
    if n * record["width"] * record["height"] * 3 <= WHOLE_CLIP_BYTES:
        frames = read_video(path, start, n)[0]
        return {q: frames[q] for q in wanted}
    out: dict[int, np.ndarray] = {}
    for p in positions:
        pair = read_video(path, start + p, min(2, n - p))[0]
        out.update({p + i: frame for i, frame in enumerate(pair)})
    return out


def measure_frames(frames: dict[int, np.ndarray], positions: list[int], recipe: MeasureRecipe) -> dict:
    """Sharpness, brightness and motion of the clip's uint8 RGB frames (H, W, 3) at ``positions`` (and their successors)."""
    y = [luma(frames[i]) for i in positions]
    stats = {
        "sharpness": float(np.mean([sharpness(shrink(v, recipe.sharpness_size)) for v in y])),
        "luma": float(np.mean([v.mean() for v in y])),
        "dark": float(np.mean([(v <= DARK).mean() for v in y])),
        "bright": float(np.mean([(v >= BRIGHT).mean() for v in y])),
    }
    pairs = [i for i in positions if i + 1 in frames]
    if pairs:
        def grey(i: int) -> np.ndarray:
            return shrink(luma(frames[i]).round().astype(np.uint8), recipe.motion_size)

        flows = np.array([flow_stats(grey(i), grey(i + 1)) for i in pairs])
        stats["motion"], stats["motion_peak"] = float(flows[:, 0].mean()), float(flows[:, 1].mean())
    else:
        stats["motion"] = stats["motion_peak"] = 0.0
    return stats


class QualityScorer:
    """The learned quality score of a few frames of a clip, or None where the network's weights are missing."""

    def __init__(self, recipe: MeasureRecipe):
        self.recipe, self.net = recipe, None
        if recipe.quality is None:
            return
        from gvr.metrics.iqa import FrameMUSIQ
        from gvr.metrics.weights import MissingWeights

        try:
            self.net = FrameMUSIQ(recipe.quality_weights)
        except MissingWeights as err:
            log.info("no learned quality score: %s", str(err).splitlines()[0])

    def __call__(self, frames: list[np.ndarray]) -> float | None:
        """Mean score of up to ``quality_frames`` evenly spaced frames of ``frames`` (uint8 RGB (H, W, 3))."""
        if self.net is None:
            return None
        import torch

        picks = sorted({round(i * (len(frames) - 1) / max(1, self.recipe.quality_frames - 1))
                        for i in range(self.recipe.quality_frames)})
        x = torch.from_numpy(np.stack([frames[i] for i in picks])).permute(0, 3, 1, 2).float() / 255
        return float(self.net.score(x).mean())


_SCORERS: dict[tuple, QualityScorer] = {}  # one network per process and quality setting


def measure_clip(record: dict, recipe: MeasureRecipe) -> dict:
    """Journal entry of one clip: ``{"clip": record + measures}``, or ``{"error", "detail", "clip"}`` when unreadable."""
    positions = sample_positions(record["frames"], recipe.samples)
    try:
        frames = load_frames(record, positions)
    except Exception as err:  # noqa: BLE001 - a clip that fails to decode is dropped, not fatal
        log.warning("cannot measure %s from frame %d: %s", record["path"], record["start"], err)
        return {"error": "corrupt", "detail": str(err), "clip": record}
    stats = measure_frames(frames, positions, recipe)
    stats["short_side"] = min(record["width"], record["height"])
    stats["duration"] = record["frames"] / record["fps"]
    setting = (recipe.quality, recipe.quality_weights, recipe.quality_frames)
    if setting not in _SCORERS:
        _SCORERS[setting] = QualityScorer(recipe)
    scorer = _SCORERS[setting]
    quality = scorer([frames[p] for p in positions])
    if quality is not None:
        stats["quality"] = quality
    return {"clip": {**record, **stats}}
