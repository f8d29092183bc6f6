"""`gvr generate`: the whole cascade (base model -> SimpleGVR -> codec -> mp4)."""

import json

import pytest

from gvr.cli import main
from gvr.data.video import probe_video, read_video


def test_generate_writes_a_playable_mp4(tiny_base_ckpt, tiny_vsr_ckpt, tmp_path, capsys):
    out, base = tmp_path / "gen.mp4", tmp_path / "base.mp4"
    main(["generate", "--base", tiny_base_ckpt, "--vsr", tiny_vsr_ckpt, "--output", str(out), "--save-base", str(base),
          "--frames", "3", "--height", "10", "--width", "14", "--base-steps", "2", "--steps", "2", "--num-videos", "2"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (28, 2 * 20, 3)  # x2, two videos stacked vertically
    assert read_video(out)[0].shape == (3, 40, 28, 3)
    assert (probe_video(base).width, probe_video(base).height) == (14, 20)
    assert summary["output_size"] == [28, 20] and summary["base_latent"] == [2, 12, 3, 5, 7]
    with pytest.raises(SystemExit, match="exists"):
        main(["generate", "--base", tiny_base_ckpt, "--vsr", tiny_vsr_ckpt, "--output", str(out)])


def test_generate_refuses_mismatched_checkpoints(tiny_base_ckpt, tiny_vsr_ckpt, tmp_path):
    with pytest.raises(SystemExit, match="not a gvr BaseModule checkpoint"):
        main(["generate", "--base", tiny_vsr_ckpt, "--vsr", tiny_vsr_ckpt, "--output", str(tmp_path / "a.mp4")])
    with pytest.raises(SystemExit, match="not found"):
        main(["generate", "--base", str(tmp_path / "none.ckpt"), "--vsr", tiny_vsr_ckpt, "--output", str(tmp_path / "b.mp4")])
