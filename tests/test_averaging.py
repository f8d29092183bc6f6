"""Checkpoint averaging: `average_state_dicts`, `gvr average`, and the `CheckpointAverage` callback."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_cli_args

from gvr.cli import lightning_main, main
from gvr.lit.averaging import CheckpointAverage, average_checkpoints, average_state_dicts


def test_average_state_dicts_means_floats_and_keeps_the_last_integers():
    a = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([1.0], dtype=torch.float16), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([2.0], dtype=torch.float16), "n": torch.tensor(7)}
    c = {"w": torch.tensor([5.0, 1.0]), "h": torch.tensor([6.0], dtype=torch.float16), "n": torch.tensor(9)}
    out = average_state_dicts([a, b, c])
    assert torch.equal(out["w"], torch.tensor([3.0, 3.0]))
    assert out["h"].dtype == torch.float16 and out["h"].item() == 3.0
    assert out["n"].item() == 9  # integer buffers (counters) come from the most recent state dict


def test_average_state_dicts_refuses_other_networks():
    a = {"w": torch.zeros(2), "b": torch.zeros(1)}
    with pytest.raises(ValueError, match="different keys"):
        average_state_dicts([a, {"w": torch.zeros(2)}])
    with pytest.raises(ValueError, match=r"w: \(3,\)"):
        average_state_dicts([{"w": torch.zeros(3), "b": torch.zeros(1)}, a])
    with pytest.raises(ValueError, match="nothing to average"):
        average_state_dicts([])


def _fit(tiny_data, log_dir: Path, steps: int, *extra: str):
    """A tiny run saving step checkpoints every 2 steps and keeping the live average of the same steps."""
    return lightning_main(["fit", *tiny_cli_args(
        tiny_data, log_dir, "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=gvr.lit.checkpoints.StopCheckpoint", "--trainer.callbacks.dirpath", str(log_dir / "ckpt"),
        "--trainer.callbacks.save_last", "true", "--trainer.callbacks.every_n_train_steps", "2",
        "--trainer.callbacks.save_top_k", "-1", "--trainer.callbacks.filename", "step{step}",
        "--trainer.callbacks.auto_insert_metric_name", "false",
        "--trainer.callbacks+=gvr.lit.averaging.CheckpointAverage", "--trainer.callbacks.dirpath", str(log_dir / "ckpt"),
        "--trainer.callbacks.every_n_train_steps", "2", *extra)])


def _assert_same_weights(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


@pytest.fixture(scope="module")
def averaged_run(tiny_data, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("avg_run")
    cli = _fit(tiny_data, log_dir, 6)
    return log_dir / "ckpt", cli


def test_callback_average_equals_gvr_average_of_the_saved_steps(averaged_run, tmp_path):
    ckpt_dir, cli = averaged_run
    steps = [ckpt_dir / f"step{s}.ckpt" for s in (2, 4, 6)]
    assert all(p.is_file() for p in steps)
    out = tmp_path / "avg.ckpt"
    main(["average", *map(str, steps), "--output", str(out)])
    offline = torch.load(out, weights_only=False)
    live = torch.load(ckpt_dir / "average.ckpt", weights_only=False)
    _assert_same_weights(offline["state_dict"], live["state_dict"])
    assert live["global_step"] == offline["global_step"] == 6
    assert [a["global_step"] for a in offline["averaged_from"]] == [2, 4, 6]
    assert "optimizer_states" not in offline and "optimizer_states" not in live

    # It is the mean, not one of the checkpoints, and the training weights were restored after each save.
    sds = [torch.load(p, weights_only=False)["state_dict"] for p in steps]
    key = next(k for k, v in sds[0].items() if v.is_floating_point() and not torch.equal(v, sds[2][k]))
    torch.testing.assert_close(offline["state_dict"][key], (sds[0][key] + sds[1][key] + sds[2][key]) / 3)
    _assert_same_weights({k: v for k, v in cli.model.state_dict().items()}, sds[2], atol=0)


def test_averaged_checkpoint_upscales(averaged_run, tiny_data, tmp_path):
    from gvr.data.video import probe_video

    ckpt_dir, _ = averaged_run
    out = tmp_path / "up.mp4"
    main(["upscale", tiny_data["val_video"], "--ckpt", str(ckpt_dir / "average.ckpt"), "--output", str(out),
          "--steps", "1"])
    src, up = probe_video(tiny_data["val_video"]), probe_video(out)
    assert (up.width, up.height, up.frames) == (2 * src.width, 2 * src.height, src.frames)


def test_gvr_average_refuses_bad_input(averaged_run, tmp_path):
    ckpt_dir, _ = averaged_run
    a, b = str(ckpt_dir / "step2.ckpt"), str(ckpt_dir / "step4.ckpt")
    existing = tmp_path / "mine.ckpt"
    existing.write_bytes(b"user data")
    with pytest.raises(SystemExit, match="exists"):
        main(["average", a, b, "--output", str(existing)])
    assert existing.read_bytes() == b"user data"
    with pytest.raises(SystemExit, match="one of the checkpoints"):
        main(["average", a, b, "--output", b])
    with pytest.raises(SystemExit, match="listed twice"):
        main(["average", a, str(ckpt_dir / "sub" / ".." / "step2.ckpt"), "--output", str(tmp_path / "two.ckpt")])
    with pytest.raises(SystemExit, match="at least 2"):
        main(["average", a, "--output", str(tmp_path / "one.ckpt")])
    other = torch.load(b, weights_only=False)
    other["hyper_parameters"]["lr"] = 0.5
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(SystemExit, match="another config"):
        main(["average", a, str(tmp_path / "other.ckpt"), "--output", str(tmp_path / "x.ckpt")])
    with pytest.raises(SystemExit, match="not found"):
        main(["average", a, str(tmp_path / "missing.ckpt"), "--output", str(tmp_path / "x.ckpt")])
    assert not (tmp_path / "x.ckpt").exists()


def test_resumed_run_continues_the_same_average(averaged_run, tiny_data, tmp_path):
    ckpt_dir, _ = averaged_run
    part = _fit(tiny_data, tmp_path, 3)  # averages step 2; last.ckpt at the stop (step 3) carries the mean
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    avg_state = next(v for k, v in state.items() if k.startswith("CheckpointAverage"))
    assert avg_state["steps"] == [2] and avg_state["count"] == 1
    _fit(tiny_data, tmp_path, 6, "--ckpt_path", str(tmp_path / "ckpt" / "last.ckpt"))
    resumed = torch.load(tmp_path / "ckpt" / "average.ckpt", weights_only=False)["state_dict"]
    full = torch.load(ckpt_dir / "average.ckpt", weights_only=False)["state_dict"]
    _assert_same_weights(resumed, full)
    del part


@pytest.mark.parametrize("old_key", [False, True], ids=["same-key", "checkpoint-keyed-by-its-folder"])
def test_a_run_resumed_into_another_folder_continues_the_average(averaged_run, tiny_data, tmp_path, old_key):
    """A longer run under a new name (its checkpoints in a new folder) keeps averaging from where the first run
    stopped, also from a checkpoint written when the callback's state was keyed by its folder."""
    ckpt_dir, _ = averaged_run
    _fit(tiny_data, tmp_path / "first", 3)
    start = tmp_path / "first" / "ckpt" / "last.ckpt"
    if old_key:
        saved = torch.load(start, weights_only=False)
        key = next(k for k in saved["callbacks"] if k.startswith("CheckpointAverage"))
        old = key.replace("CheckpointAverage{", f"CheckpointAverage{{'dirpath': '{start.parent}', ")
        saved["callbacks"][old] = saved["callbacks"].pop(key)
        torch.save(saved, start)
    _fit(tiny_data, tmp_path / "longer", 6, "--ckpt_path", str(start))
    state = torch.load(tmp_path / "longer" / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert next(v for k, v in state.items() if k.startswith("CheckpointAverage{'filename'"))["steps"] == [2, 4, 6]
    _assert_same_weights(torch.load(tmp_path / "longer" / "ckpt" / "average.ckpt", weights_only=False)["state_dict"],
                         torch.load(ckpt_dir / "average.ckpt", weights_only=False)["state_dict"])


@pytest.mark.parametrize("flag, value, steps", [("start_step", 3, [4, 6]), ("end_step", 4, [2, 4])],
                         ids=["start-leaves-the-early-steps-out", "end-leaves-the-late-steps-out"])
def test_a_window_of_steps_averages_those_steps_only(averaged_run, tiny_data, tmp_path, flag, value, steps):
    ckpt_dir, _ = averaged_run
    _fit(tiny_data, tmp_path, 6, f"--trainer.callbacks.{flag}", str(value))
    window = torch.load(tmp_path / "ckpt" / "average.ckpt", weights_only=False)
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert next(v for k, v in state.items() if k.startswith("CheckpointAverage"))["steps"] == steps
    assert window["global_step"] == steps[-1]  # with end_step the file is the one written then, untouched after
    out = tmp_path / "offline.ckpt"
    main(["average", *(str(ckpt_dir / f"step{s}.ckpt") for s in steps), "--output", str(out)])
    _assert_same_weights(window["state_dict"], torch.load(out, weights_only=False)["state_dict"])


def test_callback_refuses_bad_settings():
    with pytest.raises(ValueError, match="every_n_train_steps"):
        CheckpointAverage("x", every_n_train_steps=0)
    with pytest.raises(ValueError, match="end_step 100 leaves no step"):
        CheckpointAverage("x", every_n_train_steps=125, end_step=100)
    with pytest.raises(ValueError, match="end_step 450 leaves no step"):
        CheckpointAverage("x", every_n_train_steps=125, start_step=400, end_step=450)  # the first step is 500
    assert CheckpointAverage("x", every_n_train_steps=125, start_step=400, end_step=500).end_step == 500


def test_averaged_checkpoint_benchmarks_with_gvr_test(averaged_run, tiny_data, tmp_path):
    import json

    from test_benchmark import _test_args

    ckpt_dir, _ = averaged_run
    lightning_main(_test_args(tiny_data, str(ckpt_dir / "average.ckpt"), tmp_path, tiny_data["val"],
                              "--trainer.callbacks.init_args.metrics", "[psnr]"))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["clips"] == 2 and "psnr" in summary["methods"]["model"]["mean"]


def test_a_new_run_keeps_another_runs_average(tiny_data, tmp_path):
    (tmp_path / "ckpt").mkdir()
    theirs = tmp_path / "ckpt" / "average.ckpt"
    theirs.write_bytes(b"another run")
    _fit(tiny_data, tmp_path, 2)
    assert theirs.read_bytes() == b"another run"
    assert torch.load(tmp_path / "ckpt" / "average-v1.ckpt", weights_only=False)["global_step"] == 2


def test_without_dirpath_the_average_and_the_best_go_to_the_runs_folder(tiny_data, tmp_path):
    """As configs/distill_sharp.yaml sets them: no dirpath, so a run renamed by an overlay or `make ... SEED=N`
    keeps its average.ckpt and best.ckpt beside its step checkpoints, in logs/<name>/checkpoints."""
    lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
        "--trainer.logger.name", "run_s1",
        "--trainer.callbacks+=gvr.lit.RunCheckpoint", "--trainer.callbacks.filename", "best",
        "--trainer.callbacks.every_n_train_steps", "2",
        "--trainer.callbacks+=gvr.lit.CheckpointAverage", "--trainer.callbacks.every_n_train_steps", "1")])
    folder = tmp_path / "run_s1" / "checkpoints"
    assert torch.load(folder / "average.ckpt", weights_only=False)["global_step"] == 2
    assert torch.load(folder / "best.ckpt", weights_only=False)["global_step"] == 2
    assert not list((tmp_path / "run_s1").glob("version_*/checkpoints"))  # not Lightning's per-version folder
    with pytest.raises(ValueError, match="no logger to name it: give dirpath"):
        CheckpointAverage(every_n_train_steps=1).setup(SimpleNamespace(logger=None), None, "fit")


