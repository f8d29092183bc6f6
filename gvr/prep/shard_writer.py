"""Step 4, shard: the kept clips as WebDataset tar shards of fixed-size training windows (and their HR latents).

Why WebDataset: its shards are plain POSIX tar files (readable with ``tar``, any language, any object
store or HTTP server that serves bytes), its writer and its ``gopen`` reader install without touching torch
(``litdata`` pulls in boto3 and an object-store client, and keeps its own resumable loader state that would
sit beside gvr's). Exact resumption does not need a library's loader state here: a shard is read front to
back, and :mod:`gvr.data.shards` makes every training item a pure function of its stream position.

Layout of the shard folder::

    index.json           format, recipe (and its hash), frame size, latent shape, finished shards with SHA-256
    shard-00000.tar      samples "<key>.frames.npy" uint8 (T, H, W, 3), "<key>.meta.json"
                         and, with a codec, "<key>.z.npy" float32 (C, t, h, w)

Shard ``k`` holds the kept clips ``perm[k * shard_size : (k + 1) * shard_size]`` of a permutation seeded by
``seed`` (neighbouring clips of one video land in different shards), each clip cut into up to ``windows``
evenly spaced windows of ``num_frames`` frames, scaled to cover ``size`` and centre-cropped. A shard is
written under a temporary name and renamed when complete; a rerun skips the shards ``index.json`` lists
with a matching hash, and a folder made with another recipe (clips, size, codec) is refused.
"""

import io
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from gvr.codecs.codec import LatentCodec
from gvr.data.video import frames_to_tensor, read_video
from gvr.prep.jobs import check_recipe, digest, file_sha256, ordered_map, write_json

log = logging.getLogger(__name__)

FORMAT = "gvr-shards/1"


class ShardRecipe:
    """What the shards hold (the ``shard:`` section of configs/prep.yaml).

    Args:
        num_frames: frames per training window (``1 + 4k`` for codecs that pack time 4x).
        size: stored frame size (height, width): each frame is scaled to cover it, then centre-cropped.
        windows: most windows cut from one kept clip (evenly spaced, not overlapping).
        shard_size: kept clips per shard file.
        seed: seed of the permutation that spreads the kept clips over the shards.
        codec: latent codec whose HR latents are stored beside the frames (None: frames only).
    """

    def __init__(
        self,
        num_frames: int = 17,
        size: tuple[int, int] = (256, 256),
        windows: int = 1,
        shard_size: int = 64,
        seed: int = 0,
        codec: LatentCodec | None = None,
    ):
        if num_frames < 1 or windows < 1 or shard_size < 1 or min(size) < 1:
            raise ValueError(f"shard: num_frames, windows, shard_size and size must be >= 1, got "
                             f"{num_frames}, {windows}, {shard_size}, {size}")
        self.num_frames, self.size, self.windows = num_frames, tuple(size), windows
        self.shard_size, self.seed, self.codec = shard_size, seed, codec


