"""gvr.data.video: round trips, exact windows with seeking, atomic writes, clear errors on bad files."""

import re
import sys
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from video_fixtures import make_video, smooth_frames  # noqa: E402

from gvr.data.video import (  # noqa: E402
    VideoError,
    VideoInfo,
    VideoWriter,
    _read_from_start,
    _read_seeking,
    frames_to_tensor,
    iter_frames,
    probe_video,
    read_video,
    tensor_to_frames,
    write_video,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.mark.parametrize(
    "name, size, pix_fmt, max_mean_error",
    [
        ("even.mp4", (48, 64), "yuv420p", 1.5),  # chroma subsampling is the only loss at crf 0
        ("odd.mp4", (47, 63), "yuv444p", 0.6),  # odd sizes keep their exact size through 4:4:4
        ("even.mkv", (48, 64), "bgr0", 0.0),  # FFV1 RGB is lossless
        ("odd.mkv", (47, 63), "bgr0", 0.0),
    ],
)
def test_write_probe_read_round_trip(tmp_path, name, size, pix_fmt, max_mean_error):
    frames = smooth_frames(12, *size)
    path = tmp_path / name
    write_video(path, frames, fps=Fraction(30000, 1001), crf=0)

    info = probe_video(path)
    assert (info.frames, info.height, info.width, info.fps) == (12, *size, 30000 / 1001)
    out, fps = read_video(path)
    assert out.shape == frames.shape and out.dtype == np.uint8 and fps == 30000 / 1001
    assert np.abs(out.astype(int) - frames).mean() <= max_mean_error
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == pix_fmt


@pytest.mark.parametrize(
    "fps, expected", [(25, 25.0), (29.97002997002997, 30000 / 1001), (Fraction(24000, 1001), 24000 / 1001)]
)
def test_frame_rate_is_exact(tmp_path, fps, expected):
    write_video(tmp_path / "v.mkv", smooth_frames(3, 16, 16), fps=fps)
    assert probe_video(tmp_path / "v.mkv").fps == expected


def _h264_mp4(folder: Path) -> Path:
    return make_video(folder / "gop.mp4", smooth_frames(30, 32, 48), options={"crf": "10", "g": "5", "bf": "2"})


def _h264_mkv(folder: Path) -> Path:
    return make_video(folder / "gop.mkv", smooth_frames(30, 32, 48), options={"crf": "10", "g": "7", "bf": "3"})


def _ffv1_mkv(folder: Path) -> Path:
    write_video(folder / "ffv1.mkv", smooth_frames(30, 32, 48), fps=24)
    return folder / "ffv1.mkv"


@pytest.mark.parametrize("make", [_h264_mp4, _h264_mkv, _ffv1_mkv])
def test_windows_equal_slices_of_the_full_read(tmp_path, make):
    path = make(tmp_path)
    full, _ = read_video(path)
    assert len(full) == probe_video(path).frames == 30
    for start, num_frames in [(0, 1), (1, 3), (4, 5), (5, 1), (6, None), (13, 17), (29, 1)]:
        window, _ = read_video(path, start, num_frames)
        np.testing.assert_array_equal(window, full[start : None if num_frames is None else start + num_frames])
        if start > 0:  # the keyframe seek, not the decode-from-the-start fallback, produced it
            assert _read_seeking(path, start, num_frames) is not None


def test_too_few_frames_raises_naming_the_file(tmp_path):
    path = _ffv1_mkv(tmp_path)
    with pytest.raises(VideoError, match=re.escape(f"'{path}' has only 30 decodable frames, needs 35")):
        read_video(path, 25, 10)
    with pytest.raises(VideoError, match="has only 30 decodable frames, needs 31"):
        read_video(path, 30)
    with pytest.raises(ValueError, match="start >= 0"):
        read_video(path, -1)


def _write_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as audio:
        audio.setparams((1, 2, 8000, 0, "NONE", "not compressed"))
        audio.writeframes(bytes(1600))  # 0.1 s of silence


def _bad_file(kind: str, folder: Path) -> Path:
    """A file that no reader may accept, of the given kind."""
    path = folder / f"{kind}.mp4"
    if kind == "empty":
        path.touch()
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    elif kind in ("truncated", "truncated_faststart"):
        options = {"movflags": "faststart"} if kind == "truncated_faststart" else None
        whole = make_video(folder / "whole.mp4", smooth_frames(20, 32, 32), container_options=options).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "no_video_stream":
        path = folder / "audio.wav"
        _write_wav(path)
    elif kind == "directory":
        path.mkdir()
    return path  # "missing": never created


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "random_bytes", "truncated", "truncated_faststart", "no_video_stream", "directory"]
)
def test_bad_files_raise_video_error_naming_the_file(tmp_path, kind):
    path = _bad_file(kind, tmp_path)
    for read in (probe_video, read_video, lambda p: read_video(p, 5, 2), lambda p: list(iter_frames(p, 4))):
        with pytest.raises(VideoError, match=re.escape(str(path))):
            read(path)


