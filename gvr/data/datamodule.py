"""VideoDataModule: train / val / test clip pairs from manifests, predict inputs from video files."""

import json
import logging
from dataclasses import asdict
from pathlib import Path

import lightning as L
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from gvr.data.dataset import VideoClipDataset
from gvr.data.degradations.classic import ClassicDegradation
from gvr.data.degradations.degradation import Degradation
from gvr.data.errors import DataError, MissingData
from gvr.data.image_clips import ImageClipDataset, MixedClipDataset, PhotoClips
from gvr.data.manifest import read_manifest
from gvr.data.pair_cache import PairCacheDataset
from gvr.data.predict import VideoChunkDataset
from gvr.data.sampler import StreamSampler
from gvr.data.scales import ScaleDraw
from gvr.data.shards import ShardClipDataset, ShardSampler

log = logging.getLogger(__name__)


class VideoDataModule(L.LightningDataModule):
    """Serves degraded/clean clip pairs for training and evaluation.

    Args:
        train_manifest: JSON-lines manifest of training videos (``make manifests`` writes one).
        val_manifest: manifest of held-out videos for validation (and test when ``test_manifest`` is unset).
        test_manifest: manifest for ``gvr test``; defaults to ``val_manifest``.
        scale: super-resolution factor, HR size / LR size (need not be an integer); with ``scale_range``, the factor
            of validation and test clips (and the default of ``gvr upscale``).
        scale_range: ``[low, high]``: train one model for every factor of the range (a backbone with
            ``ratio_embedding``): each training step draws its factor (`gvr.data.scales.ScaleDraw`, log-uniform),
            the HR crop stays ``hr_size`` and the LR size is exact in multiples of ``size_multiple``. Live-degraded
            clips (videos and photos) only. None: every clip at ``scale``.
        num_frames: pixel frames per clip (``1 + 4k`` for codecs that pack time 4x).
        hr_size: HR crop as (height, width); a multiple of ``size_multiple``.
        hr_size_min: with ``scale_range``, the smallest HR crop (height, width) a step may take: each axis's HR
            side in ``[hr_size_min, hr_size]`` is the one whose exact ratio to its LR side is nearest the step's
            draw (`gvr.data.scales.exact_sizes`), so training sees a dense grid of factors (e.g. x2.8 as 56 / 20,
            which 64x64 crops alone never make). None: the HR crop is always ``hr_size``.
        size_multiple: HR and LR sizes are rounded to multiples of this (the codec's spatial factor).
        degradation: how LR clips are made from HR clips (default: one-order classic degradation).
        batch_size: clips per batch on each device.
        num_workers: dataloader worker processes.
        samples_per_epoch: training clips per epoch (the training stream is endless and random).
        val_clips_per_video: evenly spaced validation clips taken from each held-out video.
        seed: seed of the clip stream and of the degradations.
        no_reference: ``gvr test`` without ground truth: the test videos are LR inputs, centre-cropped to
            ``hr_size / scale``, and only no-reference metrics are scored.
        train_cache: folder of a precomputed pair cache (``make pairs``) to train on instead of live-degraded
            clips (stage 2); validation still degrades the held-out clips live with ``degradation``.
        train_shards: folder or URL prefix of prep shards (``make prep``: OUT/shards) to train on instead of
            ``train_manifest``: no mp4 decoding; split over ranks and workers, resumed exactly (see
            :mod:`gvr.data.shards`). Validation still reads ``val_manifest``.
        shard_latents: use the HR latents stored in the shards (when they hold them; their codec must be the model's).
        cache_frames: keep decoded videos in memory (fast for the small embedded set).
        predict_inputs: LR videos that ``gvr predict`` upscales (one output file each).
        predict_chunk: frames per temporal window when predicting.
        predict_overlap: frames shared by neighbouring windows (cross-faded).
        photos: photographs as camera-path clips beside the videos (`gvr.data.image_clips.PhotoClips`: the train
            and held-out photo manifests, the fraction of training clips from photos, validation clips per photo,
            the camera; :class:`gvr.data.image_clips.ImageClipDataset` makes them); None: videos only.
    """

    def __init__(
        self,
        train_manifest: str | None = "data/manifests/train.jsonl",
        val_manifest: str | None = "data/manifests/val.jsonl",
        test_manifest: str | None = None,
        scale: float = 2.5,
        scale_range: tuple[float, float] | None = None,
        num_frames: int = 5,
        hr_size: tuple[int, int] = (160, 160),
        hr_size_min: tuple[int, int] | None = None,
        size_multiple: int = 8,
        degradation: Degradation | None = None,
        batch_size: int = 4,
        num_workers: int = 1,
        samples_per_epoch: int = 1000,
        val_clips_per_video: int = 2,
        seed: int = 0,
        cache_frames: bool = True,
        predict_inputs: list[str] | None = None,
        predict_chunk: int = 17,
        predict_overlap: int = 4,
        train_cache: str | None = None,
        train_shards: str | None = None,
        shard_latents: bool = True,
        no_reference: bool = False,
        photos: PhotoClips | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["degradation"])
        self.degradation = degradation if degradation is not None else ClassicDegradation()
        self.photos = photos if photos is not None else PhotoClips()  # checked when built (PhotoClips.__post_init__)
        self.train_set: Dataset | None = None
        if scale_range is not None:
            ScaleDraw(*scale_range, group=1, length=1)  # checks the range now, not at the first batch
        if hr_size_min is not None:
            if scale_range is None:
                raise ValueError("data.hr_size_min shrinks the HR crop to a step's factor: it needs data.scale_range")
            if len(hr_size_min) != 2 or any(m < size_multiple or m > side or m % size_multiple
                                            for m, side in zip(hr_size_min, hr_size)):
                raise ValueError(f"data.hr_size_min {tuple(hr_size_min)} must be (height, width), multiples of "
                                 f"size_multiple={size_multiple}, at most hr_size {tuple(hr_size)}")

    def _records(self, path: str | None, role: str) -> list[dict]:
        if path is None:
            raise DataError(f"data.{role}_manifest is not set")
        if Path(path).is_dir():
            raise MissingData(f"{role} manifest {path} is a folder; data.{role}_manifest names a .jsonl file "
                              f"(`make manifests` writes data/manifests/{role}.jsonl)")
        if not Path(path).is_file():
            raise MissingData(f"{role} manifest {path} not found: run `make manifests` (or set data.{role}_manifest)")
        return read_manifest(path)

    def _scales(self, train: bool) -> ScaleDraw | None:
        """The per-step factors of training under ``scale_range`` (None for evaluation, or one factor)."""
        hp = self.hparams
        if not train or hp.scale_range is None:
            return None
        return ScaleDraw(*hp.scale_range, group=hp.batch_size * self._world_size(), length=hp.samples_per_epoch,
                         seed=hp.seed, hr_min=None if hp.hr_size_min is None else tuple(hp.hr_size_min))

    def _dataset(self, path: str | None, role: str, train: bool, seed: int, **kwargs) -> VideoClipDataset:
        hp = self.hparams
        records = self._records(path, role)
        try:
            return VideoClipDataset(
                records, hp.num_frames, hp.hr_size, hp.scale, self.degradation, hp.size_multiple,
                train=train, length=hp.samples_per_epoch, clips_per_video=hp.val_clips_per_video, seed=seed,
                cache_frames=hp.cache_frames, scales=self._scales(train), **kwargs,
            )
        except DataError as err:
            raise DataError(f"{role} manifest {path}: {err}") from err

    def _image_dataset(self, path: str | None, role: str, train: bool, seed: int) -> ImageClipDataset:
        hp, photos = self.hparams, self.photos
        if path is None:
            raise DataError(f"data.photos.{role} is not set: `make images` writes data/manifests/images_{role}.jsonl")
        if not Path(path).is_file():
            raise MissingData(f"photo manifest {path} not found: run `make images` (or set data.photos.{role})")
        return ImageClipDataset(
            read_manifest(path), hp.num_frames, hp.hr_size, hp.scale, self.degradation, hp.size_multiple, train=train,
            length=hp.samples_per_epoch, clips_per_image=photos.val_clips, seed=seed,
            cache_images=hp.cache_frames, scales=self._scales(train), **asdict(photos.camera),
        )

    def _train_clips(self) -> Dataset:
        """Training clips of the videos, mixed with photo clips when ``photos.ratio`` > 0."""
        hp, photos = self.hparams, self.photos
        if photos.ratio == 0:
            if photos.train:
                log.warning("data.photos.train is set but data.photos.ratio is 0: training uses no photo clips")
            return self._dataset(hp.train_manifest, "train", True, hp.seed)
        images = self._image_dataset(photos.train, "train", True, hp.seed)
        if photos.ratio == 1:
            return images
        videos = self._dataset(hp.train_manifest, "train", True, hp.seed)
        return MixedClipDataset(videos, images, photos.ratio, hp.seed)

    def _shard_clips(self) -> ShardClipDataset:
        """Training clips streamed from prep shards, one stream slot per (rank, dataloader worker)."""
        hp = self.hparams
        if hp.train_cache or self.photos.ratio > 0:
            raise ValueError("data.train_shards cannot be combined with data.train_cache or data.photos.ratio > 0")
        world = self._world_size()
        dataset = ShardClipDataset(hp.train_shards, hp.num_frames, hp.hr_size, hp.scale, self.degradation,
                                   world * max(1, hp.num_workers), hp.size_multiple, hp.samples_per_epoch, hp.seed,
                                   latents=hp.shard_latents)
        module = self.trainer.lightning_module if self.trainer is not None else None
        codec = getattr(module, "codec", None)
        if dataset.latents and codec is not None and dataset.codec != json.loads(json.dumps(codec.describe())):
            raise ValueError(f"the shards at {hp.train_shards} store latents of codec {dataset.codec}, but the model "
                             f"uses {codec.describe()}: rebuild them with the model's codec or set data.shard_latents=false")
        return dataset

    def _loader(self, dataset, **kwargs) -> DataLoader:
        hp = self.hparams
        return DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers,
                          persistent_workers=hp.num_workers > 0, **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.hparams.scale_range is not None and (self.hparams.train_shards or self.hparams.train_cache):
            raise ValueError("data.scale_range draws each step's factor from live-degraded clips; prep shards and pair "
                             "caches hold one factor (data.train_shards / data.train_cache): drop one of them")
        if self.train_set is None:
            if self.hparams.train_shards:
                self.train_set = self._shard_clips()
            elif self.hparams.train_cache:
                if self.photos.ratio > 0:
                    raise ValueError("data.photos.ratio > 0 mixes photo clips into live-degraded training clips; "
                                     "it cannot be combined with data.train_cache")
                module = self.trainer.lightning_module if self.trainer is not None else None
                codec = getattr(module, "codec", None)
                self.train_set = PairCacheDataset(self.hparams.train_cache, codec, self.hparams.samples_per_epoch,
                                                  self.hparams.seed)
                recipe = self.train_set.manifest["fingerprint"]["config"]
                if recipe["scale"] != self.hparams.scale:
                    raise ValueError(f"the pair cache {self.hparams.train_cache} was made at scale {recipe['scale']}, "
                                     f"but data.scale is {self.hparams.scale}: they must agree")
            else:
                self.train_set = self._train_clips()
        if isinstance(self.train_set, ShardClipDataset):
            sampler = ShardSampler(len(self.train_set), self.hparams.batch_size, self.hparams.num_workers)
        else:
            sampler = StreamSampler(len(self.train_set))
        trainer = self.trainer
        if trainer is not None and trainer.ckpt_path is not None:
            # Resuming: skip the batches of the current epoch that the checkpoint already trained on.
            # `processed` counts batches whose training step ran (`completed` lags by one when the
            # checkpoint was written in on_train_batch_end).
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            sampler.resume_at(trainer.current_epoch, done, self.hparams.batch_size)
            self._check_layout()
        return self._loader(self.train_set, sampler=sampler, drop_last=True)

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def stream_layout(self) -> dict:
        """What the training stream's order depends on besides the step: the batch size, the ranks and, for
        shards (one stream slot per loader worker), the dataloader workers."""
        layout = {"batch_size": self.hparams.batch_size, "world_size": self._world_size()}
        if self.hparams.train_shards:
            layout["num_workers"] = max(1, self.hparams.num_workers)
        return layout

    def state_dict(self) -> dict:
        return {"stream_layout": self.stream_layout()}

    def load_state_dict(self, state: dict) -> None:
        self._saved_layout = state.get("stream_layout")

    def _check_layout(self) -> None:
        """Warn when a resumed run streams with another layout than its checkpoint: it goes on with valid
        clips, but not with the batches an uninterrupted run would have seen."""
        saved, now = getattr(self, "_saved_layout", None), self.stream_layout()
        changed = [f"{k} {saved.get(k)} -> {v}" for k, v in now.items() if saved is not None and saved.get(k) != v]
        if changed:
            log.warning("resuming with another data layout than the checkpoint's (%s): training goes on with new "
                        "clips, but not exactly where the interrupted run stopped; keep these settings to resume "
                        "exactly", ", ".join(changed))

    def val_dataloader(self) -> DataLoader:
        # Evaluation clips use a seed of their own so that they never coincide with a training stream.
        hp = self.hparams
        if not self.photos.val:
            return self._loader(self._dataset(hp.val_manifest, "val", False, hp.seed + 1))
        images = self._image_dataset(self.photos.val, "val", False, hp.seed + 1)
        if hp.val_manifest is None:
            return self._loader(images)
        # One loader: the held-out videos' clips, then the held-out photos' (the same item keys and shapes).
        return self._loader(ConcatDataset([self._dataset(hp.val_manifest, "val", False, hp.seed + 1), images]))

    def test_dataloader(self) -> DataLoader:
        path = self.hparams.test_manifest or self.hparams.val_manifest
        # A clip that fails to decode is skipped (and counted by gvr test), not fatal.
        dataset = self._dataset(path, "test", False, self.hparams.seed + 2, lr_only=self.hparams.no_reference,
                                skip_errors=True)
        return self._loader(dataset)

    def predict_dataloader(self) -> DataLoader:
        hp = self.hparams
        if not hp.predict_inputs:
            raise ValueError("gvr predict needs input videos: --data.predict_inputs '[a.mp4, b.mp4]'")
        stems = [Path(p).stem for p in hp.predict_inputs]  # VideoPredictionWriter names outputs <stem>_x<scale>.mp4
        if len(set(stems)) < len(stems):
            same = sorted({s for s in stems if stems.count(s) > 1})
            raise ValueError(f"predict_inputs share the file name {same}: their outputs would collide; rename one")
        module = self.trainer.lightning_module if self.trainer is not None else None
        align = module.codec.temporal_factor if module is not None else 1
        dataset = VideoChunkDataset(hp.predict_inputs, hp.scale, hp.predict_chunk, hp.predict_overlap, align)
        # One window per batch, in order: the writer blends consecutive windows of the same video.
        return DataLoader(dataset, batch_size=1, num_workers=hp.num_workers)