def cover_crop(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames (T, H, W, 3) scaled to cover ``size`` = (height, width) (area filter down, cubic up), centre-cropped."""
    t, h, w, _ = frames.shape
    f = max(size[0] / h, size[1] / w)
    nh, nw = max(size[0], round(h * f)), max(size[1], round(w * f))
    if (nh, nw) != (h, w):
        method = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(frame, (nw, nh), interpolation=method) for frame in frames])
    top, left = (nh - size[0]) // 2, (nw - size[1]) // 2
    return np.ascontiguousarray(frames[:, top : top + size[0], left : left + size[1]])


def window_starts(frames: int, num_frames: int, windows: int) -> list[int]:
    """Starts of up to ``windows`` evenly spaced, non-overlapping windows of ``num_frames`` in ``frames`` frames."""
    n = min(windows, frames // num_frames)
    if n <= 1:
        return [(frames - num_frames) // 2] if n == 1 else []
    return [round(i * (frames - num_frames) / (n - 1)) for i in range(n)]


def line_offsets(path: Path) -> np.ndarray:
    """Byte offset of each non-blank line of a JSON-lines file (int64: 8 bytes a clip, the only per-clip memory)."""
    offsets, pos = [], 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                offsets.append(pos)
            pos += len(line)
    return np.asarray(offsets, np.int64)


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.tar"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_WORKER: dict = {}  # this process's recipe and output folder, set once per worker by `_init_worker`


def _init_worker(recipe: ShardRecipe, folder: str) -> None:
    _WORKER.update(recipe=recipe, folder=Path(folder))


@torch.no_grad()
def write_shard(task: tuple[int, list[tuple[int, dict]]]) -> dict:
    """Write shard ``k`` from ``(clip number, record)`` pairs; returns its index entry. Unreadable clips are skipped."""
    import webdataset as wds

    k, clips = task
    recipe, folder = _WORKER["recipe"], _WORKER["folder"]
    name = shard_name(k)
    tmp = folder / f".{name}.{secrets.token_hex(4)}.part"
    count, failed = 0, []
    try:
        with open(tmp, "wb") as stream, wds.TarWriter(stream, mtime=0) as sink:  # mtime 0: same bytes on every run
            for number, record in clips:
                for w, offset in enumerate(window_starts(record["frames"], recipe.num_frames, recipe.windows)):
                    start = record["start"] + offset
                    try:
                        frames = cover_crop(read_video(record["path"], start, recipe.num_frames)[0], recipe.size)
                    except Exception as err:  # noqa: BLE001 - one bad clip must not cost the shard
                        log.warning("shard %s: skipping %s from frame %d: %s", name, record["path"], start, err)
                        failed.append(record["path"])
                        break
                    sample = {"__key__": f"c{number:09d}w{w:02d}", "frames.npy": _npy(frames),
                              "meta.json": json.dumps({"path": record["path"], "start": start, "fps": record["fps"],
                                                       "caption": record.get("caption", ""), "clip": number}).encode()}
                    if recipe.codec is not None:
                        z = recipe.codec.encode(frames_to_tensor(frames)[None])[0]
                        sample["z.npy"] = _npy(z.float().cpu().numpy())
                    sink.write(sample)
                    count += 1
        os.replace(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": name, "count": count, "sha256": file_sha256(folder / name), "failed": failed}


def shard_tasks(kept: Path, recipe: ShardRecipe, skip: set[int]) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
    """``(k, [(clip number, record), ...])`` of each shard not in ``skip``, records read by offset (flat memory)."""
    offsets = line_offsets(kept)
    perm = np.random.default_rng(recipe.seed).permutation(len(offsets))
    with open(kept, "rb") as f:
        for k in range(-(-len(offsets) // recipe.shard_size)):
            if k in skip:
                continue
            numbers = perm[k * recipe.shard_size : (k + 1) * recipe.shard_size]
            records = []
            for n in numbers:
                f.seek(int(offsets[n]))
                records.append((int(n), json.loads(f.readline())))
            yield k, records


def latent_shape(recipe: ShardRecipe) -> list[int] | None:
    """Shape (C, t, h, w) of one stored latent, or None without a codec."""
    if recipe.codec is None:
        return None
    with torch.no_grad():
        z = recipe.codec.encode(torch.zeros(1, 3, recipe.num_frames, *recipe.size))
    return list(z.shape[1:])


def build_shards(kept: Path, folder: Path, recipe: ShardRecipe, config: dict, workers: int = 1) -> dict:
    """Write (or finish) the shards of the clips in ``kept`` into ``folder``; returns ``index.json``'s content.

    Args:
        kept: the filter step's ``kept.jsonl``.
        folder: shard folder.
        recipe: the shard recipe.
        config: the canonical form of ``recipe`` (from the YAML), part of the folder's identity.
        workers: processes writing shards in parallel.

    Raises:
        RecipeChanged: ``folder`` holds shards of other clips, another size or another codec.
    """
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    identity = {"format": FORMAT, "kept_sha256": file_sha256(kept), "shard": config,
                "codec": recipe.codec.describe() if recipe.codec is not None else None}
    identity = json.loads(json.dumps(identity, default=str))
    check_recipe(folder / "recipe.json", identity, "shards")
    index_path = folder / "index.json"
    old = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index = {"format": FORMAT, "recipe_hash": digest(identity), "num_frames": recipe.num_frames,
             "size": list(recipe.size), "latent_shape": latent_shape(recipe), "codec": identity["codec"],
             "complete": False, "shards": {}}
    for entry in old.get("shards", {}).values():
        if (folder / entry["file"]).is_file() and file_sha256(folder / entry["file"]) == entry["sha256"]:
            index["shards"][entry["file"]] = entry  # finished in an earlier run
    total = -(-len(line_offsets(kept)) // recipe.shard_size)
    done = {k for k in range(total) if shard_name(k) in index["shards"]}
    with tqdm(total=total, initial=len(done), desc="shard", unit="shard", dynamic_ncols=True) as bar:
        for entry in ordered_map(write_shard, shard_tasks(kept, recipe, done), workers,
                                 initializer=_init_worker, initargs=(recipe, str(folder))):
            index["shards"][entry["file"]] = entry
            write_json(index_path, index)
            bar.update(1)
    index["new"] = total - len(done)
    index["complete"] = True
    index["shards"] = dict(sorted(index["shards"].items()))
    write_json(index_path, {k: v for k, v in index.items() if k != "new"})
    return index
