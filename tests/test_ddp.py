"""The trainer runs unchanged under DDP on CPU (gloo), two processes."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_cli_args


@pytest.mark.slow
def test_fit_under_ddp_on_cpu(tiny_data, tmp_path):
    args = tiny_cli_args(
        tiny_data, tmp_path, "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_steps", "3",
        "--trainer.limit_val_batches", "1",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint", "--trainer.callbacks.save_last", "true",
    )
    run = subprocess.run([sys.executable, "-m", "gvr.cli", "fit", *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ckpt = next(Path(tmp_path).rglob("last.ckpt"))
    state = torch.load(ckpt, weights_only=False)
    assert state["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())

