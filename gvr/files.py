"""Files that appear whole: a temporary name beside the target, renamed into place when the writing succeeded."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
