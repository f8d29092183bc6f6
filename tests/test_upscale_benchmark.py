"""benchmarks/upscale.py runs its rows in subprocesses and prints one table (tiny clip, random-weight models)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # three subprocesses that each import torch and Lightning
def test_upscale_benchmark_prints_the_student_and_teacher_rows(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "upscale.py"), "--student", str(tmp_path / "absent.ckpt"),
         "--sharp", str(tmp_path / "absent.ckpt"), "--teacher", str(tmp_path / "absent.ckpt"), "--frames", "3",
         "--threads", "1", "--rows", "student:16:1,teacher:16:2,sharp:16:1", "--realesrgan", str(tmp_path / "no_weights")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "random weights of configs/distill.yaml" in out and "random weights of configs/stage1_x4.yaml" in out
    assert "random weights of configs/distill_sharp.yaml" in out
    rows = [line for line in out.splitlines() if line.startswith("| gvr")]
    assert len(rows) == 3 and rows[2].startswith("| gvr sharp student |")
    student, teacher, sharp = (row.split("|")[1:-1] for row in rows)
    assert sharp[2].strip() == "64x64" and sharp[3].strip() == "1"
    assert student[2].strip() == "64x64" and student[3].strip() == "1" and float(student[5]) > 0
    assert teacher[3].strip() == "2" and teacher[4].strip() == "3"  # the teacher's training clip of 3 frames
    assert "Real-ESRGAN rows skipped" in out or "Real-ESRGAN" not in out
