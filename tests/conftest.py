"""Shared fixtures: tiny synthetic videos, manifests and a tiny-model CLI config."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gvr.data.manifest import scan_videos, write_manifest  # noqa: E402
from gvr.data.video import write_video  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def moving_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): a smooth random texture translating right by 2 px a frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 4 + 2, (w + 2 * t) // 4 + 2, 3)).astype(np.float32)
    big = np.kron(base, np.ones((4, 4, 1)))  # blocky texture with real edges
    return np.stack([big[:h, 2 * k : 2 * k + w] for k in range(t)]).astype(np.uint8)


def video_and_photo(tmp_path: Path, frames: int, video_hw: tuple[int, int], photo_hw: tuple[int, int]) -> list[str]:
    """A synthetic lossless video (``clip.mkv``) and a one-photo manifest (``images.jsonl``, the photo's path
    relative to it): the two kinds of held-out source."""
    from PIL import Image

    video = tmp_path / "clip.mkv"
    write_video(video, moving_frames(frames, *video_hw, seed=3), fps=24)
    image = tmp_path / "still.png"
    Image.fromarray(moving_frames(1, *photo_hw, seed=4)[0]).save(image)
    manifest = tmp_path / "images.jsonl"
    write_manifest([{"path": image.name}], manifest)
    return [str(video), str(manifest)]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """Two synthetic training videos and one held-out video, with their manifests (captions on a and val)."""
    root = tmp_path_factory.mktemp("tiny_data")
    for name, (t, h, w, seed) in {"a.mp4": (12, 48, 64, 0), "b.mp4": (10, 40, 56, 1), "val.mp4": (9, 40, 48, 2)}.items():
        write_video(root / name, moving_frames(t, h, w, seed), fps=24, crf=0)
    (root / "a.txt").write_text("a blocky texture slides to the right\n")  # captions of a and val; b has none
    (root / "val.txt").write_text("  a held-out   texture\n")
    train, val = root / "train.jsonl", root / "val.jsonl"
    records = scan_videos(root, min_frames=3)
    write_manifest([r for r in records if "val" not in Path(r["path"]).name], train)
    write_manifest([r for r in records if "val" in Path(r["path"]).name], val)
    return {"root": root, "train": str(train), "val": str(val), "val_video": str(root / "val.mp4")}


def tiny_data_args(tiny_data: dict) -> list[str]:
    """`--data.*` arguments of the tiny runs: 3-frame 24x32 HR crops of the synthetic videos at x2, batch 2."""
    return [
        "--data.train_manifest", tiny_data["train"],
        "--data.val_manifest", tiny_data["val"],
        "--data.scale", "2",
        "--data.num_frames", "3",
        "--data.hr_size", "[24, 32]",
        "--data.size_multiple", "4",
        "--data.batch_size", "2",
        "--data.num_workers", "0",
        "--data.samples_per_epoch", "8",
        "--data.val_clips_per_video", "1",
    ]


def tiny_cli_args(tiny_data: dict, log_dir: Path, *extra: str) -> list[str]:
    """`gvr fit` arguments for a seconds-long run of a very small SimpleGVR on the synthetic videos."""
    return [
        "--seed_everything", "0",
        "--trainer.accelerator", "cpu",
        "--trainer.logger", "lightning.pytorch.loggers.TensorBoardLogger",
        "--trainer.logger.save_dir", str(log_dir),
        "--trainer.logger.name", "run",
        "--trainer.enable_progress_bar", "false",
        "--trainer.log_every_n_steps", "1",
        "--model.backbone", "gvr.models.SimpleGVR",
        "--model.backbone.latent_channels", "12",
        "--model.backbone.dim", "32",
        "--model.backbone.depth", "1",
        "--model.backbone.heads", "2",
        "--model.backbone.upsampler_channels", "8",
        "--model.codec", "gvr.codecs.PatchCodec",
        "--model.codec.spatial_factor", "2",
        "--model.val_sample_steps", "2",
        "--model.objective.sample_steps", "2",
        "--model.lr", "1e-3",
        *tiny_data_args(tiny_data),
        *extra,
    ]


def tiny_base_args(tiny_data: dict, log_dir: Path, *extra: str) -> list[str]:
    """`gvr base fit` arguments for a seconds-long run of a very small LatentDiT on the synthetic videos."""
    return [
        "--seed_everything", "0",
        "--trainer.accelerator", "cpu",
        "--trainer.logger", "false",
        "--trainer.default_root_dir", str(log_dir),  # where LightningCLI saves config.yaml without a logger
        "--trainer.enable_progress_bar", "false",
        "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(log_dir / "checkpoints"),
        "--trainer.callbacks.save_last", "true",
        "--model.network", "gvr.base.LatentDiT",
        "--model.network.latent_channels", "12",
        "--model.network.dim", "32",
        "--model.network.depth", "1",
        "--model.network.heads", "2",
        "--model.codec", "gvr.codecs.PatchCodec",
        "--model.codec.spatial_factor", "2",
        "--model.sample_steps", "2",
        *tiny_data_args(tiny_data),
        "--data.degradation", "gvr.data.degradations.BicubicDownsample",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_base_ckpt(tiny_data, tmp_path_factory) -> str:
    """A 3-step `gvr base fit` checkpoint of a tiny LatentDiT (PatchCodec x2)."""
    from gvr.commands import base

    log_dir = tmp_path_factory.mktemp("base_run")
    base.main(["fit", *tiny_base_args(tiny_data, log_dir, "--trainer.max_steps", "3")])
    return str(log_dir / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="session")
def tiny_vsr_ckpt(tiny_data, tmp_path_factory) -> str:
    """A 3-step `gvr fit` checkpoint of a tiny SimpleGVR (PatchCodec x2, x2)."""
    from gvr.cli import lightning_main

    log_dir = tmp_path_factory.mktemp("vsr_run")
    lightning_main(["fit", *tiny_cli_args(
        tiny_data, log_dir, "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(log_dir / "checkpoints"), "--trainer.callbacks.save_last", "true")])
    return str(log_dir / "checkpoints" / "last.ckpt")
