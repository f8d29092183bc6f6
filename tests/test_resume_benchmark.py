"""benchmarks/sharded_resume.py: a run stopped at the half and resumed repeats the straight run, and says so."""

import sys
from pathlib import Path

import pytest
from conftest import tiny_cli_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sharded_resume  # noqa: E402


def test_resume_benchmark_finds_an_exact_resume(tiny_data, tmp_path, capsys):
    out = tmp_path / "runs"
    code = sharded_resume.main(["--steps", "2", "--out", str(out), "--", *tiny_cli_args(tiny_data, tmp_path / "tb")])
    table = capsys.readouterr().out
    assert code == 0 and "| 2 (resumed) |" in table and "exact within atol" in table and "single file" in table
    straight, _ = sharded_resume.read_log(out / "straight")
    resumed, _ = sharded_resume.read_log(out / "part")
    assert straight.keys() == resumed.keys() == {1, 2} and straight == resumed
    assert sorted(p.name for p in (out / "part" / "csv").iterdir()) == ["version_0", "version_1"]  # stop, resume


def test_resume_benchmark_refuses_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        sharded_resume.main(["--steps", "3"])
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(SystemExit):
        sharded_resume.main(["--steps", "2", "--out", str(tmp_path)])
    assert (tmp_path / "mine.txt").read_text() == "user data"
