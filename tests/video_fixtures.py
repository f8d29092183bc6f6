"""Synthetic videos for tests: smooth, colourful, moving content written directly with PyAV."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def smooth_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): drifting colour waves, smooth enough that yuv420p keeps them within a few levels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    freq, phase = rng.uniform(0.02, 0.08, size=(3, 2)), rng.uniform(0, 2 * np.pi, size=3)
    frames = [
        np.stack([127.5 + 100 * np.sin(fx * (x - 2 * k) + fy * (y + k) + p) for (fx, fy), p in zip(freq, phase)], -1)
        for k in range(t)
    ]
    return np.stack(frames).round().astype(np.uint8)


def make_video(
    path: Path,
    frames: np.ndarray,
    fps: int | Fraction = 24,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """H.264 yuv420p (crf 0 unless `options` say otherwise) written with PyAV, independently of gvr's writer.

    The container follows the suffix of `path` (.mp4, .mkv); even frame sizes only.
    """
    with av.open(str(path), "w", container_options=container_options or {}) as container:
        stream = container.add_stream("libx264", rate=fps, options=options or {"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path
