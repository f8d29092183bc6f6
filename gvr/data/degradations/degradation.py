"""The degradation interface: HR clip -> LR clip of an exact size, reproducible from a generator."""

import operator
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from gvr.ops.resize import resize


class Degradation(ABC):
    """Turns an HR clip into the LR clip a model learns to super-resolve.

    Implementations draw every random choice from ``generator`` (never from Python's ``random`` or
    numpy's global state), so one seed gives a bit-identical result in any dataloader worker.
    """

    @abstractmethod
    def __call__(self, hr: torch.Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        """Degrade ``hr`` (3, T, H, W) in [-1, 1] to ``lr`` (3, T, h, w) in [-1, 1] with ``(h, w) == lr_size``."""


def check_input(hr: torch.Tensor, lr_size: Sequence[int], owner: str) -> tuple[int, int]:
    """Validate a degradation call and return ``lr_size`` as a tuple of ints; ``owner`` names the caller."""
    if not (isinstance(hr, torch.Tensor) and hr.ndim == 4 and hr.shape[0] == 3 and hr.is_floating_point()):
        got = tuple(hr.shape) if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise ValueError(f"{owner}: hr must be a float tensor (3, T, H, W), got {got}")
    if hr.shape[1] < 1 or hr.shape[2] < 1 or hr.shape[3] < 1:
        raise ValueError(f"{owner}: hr is empty, shape {tuple(hr.shape)}")
    try:
        h, w = (operator.index(side) for side in lr_size)
    except (TypeError, ValueError):
        h = w = 0
    if h < 1 or w < 1:
        raise ValueError(f"{owner}: lr_size must be two positive ints (height, width), got {lr_size!r}")
    return h, w


class BicubicDownsample(Degradation):
    """Plain bicubic resize to the LR size, no randomness: a clean baseline and a test fixture.

    Args:
        antialias: low-pass before downsampling (what image libraries do); False matches a bare
            ``F.interpolate(mode="bicubic")``.
    """

    def __init__(self, antialias: bool = True):
        self.antialias = antialias

    def __call__(self, hr: torch.Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        size = check_input(hr, lr_size, type(self).__name__)
        return resize(hr, size, "bicubic", self.antialias).clamp(-1, 1)  # (3, T) act as a batch of frames
