"""The cascade's configs and `make cascade`: each stage trains its start's objective; the control matches stage 2."""

import inspect
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gvr.flow import FlowSource
from gvr.ops.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
OBJECTIVE = ("objective", "val_sample_steps")
BUDGET = ("max_steps", "max_time", "val_check_interval")


def _model(name: str) -> dict:
    """The model section, the flow source's unset arguments filled with `FlowSource`'s defaults."""
    model = load_config(CONFIGS / name)["model"]
    source = model.get("objective", {}).get("init_args", {}).get("source")
    if source is not None:
        defaults = {k: p.default for k, p in inspect.signature(FlowSource).parameters.items()}
        source["init_args"] = {**defaults, **source.get("init_args", {})}
    return model


@pytest.mark.parametrize("chain", [("stage1.yaml", "stage2.yaml", "stage3.yaml"),
                                   ("stage1_paper.yaml", "stage2_paper.yaml", "stage3_paper.yaml")])
def test_each_stage_starts_from_the_previous_one_and_keeps_its_objective(chain):
    first, *later = (_model(name) for name in chain)
    for model in later:
        assert {k: model[k] for k in OBJECTIVE} == {k: first[k] for k in OBJECTIVE}
    runs = [load_config(CONFIGS / name)["trainer"]["logger"]["init_args"]["name"] for name in chain]
    assert [m["init_from"] for m in later] == [f"logs/{run}/checkpoints/last.ckpt" for run in runs[:-1]]


def test_the_control_trains_stage_2s_budget_on_stage_1s_data():
    stage1, stage2, control = (load_config(CONFIGS / n) for n in ("stage1.yaml", "stage2.yaml", "stage2_control.yaml"))
    assert {k: control["trainer"][k] for k in BUDGET} == {k: stage2["trainer"][k] for k in BUDGET}
    for key in ("lr", "warmup_steps", "weight_decay", "ema_decay", "init_from", *OBJECTIVE):
        assert control["model"][key] == stage2["model"][key], key
    assert control["data"] == stage1["data"] and "train_cache" in stage2["data"]
    assert control["seed_everything"] == stage2["seed_everything"]


def _dry_run(cascade: Path) -> list[str]:
    """The training / building commands `make -n cascade` would run, in order."""
    out = subprocess.run(["make", "-n", "-s", "cascade", f"CASCADE={cascade}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    verbs = ("gvr base fit", "gvr pairs", "gvr fit", "gvr generate")
    return [next(v for v in verbs if v in line) + " " + line.split("--config ")[-1].split()[0]
            if "--config" in line else "gvr generate" for line in out.splitlines() if any(v in line for v in verbs)]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_cascade_runs_the_chain_in_order_and_skips_finished_steps(tmp_path):
    steps = ["gvr base fit configs/base.yaml", "gvr pairs configs/pairs.yaml", "gvr fit configs/stage1.yaml",
             "gvr fit configs/stage2.yaml", "gvr fit configs/stage3.yaml", "gvr generate"]
    assert _dry_run(tmp_path) == steps
    for name in ("base", "pairs", "stage1"):  # finished, oldest first, as a real run leaves them
        (tmp_path / f"{name}.done").write_text("1\n")
        time.sleep(0.01)
    assert _dry_run(tmp_path) == steps[3:]
