"""VideoDataModule: train / val / test clip pairs from manifests, predict inputs from video files."""

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from gvr.data.dataset import VideoClipDataset
from gvr.data.degradations.base import Degradation
from gvr.data.degradations.classic import ClassicDegradation
from gvr.data.manifest import read_manifest
from gvr.data.pair_cache import PairCacheDataset
from gvr.data.predict import VideoChunkDataset
from gvr.data.sampler import StreamSampler


class VideoDataModule(L.LightningDataModule):
    """Serves degraded/clean clip pairs for training and evaluation.

    Args:
        train_manifest: JSON-lines manifest of training videos (``make manifests`` writes one).
        val_manifest: manifest of held-out videos for validation (and test when ``test_manifest`` is unset).
        test_manifest: manifest for ``gvr test``; defaults to ``val_manifest``.
        scale: super-resolution factor, HR size / LR size (need not be an integer).
        num_frames: pixel frames per clip (``1 + 4k`` for codecs that pack time 4x).
        hr_size: HR crop as (height, width); a multiple of ``size_multiple``.
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
        cache_frames: keep decoded videos in memory (fast for the small embedded set).
        predict_inputs: LR videos that ``gvr predict`` upscales (one output file each).
        predict_chunk: frames per temporal window when predicting.
        predict_overlap: frames shared by neighbouring windows (cross-faded).
    """

    def __init__(
        self,
        train_manifest: str | None = "data/manifests/train.jsonl",
        val_manifest: str | None = "data/manifests/val.jsonl",
        test_manifest: str | None = None,
        scale: float = 2.5,
        num_frames: int = 5,
        hr_size: tuple[int, int] = (160, 160),
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
        no_reference: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["degradation"])
        self.degradation = degradation if degradation is not None else ClassicDegradation()
        self.train_set: VideoClipDataset | PairCacheDataset | None = None

    def _records(self, path: str | None, role: str) -> list[dict]:
        if path is None:
            raise ValueError(f"data.{role}_manifest is not set")
        if not Path(path).is_file():
            raise FileNotFoundError(f"{role} manifest {path} not found: run `make manifests` (or set data.{role}_manifest)")
        return read_manifest(path)

    def _dataset(self, path: str | None, role: str, train: bool, seed: int, **kwargs) -> VideoClipDataset:
        hp = self.hparams
        return VideoClipDataset(
            self._records(path, role), hp.num_frames, hp.hr_size, hp.scale, self.degradation, hp.size_multiple,
            train=train, length=hp.samples_per_epoch, clips_per_video=hp.val_clips_per_video, seed=seed,
            cache_frames=hp.cache_frames, **kwargs,
        )

    def _loader(self, dataset, **kwargs) -> DataLoader:
        hp = self.hparams
        return DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers,
                          persistent_workers=hp.num_workers > 0, **kwargs)

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            if self.hparams.train_cache:
                module = self.trainer.lightning_module if self.trainer is not None else None
                codec = getattr(module, "codec", None)
                self.train_set = PairCacheDataset(self.hparams.train_cache, codec, self.hparams.samples_per_epoch,
                                                  self.hparams.seed)
                recipe = self.train_set.manifest["fingerprint"]["config"]
                if recipe["scale"] != self.hparams.scale:
                    raise ValueError(f"the pair cache {self.hparams.train_cache} was made at scale {recipe['scale']}, "
                                     f"but data.scale is {self.hparams.scale}: they must agree")
            else:
                self.train_set = self._dataset(self.hparams.train_manifest, "train", True, self.hparams.seed)
        sampler = StreamSampler(len(self.train_set))
        trainer = self.trainer
        if trainer is not None and trainer.ckpt_path is not None:
            # Resuming: skip the batches of the current epoch that the checkpoint already trained on.
            # `processed` counts batches whose training step ran (`completed` lags by one when the
            # checkpoint was written in on_train_batch_end).
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            sampler.resume_at(trainer.current_epoch, done, self.hparams.batch_size)
        return self._loader(self.train_set, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        # Evaluation clips use a seed of their own so that they never coincide with a training stream.
        return self._loader(self._dataset(self.hparams.val_manifest, "val", False, self.hparams.seed + 1))

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
        module = self.trainer.lightning_module if self.trainer is not None else None
        align = module.codec.temporal_factor if module is not None else 1
        dataset = VideoChunkDataset(hp.predict_inputs, hp.scale, hp.predict_chunk, hp.predict_overlap, align)
        # One window per batch, in order: the writer blends consecutive windows of the same video.
        return DataLoader(dataset, batch_size=1, num_workers=hp.num_workers)
