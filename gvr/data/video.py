"""Video files <-> uint8 RGB frames <-> [-1, 1] tensors, with PyAV: where pixels enter and leave gvr.

Frame ``i`` of a file is its ``i``-th decodable frame in presentation order. Every failure to open,
demux or decode a file is a `VideoError` naming the file; no PyAV exception leaves this module.

Colour: RGB <-> YUV conversions use swscale's accurate rounding and full chroma interpolation
(the fast default path shifts saturated colours by 2-3 levels). A frame is read with the matrix and range
it is tagged with (an untagged one as swscale's default, BT.601 limited range). H.264 output is BT.709
limited range and tagged as such, so players and this reader agree on its colours; given a source's
`Colour` (tagged matrix, range, primaries, transfer) the writer converts with and tags those instead.

Bit depth: frames are uint8 RGB, or uint16 RGB (0..65535) for sources of more than 8 bits
(``depth=16`` in `iter_frames`); `VideoWriter` writes ``bit_depth=10`` as 10-bit H.264 (High 10) or
10-bit FFV1.
"""

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
import torch
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc, Interpolation
from einops import rearrange

PathLike = str | os.PathLike[str]

_TO_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
FROM_RGB = Interpolation.BICUBIC | Interpolation.ACCURATE_RND
_AVCOL_SPC_BT709 = 1  # FFmpeg's AVColorSpace value for the stream tag (PyAV has no enum for it)
_CONTAINERS = {".mp4": "mp4", ".mkv": "matroska"}  # what VideoWriter writes: H.264 / FFV1


class VideoError(ValueError):
    """A video file cannot be opened or decoded, or has too few frames; the message names the file."""


HDR_TRANSFERS = {int(ColorTrc.SMPTE2084): "PQ (SMPTE ST 2084)", int(ColorTrc.ARIB_STD_B67): "HLG (ARIB STD-B67)"}
_UNSPECIFIED = 2  # FFmpeg's AVCOL_*_UNSPECIFIED for matrix, primaries and transfer (range: 0)


@dataclass(frozen=True)
class Colour:
    """How a stream's YUV maps to RGB, as FFmpeg's enums: matrix (AVColorSpace), range (AVColorRange: 1
    limited, 2 full), primaries (AVColorPrimaries), transfer (AVColorTransferCharacteristic); 2 (range: 0) is
    unspecified."""

    matrix: int = _UNSPECIFIED
    range: int = 0
    primaries: int = _UNSPECIFIED
    transfer: int = _UNSPECIFIED

    @property
    def tagged(self) -> bool:
        return (self.matrix, self.range, self.primaries, self.transfer) != (_UNSPECIFIED, 0, _UNSPECIFIED, _UNSPECIFIED)

    @property
    def hdr(self) -> str | None:
        """The HDR transfer's name (PQ, HLG), or None for SDR."""
        return HDR_TRANSFERS.get(self.transfer)