@pytest.mark.slow
def test_callback_under_ddp_equals_the_average_of_the_saved_steps(tiny_data, tmp_path):
    import subprocess
    import sys

    args = tiny_cli_args(
        tiny_data, tmp_path, "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_steps", "4",
        "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=gvr.lit.checkpoints.StopCheckpoint", "--trainer.callbacks.dirpath", str(tmp_path / "ckpt"),
        "--trainer.callbacks.every_n_train_steps", "2", "--trainer.callbacks.save_top_k", "-1",
        "--trainer.callbacks.filename", "step{step}", "--trainer.callbacks.auto_insert_metric_name", "false",
        "--trainer.callbacks+=gvr.lit.averaging.CheckpointAverage", "--trainer.callbacks.dirpath", str(tmp_path / "ckpt"),
        "--trainer.callbacks.every_n_train_steps", "2")
    run = subprocess.run([sys.executable, "-m", "gvr.cli", "fit", *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    offline = average_checkpoints([tmp_path / "ckpt" / "step2.ckpt", tmp_path / "ckpt" / "step4.ckpt"], tmp_path / "o.ckpt")
    live = torch.load(tmp_path / "ckpt" / "average.ckpt", weights_only=False)
    _assert_same_weights(torch.load(offline, weights_only=False)["state_dict"], live["state_dict"])
    assert live["global_step"] == 4 and not list((tmp_path / "ckpt").glob("*.tmp"))
