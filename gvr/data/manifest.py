"""Video manifests: one JSON object a line, ``{"path", "frames", "fps", "width", "height"}`` per video.

A video with a caption file beside it (same name, ``.txt``) also gets ``"caption"``: its text, stripped.
"""

import fnmatch
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from gvr.data.errors import MissingData
from gvr.data.video import PathLike, VideoError, probe_video
from gvr.ops.files import atomic_path

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm")


def scan_videos(
    folder: PathLike,
    min_frames: int,
    exts: Sequence[str] = VIDEO_EXTS,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[dict]:
    """Probe every video under `folder` (recursively, in sorted order) and describe the usable ones.

    Unreadable videos and videos shorter than `min_frames` are skipped with a logged warning that
    names the file and the reason.

    Args:
        folder: folder to search.
        min_frames: fewest decodable frames a video needs to be listed.
        exts: file extensions that count as videos (case-insensitive).
        include: if given, keep only files whose path relative to `folder` matches one of these globs.
        exclude: drop files whose path relative to `folder` matches one of these globs.

    Returns:
        one record per usable video: ``{"path", "frames", "fps", "width", "height"}`` (plus ``"caption"``
        where a caption file exists), where ``path`` is `folder` joined with the file's relative path.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"video folder '{folder}' does not exist or is not a folder")
    suffixes = {e.lower() for e in exts}

    def wanted(path: Path) -> bool:
        rel = path.relative_to(root).as_posix()
        return (not include or any(fnmatch.fnmatch(rel, g) for g in include)) and not any(
            fnmatch.fnmatch(rel, g) for g in exclude
        )

    records = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file() and wanted(p)):
        try:
            info = probe_video(path)
        except VideoError as e:
            log.warning("skipping %s: %s", path, e)
            continue
        if info.frames < min_frames:
            log.warning("skipping %s: %d frames, fewer than min_frames=%d", path, info.frames, min_frames)
            continue
        record = {"path": info.path, "frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height}
        caption = path.with_suffix(".txt")
        if caption.is_file():
            record["caption"] = " ".join(caption.read_text(encoding="utf-8", errors="replace").split())
        records.append(record)
    return records


def write_manifest(records: Iterable[dict], path: PathLike) -> None:
    """Write `records` as JSON lines, atomically (a temporary file beside `path`, then a rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def read_manifest(path: PathLike) -> list[dict]:
    """Records of a JSON-lines manifest (blank lines ignored).

    A relative ``path`` is read as written (from the working directory, as `make manifests` writes them,
    e.g. ``data/images/...``); one that is not found there but is found beside the manifest (a manifest that
    names its files relative to itself, as a hand-written one in the data folder does) is replaced by that
    path. A path found in neither place is kept as written, so the error that follows names it.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a line is not a JSON object with a "path"; the message gives the line number.
    """
    if not os.path.isfile(path):
        raise MissingData(f"manifest '{path}' does not exist (build one with data_prep/manifest.py)")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"manifest '{path}', line {number}: invalid JSON ({e})") from e
            if not isinstance(record, dict) or "path" not in record:
                raise ValueError(f"manifest '{path}', line {number}: expected a JSON object with a \"path\"")
            records.append(record)
    beside = Path(path).parent
    for record in records:
        name = Path(record["path"])
        if not name.is_absolute() and not name.exists() and (beside / name).exists():
            record["path"] = str(beside / name)
    return records
