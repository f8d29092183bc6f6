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

With ``hr_min`` the HR crop may shrink too: each axis takes the HR side in ``[hr_min, hr_size]`` (multiples of
``size_multiple``) whose exact ratio to its LR side comes nearest the draw, so the factors a step can show are
dense (64x64 crops alone reach 14 factors in [1.5, 4], x2.8 not among them; with ``hr_min`` 56, 56 / 20 = x2.8
and 60 / 24 = x2.5 exactly). A smaller crop costs less, never more.
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
        hr_min: smallest HR crop (height, width) a step may take so that its grids come nearer the draw
            (`exact_sizes`); None: the HR crop is always ``hr_size``.
    """

    low: float
    high: float
    group: int
    length: int
    seed: int = 0
    hr_min: tuple[int, int] | None = None

    def __post_init__(self):
        if not 0 < self.low <= self.high:
            raise ValueError(f"scale_range must be [low, high] with 0 < low <= high, got [{self.low}, {self.high}]")
        if self.hr_min is not None and (len(self.hr_min) != 2 or min(self.hr_min) < 1):
            raise ValueError(f"hr_min must be (height, width) of at least one pixel each, got {self.hr_min}")
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
        return self.sizes(hr_size, index, multiple)[1]

    def sizes(self, hr_size: tuple[int, int], index: int, multiple: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(hr, lr)`` frame sizes of clip ``index``: ``hr_size`` and its exact LR size, or under ``hr_min`` the
        HR crop (at most ``hr_size``) whose grids make the step's factor most nearly (`exact_sizes`)."""
        within = (self.low, self.high)
        if self.hr_min is None:
            return tuple(hr_size), exact_lr_size(hr_size, self.factor(index), multiple, within)  # type: ignore[return-value]
        return exact_sizes(hr_size, self.hr_min, self.factor(index), multiple, within)


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


def exact_sizes(hr_size: tuple[int, int], hr_min: tuple[int, int], factor: float, multiple: int,
                within: tuple[float, float] | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(hr, lr)``: per axis, of the HR sides in ``[hr_min, hr_size]`` that are multiples of ``multiple`` (each with
    its `exact_lr_size`), the one whose ratio ``hr / lr`` is nearest ``factor`` (in log), the largest on a tie.
    An ``hr_min`` above ``hr_size`` or below one multiple is clamped to them."""
    hr_out, lr_out = [], []
    for side, smallest in zip(hr_size, hr_min):
        best = None
        for hr in hr_sides(side, smallest, multiple):
            (lr,) = exact_lr_size((hr,), factor, multiple, within)
            error = abs(math.log(hr / lr / factor))
            if best is None or error < best[0] - 1e-12:
                best = (error, hr, lr)
        hr_out.append(best[1])
        lr_out.append(best[2])
    return tuple(hr_out), tuple(lr_out)  # type: ignore[return-value]


def hr_sides(side: int, smallest: int, multiple: int) -> range:
    """The HR sides a shrinking crop may take on one axis, largest first: multiples of ``multiple`` from ``side``
    (rounded down to one) to ``smallest`` (clamped to one multiple and to ``side``)."""
    top = side - side % multiple if side >= multiple else side
    return range(top, max(multiple, min(smallest, top)) - 1, -multiple)


def reachable_factors(hr_size: int, low: float, high: float, multiple: int, hr_min: int | None = None) -> list[float]:
    """The exact factors ``hr / lr`` of one side that lie in ``[low, high]`` (what training can show the model),
    with HR sides from ``hr_min`` (default ``hr_size``) to ``hr_size`` in multiples of ``multiple``."""
    hrs = [hr_size] if hr_min is None else hr_sides(hr_size, hr_min, multiple)
    found = {hr / lr for hr in hrs for lr in range(multiple, hr + 1, multiple)
             if low * (1 - 1e-9) <= hr / lr <= high * (1 + 1e-9)}
    return sorted(found)