def frame_colour(frame: av.VideoFrame) -> Colour:
    return Colour(int(frame.colorspace), int(frame.color_range), int(frame.color_primaries), int(frame.color_trc))


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` finds in a file: its decodable frame count, frame rate and frame size, and (not
    compared) each frame's presentation timestamp in ``time_base`` units (None where a frame has none) and the
    display rotation (degrees counter-clockwise, as `av.VideoFrame.rotation`) players apply, the bits per
    sample of its pixel format and its first frame's `Colour`."""

    path: str
    frames: int
    fps: float
    width: int
    height: int
    pts: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    time_base: Fraction | None = field(default=None, compare=False)
    rotation: int = field(default=0, compare=False)
    bit_depth: int = field(default=8, compare=False)
    colour: Colour = field(default_factory=Colour, compare=False)


@contextlib.contextmanager
def av_errors(path: PathLike, action: str) -> Iterator[None]:
    """Turn any PyAV error raised inside the block into a `VideoError` naming `path`."""
    try:
        yield
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot {action} video '{path}': {e.strerror}") from e


@contextlib.contextmanager
def _open_video(path: PathLike) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """Open the first video stream of `path` for multithreaded decoding."""
    if not os.path.isfile(path):
        raise VideoError(f"video '{path}' does not exist or is not a file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"video '{path}' is an empty file")
    with av_errors(path, "read"), av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise VideoError(f"'{path}' has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream


def _packets(container: av.container.InputContainer, stream: av.VideoStream, path: PathLike) -> Iterator[av.Packet]:
    """Demux `stream`, refusing packets the demuxer flags as damaged (e.g. cut off by a truncated file)."""
    for index, packet in enumerate(container.demux(stream)):
        if packet.is_corrupt:
            raise VideoError(f"video '{path}' is truncated or corrupt: packet {index} is damaged")
        yield packet


def _frames(container: av.container.InputContainer, stream: av.VideoStream, path: PathLike) -> Iterator[av.VideoFrame]:
    """Decode `stream` from the current position to its end."""
    for packet in _packets(container, stream, path):
        yield from packet.decode()


def stream_fps(stream: av.VideoStream, path: PathLike) -> float:
    """The stream's average frame rate."""
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise VideoError(f"video '{path}' declares no frame rate")
    return float(rate)


def frame_to_rgb(frame: av.VideoFrame, depth: int = 8) -> np.ndarray:
    """RGB pixels (H, W, 3) of a decoded frame: uint8 for ``depth`` 8, uint16 (0..65535) for 16; converted with
    the frame's tagged matrix and range."""
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth}")
    kw = {"src_color_range": frame.color_range} if int(frame.color_range) else {}
    return frame.to_ndarray(format="rgb24" if depth == 8 else "rgb48le", interpolation=_TO_RGB, **kw)


def stream_bit_depth(stream: av.VideoStream) -> int:
    """Bits per sample of a stream's pixel format (8 when unknown)."""
    try:
        return max(c.bits for c in av.VideoFormat(stream.codec_context.pix_fmt).components)
    except (TypeError, ValueError):
        return 8


def probe_video(path: PathLike) -> VideoInfo:
    """Size, frame rate and true frame count of a video (decodes every frame: container counts can lie).

    Raises:
        VideoError: the file is missing, unreadable, corrupt, truncated or holds no decodable frame.
    """
    with _open_video(path) as (container, stream):
        stamps, rotation, colour = [], 0, Colour()
        for frame in _frames(container, stream, path):
            if not stamps:
                rotation, colour = int(frame.rotation or 0), frame_colour(frame)
            stamps.append(frame.pts)
        frames = len(stamps)
        pts = tuple(stamps) if None not in stamps and list(stamps) == sorted(set(stamps)) else None
        info = VideoInfo(str(path), frames, stream_fps(stream, path), stream.codec_context.width, stream.codec_context.height,
                         pts, stream.time_base, rotation, stream_bit_depth(stream), colour)
    if frames == 0:
        raise VideoError(f"video '{path}' has no decodable frames")
    return info


def read_video(path: PathLike, start: int = 0, num_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode frames ``start : start + num_frames`` (to the end when `num_frames` is None).

    Returns:
        uint8 RGB frames (T, H, W, 3) and the frame rate.

    Raises:
        VideoError: the file cannot be decoded or has fewer frames than requested.
    """
    if start < 0 or (num_frames is not None and num_frames < 1):
        raise ValueError(f"read_video('{path}'): need start >= 0 and num_frames >= 1, got {start} and {num_frames}")
    read = _read_seeking(path, start, num_frames) if start > 0 else None
    return read if read is not None else _read_from_start(path, start, num_frames)


def _read_from_start(path: PathLike, start: int, num_frames: int | None) -> tuple[np.ndarray, float]:
    """Decode from the first frame, converting only the requested ones."""
    stop = None if num_frames is None else start + num_frames
    kept, count = [], 0
    with _open_video(path) as (container, stream):
        fps = stream_fps(stream, path)
        for count, frame in enumerate(_frames(container, stream, path), 1):
            if count > start:
                kept.append(frame_to_rgb(frame))
            if count == stop:
                break
    if len(kept) < (num_frames or 1):
        raise VideoError(f"video '{path}' has only {count} decodable frames, needs {stop or start + 1}")
    return np.stack(kept), fps


def _read_seeking(path: PathLike, start: int, num_frames: int | None) -> tuple[np.ndarray, float] | None:
    """The same frames as `_read_from_start`, decoded from the last keyframe before `start`.

    Frame ``i`` should carry the ``i``-th smallest packet timestamp (one packet a frame, as in MP4 and
    MKV). The decoded timestamps must match the expected ones exactly; where they do not, or the file
    looks too short, this returns None and the caller decodes from the beginning instead.
    """
    with _open_video(path) as (container, stream):
        packets = [(p.pts, p.is_keyframe) for p in _packets(container, stream, path) if p.size and not p.is_discard]
        if any(pts is None for pts, _ in packets):
            return None
        timestamps = sorted(pts for pts, _ in packets)
        wanted = timestamps[start : None if num_frames is None else start + num_frames]
        if len(wanted) < (num_frames or 1):
            return None
        keyframes = [pts for pts, key in packets if key and pts <= wanted[0]]
        if not keyframes:
            return None
        try:
            container.seek(max(keyframes), stream=stream)
        except av.error.FFmpegError:
            return None
        got, kept = [], []
        for frame in _frames(container, stream, path):
            if frame.pts is None or frame.pts >= wanted[0]:
                got.append(frame.pts)
                kept.append(frame_to_rgb(frame))
            if len(got) == len(wanted):
                break
        return (np.stack(kept), stream_fps(stream, path)) if got == wanted else None


def stream_info(path: PathLike) -> tuple[float, int, int, float | None]:
    """Frame rate, width, height and declared duration (seconds; None if unknown) from a video's header.

    Nothing is decoded (`probe_video` counts the frames). The duration is the video stream's, or the
    container's when the video is its only stream; a truncated file may still declare its full length.

    Raises:
        VideoError: the file is missing, empty, unreadable or has no video stream.
    """
    with _open_video(path) as (container, stream):
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None and len(container.streams) == 1:
            duration = container.duration / av.time_base
        return stream_fps(stream, path), stream.codec_context.width, stream.codec_context.height, duration


def iter_frames(path: PathLike, chunk: int, depth: int = 8) -> Iterator[np.ndarray]:
    """Decode lazily, yielding RGB arrays (T, H, W, 3) of `chunk` consecutive frames (the last may be shorter):
    uint8, or uint16 with ``depth`` 16 (for sources of more than 8 bits)."""
    if chunk < 1:
        raise ValueError(f"iter_frames('{path}'): chunk must be >= 1, got {chunk}")
    with _open_video(path) as (container, stream):
        batch = []
        for frame in _frames(container, stream, path):
            batch.append(frame_to_rgb(frame, depth))
            if len(batch) == chunk:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)


# FFmpeg's AVColorSpace (a stream's matrix tag) -> swscale's matrix for the RGB -> YUV conversion
_SWS_MATRIX = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.SMPTE170M,
               7: Colorspace.SMPTE240M, 9: Colorspace.BT2020, 10: Colorspace.BT2020}


def _yuv_colour(colour: "Colour | None") -> tuple[int, int, int, int]:
    """(matrix, range, primaries, transfer) to convert with and tag: a source's where it has a known matrix (the
    rest of its tags kept, unspecified ones as BT.709 limited), else BT.709 limited range."""
    if colour is None or colour.matrix not in _SWS_MATRIX:
        return _AVCOL_SPC_BT709, int(ColorRange.MPEG), int(ColorPrimaries.BT709), int(ColorTrc.BT709)
    bt709 = int(ColorPrimaries.BT709), int(ColorTrc.BT709)
    return (colour.matrix, colour.range or int(ColorRange.MPEG),
            colour.primaries if colour.primaries != _UNSPECIFIED else bt709[0],
            colour.transfer if colour.transfer != _UNSPECIFIED else bt709[1])


class VideoWriter:
    """Encodes RGB frames to ``.mp4`` (H.264, libx264) or ``.mkv`` (FFV1, lossless RGB), 8 or 10 bits.

    Frames go to a hidden ``.<name>.<random>.part`` file beside `path`; `close` (or leaving the
    ``with`` block normally) renames it to `path`, and an exception deletes it, so `path` never
    holds a half-written video. H.264 uses yuv420p when width and height are even and yuv444p (High
    4:4:4 profile; exact size, but some hardware players refuse it) when either is odd; at 10 bits
    yuv420p10le / yuv444p10le (High 10 / High 4:4:4), and FFV1 gbrp10le.

    Args:
        path: output file, ``.mp4`` or ``.mkv``; missing parent folders are created.
        fps: frame rate; a float becomes the nearest fraction with denominator <= 1001000 (29.97002997 -> 30000/1001).
        width: frame width in pixels.
        height: frame height in pixels.
        crf: x264 constant rate factor: 0 is lossless YUV, 18 visually lossless (ignored by FFV1).
        overwrite: replace an existing `path` instead of raising FileExistsError.
        time_base: the unit of the timestamps `write` is given (a source's, to keep its timing, variable frame
            rate included); None: frame ``i`` is shown at ``i / fps``.
        rotation: display rotation stored in the file (degrees counter-clockwise, a source's `VideoInfo.rotation`),
            so players turn the picture as they turned the source.
        streams_from: a source file whose audio, subtitle and data streams are copied into the output unchanged
            (`gvr.data.streams.remux`); a stream the container cannot hold is left out with a warning.
        bit_depth: 8 (`write` takes uint8 frames) or 10 (uint16 frames, 0..65535, stored at 10 bits).
        colour: a source's `Colour`: H.264 converts with its matrix and range and carries its primaries and
            transfer tags (None, or an untagged or unknown matrix: BT.709 limited range). HDR is refused.
    """

    def __init__(
        self, path: PathLike, fps: float | Fraction, width: int, height: int, crf: int = 18, overwrite: bool = False,
        time_base: Fraction | None = None, rotation: int = 0, streams_from: PathLike | None = None,
        bit_depth: int = 8, colour: Colour | None = None,
    ) -> None:
        self.path = Path(path)
        container_format = _CONTAINERS.get(self.path.suffix.lower())
        if container_format is None:
            raise ValueError(f"cannot write video '{path}': the extension must be one of {sorted(_CONTAINERS)}")
        if width < 1 or height < 1 or fps <= 0:
            raise ValueError(f"cannot write video '{path}': bad size {width}x{height} or fps {fps}")
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"video '{path}' already exists; pass overwrite=True to replace it")
        if bit_depth not in (8, 10):
            raise ValueError(f"cannot write video '{path}': bit_depth must be 8 or 10, got {bit_depth}")
        if colour is not None and colour.hdr:
            raise ValueError(f"cannot write video '{path}': HDR ({colour.hdr}) output is not supported")
        self.width, self.height, self.overwrite = width, height, overwrite
        self.bit_depth, self._dtype = bit_depth, np.dtype(np.uint8 if bit_depth == 8 else np.uint16)
        self.rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001 * 1000)
        self.time_base, self.streams_from, self.format = time_base, streams_from, container_format
        self.frames_written, self.warnings = 0, []
        self._last_pts: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        with av_errors(path, "write"):
            self._container = av.open(str(self._tmp), "w", format=container_format)
            ten = "10le" if bit_depth == 10 else ""
            if container_format == "mp4":
                self._stream = self._container.add_stream("libx264", rate=self.rate, options={"crf": str(crf)})
                self._stream.pix_fmt = ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p") + ten
                matrix, colour_range, primaries, transfer = _yuv_colour(colour)
                codec = self._stream.codec_context  # tag the stream with the colours the conversion produces
                codec.colorspace, codec.color_range = matrix, colour_range
                codec.color_primaries, codec.color_trc = primaries, transfer
                self._reformat = dict(
                    format=self._stream.pix_fmt, dst_colorspace=_SWS_MATRIX[matrix], dst_color_range=colour_range,
                    interpolation=FROM_RGB,
                )
            else:
                self._stream = self._container.add_stream("ffv1", rate=self.rate)
                self._stream.pix_fmt = "gbrp10le" if bit_depth == 10 else "bgr0"  # FFV1's lossless RGB layouts
                self._reformat = dict(format=self._stream.pix_fmt)
            self._stream.width, self._stream.height = width, height
            if time_base is not None:  # the encoder counts in the source's unit, so its timestamps pass unrounded
                self._stream.codec_context.time_base = self._stream.time_base = time_base
            if rotation:
                self._stream.set_display_rotation(rotation)

    def write(self, frames: np.ndarray, pts: Sequence[int] | None = None) -> None:
        """Append RGB frames of shape (T, height, width, 3) (uint8; uint16 at ``bit_depth`` 10), shown at ``pts``
        (in ``time_base`` units, rising) when the writer has a ``time_base``, else at ``frames_written / fps``."""
        if frames.ndim != 4 or frames.dtype != self._dtype or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"video '{self.path}': expected {self._dtype} frames (T, {self.height}, {self.width}, 3), "
                f"got {frames.dtype} {frames.shape}"
            )
        if (pts is None) != (self.time_base is None) or (pts is not None and len(pts) != len(frames)):
            raise ValueError(f"video '{self.path}': give one timestamp per frame exactly when the writer has a time_base")
        with av_errors(self.path, "write"):
            for k, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24" if self.bit_depth == 8
                                                   else "rgb48le")
                frame = frame.reformat(**self._reformat)
                if pts is None:
                    frame.pts, frame.time_base = self.frames_written, 1 / self.rate
                else:
                    if self._last_pts is not None and pts[k] <= self._last_pts:
                        raise ValueError(f"video '{self.path}': timestamps must rise, got {pts[k]} after {self._last_pts}")
                    frame.pts, frame.time_base = int(pts[k]), self.time_base
                    self._last_pts = int(pts[k])
                self._container.mux(self._stream.encode(frame))
                self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to `path`."""
        try:
            if self.frames_written == 0:
                raise VideoError(f"video '{self.path}': no frames were written")
            with av_errors(self.path, "write"):
                self._container.mux(self._stream.encode())
                self._container.close()
                if self.streams_from is not None:
                    self._copy_streams()
            if self.path.exists() and not self.overwrite:
                raise FileExistsError(f"video '{self.path}' appeared while writing; pass overwrite=True to replace it")
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def _copy_streams(self) -> None:
        """Rebuild the temporary file with the side streams of ``streams_from`` beside the encoded video."""
        from gvr.data.streams import remux, side_streams

        if not side_streams(self.streams_from):
            return
        picture = self._tmp.with_name(self._tmp.name + ".video")
        os.replace(self._tmp, picture)
        try:
            self.warnings += remux(picture, self.streams_from, self._tmp, self.format, name=self.path)
        finally:
            picture.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop writing and delete the temporary file; `path` stays as it was."""
        with contextlib.suppress(av.error.FFmpegError):
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: PathLike, frames: np.ndarray, fps: float | Fraction, crf: int = 18, overwrite: bool = False
) -> None:
    """Write RGB frames (T, H, W, 3) to `path` atomically, uint8 at 8 bits or uint16 at 10; see `VideoWriter`."""
    if frames.ndim != 4:
        raise ValueError(f"write_video('{path}'): expected frames (T, H, W, 3), got shape {frames.shape}")
    bit_depth = 10 if frames.dtype == np.uint16 else 8
    with VideoWriter(path, fps, frames.shape[2], frames.shape[1], crf, overwrite, bit_depth=bit_depth) as writer:
        writer.write(frames)


def frames_to_uint8(frames: np.ndarray) -> np.ndarray:
    """uint8 frames as they are; uint16 frames (0..65535) as their top 8 bits (for detectors and flow
    estimators that read 8-bit pictures)."""
    return frames if frames.dtype == np.uint8 else (frames >> 8).astype(np.uint8)


def frames_to_tensor(frames: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 RGB frames (T, H, W, 3) -> float32 video (3, T, H, W) in [-1, 1] (``x / 127.5 - 1``); uint16 frames
    (0..65535) map to the same range (``x / 32767.5 - 1``). With ``device`` the integer frames move there first
    and are converted on it (a quarter of the bytes of float32 cross to a GPU)."""
    if frames.dtype not in (np.uint8, np.uint16) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames_to_tensor: expected uint8 or uint16 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    half = 127.5 if frames.dtype == np.uint8 else 32767.5
    x = torch.from_numpy(np.ascontiguousarray(frames))
    if device is not None:
        x = x.to(device, non_blocking=True)
    x = x.float() / half - 1
    return rearrange(x, "t h w c -> c t h w").contiguous()


def tensor_to_frames(x: torch.Tensor, depth: int = 8) -> np.ndarray:
    """Float video (3, T, H, W) in [-1, 1] -> RGB frames (T, H, W, 3), uint8 (``depth`` 8) or uint16 (16);
    clamps, then rounds."""
    if x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"tensor_to_frames: expected (3, T, H, W), got {tuple(x.shape)}")
    if depth not in (8, 16):
        raise ValueError(f"tensor_to_frames: depth must be 8 or 16, got {depth}")
    pixels = x.detach().float().clamp(-1, 1)  # a new tensor: the steps below work in place on it (1080p clips are large)
    if depth == 8:
        pixels = pixels.add_(1).mul_(127.5).round_().to(torch.uint8)
        return rearrange(pixels, "c t h w -> t h w c").cpu().numpy()
    pixels = pixels.add_(1).mul_(32767.5).round_().to(torch.int32)  # torch has no uint16 arithmetic on every device
    return rearrange(pixels, "c t h w -> t h w c").cpu().numpy().astype(np.uint16)
