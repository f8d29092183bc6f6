"""Upscale every video and photo under a folder with one model load, resumable and robust to bad files.

The outputs mirror the input tree under the output folder: ``DIR/a/clip.mov`` becomes ``OUT/a/clip.mp4``
(or ``.mkv``), ``DIR/b/photo.jpg`` becomes ``OUT/b/photo.jpg``. Every output appears whole (written to a
temporary file, renamed when done), so a file that exists is finished: a rerun skips it, and an interrupted
batch resumes where it stopped. A file that fails (unreadable, too short, ...) is logged with its reason and
the batch goes on. The summary (done, skipped, failed with reasons, seconds) is printed and written to
``OUT/upscale_summary.json``.
"""

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from gvr.data.manifest import VIDEO_EXTS
from gvr.data.video import VideoError
from gvr.inference.upscale import IMAGE_FORMATS, as_pipeline, is_image, upscale_image, upscale_video
from gvr.ops.files import atomic_path

log = logging.getLogger(__name__)

SUMMARY = "upscale_summary.json"
VIDEO_OUTPUTS = (".mp4", ".mkv")


def list_inputs(root: str | os.PathLike, skip: str | os.PathLike | None = None) -> Iterator[Path]:
    """Videos and photos under ``root``, recursively, sorted; hidden files and folders, and the folder
    ``skip`` (an output folder inside the input folder), are left out."""
    root, skip = Path(root), None if skip is None else Path(skip).resolve()
    wanted = {*VIDEO_EXTS, *IMAGE_FORMATS}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if skip is None or Path(entry.path).resolve() != skip:
                yield from list_inputs(entry.path, skip)
        elif entry.is_file() and Path(entry.name).suffix.lower() in wanted:
            yield Path(entry.path)


def output_for(source: Path, root: Path, out_dir: Path, video_ext: str) -> Path:
    """Where the upscale of ``source`` goes: its path under ``root`` moved to ``out_dir``, a video as ``video_ext``."""
    rel = source.relative_to(root)
    return out_dir / (rel if is_image(source) else rel.with_suffix(video_ext))


def upscale_folder(
    module,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    video_ext: str = ".mp4",
    overwrite: bool = False,
    progress: bool = True,
    video_kw: dict | None = None,
    image_kw: dict | None = None,
) -> dict:
    """Upscale every input under ``root`` (`list_inputs`) into ``out_dir`` (`output_for`) with ``module``.

    ``video_kw`` / ``image_kw`` are keywords of `upscale_video` / `upscale_image` (steps, chunk, tile, ...).
    An existing output is skipped (``overwrite`` redoes it). Returns the summary also written to
    ``out_dir/upscale_summary.json``: ``{"done": [...], "skipped": [...], "failed": [{"input", "reason"}],
    "seconds", "counts"}``.
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    if video_ext not in VIDEO_OUTPUTS:
        raise ValueError(f"video_ext must be one of {VIDEO_OUTPUTS}, got {video_ext!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"the output {out_dir} is a file; give a folder for the upscales of a folder")
    if out_dir.resolve() == root.resolve():
        raise ValueError(f"the output folder {out_dir} is the input folder; give another one")
    inputs = list(list_inputs(root, skip=out_dir))
    if not inputs:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_EXTS)}) or photos ({', '.join(IMAGE_FORMATS)}) under {root}")
    module = as_pipeline(module)  # once for every file
    summary = {"input": str(root), "output": str(out_dir), "done": [], "skipped": [], "failed": []}
    start = time.perf_counter()
    bar = tqdm(inputs, unit="file", desc="files", disable=not progress)
    for source in bar:
        target = output_for(source, root, out_dir, video_ext)
        bar.set_postfix_str(str(source.relative_to(root)))
        if target.exists() and not overwrite:
            summary["skipped"].append(str(target))
            continue
        began = time.perf_counter()
        try:
            if is_image(source):
                upscale_image(module, str(source), str(target), overwrite=overwrite, **(image_kw or {}))
            else:
                upscale_video(module, str(source), str(target), overwrite=overwrite, progress=progress,
                              **(video_kw or {}))
        except (VideoError, ValueError, OSError, RuntimeError) as err:  # one bad file never stops the batch
            log.warning("failed %s: %s", source, err)
            summary["failed"].append({"input": str(source), "reason": f"{type(err).__name__}: {err}"})
            continue
        summary["done"].append({"input": str(source), "output": str(target),
                                "seconds": round(time.perf_counter() - began, 3)})
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["counts"] = {k: len(summary[k]) for k in ("done", "skipped", "failed")}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / SUMMARY) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
