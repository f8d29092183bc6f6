"""Output files that never cost the user a file: they appear whole (a temporary name beside the target, renamed
into place when the writing succeeded) and never replace the input they were made from."""

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_output(source: str | os.PathLike, output: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse an ``output`` that would replace the ``source`` file (even with ``overwrite``: the same path, another
    spelling of it, a hard link or a symlink to it) or, without ``overwrite``, any existing file."""
    out, src = Path(output), Path(source)
    same = os.path.samefile(src, out) if out.exists() and src.exists() else out.resolve() == src.resolve()
    if same:
        raise FileExistsError(f"{output} is the input file; write the output to another file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A hidden ``.<name>.<random>.part`` path beside ``path`` to write to; it becomes ``path`` when the block
    ends normally and is deleted when it raises, so ``path`` never holds a half-written file. Missing parent
    folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


SHARDED_METADATA = "meta.pt"  # what a sharded (FSDP2 / distributed checkpoint) folder holds beside its shards


def require_single_file(path: str | Path, option: str) -> None:
    """Raise a clear error when ``path`` is a sharded checkpoint folder where a single file is needed."""
    path = Path(path)
    if path.is_dir() and (path / SHARDED_METADATA).is_file():
        raise ValueError(f"{option}: {path} is a sharded checkpoint folder (FSDP2Strategy); gather it into one file "
                         f"first: gvr consolidate {path} OUTPUT.ckpt")
