"""Step 1, scan and split: probe every video under a folder and cut it into clips at scene changes.

Cuts come from PySceneDetect's `ContentDetector` (mean HSV change between consecutive frames), fed with
frames that gvr's own PyAV reader decodes, in one pass per file. A file that cannot be opened or decoded to
its end (empty, corrupt, truncated) is recorded with a reason and skipped; it never stops the run.
"""

import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from gvr.data.manifest import VIDEO_EXTS
from gvr.data.scenes import detect_cuts
from gvr.data.video import VideoError, iter_frames, stream_info

log = logging.getLogger(__name__)


TRUNCATED = 0.9  # a file that decodes to less than this share of its declared duration has lost its end


class ScanRecipe:
    """How videos are found and split into clips (the ``scan:`` section of configs/prep.yaml).

    Args:
        min_frames: shortest clip kept; shorter scenes (and videos) are dropped.
        max_frames: longer scenes are chunked into clips of this many frames (None: one clip per scene).
        threshold: ContentDetector's cut threshold (mean HSV change, 0..255; PySceneDetect's default 27).
        min_scene_len: fewest frames between two cuts (ContentDetector's ``min_scene_len``).
        detect_width: frames are shrunk to at most this width before detection (speed; cuts are coarse).
        exts: file extensions that count as videos.
    """

    def __init__(
        self,
        min_frames: int = 17,
        max_frames: int | None = 250,
        threshold: float = 27.0,
        min_scene_len: int = 15,
        detect_width: int = 320,
        exts: tuple[str, ...] = VIDEO_EXTS,
    ):
        if min_frames < 1 or (max_frames is not None and max_frames < min_frames):
            raise ValueError(f"scan: need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
        self.min_frames, self.max_frames, self.threshold = min_frames, max_frames, threshold
        self.min_scene_len, self.detect_width, self.exts = min_scene_len, detect_width, tuple(e.lower() for e in exts)


def list_videos(root: str | os.PathLike, exts: Sequence[str]) -> Iterator[Path]:
    """Video files under ``root``, recursively, in sorted order, as a stream (one folder listed at a time)."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"video folder '{root}' does not exist or is not a folder")
    suffixes = {e.lower() for e in exts}
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from list_videos(entry.path, exts)
        elif entry.is_file() and Path(entry.name).suffix.lower() in suffixes:
            yield Path(entry.path)


def split_scenes(cuts: Sequence[int], frames: int, min_frames: int, max_frames: int | None) -> list[tuple[int, int]]:
    """``(start, length)`` clips of a video of ``frames`` frames cut before each frame in ``cuts``.

    Scenes shorter than ``min_frames`` are dropped; with ``max_frames``, a longer scene becomes consecutive
    clips of ``max_frames`` frames, plus its remainder when that is at least ``min_frames`` long.
    """
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < frames), frames]
    clips = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        step = max_frames or end - start
        for lo in range(start, end, step):
            length = min(step, end - lo)
            if length >= min_frames:
                clips.append((lo, length))
    return clips


def failure_reason(err: VideoError) -> str:
    """A short code for why a file is unusable: ``empty``, ``truncated`` or ``corrupt``."""
    text = re.sub(r"'[^']*'", "''", str(err))  # the message without the quoted file name
    if "is an empty file" in text:
        return "empty"
    if "is truncated or corrupt" in text or "decodable frames, needs" in text:
        return "truncated"  # opened, then failed part-way through the stream
    return "corrupt"


def scan_video(path: Path, root: Path, recipe: ScanRecipe) -> dict:
    """Journal entry of one video: ``{"clips": [...], "frames", "cuts"}`` or ``{"error": code, "detail": message}``.

    A clip record is ``{"path", "video", "scene", "start", "frames", "fps", "width", "height", "duration"}``
    (plus ``"caption"`` from a ``.txt`` file beside the video).
    """
    try:
        fps, width, height, declared = stream_info(path)
        cuts, frames = detect_cuts(iter_frames(path, 16), recipe.threshold, recipe.min_scene_len, recipe.detect_width)
        if declared is not None and frames < TRUNCATED * declared * fps:
            raise VideoError(f"video '{path}' is truncated or corrupt: {frames} frames decoded of the "
                             f"{declared * fps:.0f} its header declares")
    except VideoError as err:
        log.warning("skipping %s: %s", path, err)
        return {"error": failure_reason(err), "detail": str(err), "path": str(path)}
    except Exception as err:  # noqa: BLE001 - a decoder's surprise must not stop a corpus-wide scan
        log.warning("skipping %s: %s: %s", path, type(err).__name__, err)
        return {"error": "corrupt", "detail": f"{type(err).__name__}: {err}", "path": str(path)}
    if frames == 0:
        return {"error": "corrupt", "detail": f"video '{path}' has no decodable frames", "path": str(path)}
    if frames < recipe.min_frames:
        return {"error": "short", "detail": f"{frames} frames < scan.min_frames={recipe.min_frames}", "path": str(path)}
    caption = path.with_suffix(".txt")
    extra = {"caption": " ".join(caption.read_text(encoding="utf-8", errors="replace").split())} if caption.is_file() else {}
    scenes = [0, *cuts]
    clips = []
    for start, length in split_scenes(cuts, frames, recipe.min_frames, recipe.max_frames):
        clips.append({
            "path": str(path), "video": path.relative_to(root).as_posix(),
            "scene": sum(1 for s in scenes if s <= start) - 1, "start": start, "frames": length, "fps": fps,
            "width": width, "height": height, "duration": length / fps, **extra,
        })
    return {"clips": clips, "frames": frames, "cuts": cuts}
