"""The gvr command: help, every config parses, fit, exact resume, checkpoint -> upscale."""

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_cli_args

from gvr.cli import lightning_main, main
from gvr.data.video import probe_video, write_video
from gvr.inference.upscale import load_module
from gvr.lit.vsr_module import VSRModule

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_gvr_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "upscale" in out and "fit" in out


def _parse_config(config: Path) -> str:
    """Print the fully parsed config with the CLI that reads it; returns what was printed."""
    from gvr.commands import base

    if config.name.startswith("pairs"):  # pair-cache recipes, read by gvr pairs
        from gvr.data.pair_cache import PairCacheSpec, load_spec

        assert isinstance(load_spec(config), PairCacheSpec)
        return "pairs"
    if config.name == "testset.yaml":  # the test-set recipe, read by gvr testset
        from gvr.data.testset import TestSetSpec, load_spec

        assert isinstance(load_spec(config), TestSetSpec)
        return "testset"
    if config.name == "prep.yaml":  # the corpus-prep recipe, read by gvr prep
        from gvr.prep.steps import PrepConfig, load_config

        assert isinstance(load_config(config), PrepConfig)
        return "prep"
    run = base.main if config.name == "base.yaml" else lightning_main
    with pytest.raises(SystemExit) as exit_info:
        run(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    return "parsed"


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_parses(config, capsys):
    kind = _parse_config(config)
    printed = capsys.readouterr().out
    if kind == "parsed":
        network = "gvr.base.LatentDiT" if config.name == "base.yaml" else "gvr.models.SimpleGVR"
        assert f"class_path: {network}" in printed


def test_configs_exist():
    assert any(c.name == "stage1.yaml" for c in CONFIGS)


def test_fit_fast_dev_run(tiny_data, tmp_path, capsys):
    cli = lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path, "--trainer.fast_dev_run", "2",
                                                "--trainer.callbacks+=gvr.metrics.callbacks.StepTimer",
                                                "--trainer.callbacks.skip", "1")])
    assert cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert "val/psnr" in cli.trainer.callback_metrics and "val/psnr_bicubic" in cli.trainer.callback_metrics
    # StepTimer: the step time is logged and its mean over the steps after the first is printed at the end.
    assert cli.trainer.callback_metrics["perf/step_seconds"] > 0
    assert re.search(r"StepTimer: 2 steps, [0-9.]+ s/step over the last 1 \(first: [0-9.]+ s\)", capsys.readouterr().out)


def test_val_vmaf_is_logged_monitored_and_kept_out_of_checkpoints(tiny_data, tmp_path):
    from gvr.metrics.vmaf import VideoVMAF
    from gvr.ops.resize import resize_video

    cli = lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
        "--trainer.limit_val_batches", "2", "--model.val_vmaf", "true",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint", "--trainer.callbacks.dirpath",
        str(tmp_path / "ckpt"), "--trainer.callbacks.monitor", "val/vmaf", "--trainer.callbacks.mode", "max")])
    metrics = cli.trainer.callback_metrics
    assert 0 <= metrics["val/vmaf"] <= 100 and 0 <= metrics["val/vmaf_bicubic"] <= 100
    # val/vmaf_bicubic is VMAF of bicubic on the validation clips, each clip a video.
    reference = VideoVMAF()
    for batch in list(cli.datamodule.val_dataloader())[:2]:
        reference.update(resize_video(batch["lr"], tuple(batch["hr"].shape[-2:]), "bicubic"), batch["hr"])
    assert float(metrics["val/vmaf_bicubic"]) == pytest.approx(reference.compute().item(), abs=1e-4)
    checkpoint = cli.trainer.checkpoint_callback
    assert float(checkpoint.best_model_score) == pytest.approx(float(metrics["val/vmaf"]))
    saved = torch.load(checkpoint.best_model_path, weights_only=False)
    assert not [k for k in saved["state_dict"] if "vmaf" in k]


def test_fit_bf16_mixed_with_gradient_checkpointing(tiny_data, tmp_path):
    cli = lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path, "--trainer.fast_dev_run", "1",
                                                "--trainer.precision", "bf16-mixed",
                                                "--model.backbone.gradient_checkpointing", "true")])
    assert cli.trainer.global_step == 1 and cli.model.backbone.gradient_checkpointing
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def _fit(tiny_data, log_dir, steps, *extra):
    args = tiny_cli_args(
        tiny_data, log_dir, "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.save_last", "true", "--trainer.callbacks.every_n_train_steps", "3",
        "--trainer.callbacks.save_top_k", "-1", *extra,
    )
    return lightning_main(["fit", *args])


