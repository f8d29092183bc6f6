"""Video through pipes: a self-describing stream in (NUT, Y4M, Matroska, MPEG-TS...) and out, frame by frame.

`PipeWriter` encodes RGB frames into a stream written to a file object as they come (nothing is sought back
to, so stdout works): NUT or Matroska with lossless FFV1 (and the input's audio and subtitles copied, packet
by packet), or Y4M (raw 4:4:4 YUV, BT.709 limited range; it holds video only).
"""

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from gvr.data.streams import SIDE_TYPES, SideStream, can_hold
from gvr.data.video import FROM_RGB, av_errors

log = logging.getLogger(__name__)

PIPE_FORMATS = {"nut": "nut", "matroska": "matroska", "y4m": "yuv4mpegpipe"}


class PipeWriter:
    """Streams RGB frames (uint8, or uint16 at ``bit_depth`` 10) to ``output`` in ``fmt`` (a `PIPE_FORMATS` key).

    Args:
        output: a writable binary file object (e.g. ``sys.stdout.buffer``) or a path.
        fmt: "nut" / "matroska" (FFV1, lossless RGB) or "y4m" (raw yuv444p, 10-bit yuv444p10le).
        width: frame width in pixels.
        height: frame height in pixels.
        rate: frame rate.
        time_base: unit of the timestamps `write` takes (None: frame ``i`` at ``i / rate``).
        bit_depth: 8 or 10.
        side: input streams (audio, subtitles, data) to copy; one ``fmt`` cannot hold is left out with a warning.
    """

    def __init__(self, output: BinaryIO | str | os.PathLike, fmt: str, width: int, height: int, rate: float | Fraction,
                 time_base: Fraction | None = None, bit_depth: int = 8, side: Sequence = ()):
        if fmt not in PIPE_FORMATS:
            raise ValueError(f"pipe format must be one of {sorted(PIPE_FORMATS)}, got {fmt!r}")
        if bit_depth not in (8, 10):
            raise ValueError(f"bit_depth must be 8 or 10, got {bit_depth}")
        self.name, self.fmt, self.bit_depth = getattr(output, "name", str(output)), fmt, bit_depth
        self.width, self.height, self.time_base = width, height, time_base
        self._dtype = np.dtype(np.uint8 if bit_depth == 8 else np.uint16)
        self.frames_written, self.warnings, self._last_pts = 0, [], None
        container_format = PIPE_FORMATS[fmt]
        rate = Fraction(rate).limit_denominator(1001 * 1000)
        with av_errors(self.name, "write"):
            self._container = av.open(output if not isinstance(output, (str, os.PathLike)) else os.fspath(output),
                                      "w", format=container_format)
            ten = "10le" if bit_depth == 10 else ""
            if fmt == "y4m":
                self._stream = self._container.add_stream("rawvideo", rate=rate)
                self._stream.pix_fmt = "yuv444p" + ten
                self._reformat = dict(format=self._stream.pix_fmt, dst_colorspace=Colorspace.ITU709,
                                      dst_color_range=ColorRange.MPEG, interpolation=FROM_RGB)
            else:
                self._stream = self._container.add_stream("ffv1", rate=rate)
                self._stream.pix_fmt = "gbrp10le" if bit_depth == 10 else "bgr0"
                self._reformat = dict(format=self._stream.pix_fmt)
            self._stream.width, self._stream.height = width, height
            self.rate = rate
            if time_base is not None:
                self._stream.codec_context.time_base = self._stream.time_base = time_base
            self._side = {}
            for stream in (s for s in side if s.type in SIDE_TYPES):
                if not can_hold(container_format, stream):
                    info = SideStream(stream.index, stream.type, getattr(stream.codec_context, "name", "unknown"),
                                      stream.metadata.get("language"))
                    self.warnings.append(f"{info.describe()} cannot be stored in {fmt} and is left out of the output "
                                         f"(pipe NUT or Matroska to keep it)")
                    log.warning(self.warnings[-1])
                    continue
                self._side[stream] = self._container.add_stream_from_template(stream)

    def mux_side(self, packet: av.Packet) -> None:
        """Copy one packet of an input side stream (ignored when that stream is not carried)."""
        out = self._side.get(packet.stream)
        if out is None or packet.size == 0:
            return
        packet.stream = out
        with av_errors(self.name, "write"):
            self._container.mux(packet)

    def write(self, frames: np.ndarray, pts: Sequence[int | None] | None = None) -> None:
        """Append RGB frames (T, height, width, 3), at ``pts`` (``time_base`` units) when the writer has one."""
        if frames.ndim != 4 or frames.dtype != self._dtype or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"{self.name}: expected {self._dtype} frames (T, {self.height}, {self.width}, 3), "
                             f"got {frames.dtype} {frames.shape}")
        with av_errors(self.name, "write"):
            for k, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24" if self.bit_depth == 8
                                                   else "rgb48le").reformat(**self._reformat)
                if self.time_base is None:
                    frame.pts, frame.time_base = self.frames_written, 1 / self.rate
                else:  # a missing or non-rising timestamp becomes the next tick
                    stamp = None if pts is None else pts[k]
                    if stamp is None or (self._last_pts is not None and stamp <= self._last_pts):
                        stamp = 0 if self._last_pts is None else self._last_pts + 1
                    frame.pts, frame.time_base, self._last_pts = int(stamp), self.time_base, int(stamp)
                self._container.mux(self._stream.encode(frame))
                self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and end the stream."""
        with av_errors(self.name, "write"):
            self._container.mux(self._stream.encode())
            self._container.close()
