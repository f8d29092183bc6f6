"""A resumable, rank-aware sampler over the training stream of clip indices."""

from collections.abc import Iterator

import torch.distributed as dist
from torch.utils.data import Sampler


class StreamSampler(Sampler[int]):
    """Yields the global clip indices of one epoch for this rank, optionally skipping a prefix.

    Epoch ``e`` covers the indices ``[e * n, (e + 1) * n)`` of an endless stream (``n`` = dataset
    length); rank ``r`` of ``w`` takes every ``w``-th of them. Items are random functions of their
    index, so no shuffling is needed. ``resume_at(epoch, batches, batch_size)`` skips what a
    checkpointed run already consumed in that epoch: a resumed run sees exactly the same clips.
    """

    def __init__(self, length: int):
        self.length = length
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, samples of this rank to skip)

    @staticmethod
    def _world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, batches: int, batch_size: int) -> None:
        """Skip the first ``batches`` batches of ``epoch`` (already trained on before a checkpoint)."""
        self._skip = (epoch, batches * batch_size)

    def __len__(self) -> int:
        rank, world = self._world()
        return len(range(rank, self.length, world))

    def __iter__(self) -> Iterator[int]:
        rank, world = self._world()
        own = range(self.epoch * self.length + rank, (self.epoch + 1) * self.length, world)
        skip = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            skip, self._skip = self._skip[1], None
        return iter(own[skip:])
