"""gvr upscale DIR --output OUTDIR: one model load, the tree mirrored, reruns skip, bad files are reported."""

import json

import numpy as np
import pytest
from conftest import moving_frames
from PIL import Image

from gvr.data.video import probe_video, write_video
from gvr.inference.folder import SUMMARY, list_inputs, upscale_folder


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "in"
    write_video(root / "a.mp4", moving_frames(4, 16, 16), fps=24, crf=0)
    write_video(root / "sub" / "b.mkv", moving_frames(3, 12, 16, seed=1), fps=24)
    Image.fromarray(moving_frames(1, 10, 14, seed=2)[0]).save(root / "sub" / "c.png")
    (root / "broken.mp4").write_bytes(b"not a video at all")
    write_video(root / "short.mp4", moving_frames(1, 16, 16), fps=24)  # one frame: too short for a video model
    (root / "notes.txt").write_text("not an input")
    (root / ".hidden.mp4").write_bytes(b"a temporary file of another tool")
    return root


def test_inputs_are_the_videos_and_photos_sorted_without_hidden_files_or_the_output(tree):
    write_video(tree / "out" / "x.mp4", moving_frames(2, 8, 8), fps=24)  # an output folder inside the input one
    found = [p.relative_to(tree).as_posix() for p in list_inputs(tree, skip=tree / "out")]
    assert found == ["a.mp4", "broken.mp4", "short.mp4", "sub/b.mkv", "sub/c.png"]


def test_a_folder_upscales_mirrored_and_a_rerun_skips_what_is_done(tree, tmp_path):
    from test_upscale import _vsr

    module, out = _vsr(), tmp_path / "out"
    summary = upscale_folder(module, tree, out, progress=False, video_kw={"steps": 1}, image_kw={"steps": 1})
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 2}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.mp4", "sub/b.mp4", "sub/c.png", SUMMARY]
    assert (probe_video(out / "sub" / "b.mp4").width, probe_video(out / "sub" / "b.mp4").frames) == (32, 3)
    assert Image.open(out / "sub" / "c.png").size == (28, 20)
    reasons = {f["input"].rsplit("/", 1)[-1]: f["reason"] for f in summary["failed"]}
    assert set(reasons) == {"broken.mp4", "short.mp4"} and "needs at least 2" in reasons["short.mp4"]
    assert json.loads((out / SUMMARY).read_text())["counts"] == summary["counts"]
    before = (out / "a.mp4").stat().st_mtime_ns
    again = upscale_folder(module, tree, out, progress=False, video_kw={"steps": 1}, image_kw={"steps": 1})
    assert again["counts"] == {"done": 0, "skipped": 3, "failed": 2}
    assert (out / "a.mp4").stat().st_mtime_ns == before  # nothing finished is redone


def test_bad_folders_are_clear_errors(tree, tmp_path):
    with pytest.raises(ValueError, match="is the input folder"):
        upscale_folder(object(), tree, tree)
    (tmp_path / "file.mp4").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        upscale_folder(object(), tree, tmp_path / "file.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no videos"):
        upscale_folder(object(), tmp_path / "empty", tmp_path / "o")
    with pytest.raises(ValueError, match="video_ext"):
        upscale_folder(object(), tree, tmp_path / "o", video_ext=".avi")


def test_gvr_upscale_takes_a_folder_from_the_command_line(tree, tmp_path, tiny_vsr_ckpt, capsys):
    from gvr.commands import upscale

    out = tmp_path / "cli_out"
    upscale.main([str(tree), "--ckpt", tiny_vsr_ckpt, "--output", str(out), "--steps", "1", "--video-ext", ".mkv"])
    captured = capsys.readouterr()
    assert "3 done, 0 skipped (already there), 2 failed" in captured.err and "failed" in captured.err
    assert json.loads(captured.out)["counts"]["done"] == 3 and (out / "sub" / "b.mkv").is_file()
    with pytest.raises(SystemExit, match="is a file"):
        upscale.main([str(tree), "--ckpt", tiny_vsr_ckpt, "--output", str(out / "a.mkv")])
    assert np.asarray(Image.open(out / "sub" / "c.png")).shape == (20, 28, 3)
