"""Training clips streamed from prep shards (``make prep``), split over ranks and workers, resumable exactly.

The shards are read front to back (WebDataset tar files, local or at any URL ``webdataset.gopen`` opens:
``https://``, ``pipe:``, ``gs://``, ...). The stream is laid out in *slots*, one per (rank, dataloader
worker): slot ``s`` of ``S`` reads the shard units ``s, s + S, s + 2S, ...`` of an endless sequence in which
round ``r`` visits every shard once, in an order permuted by ``(seed, r)``. So ranks and workers read
disjoint shards, each shard sequentially, and every slot has data however few shards there are.

:class:`ShardSampler` turns the rank's batches into slot positions: batch ``b`` of an epoch goes to
worker ``b % W`` (the order in which a DataLoader hands out batches), and its items are the next positions
of that worker's slot. A dataset index encodes ``(position, slot)`` and every item (its stream sample, its
crop, flip and degradation) is a pure function of that index, so a run resumed after ``k`` batches sees
exactly the batches an uninterrupted run would have seen, as with :class:`gvr.data.sampler.StreamSampler`
(same world size, batch size and ``num_workers`` required).
"""

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from gvr.data.dataset import ClipDataset, item_generator
from gvr.data.degradations.degradation import Degradation
from gvr.data.errors import MissingData
from gvr.data.video import frames_to_tensor
from gvr.ops.seeding import generator

FORMAT = "gvr-shards/1"


def _is_url(source: str) -> bool:
    return "://" in source or source.startswith("pipe:")


def read_index(source: str) -> dict:
    """The ``index.json`` of a shard folder or URL prefix (``make prep`` writes it beside the shards)."""
    if _is_url(source):
        import webdataset as wds

        with wds.gopen(source.rstrip("/") + "/index.json") as f:
            index = json.loads(f.read())
    else:
        path = Path(source) / "index.json"
        if not path.is_file():
            raise MissingData(f"no shards at {source} (index.json missing): run `make prep SRC=... OUT=...`")
        index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{source} is not a gvr shard folder (format {index.get('format')!r}, expected {FORMAT!r})")
    if not index.get("complete"):
        raise ValueError(f"the shards at {source} are unfinished: run the shard step (`make prep`) again")
    return index


class SlotStream:
    """Sequential reader of one slot's endless sample stream; cheap to move forward, reopened to go back."""

    def __init__(self, source: str, shards: list[dict], slot: int, slots: int, seed: int):
        self.source, self.shards, self.slot, self.slots, self.seed = source, shards, slot, slots, seed
        self.unit, self.unit_start = 0, 0  # the unit being read and the stream position of its first sample
        self.pos = 0  # stream position of the next sample of `self.samples`
        self.samples: Iterator[dict] | None = None
        self._perm: tuple[int, torch.Tensor] | None = None  # (round, its shard order)

    def shard_of(self, unit: int) -> int:
        """Shard read by this slot's ``unit``-th unit (global unit ``slot + unit * slots``)."""
        r, k = divmod(self.slot + unit * self.slots, len(self.shards))
        if self._perm is None or self._perm[0] != r:
            self._perm = (r, torch.randperm(len(self.shards), generator=generator(self.seed, r)))
        return int(self._perm[1][k])

    def _count(self, unit: int) -> int:
        return self.shards[self.shard_of(unit)]["count"]

    def _close(self) -> None:
        if self.samples is not None:
            self.samples.close()
        self.samples = None

    def _open(self) -> None:
        """Start reading the current unit's shard from its first sample."""
        import webdataset as wds

        self._close()
        name = self.shards[self.shard_of(self.unit)]["file"]
        url = self.source.rstrip("/") + "/" + name if _is_url(self.source) else str(Path(self.source) / name)
        self.samples, self.pos = wds.tariterators.tarfile_samples([{"url": url}]), self.unit_start

    def __getitem__(self, pos: int) -> dict:
        """Raw sample (``{"__key__", "frames.npy", "meta.json", ...}``) at stream position ``pos``."""
        if pos < self.unit_start:  # behind the current unit: walk again from the slot's start
            self._close()
            self.unit, self.unit_start = 0, 0
        elif self.samples is not None and pos < self.pos:  # behind in the current unit: reread it
            self._close()
        while pos >= self.unit_start + self._count(self.unit):  # a later unit: skip whole shards unread
            self._close()
            self.unit_start += self._count(self.unit)
            self.unit += 1
        if self.samples is None:
            self._open()
        while self.pos < pos:  # forward in the current unit
            next(self.samples)
            self.pos += 1
        self.pos += 1
        return next(self.samples)


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


