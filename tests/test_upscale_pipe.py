"""gvr upscale through pipes: a stream in, a stream out, window by window, the same frames as a file gives."""

import io
import json
import subprocess
import sys

import av
import numpy as np
import pytest

from gvr.data.pipes import PipeWriter
from gvr.data.video import read_video
from gvr.inference.stream import stream_windows, upscale_stream
from gvr.inference.upscale import upscale_video
from gvr.ops.chunks import plan_chunks


class Pipe(io.RawIOBase):
    """A non-seekable reader over bytes; it notes how much its ``sink`` held when the input ran out."""

    def __init__(self, data: bytes, sink=None):
        self.data, self.pos, self.sink, self.written_at_end = data, 0, sink, None

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buffer):
        n = min(len(buffer), len(self.data) - self.pos, 4096)  # small reads, as a pipe delivers them
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        if n == 0 and self.written_at_end is None and self.sink is not None:
            self.written_at_end = len(self.sink.value())
        return n


class Sink(io.RawIOBase):
    """A non-seekable writer."""

    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def seekable(self):
        return False

    def write(self, b):
        self.chunks.append(bytes(b))
        return len(b)

    def value(self) -> bytes:
        return b"".join(self.chunks)


def decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def nut_bytes(frames: np.ndarray) -> bytes:
    sink = io.BytesIO()
    writer = PipeWriter(sink, "nut", frames.shape[2], frames.shape[1], rate=25)
    writer.write(frames)
    writer.close()
    return sink.getvalue()


@pytest.mark.parametrize("scenes", [[20], [7, 3, 10], [1, 12], [9, 1]])
@pytest.mark.parametrize("chunk,overlap,align", [(6, 2, 1), (4, 1, 1), (5, 0, 1), (8, 3, 4)])
def test_stream_windows_are_plan_chunks_of_each_scene(scenes, chunk, overlap, align):
    stream = [(np.full((1, 1, 3), i, np.uint8), i, k == 0 and j > 0)
              for j, n in enumerate(scenes) for k in range(n) for i in [sum(scenes[:j]) + k]]
    got = list(stream_windows(iter(stream), chunk, overlap, align))
    want = [(j, s, e) for j, n in enumerate(scenes) for s, e in plan_chunks(n, chunk, overlap, align)]
    assert [(j, s, s + len(f)) for j, s, f, _, _ in got] == want
    offsets = np.cumsum([0, *scenes])
    for k, (j, s, f, pts, next_start) in enumerate(got):
        assert list(f[:, 0, 0, 0]) == pts == list(range(offsets[j] + s, offsets[j] + s + len(f)))
        assert (next_start is None) == (s + len(f) == scenes[j])
        if next_start is not None:
            assert (got[k + 1][0], got[k + 1][1]) == (j, next_start)


def test_a_pipe_gives_the_frames_of_the_file_and_writes_before_the_input_ends(tmp_path):
    from test_upscale import _vsr
    from test_upscale_streams import cut_video, make_source

    module, video = _vsr(), cut_video()  # 34 frames, a cut at 17
    src = tmp_path / "in.mkv"
    make_source(src, video, audio=None)
    kw = dict(steps=1, chunk=6, overlap=2, progress=False)
    upscale_video(module, str(src), str(tmp_path / "file.mkv"), **kw)
    sink = Sink()
    summary = upscale_stream(module, Pipe(nut_bytes(video)), sink, fmt="nut", **kw)
    assert summary["frames"] == 34 and summary["cuts"] == [17]
    np.testing.assert_array_equal(decode(sink.value()), read_video(tmp_path / "file.mkv")[0])
    # a longer stream: most of the output is out before the input ends (memory holds a window, not the video)
    from test_upscale_streams import pan

    sink = Sink()
    pipe = Pipe(nut_bytes(pan(150)), sink)
    upscale_stream(module, pipe, sink, fmt="nut", scene_detect=False, **kw)
    assert pipe.written_at_end is not None and pipe.written_at_end > 0.5 * len(sink.value())


def test_audio_rides_along_in_nut_and_y4m_warns_it_cannot(tmp_path):
    from test_upscale import _vsr
    from test_upscale_streams import audio_packets, make_source, pan

    src = tmp_path / "in.mkv"
    packets = make_source(src, pan(6), audio="flac")
    out = tmp_path / "out.nut"
    summary = upscale_stream(_vsr(), str(src), str(out), fmt="nut", steps=1, progress=False, scene_detect=False)
    assert summary["streams_left_out"] == [] and [b for b, _ in audio_packets(out)] == [b for b, _ in packets]
    y4m = Sink()
    summary = upscale_stream(_vsr(), str(src), y4m, fmt="y4m", steps=1, progress=False, scene_detect=False)
    assert "(audio, flac) cannot be stored in y4m" in summary["streams_left_out"][0]
    assert y4m.value().startswith(b"YUV4MPEG2 W64 H48") and len(decode(y4m.value())) == 6


def test_gvr_upscale_reads_stdin_and_writes_stdout(tmp_path, tiny_vsr_ckpt):
    from conftest import moving_frames

    frames = moving_frames(7, 16, 24)
    run = subprocess.run([sys.executable, "-m", "gvr.cli", "upscale", "-", "-o", "-", "--ckpt", tiny_vsr_ckpt,
                          "--steps", "1", "--pipe-format", "y4m"], input=nut_bytes(frames), capture_output=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    out = decode(run.stdout)
    assert out.shape == (7, 32, 48, 3)
    summary = json.loads(run.stderr.decode().strip().splitlines()[-1])  # the summary goes to stderr, not the pipe
    assert summary["frames"] == 7 and summary["format"] == "y4m"
