"""benchmarks/io_overlap.py: the emulated accelerator and the whole-path table (tiny clip, random weights)."""

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import io_overlap  # noqa: E402


def test_the_emulated_network_waits_its_time_and_repeats_the_lr_pixels():
    lr = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    run = io_overlap.emulated_network(20.0)
    start = time.perf_counter()
    hr = run(None, lr, (16, 20), None, "32", steps=1)
    assert time.perf_counter() - start >= 0.06  # 20 ms for each of the 3 frames
    assert hr.shape == (3, 16, 20, 3) and hr.dtype == np.uint8
    np.testing.assert_array_equal(hr[:, ::4, ::4], lr)  # x4: each LR pixel a 4x4 block
    np.testing.assert_array_equal(hr[:, 3::4, 3::4], lr)


def test_the_whole_path_table_with_an_emulated_network_in_windows(tmp_path, capsys, monkeypatch):
    import gvr.inference.upscale

    monkeypatch.setattr(gvr.inference.upscale, "_run", gvr.inference.upscale._run)  # restored after the test
    monkeypatch.chdir(ROOT)
    io_overlap.main(["--ckpt", str(tmp_path / "absent.ckpt"), "--size", "16", "16", "--frames", "12", "--chunk", "4",
                     "--repeats", "1", "--emulate-network", "5", "--threads", "1"])
    out = capsys.readouterr().out
    assert "12 frames 16x16 -> 64x64" in out and "windows of 4 frames" in out and "emulated at 5 ms/frame" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith(("| in series", "| overlapped"))]
    assert len(rows) == 2
    for _, wall, fps, network, share in rows:
        assert float(wall) >= float(network) >= 0.06 * 0.9  # 12 frames at 5 ms, in the table's rounding
        assert float(fps) > 0 and share.strip().endswith("%")
    assert "overlap gain:" in out