def test_writer_refuses_to_overwrite_without_permission(tmp_path):
    path = tmp_path / "v.mkv"
    write_video(path, smooth_frames(3, 16, 16), fps=24)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_video(path, smooth_frames(5, 16, 16), fps=24)
    assert probe_video(path).frames == 3
    write_video(path, smooth_frames(5, 16, 16), fps=24, overwrite=True)
    assert probe_video(path).frames == 5


def test_writer_never_leaves_a_partial_file(tmp_path):
    path, frames = tmp_path / "out.mkv", smooth_frames(4, 16, 16)
    with pytest.raises(RuntimeError, match="crash"):
        with VideoWriter(path, fps=24, width=16, height=16) as writer:
            writer.write(frames)
            assert not path.exists() and len(list(tmp_path.glob(".out.mkv.*.part"))) == 1
            raise RuntimeError("crash mid-write")
    with pytest.raises(ValueError, match=r"expected uint8 frames \(T, 16, 16, 3\)"):
        with VideoWriter(path, fps=24, width=16, height=16) as writer:
            writer.write(frames)
            writer.write(frames[:, :8])
    with pytest.raises(VideoError, match="no frames were written"):
        VideoWriter(path, fps=24, width=16, height=16).close()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=re.escape("['.mkv', '.mp4']")):
        VideoWriter(tmp_path / "v.avi", fps=24, width=16, height=16)


def test_iter_frames_yields_bounded_chunks_of_the_whole_video(tmp_path):
    path = _ffv1_mkv(tmp_path)
    chunks = list(iter_frames(path, 8))
    assert [len(c) for c in chunks] == [8, 8, 8, 6]
    np.testing.assert_array_equal(np.concatenate(chunks), read_video(path)[0])
    with pytest.raises(ValueError, match="chunk"):
        next(iter_frames(path, 0))


def test_tensor_conversion_is_exact_for_uint8():
    frames = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1).repeat(2, 0)  # (2, 16, 16, 3)
    x = frames_to_tensor(frames)
    assert x.shape == (3, 2, 16, 16) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1 and x[0, 0, 0, 1] == 1 / 127.5 - 1
    np.testing.assert_array_equal(tensor_to_frames(x), frames)
    out_of_range = torch.tensor([-3.0, 3.0]).view(1, 1, 1, 2).expand(3, 1, 1, 2)
    assert tensor_to_frames(out_of_range).tolist() == [[[[0, 0, 0], [255, 255, 255]]]]  # clamped
    with pytest.raises(ValueError, match="uint8"):
        frames_to_tensor(frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        tensor_to_frames(x[None])


@pytest.mark.skipif(not (SAMPLES / "bikes.mp4").exists(), reason="run `make samples` for the real sample videos")
def test_real_sample_video():
    path = SAMPLES / "bikes.mp4"
    assert probe_video(path) == VideoInfo(str(path), frames=250, fps=25.0, width=640, height=272)
    window, fps = read_video(path, 200, 17)
    np.testing.assert_array_equal(window, _read_from_start(path, 200, 17)[0])
    assert window.shape == (17, 272, 640, 3) and fps == 25.0