def test_resume_from_last_ckpt_is_exact(tiny_data, tmp_path):
    # samples_per_epoch 8 / batch 2 = 4 batches an epoch: step 3 is mid-epoch, 6 crosses an epoch.
    full = _fit(tiny_data, tmp_path / "full", 6)
    part = _fit(tiny_data, tmp_path / "part", 3)
    ckpt = Path(part.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    assert torch.load(ckpt, weights_only=False)["global_step"] == 3
    resumed = _fit(tiny_data, tmp_path / "part", 6, "--ckpt_path", str(ckpt))
    assert resumed.trainer.global_step == 6
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_checkpoint_alone_rebuilds_model_and_upscales(tiny_data, tmp_path, capsys):
    cli = _fit(tiny_data, tmp_path, 3)
    ckpt = str(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    module = load_module(ckpt)
    assert isinstance(module, VSRModule) and module.codec.spatial_factor == 2 and module.hparams.scale == 2
    out = tmp_path / "up.mp4"
    main(["upscale", tiny_data["val_video"], "--ckpt", ckpt, "--output", str(out), "--steps", "2", "--chunk", "5", "--overlap", "2"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    src, dst = probe_video(tiny_data["val_video"]), probe_video(out)
    assert (dst.width, dst.height) == (2 * src.width, 2 * src.height)
    assert dst.frames == src.frames and dst.fps == pytest.approx(src.fps)
    assert summary["chunks"] == 3
    # Never overwrite what a user made.
    with pytest.raises(SystemExit, match="exists"):
        main(["upscale", tiny_data["val_video"], "--ckpt", ckpt, "--output", str(out)])


def test_upscale_a_short_real_clip(tiny_data, tmp_path, capsys):
    from conftest import SAMPLES

    from gvr.data.video import read_video

    source = SAMPLES / "carphone_pristine.mp4"
    if not source.is_file():
        pytest.skip("run `make samples` for the real sample videos")
    frames, fps = read_video(source, 30, 7)
    clip = tmp_path / "carphone_part.mp4"
    write_video(clip, frames[:, 30:102, 40:128], fps=fps)  # 7 real frames, 88x72
    cli = _fit(tiny_data, tmp_path, 1)
    ckpt = str(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    out = tmp_path / "carphone_x2.mp4"
    main(["upscale", str(clip), "--ckpt", ckpt, "--output", str(out), "--steps", "2", "--chunk", "5", "--overlap", "2"])
    got = probe_video(out)
    assert (got.width, got.height, got.frames) == (176, 144, 7) and got.fps == pytest.approx(fps)
    decoded, _ = read_video(out)
    assert decoded.shape == (7, 144, 176, 3) and decoded.std() > 0


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "one_frame"])
def test_upscale_bad_inputs_give_clear_errors(tiny_data, tmp_path, kind):
    cli = _fit(tiny_data, tmp_path, 1)
    ckpt = str(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    bad = tmp_path / f"{kind}.mp4"
    if kind == "corrupt":
        bad.write_bytes(b"\x00not a video" * 100)
    elif kind == "truncated":
        data = Path(tiny_data["val_video"]).read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    else:
        from conftest import moving_frames

        write_video(bad, moving_frames(1, 32, 32), fps=24)
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(bad), "--ckpt", ckpt, "--output", str(tmp_path / "out.mp4")])
    assert str(bad) in str(exit_info.value) and "gvr upscale: error" in str(exit_info.value)
    assert not (tmp_path / "out.mp4").exists()


def test_upscale_rejects_wrong_checkpoint(tiny_data, tmp_path):
    fake = tmp_path / "fake.ckpt"
    torch.save({"weights": torch.zeros(2)}, fake)
    with pytest.raises(SystemExit, match="not a gvr VSRModule checkpoint"):
        main(["upscale", tiny_data["val_video"], "--ckpt", str(fake), "--output", str(tmp_path / "o.mp4")])
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"garbage")
    with pytest.raises(SystemExit, match="not a PyTorch checkpoint"):
        main(["upscale", tiny_data["val_video"], "--ckpt", str(garbage), "--output", str(tmp_path / "o.mp4")])


def test_predict_writes_videos_through_the_writer(tiny_data, tmp_path):
    cli = _fit(tiny_data, tmp_path, 1)
    ckpt = str(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    out_dir = tmp_path / "pred"
    args = tiny_cli_args(tiny_data, tmp_path, "--ckpt_path", ckpt, "--data.predict_inputs", f"[{tiny_data['val_video']}]",
                         "--data.predict_chunk", "4", "--data.predict_overlap", "1",
                         "--trainer.callbacks+=gvr.inference.VideoPredictionWriter",
                         "--trainer.callbacks.output_dir", str(out_dir))
    lightning_main(["predict", *args])
    written = probe_video(out_dir / "val_x2.mp4")
    src = probe_video(tiny_data["val_video"])
    assert (written.width, written.height, written.frames) == (2 * src.width, 2 * src.height, src.frames)
    # Two inputs of one name (from two folders) would write the same output: refused before any work.
    other = tmp_path / "elsewhere" / "val.mp4"
    other.parent.mkdir()
    other.write_bytes(Path(tiny_data["val_video"]).read_bytes())
    twice = [a if a != f"[{tiny_data['val_video']}]" else f"[{tiny_data['val_video']}, {other}]" for a in args]
    with pytest.raises(ValueError, match="share the file name"):
        lightning_main(["predict", *twice])
    # an input with sound keeps it
    from test_upscale_streams import audio_packets, make_source, pan

    voiced = tmp_path / "voiced.mp4"
    packets = make_source(voiced, pan(6, 40, 48))
    with_sound = [a if a != f"[{tiny_data['val_video']}]" else f"[{voiced}]" for a in args]
    lightning_main(["predict", *with_sound])
    assert [b for b, _ in audio_packets(out_dir / "voiced_x2.mp4")] == [b for b, _ in packets]


def test_instantiate_a_config_section_outside_the_cli():
    from gvr.ops.config import instantiate_section

    module = instantiate_section(str(CONFIGS[0].parent / "stage1.yaml"), "model", VSRModule)
    assert module.codec.latent_channels == module.backbone.latent_channels == 12
    with pytest.raises(ValueError, match="no 'nope' section"):
        instantiate_section(str(CONFIGS[0].parent / "stage1.yaml"), "nope", VSRModule)


def test_stop_checkpoint_saves_where_training_stopped_and_resumes_exactly(tiny_data, tmp_path):
    def fit(log_dir, steps, *extra):
        return lightning_main(["fit", *tiny_cli_args(
            tiny_data, log_dir, "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
            "--trainer.callbacks+=gvr.lit.checkpoints.StopCheckpoint", "--trainer.callbacks.save_last", "true",
            "--trainer.callbacks.every_n_train_steps", "3", *extra)])

    full = fit(tmp_path / "full", 8)
    part = fit(tmp_path / "part", 5)  # periodic saves at step 3 only; the stop at step 5 must be kept too
    ckpt = Path(part.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    assert torch.load(ckpt, weights_only=False)["global_step"] == 5
    resumed = fit(tmp_path / "part", 8, "--ckpt_path", str(ckpt))
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_fit_without_logger_keeps_a_config_yaml_in_the_working_directory(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "config.yaml"
    mine.write_text("my own config\n")
    args = tiny_cli_args(tiny_data, tmp_path, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
                         "--trainer.enable_checkpointing", "false")
    args[args.index("--trainer.logger") + 1] = "false"
    for flag in ("--trainer.logger.save_dir", "--trainer.logger.name"):  # no logger: drop its arguments
        i = args.index(flag)
        del args[i:i + 2]
    lightning_main(["fit", *args])
    assert mine.read_text() == "my own config\n"
    # An explicit run folder still gets the config, as LightningCLI writes it.
    lightning_main(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "run")])
    assert "max_steps: 1" in (tmp_path / "run" / "config.yaml").read_text()


@pytest.mark.parametrize("fault", ["missing", "empty", "folder", "log_dir"])
def test_fit_with_bad_data_or_log_folder_is_one_line_naming_the_file(tiny_data, tmp_path, capsys, fault, monkeypatch):
    monkeypatch.delenv("GVR_TRACEBACK", raising=False)
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "afile").write_text("")
    extra = {"missing": ["--data.train_manifest", str(tmp_path / "nope.jsonl")],
             "empty": ["--data.train_manifest", str(tmp_path / "empty.jsonl")],
             "folder": ["--data.train_manifest", str(tmp_path)],
             "log_dir": ["--trainer.logger.save_dir", str(tmp_path / "afile" / "logs")]}[fault]
    expect = {"missing": "nope.jsonl not found: run `make manifests`", "empty": "empty.jsonl: no video in the manifest",
              "folder": "is a folder; data.train_manifest names a .jsonl file", "log_dir": "Not a directory"}[fault]
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *tiny_cli_args(tiny_data, tmp_path / "logs", "--trainer.max_steps", "1", *extra)])
    message = str(exit_.value.code)
    assert message.startswith("gvr fit: error: ") and expect in message and "\n" not in message
    monkeypatch.setenv("GVR_TRACEBACK", "1")  # the traceback on request
    with pytest.raises((FileNotFoundError, ValueError, NotADirectoryError)):
        main(["fit", *tiny_cli_args(tiny_data, tmp_path / "logs", "--trainer.max_steps", "1", *extra)])
