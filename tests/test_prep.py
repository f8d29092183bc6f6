"""`make prep` on a folder of good and bad synthetic videos: split, measure, filter, shard; training reads the shards."""

import contextlib
import io
import json
import logging
import re
import shutil
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from gvr.codecs import PatchCodec
from gvr.data.degradations.degradation import BicubicDownsample
from gvr.data.shards import ShardClipDataset, ShardSampler
from gvr.data.video import frames_to_tensor, read_video, write_video
from gvr.prep.jobs import RecipeChanged, read_jsonl
from gvr.prep.scenes import split_scenes
from gvr.prep.shard_writer import cover_crop, window_starts
from gvr.prep.steps import load_config, run_filter, run_measure, run_scan, run_shard

pytestmark = pytest.mark.timeout(300)  # worker processes must never hang the suite

# Small synthetic clips: 64x64, 24 frames at 24 fps; thresholds as in configs/prep.yaml except the frame size.
OVERRIDES = {
    "scan": {"max_frames": None},
    "measure": {"quality": None},
    "filter": {"min_short_side": 48},
    "shard": {"num_frames": 5, "size": [32, 32], "windows": 2, "shard_size": 2},
}


def blocks(t: int, size: int, seed: int, speed: int = 1) -> np.ndarray:
    """uint8 (T, size, size, 3): random 8x8 colour blocks (sharp edges) sliding right by ``speed`` px a frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size // 8 + 1, (size + speed * t) // 8 + 2, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))
    return np.stack([big[:size, speed * k : speed * k + size] for k in range(t)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Good, blurred, dark, static, tiny, corrupt, truncated and empty files, and one video with a hard cut."""
    src = tmp_path_factory.mktemp("corpus")
    write_video(src / "good_a.mp4", blocks(24, 64, 0), fps=24)
    write_video(src / "nested" / "good_b.mp4", blocks(24, 64, 1), fps=24)
    (src / "nested" / "good_b.txt").write_text("blocks sliding\n")
    write_video(src / "blurred.mp4", np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in blocks(24, 64, 2)]), fps=24)
    write_video(src / "dark.mp4", (blocks(24, 64, 3) * 0.08).astype(np.uint8), fps=24)
    write_video(src / "static.mp4", blocks(24, 64, 4, speed=0), fps=24)
    write_video(src / "tiny.mp4", blocks(24, 24, 5), fps=24)
    write_video(src / "cut.mp4", np.concatenate([blocks(20, 64, 6), 255 - blocks(20, 64, 7)]), fps=24)
    (src / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    data = (src / "good_a.mp4").read_bytes()
    (src / "truncated.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) at the end is lost: unreadable
    write_video(src / "cut_short.mkv", blocks(24, 64, 8), fps=24)
    data = (src / "cut_short.mkv").read_bytes()
    (src / "cut_short.mkv").write_bytes(data[: len(data) * 6 // 10])  # opens and decodes, but stops early
    (src / "empty.mp4").write_bytes(b"")
    (src / "notes.txt").write_text("not a video")
    return src


@pytest.fixture(scope="module")
def prepped(corpus, tmp_path_factory) -> dict:
    """All four steps run once, over two worker processes."""
    out = tmp_path_factory.mktemp("prep")
    prep = load_config("configs/prep.yaml", OVERRIDES)
    scan = run_scan(corpus, out, prep, workers=2)
    measure = run_measure(out, prep, workers=2)
    table = run_filter(out, prep)
    index = run_shard(out, prep, workers=2)
    return {"out": out, "prep": prep, "scan": scan, "measure": measure, "table": table, "index": index}


def test_split_scenes_drops_short_scenes_and_chunks_long_ones():
    assert split_scenes([], 40, 17, None) == [(0, 40)]
    assert split_scenes([20], 40, 17, None) == [(0, 20), (20, 20)]
    assert split_scenes([10, 30], 60, 17, None) == [(10, 20), (30, 30)]  # the 10-frame first scene is too short
    assert split_scenes([], 60, 17, 25) == [(0, 25), (25, 25)]  # the 10-frame remainder is dropped
    assert split_scenes([], 60, 5, 25) == [(0, 25), (25, 25), (50, 10)]


def test_window_starts_and_cover_crop():
    assert window_starts(24, 5, 2) == [0, 19] and window_starts(24, 5, 1) == [9] and window_starts(4, 5, 2) == []
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 40:] = 255
    out = cover_crop(frames, (20, 20))  # 40x80 -> 20x40 -> centre 20x20: half black, half white
    assert out.shape == (2, 20, 20, 3) and out[0, 0, 0, 0] == 0 and out[0, 0, -1, 0] == 255


def test_scan_splits_at_the_cut_and_logs_bad_files(prepped):
    out = prepped["out"]
    clips = list(read_jsonl(out / "clips.jsonl"))
    cut = [(c["start"], c["frames"]) for c in clips if c["video"] == "cut.mp4"]
    assert cut == [(0, 20), (20, 20)]
    assert {c["video"] for c in clips} == {"good_a.mp4", "nested/good_b.mp4", "blurred.mp4", "dark.mp4",
                                           "static.mp4", "tiny.mp4", "cut.mp4"}
    assert next(c for c in clips if c["video"] == "nested/good_b.mp4")["caption"] == "blocks sliding"
    bad = {Path(b["path"]).name: b["reason"] for b in read_jsonl(out / "unreadable.jsonl")}
    assert bad == {"corrupt.mp4": "corrupt", "truncated.mp4": "corrupt", "cut_short.mkv": "truncated",
                   "empty.mp4": "empty"}
    assert prepped["scan"] == {"new": 11, "videos": 7, "clips": 8, "unreadable": 4}


def test_filter_keeps_the_good_and_drops_each_bad_clip_with_its_reason(prepped):
    out = prepped["out"]
    kept = sorted(f"{c['video']}#{c['start']}" for c in read_jsonl(out / "kept.jsonl"))
    assert kept == ["cut.mp4#0", "cut.mp4#20", "good_a.mp4#0", "nested/good_b.mp4#0"]
    dropped = {Path(d["path"]).name: d["reason"] for d in read_jsonl(out / "dropped.jsonl")}
    assert dropped == {"blurred.mp4": "blurry", "dark.mp4": "dark", "static.mp4": "static", "tiny.mp4": "small",
                       "corrupt.mp4": "corrupt", "truncated.mp4": "corrupt", "cut_short.mkv": "truncated",
                       "empty.mp4": "empty"}
    measured = {c["video"]: c for c in read_jsonl(out / "measured.jsonl")}
    assert measured["good_a.mp4"]["motion"] == pytest.approx(1.0, abs=0.3)  # 1 px a frame
    assert measured["static.mp4"]["motion"] < 0.05 and measured["static.mp4"]["motion_peak"] < 0.5
    assert "quality" not in measured["good_a.mp4"]
    table = prepped["table"]
    assert "kept" in table and "blurry" in table and "unreadable files" in table
    # summary.txt says per clip which measure and value dropped it
    summary = (out / "summary.txt").read_text()
    assert "dropped (measure value against its bound):" in summary
    assert re.search(r"static\.mp4 \[0\+\d+\]: static: motion_peak [0-9.e-]+ < min 0\.5", summary)
    assert re.search(r"blurred\.mp4 \[0\+\d+\]: blurry: sharpness [0-9.]+ < min 40", summary)
    assert "empty.mp4: empty" in summary
    pngs = {p.name for p in (out / "hist").glob("*.png")}
    assert {"hist_sharpness.png", "hist_luma.png", "hist_motion.png", "hist_dark.png"} <= pngs


def test_a_steady_shot_of_a_small_moving_subject_is_kept_and_a_still_with_noise_dropped():
    """The report: a steady indoor shot of a hand moving an object was dropped as static. Its mean flow is tiny
    (the subject is 2% of the frame) while its fastest 1% moves by pixels; a still with sensor noise moves by
    neither. Synthetic stand-ins (no such footage ships): the peak test tells them apart, the mean did not."""
    import cv2

    from gvr.prep.filters import FilterRecipe, explain, reasons
    from gvr.prep.measures import MeasureRecipe, measure_frames

    rng = np.random.default_rng(0)
    h, w = 270, 480
    room = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 4)
    room = 60 + 120 * (room - room.min()) / (room.max() - room.min())
    hand = cv2.GaussianBlur(rng.random((60, 50, 3)).astype(np.float32), (0, 0), 2) * 100 + 120

    def shot(moving: bool) -> dict[int, np.ndarray]:
        frames = {}
        for t in range(40):
            f = room.copy()
            if moving:
                y, x = 120 + int(20 * np.sin(t / 6)), 150 + 3 * t
                f[y : y + 60, x : x + 50] = hand
            frames[t] = np.clip(f + rng.normal(0, 1.0, f.shape), 0, 255).astype(np.uint8)
        return frames

    positions = list(range(0, 39, 4))
    hand_shot, still = (measure_frames(shot(m), positions, MeasureRecipe()) for m in (True, False))
    assert hand_shot["motion"] < 0.2 and hand_shot["motion_peak"] > 1.0  # small mean, a subject that moves
    assert still["motion_peak"] < 0.2
    recipe = FilterRecipe(min_sharpness=None)  # the stand-in room is smooth; only motion is under test here
    assert reasons(hand_shot, recipe) == [] and reasons(still, recipe) == ["static"]
    assert reasons(hand_shot, FilterRecipe(min_sharpness=None, min_motion=0.15)) == ["static"]  # the old mean test
    assert explain(still, recipe)[0].startswith("static: motion_peak ")


def test_long_clips_are_measured_pair_by_pair_with_the_same_result(prepped, monkeypatch):
    from gvr.prep import measures

    clip = next(c for c in read_jsonl(prepped["out"] / "clips.jsonl") if c["video"] == "good_a.mp4")
    whole = measures.measure_clip(clip, prepped["prep"].measure)
    monkeypatch.setattr(measures, "WHOLE_CLIP_BYTES", 0)  # every clip counts as long: a seek per sampled pair
    assert measures.measure_clip(clip, prepped["prep"].measure) == whole


def _tar_samples(path: Path) -> dict[str, dict]:
    samples: dict[str, dict] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, ext = member.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def test_shards_read_back_equal_the_clips(prepped):
    out, shard = prepped["out"], prepped["prep"].shard
    index = json.loads((out / "shards" / "index.json").read_text())
    assert index["complete"] and sorted(index["shards"]) == ["shard-00000.tar", "shard-00001.tar"]
    kept = list(read_jsonl(out / "kept.jsonl"))
    seen = {}
    for entry in index["shards"].values():
        samples = _tar_samples(out / "shards" / entry["file"])
        assert len(samples) == entry["count"]
        seen.update(samples)
    assert len(seen) == 2 * len(kept)  # two windows of every 20- or 24-frame clip
    for key, sample in seen.items():
        meta = json.loads(sample["meta.json"])
        clip = kept[meta["clip"]]
        frames, _ = read_video(clip["path"], meta["start"], shard.num_frames)
        got = np.load(io.BytesIO(sample["frames.npy"]))
        np.testing.assert_array_equal(got, cover_crop(frames, shard.size))
        assert meta["start"] - clip["start"] in window_starts(clip["frames"], shard.num_frames, shard.windows)


def _src(out: Path) -> Path:
    return Path(json.loads((out / "scan.recipe.json").read_text())["src"])


def test_rerun_does_no_work(prepped):
    out, prep = prepped["out"], prepped["prep"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    assert run_scan(_src(out), out, prep)["new"] == 0
    assert run_measure(out, prep)["new"] == 0
    assert run_filter(out, prep) == prepped["table"]
    assert run_shard(out, prep)["new"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")} == stamps


def test_interrupted_steps_resume(prepped, tmp_path):
    out, prep = prepped["out"], prepped["prep"]
    src = _src(out)
    part = tmp_path / "part"
    shutil.copytree(out, part)
    lines = (part / "measure.journal.jsonl").read_text().splitlines(keepends=True)
    (part / "measure.journal.jsonl").write_text("".join(lines[:3]) + lines[3][:20])  # killed mid-line
    lines = (part / "scan.journal.jsonl").read_text().splitlines(keepends=True)
    (part / "scan.journal.jsonl").write_text("".join(lines[:4]))
    (part / "shards" / "shard-00001.tar").unlink()  # a shard that never finished
    stamp = (part / "shards" / "shard-00000.tar").stat().st_mtime_ns
    assert run_scan(src, part, prep)["new"] == 7
    assert run_measure(part, prep)["new"] == 5
    run_filter(part, prep)
    assert run_shard(part, prep)["new"] == 1
    assert (part / "shards" / "shard-00000.tar").stat().st_mtime_ns == stamp
    for name in ("clips.jsonl", "measured.jsonl", "kept.jsonl", "dropped.jsonl", "shards/shard-00001.tar"):
        assert (part / name).read_bytes() == (out / name).read_bytes(), name


def test_a_changed_recipe_is_refused(prepped, tmp_path):
    out = prepped["out"]
    src = _src(out)
    with pytest.raises(RecipeChanged, match="shard"):
        run_shard(out, load_config("configs/prep.yaml", {**OVERRIDES, "shard": {**OVERRIDES["shard"], "size": [16, 16]}}))
    codec = {"codec": {"class_path": "gvr.codecs.PatchCodec", "init_args": {"spatial_factor": 2}}}
    with pytest.raises(RecipeChanged, match="codec"):
        run_shard(out, load_config("configs/prep.yaml", {**OVERRIDES, "shard": {**OVERRIDES["shard"], **codec}}))
    with pytest.raises(RecipeChanged, match="scan"):
        run_scan(src, out, load_config("configs/prep.yaml", {**OVERRIDES, "scan": {"threshold": 40.0}}))
    # New thresholds refilter freely, but the shards of the old kept clips are then refused.
    part = tmp_path / "part"
    shutil.copytree(out, part)
    stricter = load_config("configs/prep.yaml", {**OVERRIDES, "filter": {"min_short_side": 48, "min_frames": 21}})
    assert "short" in run_filter(part, stricter, plots=False)
    with pytest.raises(RecipeChanged, match="kept_sha256"):
        run_shard(part, stricter)


def _latent_shards(prepped, tmp_path, num_frames=5, size=(32, 32)) -> Path:
    """The same kept clips sharded again with HR latents of PatchCodec(spatial_factor=2)."""
    part = tmp_path / "latent"
    part.mkdir()
    for name in ("kept.jsonl",):
        shutil.copy(prepped["out"] / name, part / name)
    codec = {"class_path": "gvr.codecs.PatchCodec", "init_args": {"spatial_factor": 2}}
    shard = {**OVERRIDES["shard"], "num_frames": num_frames, "size": list(size), "codec": codec}
    run_shard(part, load_config("configs/prep.yaml", {**OVERRIDES, "shard": shard}))
    return part / "shards"


def test_latent_shards_hold_the_codec_latents_of_the_frames(prepped, tmp_path):
    folder = _latent_shards(prepped, tmp_path)
    index = json.loads((folder / "index.json").read_text())
    assert index["latent_shape"] == [12, 5, 16, 16] and index["codec"]["class"].endswith("PatchCodec")
    codec = PatchCodec(spatial_factor=2)
    samples = _tar_samples(folder / "shard-00000.tar")
    for sample in samples.values():
        frames = np.load(io.BytesIO(sample["frames.npy"]))
        z = np.load(io.BytesIO(sample["z.npy"]))
        np.testing.assert_allclose(z, codec.encode(frames_to_tensor(frames)[None])[0].numpy(), atol=1e-6)
    dataset = ShardClipDataset(str(folder), 5, (32, 32), 2, BicubicDownsample(), size_multiple=4, length=4)
    item = dataset[0]
    assert item["z"].shape == (12, 5, 16, 16) and item["hr"].shape == (3, 5, 32, 32) and item["lr"].shape == (3, 5, 16, 16)
    with pytest.raises(ValueError, match="must match"):
        ShardClipDataset(str(folder), 3, (32, 32), 2, BicubicDownsample(), size_multiple=4)


def _batches(dataset, sampler, epochs=(0,)):
    loader = DataLoader(dataset, batch_size=sampler.batch_size, sampler=sampler, num_workers=sampler.workers,
                        drop_last=True)
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out += [(b["index"].tolist(), b["hr"]) for b in loader]
    return out


@contextlib.contextmanager
def _http_server(root: Path):
    """Serve ``root`` over HTTP on a free local port for the duration of the block; yields the base URL."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_shard_stream_resumes_exactly_and_splits_ranks_and_workers(prepped):
    folder = str(prepped["out"] / "shards")
    dataset = ShardClipDataset(folder, 3, (24, 24), 2, BicubicDownsample(), slots=2, size_multiple=4, length=12)
    full = _batches(dataset, ShardSampler(12, 2, workers=2), epochs=(0, 1))
    assert len(full) == 12
    resumed_sampler = ShardSampler(12, 2, workers=2)
    resumed_sampler.resume_at(0, 3, 2)
    resumed = _batches(dataset, resumed_sampler, epochs=(0, 1))
    assert len(resumed) == 9
    for (ia, ha), (ib, hb) in zip(full[3:], resumed):
        assert ia == ib
        torch.testing.assert_close(ha, hb, rtol=0, atol=0)
    # A URL prefix (here file://; https:// and pipe: go through the same webdataset.gopen) reads the same items.
    url = ShardClipDataset("file://" + folder, 3, (24, 24), 2, BicubicDownsample(), slots=2, size_multiple=4, length=12)
    torch.testing.assert_close(url[5]["hr"], dataset[5]["hr"], rtol=0, atol=0)
    # Over HTTP (a local server; webdataset fetches http(s):// URLs with curl), the same items again.
    if shutil.which("curl"):
        with _http_server(prepped["out"]) as base:
            http = ShardClipDataset(base + "/shards", 3, (24, 24), 2, BicubicDownsample(), slots=2, size_multiple=4,
                                    length=12)
            for i in (0, 5, 11):
                torch.testing.assert_close(http[i]["hr"], dataset[i]["hr"], rtol=0, atol=0)
    # Two ranks of one worker each: disjoint shards in a round, and the same items as one rank would see.
    ranks = [ShardSampler(8, 2, workers=1, rank=r, world=2) for r in range(2)]
    two = ShardClipDataset(folder, 3, (24, 24), 2, BicubicDownsample(), slots=2, size_multiple=4, length=8)
    keys = [{two.sample(i % 2, i // 2)["__key__"] for i in list(s)[:4]} for s in ranks]
    assert keys[0] and keys[1] and not keys[0] & keys[1]


def test_fit_from_shards(prepped, tiny_data, tmp_path):
    from conftest import tiny_cli_args

    from gvr.cli import lightning_main

    shards = str(prepped["out"] / "shards")
    cli = lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path / "px", "--trainer.max_steps", "3",
                                                "--trainer.limit_val_batches", "0", "--data.train_shards", shards)])
    assert cli.trainer.global_step == 3 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    latent = str(_latent_shards(prepped, tmp_path, num_frames=3, size=(24, 32)))
    cli = lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path / "z", "--trainer.max_steps", "2",
                                                "--trainer.limit_val_batches", "0", "--data.train_shards", latent)])
    assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_fit_from_shards_resumes_exactly(prepped, tiny_data, tmp_path, caplog):
    from conftest import tiny_cli_args

    from gvr.cli import lightning_main

    def fit(log_dir, steps, *extra):
        return lightning_main(["fit", *tiny_cli_args(
            tiny_data, log_dir, "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
            "--data.train_shards", str(prepped["out"] / "shards"),
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint", "--trainer.callbacks.save_last", "true",
            "--trainer.callbacks.every_n_train_steps", "3", *extra)])

    # samples_per_epoch 8 / batch 2 = 4 batches an epoch: step 3 is mid-epoch, 5 crosses an epoch.
    full = fit(tmp_path / "full", 5)
    part = fit(tmp_path / "part", 3)
    resumed = fit(tmp_path / "part", 5, "--ckpt_path", str(Path(part.trainer.checkpoint_callback.dirpath) / "last.ckpt"))
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    # The checkpoint records the stream's layout; resuming with more loader workers (other stream slots) says so.
    last = str(Path(part.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    assert torch.load(last, weights_only=False)["VideoDataModule"]["stream_layout"] == {
        "batch_size": 2, "world_size": 1, "num_workers": 1}
    with caplog.at_level(logging.WARNING, logger="gvr.data.datamodule"):
        fit(tmp_path / "part", 6, "--ckpt_path", last, "--data.num_workers", "2")
    assert "num_workers 1 -> 2" in caplog.text and "not exactly" in caplog.text


@pytest.mark.slow
def test_two_ranks_train_from_shards_on_their_own_streams(prepped, tiny_data, tmp_path):
    from test_sharded import _fit

    probe = _fit(tiny_data, tmp_path, "ddp", 3, "--data.train_shards", str(prepped["out"] / "shards"))
    # One loader worker a rank: 2 stream slots, rank r reads slot r (index = position * slots + slot).
    for rank in (0, 1):
        seen = [i for step in probe[rank]["indices"].values() for i in step]
        assert len(seen) == 3 * 2 and all(i % 2 == rank for i in seen), (rank, seen)
    assert not set(probe[0]["indices"]["1"]) & set(probe[1]["indices"]["1"])


def test_measure_with_musiq_weights_scores_each_clip_and_the_filter_drops_low_scores(prepped, tmp_path):
    """The learned-quality path of step 2, with a MUSIQ checkpoint file present (random weights of pyiqa's layout)."""
    from gvr.metrics.iqa import FrameMUSIQ, musiq_network, musiq_weight_file
    from gvr.prep.measures import MeasureRecipe, load_frames, sample_positions

    torch.manual_seed(0)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(musiq_network().state_dict(), weights / musiq_weight_file().filename)
    part = tmp_path / "part"
    part.mkdir()
    for name in ("scan.recipe.json", "unreadable.jsonl"):
        shutil.copy(prepped["out"] / name, part / name)
    clips = [c for c in read_jsonl(prepped["out"] / "clips.jsonl") if c["video"] in ("good_a.mp4", "nested/good_b.mp4")]
    (part / "clips.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    measure = {"quality": "musiq", "quality_weights": str(weights), "samples": 2, "quality_frames": 2}
    prep = load_config("configs/prep.yaml", {**OVERRIDES, "measure": measure})
    assert run_measure(part, prep)["new"] == 2
    scores = {c["video"]: c["quality"] for c in read_jsonl(part / "measured.jsonl")}

    # Each score is FrameMUSIQ's mean over the clip's sampled frames.
    net = FrameMUSIQ(str(weights))
    recipe = MeasureRecipe(**measure)
    for clip in clips:
        positions = sample_positions(clip["frames"], recipe.samples)
        frames = load_frames(clip, positions)
        x = torch.from_numpy(np.stack([frames[p] for p in positions])).permute(0, 3, 1, 2).float() / 255
        assert scores[clip["video"]] == pytest.approx(float(net.score(x).mean()), rel=1e-4)
    assert scores["good_a.mp4"] != scores["nested/good_b.mp4"]

    # A threshold between the two scores drops the lower clip as low_quality and keeps the other.
    low, high = sorted(scores, key=scores.get)
    between = {**OVERRIDES["filter"], "min_quality": (scores[low] + scores[high]) / 2}
    run_filter(part, load_config("configs/prep.yaml", {**OVERRIDES, "measure": measure, "filter": between}), plots=False)
    assert [c["video"] for c in read_jsonl(part / "kept.jsonl")] == [high]
    dropped = [d for d in read_jsonl(part / "dropped.jsonl") if d.get("video") == low]
    assert [d["reason"] for d in dropped] == ["low_quality"]


def test_gvr_prep_reruns_every_step_with_no_new_work_and_refuses_another_recipe(prepped, tmp_path, capsys):
    """`gvr prep all` (what `make prep` runs) on a finished folder: four JSON lines, nothing new, shards untouched."""
    from gvr.cli import main

    out = tmp_path / "out"
    shutil.copytree(prepped["out"], out)
    data = yaml.safe_load(Path("configs/prep.yaml").read_text())
    recipe = tmp_path / "prep.yaml"
    recipe.write_text(yaml.safe_dump({k: {**(data.get(k) or {}), **OVERRIDES.get(k, {})} for k in {*data, *OVERRIDES}}))
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")}
    main(["prep", "all", "--src", str(_src(prepped["out"])), "--out", str(out), "--config", str(recipe), "--no-plots"])
    printed = capsys.readouterr().out.strip().splitlines()
    lines = [json.loads(line) for line in printed if line.startswith("{")]
    assert [line["step"] for line in lines] == ["scan", "measure", "shard"] and all(line["new"] == 0 for line in lines)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.tar")} == stamps
    with pytest.raises(SystemExit) as exit_info:  # the plain recipe is another recipe: one line, exit 1
        main(["prep", "shard", "--out", str(out)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().startswith("gvr prep shard: error:")
