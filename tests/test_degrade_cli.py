"""gvr degrade: one degradation applied to a user's video, chunk by chunk."""

import json

import numpy as np
import pytest

from gvr.cli import main
from gvr.data.video import probe_video, read_video, write_video


def _clip(path, frames=10, h=64, w=96):
    rng = np.random.default_rng(0)
    background = np.kron(rng.integers(0, 256, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    square = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        video[t, 24:40, 4 + 5 * t : 20 + 5 * t] = square  # moves 5 px a frame to the right
    write_video(path, video, fps=24, crf=0)  # FFV1 when .mkv: exact pixels
    return video


def test_flow_kind_keeps_size_and_static_background_across_chunks(tmp_path, capsys):
    import cv2
    from test_flow_degradation import square_clip

    video, covered = square_clip(t=10)
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_video(src, video, fps=24)  # FFV1: exact pixels
    main(["degrade", str(src), "--kind", "flow", "--output", str(out), "--chunk", "4", "--seed", "3"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["output_size"] == [video.shape[2], video.shape[1]]
    got, _ = read_video(out)
    assert got.shape == video.shape
    near = cv2.dilate(covered.astype(np.uint8), np.ones((49, 49), np.uint8)).astype(bool)
    assert np.array_equal(got[:, ~near], video[:, ~near])  # static regions bit-identical, chunk borders included
    assert np.array_equal(got[0], video[0])
    # The moving square is degraded in every frame, also the first frame of each later chunk (4 and 8).
    assert all(not np.array_equal(got[t][covered], video[t][covered]) for t in range(1, 10))


def test_classic_kind_writes_the_low_resolution_result(tmp_path, capsys):
    src, out = tmp_path / "in.mp4", tmp_path / "lr.mp4"
    _clip(src)
    main(["degrade", str(src), "--kind", "classic", "--output", str(out), "--chunk", "5"])
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (38, 26, 10)  # 96 / 2.5 = 38.4, 64 / 2.5 = 25.6
    with pytest.raises(SystemExit, match="exists"):
        main(["degrade", str(src), "--kind", "classic", "--output", str(out)])
    before = src.read_bytes()
    with pytest.raises(SystemExit, match="is the input file"):
        main(["degrade", str(src), "--kind", "classic", "--output", str(src), "--overwrite"])
    assert src.read_bytes() == before


def test_config_must_match_the_kind(tmp_path):
    src = tmp_path / "in.mp4"
    _clip(src, frames=3)
    cfg = tmp_path / "deg.yaml"
    cfg.write_text("degradation:\n  class_path: gvr.data.degradations.ClassicDegradation\n  init_args: {codec_prob: 0.0}\n")
    with pytest.raises(SystemExit, match="FlowDegradation"):
        main(["degrade", str(src), "--kind", "flow", "--output", str(tmp_path / "o.mp4"), "--config", str(cfg)])
    main(["degrade", str(src), "--kind", "classic", "--output", str(tmp_path / "o.mp4"), "--config", str(cfg)])
    assert probe_video(tmp_path / "o.mp4").frames == 3


def test_preview_sheet_layout():
    from test_flow_degradation import square_clip

    from data_prep.degrade_preview import sheet
    from gvr.data.degradations import FlowDegradation

    frames, _ = square_clip(t=3)
    out = sheet(frames, FlowDegradation(), seed=0)
    t, h, w, _ = frames.shape
    assert out.shape == ((t - 1) * h, 4 * w, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:h, :w], frames[1])
