"""Where metric networks find their weight files: a path from config, a weights folder, or a library's cache.

Nothing is downloaded. Each network names its file once in a `WeightFile` (the file name the library itself
caches it under, where that library's cache folder is, and the URL to fetch it from), and `resolve_weights`
looks for it in that order:

1. ``path`` from config: the file itself, or a folder that holds a file of that name;
2. the library's usual cache folders (torch hub ``checkpoints/``, pyiqa's ``<torch hub>/pyiqa``, ...).

When none has it, `MissingWeights` says which file was wanted, where it looked and where to get it.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

PathLike = str | os.PathLike[str]


def torch_hub_dir() -> Path:
    """torch's hub folder (``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``), read at call time."""
    return Path(torch.hub.get_dir())


class MissingWeights(FileNotFoundError):
    """A metric's weight file is not on disk; carries the file it wanted, where it looked and where to get it."""

    def __init__(self, metric: str, filename: str, url: str, searched: list[str]):
        self.metric, self.filename, self.url, self.searched = metric, filename, url, list(searched)
        where = ", ".join(self.searched) if self.searched else "nowhere"
        self.message = (
            f"{metric}: weight file '{filename}' not found (looked in: {where}). Download it from {url} and "
            f"pass its path (or its folder) in the metric's weights config, or put it in one of those folders."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    @property
    def reason(self) -> str:
        """One line for an ``unavailable`` report."""
        return f"missing weights '{self.filename}' (get it from {self.url})"


@dataclass(frozen=True)
class WeightFile:
    """One weight file a metric needs: its name, the caches a library keeps it in, and where to download it."""

    filename: str
    url: str
    cache_dirs: tuple[Callable[[], Path], ...] = field(default=(lambda: torch_hub_dir() / "checkpoints",))

    def candidates(self, path: PathLike | None = None) -> list[Path]:
        """Every place the file may be, in search order."""
        places = []
        if path is not None:
            path = Path(path).expanduser()
            places.append(path / self.filename if path.is_dir() else path)
        places += [folder() / self.filename for folder in self.cache_dirs]
        return places


def resolve_weights(metric: str, spec: WeightFile, path: PathLike | None = None) -> Path:
    """The first existing candidate of `spec` (see `WeightFile.candidates`).

    An explicit ``path`` that is neither the file nor a folder holding it is an error at once: a typo in
    config must not silently fall back to some cached file.

    Raises:
        MissingWeights: no candidate exists.
    """
    places = spec.candidates(path)
    if path is not None:
        places = places[:1]
    for place in places:
        if place.is_file():
            return place
    raise MissingWeights(metric, spec.filename, spec.url, [str(p) for p in places])


def clean_state_dict(state: Mapping, key: str | None = "params") -> dict[str, torch.Tensor]:
    """A checkpoint's tensors: under ``state[key]`` when that key exists, ``module.`` prefixes (DataParallel) removed."""
    if key is not None and key in state and isinstance(state[key], Mapping):
        state = state[key]
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_checkpoint(path: PathLike, key: str | None = "params") -> dict[str, torch.Tensor]:
    """Tensors of a ``torch.save`` checkpoint, loaded with ``weights_only=True`` (no arbitrary pickles) on CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ValueError(f"cannot read weight file '{path}' as a tensor checkpoint: {e}") from e
    if not isinstance(state, Mapping):
        raise ValueError(f"weight file '{path}' holds a {type(state).__name__}, not a state dict")
    return clean_state_dict(state, key)