class ShardClipDataset(ClipDataset):
    """HR/LR clip pairs (and stored HR latents ``z``) from prep shards; index ``pos * slots + slot``.

    Training items take a random window of ``num_frames`` frames and a random ``hr_size`` crop of the stored
    clip with a random horizontal flip; with stored latents the clip is used whole (its latent must match
    it), so ``num_frames`` and ``hr_size`` must equal the shards' window and size. The LR clip is
    ``degradation(hr)``, seeded by the index.

    Args:
        source: shard folder or URL prefix (holding ``index.json``).
        num_frames: frames per training clip.
        hr_size: HR crop (height, width).
        scale: HR size / LR size.
        degradation: how LR clips are made from HR clips.
        slots: streams the index space is split into (world size x dataloader workers).
        size_multiple: LR sizes are rounded to multiples of this.
        length: items per epoch of the stream.
        seed: seed of the shard order and of the crops and degradations.
        latents: serve the stored HR latents as ``z`` (when the shards hold them).
    """

    def __init__(
        self,
        source: str,
        num_frames: int,
        hr_size: tuple[int, int],
        scale: float,
        degradation: Degradation,
        slots: int = 1,
        size_multiple: int = 8,
        length: int = 1000,
        seed: int = 0,
        latents: bool = True,
    ):
        self.source, self.index = source, read_index(source)
        self.shards = [s for _, s in sorted(self.index["shards"].items()) if s["count"] > 0]
        if not self.shards:
            raise ValueError(f"the shards at {source} hold no samples")
        # The stored clips were cut on the codec's grid already: the crop is not checked against size_multiple.
        super().__init__(num_frames, hr_size, scale, degradation, size_multiple, check_multiple=False)
        self.slots, self.length, self.seed = slots, length, seed
        self.latents = latents and self.index.get("latent_shape") is not None
        stored_t, (stored_h, stored_w) = self.index["num_frames"], self.index["size"]
        if self.latents and (num_frames, self.hr_size) != (stored_t, (stored_h, stored_w)):
            raise ValueError(f"the shards at {source} store latents of {stored_t}-frame {stored_h}x{stored_w} clips; "
                             f"data.num_frames={num_frames} and data.hr_size={list(self.hr_size)} must match them")
        if num_frames > stored_t or self.hr_size[0] > stored_h or self.hr_size[1] > stored_w:
            raise ValueError(f"the shards at {source} hold {stored_t}-frame {stored_h}x{stored_w} clips, smaller than "
                             f"data.num_frames={num_frames} x data.hr_size={list(self.hr_size)}")
        self._streams: dict[int, SlotStream] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_streams": {}}  # open readers stay behind (dataloader workers open their own)

    @property
    def codec(self) -> dict | None:
        """The ``describe()`` of the codec that made the stored latents (None without latents)."""
        return self.index.get("codec")

    def __len__(self) -> int:
        return self.length

    def sample(self, slot: int, pos: int) -> dict:
        """Raw sample at position ``pos`` of slot ``slot``'s stream."""
        if slot not in self._streams:
            self._streams[slot] = SlotStream(self.source, self.shards, slot, self.slots, self.seed)
        return self._streams[slot][pos]

    def __getitem__(self, index: int) -> dict:
        pos, slot = divmod(index, self.slots)
        raw = self.sample(slot, pos)
        meta = json.loads(raw["meta.json"])
        frames = _npy(raw["frames.npy"])  # (T, H, W, 3) uint8
        g = item_generator(self.seed, index)
        item = {"index": index, "path": meta["path"], "caption": meta.get("caption", "")}
        if self.latents:
            hr = frames_to_tensor(frames)
            item["z"] = torch.from_numpy(_npy(raw["z.npy"]))
            start = 0
        else:
            (t, h, w, _), (hh, ww) = frames.shape, self.hr_size
            start = int(torch.randint(t - self.num_frames + 1, (1,), generator=g))
            top = int(torch.randint(h - hh + 1, (1,), generator=g))
            left = int(torch.randint(w - ww + 1, (1,), generator=g))
            frames = frames[start : start + self.num_frames, top : top + hh, left : left + ww]
            if bool(torch.rand(1, generator=g) < 0.5):
                frames = frames[:, :, ::-1]
            hr = frames_to_tensor(np.ascontiguousarray(frames))
        item.update(hr=hr, lr=self.degradation(hr, self.lr_size, g), start=meta["start"] + start)
        return item


class ShardSampler(Sampler[int]):
    """Yields this rank's dataset indices of one epoch: batch ``b`` takes the next positions of worker ``b % W``'s slot.

    Epoch ``e`` has ``B`` batches per rank (``length`` split over the ranks, whole batches only); worker
    ``w``'s slot is ``rank * W + w``, and its ``i``-th batch of epoch ``e`` covers slot positions
    ``(e * B_w + i) * batch_size ...`` where ``B_w`` is the number of that worker's batches per epoch.
    ``resume_at(epoch, batches, batch_size)`` skips what a checkpointed run already consumed.

    Args:
        length: items per epoch over all ranks.
        batch_size: items per batch.
        workers: dataloader worker processes (0 counts as 1: the main process).
        rank: this rank (default: from torch.distributed).
        world: number of ranks (default: from torch.distributed).
    """

    def __init__(self, length: int, batch_size: int, workers: int, rank: int | None = None, world: int | None = None):
        self.length, self.batch_size, self.workers = length, batch_size, max(1, workers)
        self._rank, self._world = rank, world
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, batches to skip)

    def world(self) -> tuple[int, int]:
        """(rank, world size)."""
        if self._rank is not None and self._world is not None:
            return self._rank, self._world
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    @property
    def slots(self) -> int:
        return self.world()[1] * self.workers

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, batches: int, batch_size: int) -> None:
        """Skip the first ``batches`` batches of ``epoch`` (already trained on before a checkpoint).

        ``batch_size`` is the one the run resumes with (the interface of `StreamSampler.resume_at`); that it is the
        checkpoint's is checked by the datamodule against the checkpoint's stream layout.
        """
        self._skip = (epoch, batches)

    def batches(self) -> int:
        """Batches per epoch on this rank."""
        rank, world = self.world()
        return len(range(rank, self.length, world)) // self.batch_size

    def __len__(self) -> int:
        return self.batches() * self.batch_size

    def __iter__(self) -> Iterator[int]:
        rank, world = self.world()
        total, w_count, bs = self.batches(), self.workers, self.batch_size
        first = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            first, self._skip = self._skip[1], None
        for b in range(first, total):
            w = b % w_count
            slot = rank * w_count + w
            per_epoch = len(range(w, total, w_count))
            start = (self.epoch * per_epoch + b // w_count) * bs
            for pos in range(start, start + bs):
                yield pos * world * w_count + slot
