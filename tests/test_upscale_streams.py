"""gvr upscale on real files: audio and subtitles copied, timestamps and rotation kept, scene cuts respected."""

from fractions import Fraction

import av
import numpy as np
import pytest

from gvr.data.scenes import detect_cuts, scenes
from gvr.data.streams import side_streams
from gvr.data.video import probe_video, read_video
from gvr.inference.upscale import upscale_video

SRT = "1\n00:00:00,000 --> 00:00:00,100\nhello there\n\n2\n00:00:00,150 --> 00:00:00,200\nsecond line\n"


def smooth(h: int, w: int, seed: int, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 2)
    img = (img - img.min()) / (img.max() - img.min())
    return np.clip((40 + 170 * img) * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)


def pan(frames: int, h: int = 24, w: int = 32, seed: int = 0, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    scene = smooth(h, w + frames, seed, tint)
    return np.stack([scene[:, t : t + w] for t in range(frames)])


def make_source(path, frames: np.ndarray, pts=None, time_base=Fraction(1, 1000), audio: str | None = "aac",
                subtitles: bool = False, rotation: int = 0, tmp=None) -> list[tuple[bytes, Fraction]]:
    """Write ``frames`` (FFV1 in .mkv, H.264 lossless in .mp4) at ``pts`` with an audio track (and SubRip
    subtitles, from a .srt demuxed beside it); returns the audio packets written (bytes, time)."""
    pts = list(range(0, 40 * len(frames), 40)) if pts is None else pts
    h, w = frames.shape[1:3]
    with av.open(str(path), "w") as out:
        if str(path).endswith(".mkv"):
            video = out.add_stream("ffv1", rate=25)
            video.pix_fmt, fmt = "bgr0", "bgr0"
        else:
            video = out.add_stream("libx264", rate=25, options={"crf": "0"})
            video.pix_fmt, fmt = "yuv444p", "yuv444p"
        video.width, video.height = w, h
        video.codec_context.time_base = video.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=16000)
            sound.layout = "mono"
        if subtitles:
            (tmp / "sub.srt").write_text(SRT)
            srt = av.open(str(tmp / "sub.srt"))
            text = out.add_stream_from_template(srt.streams[0])
            text.metadata["language"] = "eng"
        for frame, stamp in zip(frames, pts):
            f = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=fmt)
            f.pts, f.time_base = stamp, time_base
            out.mux(video.encode(f))
        out.mux(video.encode())
        if sound is not None:
            rng, start = np.random.default_rng(5), 0
            for _ in range(8):
                chunk = av.AudioFrame.from_ndarray(rng.uniform(-0.3, 0.3, (1, 1024)).astype(np.float32),
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                start += 1024
                out.mux(sound.encode(chunk))
            out.mux(sound.encode())
        if subtitles:
            for packet in srt.demux(srt.streams[0]):
                if packet.size:
                    packet.stream = text
                    out.mux(packet)
            srt.close()
    return audio_packets(path)


def audio_packets(path) -> list[tuple[bytes, Fraction]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(bytes(p), p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size]


def frame_times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        return [f.pts * f.time_base for f in c.decode(c.streams.video[0])]


@pytest.fixture(scope="module")
def module():
    from test_upscale import _vsr

    return _vsr()


@pytest.mark.parametrize("src_ext,out_ext", [(".mp4", ".mp4"), (".mkv", ".mkv"), (".mp4", ".mkv")])
def test_audio_packets_and_timestamps_pass_through(module, tmp_path, src_ext, out_ext):
    pts = [0, 40, 90, 100, 180, 250, 260, 330]  # a variable frame rate, in milliseconds
    src, out = tmp_path / f"in{src_ext}", tmp_path / f"out{out_ext}"
    packets = make_source(src, pan(len(pts)), pts)
    summary = upscale_video(module, str(src), str(out), steps=1, progress=False, scene_detect=False)
    assert summary["streams_left_out"] == [] and [s.type for s in side_streams(out)] == ["audio"]
    copied = audio_packets(out)
    assert [b for b, _ in copied] == [b for b, _ in packets]  # every audio packet, byte for byte
    # Times against the first frame's: MP4 keeps them all; Matroska counts milliseconds and shifts a file whose
    # AAC priming packet starts before 0 (it stores no negative time), every stream alike, so sync is kept.
    tolerance = Fraction(1, 1000) if out_ext == ".mkv" and src_ext != ".mkv" else 0
    shown, first = frame_times(out), Fraction(pts[0], 1000)
    assert all(abs((a - shown[0]) - (b - first)) <= tolerance for (_, a), (_, b) in zip(copied, packets))
    assert [t - shown[0] for t in shown] == [Fraction(p - pts[0], 1000) for p in pts]  # frame timing kept
    if out_ext == src_ext:
        assert shown == [Fraction(p, 1000) for p in pts] and [t for _, t in copied] == [t for _, t in packets]
    assert probe_video(out).frames == len(pts)


def test_a_stream_the_container_cannot_hold_is_named_and_the_rest_kept(module, tmp_path, caplog):
    src = tmp_path / "in.mkv"
    make_source(src, pan(6), audio="flac", subtitles=True, tmp=tmp_path)
    assert [s.type for s in side_streams(src)] == ["audio", "subtitle"]
    mp4, mkv = tmp_path / "out.mp4", tmp_path / "out.mkv"
    summary = upscale_video(module, str(src), str(mp4), steps=1, progress=False, scene_detect=False)
    assert len(summary["streams_left_out"]) == 1
    assert f"stream #2 (subtitle, srt, eng) cannot be stored in mp4 and is left out of {mp4}" in summary["streams_left_out"][0]
    assert "left out" in caplog.text and [s.type for s in side_streams(mp4)] == ["audio"]
    summary = upscale_video(module, str(src), str(mkv), steps=1, progress=False, scene_detect=False)
    assert summary["streams_left_out"] == [] and [s.type for s in side_streams(mkv)] == ["audio", "subtitle"]
    with av.open(str(mkv)) as c, av.open(str(src)) as s:
        texts = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
        assert texts == [bytes(p) for p in s.demux(s.streams.subtitles[0]) if p.size] and b"hello there" in texts[0]
        assert c.streams.subtitles[0].metadata.get("language") == "eng"


def test_drop_streams_writes_the_picture_only_and_rotation_is_carried(module, tmp_path):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_source(src, pan(5), rotation=90)
    assert probe_video(src).rotation == 90
    upscale_video(module, str(src), str(out), steps=1, progress=False, scene_detect=False, keep_streams=False)
    assert side_streams(out) == []
    assert probe_video(out).rotation == 90  # players turn the upscale as they turned the input


def test_scenes_merge_flashes_and_cover_the_video():
    assert scenes([], 10) == [(0, 10)]
    assert scenes([4, 4, 0, 12], 10) == [(0, 4), (4, 10)]  # duplicates, 0 and cuts past the end ignored
    assert scenes([4, 5], 10, min_frames=2) == [(0, 5), (5, 10)]  # the 1-frame scene joins the one before it
    assert scenes([1, 6], 10, min_frames=2) == [(0, 6), (6, 10)]  # a short first scene takes the next one
    with pytest.raises(ValueError, match="frames >= 1"):
        scenes([], 0)


def cut_video() -> np.ndarray:
    """Two scenes of 17 frames: a slow pan over one texture, then a hard cut to a differently tinted one."""
    return np.concatenate([pan(17, seed=1), pan(17, seed=2, tint=(0.4, 1.2, 0.6))])


def test_cuts_are_found_at_the_hard_cut_only():
    cuts, frames = detect_cuts([cut_video()])
    assert (cuts, frames) == ([17], 34)


def test_frames_after_a_cut_equal_those_of_the_video_cut_there(module, tmp_path):
    video = cut_video()
    src, tail = tmp_path / "in.mkv", tmp_path / "tail.mkv"
    make_source(src, video, audio=None)
    make_source(tail, video[17:], audio=None)
    kw = dict(steps=1, chunk=6, overlap=2, progress=False)  # several windows per scene; one would straddle the cut
    summary = upscale_video(module, str(src), str(tmp_path / "out.mkv"), **kw)
    assert summary["scenes"] == [[0, 17], [17, 34]]
    upscale_video(module, str(tail), str(tmp_path / "tail_out.mkv"), **kw)
    whole, alone = read_video(tmp_path / "out.mkv")[0], read_video(tmp_path / "tail_out.mkv")[0]
    np.testing.assert_array_equal(whole[17:], alone)
    # without detection the windows cross the cut: the frames after it carry the scene before
    upscale_video(module, str(src), str(tmp_path / "blind.mkv"), scene_detect=False, **kw)
    blind = read_video(tmp_path / "blind.mkv")[0]
    assert not np.array_equal(blind[17:], alone)


def test_overlapped_io_writes_the_same_file_as_io_in_series(module, tmp_path):
    src = tmp_path / "in.mkv"
    make_source(src, cut_video(), audio="flac")
    outs = []
    for overlap_io in (True, False):
        out = tmp_path / f"out_{overlap_io}.mkv"
        summary = upscale_video(module, str(src), str(out), steps=1, chunk=6, overlap=2, progress=False,
                                overlap_io=overlap_io)
        assert 0 < summary["seconds"]["network"] <= summary["seconds"]["total"]
        outs.append(read_video(out)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
