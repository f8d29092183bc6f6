"""The scale factor of each training batch, for a model that serves every factor of a range (``data.scale_range``).

Every clip keeps the HR crop ``hr_size``; its LR size is what the batch's factor makes it, rounded to whole
multiples of ``size_multiple`` (`gvr.data.dataset.lr_size_for`), so the LR and HR grids are exact and the factor
the model sees is ``hr_size / lr_size`` per axis (e.g. 64 / 26 = 2.46), never the nominal draw. HR compute is the
same at every factor; a high factor has fewer LR pixels.

All clips of one optimizer step (one batch on every rank) share the factor: it is drawn from ``(seed, epoch,
step within the epoch)``, which `gvr.data.sampler.StreamSampler`'s layout gives from the clip index alone
(epoch ``e`` holds the indices ``[e n, (e + 1) n)``; step ``k`` of it takes positions ``[k B w, (k + 1) B w)`` over
all ranks, ``B`` clips per rank and ``w`` ranks), so resumed runs see the same factors. The draw is log-uniform:
x1.5 -> x2 gets as many batches as x3 -> x4.
"""

import math
from dataclasses import dataclass

import torch

from gvr.ops.seeding import generator

_SCALE_KEY = 0x5CA1E  # keeps the factor's generator apart from the clip's own (seed, index)


@dataclass(frozen=True)
class ScaleDraw:
    """Per-step factors in ``[low, high]`` for a training stream of ``length`` clips an epoch, ``group`` a step.

    Args:
        low: smallest factor (HR / LR), > 1 is not required but > 0 is.
        high: largest factor, >= ``low``.
        group: clips per optimizer step over all ranks (batch size x world size).
        length: clips per epoch (the training dataset's length).
        seed: seed of the draws.
    """

    low: float
    high: float
    group: int
    length: int
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.low <= self.high:
            raise ValueError(f"scale_range must be [low, high] with 0 < low <= high, got [{self.low}, {self.high}]")
        if self.group < 1 or self.length < 1:
            raise ValueError(f"ScaleDraw: group ({self.group}) and length ({self.length}) must be >= 1")

    def step_of(self, index: int) -> tuple[int, int]:
        """``(epoch, step within the epoch)`` of clip ``index``."""
        epoch, position = divmod(index, self.length)
        return epoch, position // self.group

    def factor(self, index: int) -> float:
        """The nominal factor of clip ``index``'s step: log-uniform in ``[low, high]``."""
        u = float(torch.rand(1, generator=generator(self.seed, _SCALE_KEY, *self.step_of(index))))
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))

    def lr_size(self, hr_size: tuple[int, int], index: int, multiple: int) -> tuple[int, int]:
        """LR frame size of clip ``index`` (whole multiples of ``multiple``, kept within the range where a
        multiple allows it)."""
        return exact_lr_size(hr_size, self.factor(index), multiple, (self.low, self.high))


def exact_lr_size(hr_size: tuple[int, int], factor: float, multiple: int,
                  within: tuple[float, float] | None = None) -> tuple[int, int]:
    """The LR size nearest ``hr_size / factor`` in whole multiples of ``multiple`` (at least one), moved by one
    multiple where rounding took the true factor ``hr / lr`` out of ``within`` and a multiple inside exists."""
    out = []
    for side in hr_size:
        lr = max(multiple, multiple * round(side / factor / multiple))
        if within is not None:
            low, high = within
            if side / lr > high * (1 + 1e-9) and side / (lr + multiple) >= low:
                lr += multiple
            elif side / lr < low * (1 - 1e-9) and lr > multiple and side / (lr - multiple) <= high:
                lr -= multiple
        out.append(lr)
    return tuple(out)  # type: ignore[return-value]


def reachable_factors(hr_size: int, low: float, high: float, multiple: int) -> list[float]:
    """The exact factors ``hr / lr`` of one side that lie in ``[low, high]`` (what training can show the model)."""
    lrs = range(multiple, hr_size + 1, multiple)
    return sorted(hr_size / lr for lr in lrs if low * (1 - 1e-9) <= hr_size / lr <= high * (1 + 1e-9))
