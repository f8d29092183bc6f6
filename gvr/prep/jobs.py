"""The machinery every prep step shares: JSON-lines streams, resumable journals, ordered process pools, recipes.

A step maps a deterministic stream of inputs (video files, clip records) to one journal line each, in input
order. The journal is appended to and flushed line by line; a rerun counts its complete lines, checks that
they name the same inputs, and continues after them. Final outputs are written from the journal to a hidden
temporary file and renamed, so they appear whole or not at all.
"""

import hashlib
import json
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from gvr.ops.files import atomic_path

log = logging.getLogger(__name__)


class RecipeChanged(ValueError):
    """An output folder was made with another recipe than the one asked for now."""


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Stream the JSON objects of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[str]]:
    """A text file that appears at ``path`` only when the block ends normally (a temporary file, then a rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_writer(path) as f:
        json.dump(data, f, indent=1, sort_keys=True)


def digest(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data``."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_recipe(path: str | os.PathLike, recipe: dict, what: str) -> None:
    """Record ``recipe`` at ``path``, or refuse when ``path`` already holds a different one.

    Raises:
        RecipeChanged: names the keys that differ; the caller's output was made with the old recipe.
    """
    path = Path(path)
    if path.is_file():
        old = json.loads(path.read_text())
        if digest(old) != digest(recipe):
            keys = sorted(k for k in set(old) | set(recipe) if digest(old.get(k)) != digest(recipe.get(k)))
            raise RecipeChanged(
                f"{path.parent} holds {what} made with another recipe (differs in: {', '.join(keys)}); "
                f"use another output folder or delete {path.parent} first"
            )
        return
    write_json(path, recipe)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Worker start: one OpenCV / torch thread per process (the pool is the parallelism), then ``initializer``."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    if initializer is not None:
        initializer(*initargs)


def ordered_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int,
    window: int = 0,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[Any]:
    """``map(fn, items)`` over ``workers`` processes, results in input order, at most ``window`` items in flight.

    ``workers <= 1`` runs in this process. ``fn`` must be picklable (a module-level function or a
    ``functools.partial`` of one); large state (a codec) goes to each worker once through
    ``initializer(*initargs)`` instead. The window (default ``4 * workers``) bounds memory: inputs are
    read only as results are taken.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    window = window or 4 * workers
    # Not "fork": a parent whose OpenCV, OpenMP or codec thread pools ran would hand its children held locks.
    # The fork server imports the prep modules once; each worker is a cheap fork of that clean process.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gvr.prep.steps"])
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(initializer, initargs)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _complete_lines(path: Path) -> int:
    """Number of complete lines of a journal; a torn last line (an interrupted write) is cut off."""
    if not path.is_file():
        return 0
    count, good = 0, 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            count, good = count + 1, good + len(line)
    if good != path.stat().st_size:
        log.info("%s: dropping a torn last line", path)
        with open(path, "r+b") as f:
            f.truncate(good)
    return count


def run_journal(
    journal: str | os.PathLike,
    items: Iterable[Any],
    key: Callable[[Any], str],
    fn: Callable[[Any], dict],
    workers: int = 1,
    desc: str = "",
    total: int | None = None,
) -> int:
    """Append ``fn(item)`` (with ``"key": key(item)``) to ``journal`` for each item it does not hold yet.

    The journal's lines answer the first items in order; a rerun skips as many items as it has complete
    lines, after checking that their keys agree. Returns the number of items processed now (0: nothing to do).

    Raises:
        RecipeChanged: the inputs are not those the journal was started on.
    """
    journal = Path(journal)
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = _complete_lines(journal)
    items = iter(items)
    if done:
        checked = 0
        for number, (item, line) in enumerate(zip(islice(items, done), read_jsonl(journal)), 1):
            if line.get("key") != key(item):
                raise RecipeChanged(f"{journal}, line {number}: journal of '{line.get('key')}' but input "
                                    f"{number} is '{key(item)}'; the inputs changed: delete {journal} to start over")
            checked = number
        if checked < done:
            raise RecipeChanged(f"{journal} answers {done} inputs but there are only {checked} now; "
                                f"the inputs changed: delete {journal} to start over")

    def keyed(item: Any) -> tuple[str, Any]:
        return key(item), item

    new = 0
    with open(journal, "a", encoding="utf-8") as f, tqdm(total=total, initial=done, desc=desc, unit="item",
                                                         dynamic_ncols=True, mininterval=1.0) as bar:
        for item_key, result in ordered_map(_Keyed(fn), map(keyed, items), workers):
            f.write(json.dumps({"key": item_key, **result}) + "\n")
            f.flush()
            new += 1
            bar.update(1)
    return new


class _Keyed:
    """``(key, item) -> (key, fn(item))``: a picklable wrapper that carries the key through the pool."""

    def __init__(self, fn: Callable[[Any], dict]):
        self.fn = fn

    def __call__(self, pair: tuple[str, Any]) -> tuple[str, dict]:
        return pair[0], self.fn(pair[1])


def count_lines(path: str | os.PathLike) -> int:
    """Non-blank lines of a text file (for progress-bar totals)."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
