"""Does a run resume exactly? Train ``--steps`` steps straight; train half of them, stop, and resume to the end from
the saved checkpoint; compare the per-step losses and the final weights, and print seconds per step and the
checkpoint's size. Meant for sharded runs (`gvr.lit.strategies.FSDP2Strategy`, whose checkpoints are folders of
per-rank shards), any config works.

    python benchmarks/sharded_resume.py --config configs/stage1_fsdp.yaml --steps 4             # 2 CPU processes
    python benchmarks/sharded_resume.py --config configs/cluster_2x8.yaml --steps 4 -- \\
        --trainer.devices 1 --trainer.num_nodes 1 --model.codec.init_args.path /models/Wan2.1 ...  # the 1b preset

Everything after ``--`` is passed to each `gvr fit` as is (overrides of the config). Each run writes under
``--out`` (default: a temporary folder, deleted afterwards): a CSV log with ``train/loss`` and
``perf/step_seconds`` (`gvr.metrics.callbacks.StepTimer`) of every step (rank 0), and its checkpoints. Validation
is off. The config's callbacks are replaced by one `ModelCheckpoint` saving at the half and at the end, plus the
step timer. Sharded checkpoint folders are gathered into one file (`gvr.lit.strategies.consolidate_checkpoint`) to
compare the weights (the EMA included). Prints a markdown table; exits 1 when a loss or a weight differs by more
than ``--atol``.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def fit(config: str | None, out: Path, steps: int, save_every: int, overrides: list[str], resume: Path | None = None) -> float:
    """`gvr fit` of ``config`` for ``steps`` steps logging to ``out``; returns its wall seconds."""
    callbacks = [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"dirpath": str(out / "checkpoints"), "save_last": True, "every_n_train_steps": save_every,
                       "save_top_k": -1, "filename": "step{step}", "auto_insert_metric_name": False}},
        {"class_path": "gvr.metrics.callbacks.StepTimer", "init_args": {"skip": 1}},
    ]
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out), "name": "csv"}}
    cmd = [sys.executable, "-m", "gvr.cli", "fit", *(["--config", config] if config else []), *overrides,
           "--trainer.max_steps", str(steps), "--trainer.max_time", "null", "--trainer.limit_val_batches", "0",
           "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
           "--trainer.callbacks", json.dumps(callbacks), "--trainer.logger", json.dumps(logger)]
    if resume is not None:
        cmd += ["--ckpt_path", str(resume)]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"gvr fit failed ({' '.join(cmd)}):\n{run.stderr[-4000:]}")
    return time.perf_counter() - start


def read_log(out: Path) -> tuple[dict[int, float], list[float]]:
    """``({step: train/loss}, [seconds per step])`` from every CSV log under ``out`` (step = optimizer step, from 1)."""
    losses, seconds = {}, []
    for path in sorted(out.glob("csv/version_*/metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("train/loss"):
                    losses[int(row["step"]) + 1] = float(row["train/loss"])
                if row.get("perf/step_seconds"):
                    seconds.append(float(row["perf/step_seconds"]))
    return losses, seconds


def weights(checkpoint: Path, scratch: Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file, or of a sharded folder gathered into one file first."""
    from gvr.lit.strategies import consolidate_checkpoint

    if checkpoint.is_dir():
        checkpoint = consolidate_checkpoint(checkpoint, scratch / f"{checkpoint.parent.parent.name}.ckpt")
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def size_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def compare(root: Path, steps: int) -> tuple[list[tuple[int, float, float]], float, dict]:
    """Per-step losses of the straight and the resumed run, the largest weight difference and run facts (with the
    straight run's seconds per step)."""
    straight, part = root / "straight", root / "part"
    a, seconds = read_log(straight)
    b, _ = read_log(part)
    rows = [(k, a.get(k, float("nan")), b.get(k, float("nan"))) for k in range(1, steps + 1)]
    wa = weights(straight / "checkpoints" / "last.ckpt", root)
    wb = weights(part / "checkpoints" / "last.ckpt", root)
    if wa.keys() != wb.keys():
        raise SystemExit(f"the two runs' checkpoints hold other tensors: {sorted(wa.keys() ^ wb.keys())[:5]}")
    diff = max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa if wa[k].is_floating_point())
    return rows, diff, {"tensors": len(wa), "ema": any(k.startswith("ema.") for k in wa), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, overrides = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="gvr fit config (e.g. configs/stage1_fsdp.yaml); or give it all after --")
    p.add_argument("--steps", type=int, default=4, help="steps of the straight run (even: the stop is at the half)")
    p.add_argument("--atol", type=float, default=1e-5, help="largest loss or weight difference taken as equal")
    p.add_argument("--out", default=None, help="keep the runs in this folder (default: a temporary one)")
    args = p.parse_args(own)
    if args.steps < 2 or args.steps % 2:
        p.error(f"--steps must be even and at least 2, got {args.steps}")
    half = args.steps // 2
    with tempfile.TemporaryDirectory(prefix="gvr_resume_") as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        if args.out and root.exists() and any(root.iterdir()):
            p.error(f"--out {root} is not empty")
        env_note = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
        t_straight = fit(args.config, root / "straight", args.steps, half, overrides)
        t_part = fit(args.config, root / "part", half, half, overrides)
        last = root / "part" / "checkpoints" / "last.ckpt"
        t_resume = fit(args.config, root / "part", args.steps, half, overrides, resume=last)
        rows, diff, facts = compare(root, args.steps)
        ckpt = size_mib(root / "straight" / "checkpoints" / "last.ckpt")
        kind = "folder of shards" if (root / "straight" / "checkpoints" / "last.ckpt").is_dir() else "single file"
    print(f"{args.config or 'gvr fit'} {' '.join(overrides)} ({env_note}): {args.steps} steps straight; {half} steps, stop, "
          f"resume to {args.steps}\n")
    print("| step | straight loss | resumed loss | difference |")
    print("|---|---|---|---|")
    for step, a, b in rows:
        print(f"| {step}{' (resumed)' if step > half else ''} | {a:.6f} | {b:.6f} | {abs(a - b):.2e} |")
    seconds = facts["seconds"]
    mean = sum(seconds[1:]) / len(seconds[1:]) if len(seconds) > 1 else float("nan")
    print(f"\n- final weights ({facts['tensors']} tensors, EMA {'included' if facts['ema'] else 'absent'}): "
          f"largest difference {diff:.2e}")
    print(f"- checkpoint: {kind}, {ckpt:.1f} MiB; {mean:.3f} s/step after the first (straight run)")
    print(f"- wall: straight {t_straight:.0f} s, first half {t_part:.0f} s, resumed half {t_resume:.0f} s "
          "(each with its start-up)")
    worst = max([abs(a - b) for _, a, b in rows] + [diff])
    ok = worst <= args.atol
    print(f"- {'exact' if ok else 'NOT exact'} within atol {args.atol:g} (largest difference {worst:.2e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
