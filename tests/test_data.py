"""Clip datasets, the resumable stream sampler and the data module."""

import shutil
from pathlib import Path

import pytest
import torch

from gvr.data.datamodule import VideoDataModule
from gvr.data.dataset import VideoClipDataset, lr_size_for
from gvr.data.degradations.degradation import BicubicDownsample
from gvr.data.manifest import read_manifest, write_manifest
from gvr.data.sampler import StreamSampler


def _dataset(tiny_data, train=True, **kw):
    args = dict(num_frames=3, hr_size=(24, 32), scale=2.5, degradation=BicubicDownsample(), size_multiple=4,
                train=train, length=16, clips_per_video=2, seed=3)
    return VideoClipDataset(read_manifest(tiny_data["train"]), **{**args, **kw})


def test_lr_size_rounds_to_the_codec_multiple():
    assert lr_size_for((160, 160), 2.5, 8) == (64, 64)
    assert lr_size_for((120, 160), 2.8, 4) == (44, 56)
    assert lr_size_for((8, 8), 4.0, 8) == (8, 8)  # never below one multiple


def test_training_items_shapes_ranges_and_reproducibility(tiny_data):
    ds = _dataset(tiny_data)
    item = ds[5]
    assert item["hr"].shape == (3, 3, 24, 32) and item["lr"].shape == (3, 3, *ds.lr_size) == (3, 3, 8, 12)
    assert item["hr"].dtype == torch.float32 and item["hr"].abs().max() <= 1
    again = _dataset(tiny_data)[5]  # a new dataset (another worker, a resumed run) gives the same clip
    assert torch.equal(item["hr"], again["hr"]) and torch.equal(item["lr"], again["lr"])
    assert not torch.equal(ds[5]["hr"], ds[6]["hr"])
    assert ds[1000]["hr"].shape == (3, 3, 24, 32)  # the training stream is endless


def test_eval_items_are_fixed_windows(tiny_data):
    ds = _dataset(tiny_data, train=False)
    assert len(ds) == 2 * len(ds.records)
    starts = [ds[i]["start"] for i in range(2)]
    assert starts[0] == 0 and starts[1] == ds.records[0]["frames"] - 3  # evenly spaced, first and last window
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_too_small_videos_are_skipped_or_refused(tiny_data, caplog):
    with pytest.raises(ValueError, match="no video in the manifest"):
        _dataset(tiny_data, hr_size=(400, 400))
    assert "skipping" in caplog.text
    with pytest.raises(ValueError, match="multiple"):
        _dataset(tiny_data, hr_size=(25, 32))


def test_datamodule_loaders_and_missing_manifest(tiny_data, tmp_path):
    dm = VideoDataModule(tiny_data["train"], tiny_data["val"], scale=2, num_frames=3, hr_size=(24, 32), size_multiple=4,
                         batch_size=2, num_workers=0, samples_per_epoch=6, val_clips_per_video=1)
    batch = next(iter(dm.train_dataloader()))
    assert batch["hr"].shape == (2, 3, 3, 24, 32) and batch["lr"].shape == (2, 3, 3, 12, 16)
    assert len(dm.train_dataloader()) == 3 and len(dm.val_dataloader().dataset) == 1
    missing = VideoDataModule(str(tmp_path / "none.jsonl"), num_workers=0)
    with pytest.raises(FileNotFoundError, match="make manifests"):
        missing.train_dataloader()


def test_stream_sampler_shards_disjointly_and_resumes():

    sampler = StreamSampler(10)
    sampler.set_epoch(2)
    assert list(sampler) == list(range(20, 30))
    sampler.resume_at(epoch=2, batches=2, batch_size=3)
    assert list(sampler) == list(range(26, 30))
    assert list(sampler) == list(range(20, 30))  # the skip applies once
    ranks = []
    for rank in range(2):
        s = StreamSampler(10)
        s._world = lambda rank=rank: (rank, 2)  # as torch.distributed would report
        ranks.append(list(s))
    assert sorted(ranks[0] + ranks[1]) == list(range(10)) and not set(ranks[0]) & set(ranks[1])


def test_manifest_paths_relative_to_the_manifest_train(tiny_data, tmp_path, monkeypatch):
    """A manifest naming its videos relative to itself trains from any working directory; paths that exist as
    written (what `make manifests` writes) are kept, and one found nowhere stays as written for the error."""
    folder = tmp_path / "data"
    folder.mkdir()
    records = []
    for record in read_manifest(tiny_data["train"]):
        shutil.copy(record["path"], folder)
        records.append({**record, "path": Path(record["path"]).name})
    manifest = folder / "train.jsonl"
    write_manifest(records + [{"path": "nowhere.mp4"}], manifest)
    monkeypatch.chdir(tmp_path)
    paths = [r["path"] for r in read_manifest(manifest)]
    assert paths[:-1] == [str(folder / r["path"]) for r in records] and paths[-1] == "nowhere.mp4"
    (tmp_path / "here.mp4").write_bytes(b"")  # found as written from the working directory: left as it is
    write_manifest([{"path": "here.mp4"}], tmp_path / "m.jsonl")
    assert read_manifest(tmp_path / "m.jsonl")[0]["path"] == "here.mp4"
    write_manifest(records, manifest)
    dm = VideoDataModule(str(manifest), num_frames=3, hr_size=(24, 32), size_multiple=4, batch_size=2,
                         num_workers=0, samples_per_epoch=2)
    assert next(iter(dm.train_dataloader()))["hr"].shape == (2, 3, 3, 24, 32)
