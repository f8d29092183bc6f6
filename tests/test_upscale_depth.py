"""Bit depth and colour of gvr upscale: 10-bit in, 10-bit out; colour tags carried; HDR refused."""

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc

from gvr.data.video import Colour, VideoError, VideoWriter, iter_frames, probe_video, read_video
from gvr.inference.upscale import upscale_video


def bicubic_module():
    """An anchored, sigma-0 model whose network outputs zero: its upscale is the exact bicubic anchor."""
    from gvr.codecs import PatchCodec
    from gvr.flow import FlowObjective, FlowSource
    from gvr.lit.vsr_module import VSRModule
    from gvr.models import SimpleGVR

    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8)
    objective = FlowObjective(source=FlowSource(anchor="pixel", sigma=0.0), s_range=(0.0, 0.0), sample_steps=1)
    module = VSRModule(backbone, PatchCodec(spatial_factor=2), objective, scale=2.0, ema_decay=0)
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    return module.eval()


def gradient(frames=3, h=8, w=640) -> np.ndarray:
    """uint16 RGB frames of a horizontal ramp over the 877 10-bit video levels 64..940 (as 16-bit samples)."""
    ramp = np.round(np.linspace(64, 940, w)).astype(np.uint16) << 6  # 10-bit video levels, scaled to 16 bits
    grey = np.broadcast_to(ramp[None, :, None], (h, w, 3))
    return np.ascontiguousarray(np.broadcast_to(grey, (frames, h, w, 3)))


def write_yuv(path, frames: np.ndarray, pix_fmt: str, **tags) -> None:
    """FFV1 .mkv in ``pix_fmt`` with the given colour tags (colorspace, color_range, color_primaries, color_trc)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for key, value in tags.items():
            setattr(stream.codec_context, key, value)
        fmt = "rgb48le" if frames.dtype == np.uint16 else "rgb24"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format=fmt).reformat(format=pix_fmt, **{
                k: v for k, v in (("dst_color_range", tags.get("color_range")),) if v is not None})
            for key, value in tags.items():
                setattr(frame, key, value)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def levels(frames: np.ndarray) -> int:
    return len(np.unique(frames[..., 1]))


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_a_10_bit_gradient_keeps_more_than_256_levels(tmp_path, ext):
    src = tmp_path / "ramp10.mkv"
    write_yuv(src, gradient(), "yuv444p10le")
    info = probe_video(src)
    assert info.bit_depth == 10
    assert levels(next(iter_frames(src, 3, depth=16))) > 256 and levels(next(iter_frames(src, 3))) <= 256
    module = bicubic_module()
    out10, out8 = tmp_path / f"up10{ext}", tmp_path / f"up8{ext}"
    assert upscale_video(module, str(src), str(out10), progress=False, scene_detect=False)["bit_depth"] == 10
    upscale_video(module, str(src), str(out8), progress=False, scene_detect=False, bit_depth=8)
    assert probe_video(out10).bit_depth == 10 and probe_video(out8).bit_depth == 8
    ten = next(iter_frames(out10, 3, depth=16))
    eight = next(iter_frames(out8, 3, depth=16))
    assert levels(ten) > 256 and levels(eight) <= 256
    # the 10-bit upscale of a ramp is a ramp: within a 10-bit level of the 8-bit one's (rounded to 8 bits)
    assert np.abs(ten[:, 2:-2, 8:-8].astype(float) - eight[:, 2:-2, 8:-8]).max() < 2 * 257 + 64


def test_colour_tags_are_carried_and_full_range_is_read_as_full(tmp_path):
    patches = np.array([[[200, 40, 60], [30, 180, 90]], [[50, 70, 210], [235, 220, 20]]], np.uint8)  # 2x2 flat patches
    frames = np.repeat(np.repeat(np.repeat(patches[None], 3, axis=0), 8, axis=1), 12, axis=2)  # (3, 16, 24, 3)
    src = tmp_path / "bt601_full.mkv"
    write_yuv(src, frames, "yuv444p", colorspace=6, color_range=ColorRange.JPEG,
              color_primaries=ColorPrimaries.SMPTE170M, color_trc=ColorTrc.SMPTE170M)
    info = probe_video(src)
    assert info.colour == Colour(6, 2, 6, 6)
    decoded = read_video(src)[0]
    assert np.abs(decoded.astype(int) - frames).max() <= 2  # read with its own matrix and range
    out = tmp_path / "up.mp4"
    upscale_video(bicubic_module(), str(src), str(out), progress=False, scene_detect=False)
    assert probe_video(out).colour == Colour(6, 2, 6, 6)
    upscaled = read_video(out)[0].astype(int)  # converted back with the tags it carries: the colours agree
    centres = upscaled[:, [8, 8, 24, 24], [12, 36, 12, 36]]  # the middle of each patch, upscaled x2
    assert np.abs(centres - patches.reshape(4, 3)).max() <= 3


def test_hdr_input_is_refused_and_never_tone_mapped(tmp_path):
    src = tmp_path / "pq.mkv"
    write_yuv(src, gradient(frames=2, w=32), "yuv420p10le", colorspace=9, color_primaries=ColorPrimaries.BT2020,
              color_trc=ColorTrc.SMPTE2084)
    out = tmp_path / "up.mkv"
    with pytest.raises(VideoError, match=r"is HDR \(PQ \(SMPTE ST 2084\) transfer\)"):
        upscale_video(bicubic_module(), str(src), str(out), progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="HDR"):
        VideoWriter(tmp_path / "x.mkv", 25, 8, 8, colour=Colour(9, 1, 9, 16))
    with pytest.raises(ValueError, match="bit_depth"):
        upscale_video(bicubic_module(), str(src), str(out), bit_depth=12)
