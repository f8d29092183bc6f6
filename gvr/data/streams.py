"""The streams of a video beside its picture (audio, subtitles, data), copied into an upscaled file unchanged.

`remux` rebuilds an output file from the freshly encoded video and the source's other streams: their
packets are copied byte for byte with their timestamps (never decoded or re-encoded), interleaved by time.
A stream the output container cannot hold (a SubRip track in MP4, say) is left out with a warning that
names it; nothing is dropped silently.
"""

import heapq
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

log = logging.getLogger(__name__)

SIDE_TYPES = ("audio", "subtitle", "data")


@dataclass(frozen=True)
class SideStream:
    """One non-video stream of a file: its index in the file, kind, codec and language tag (if any)."""

    index: int
    type: str
    codec: str
    language: str | None

    def describe(self) -> str:
        lang = f", {self.language}" if self.language else ""
        return f"stream #{self.index} ({self.type}, {self.codec}{lang})"


def _codec_name(stream: av.stream.Stream) -> str:
    ctx = getattr(stream, "codec_context", None)
    return getattr(ctx, "name", None) or "unknown"


def side_streams(path: str | os.PathLike) -> list[SideStream]:
    """Audio, subtitle and data streams of ``path``, in file order (no decoding)."""
    with av.open(os.fspath(path)) as container:
        return [SideStream(s.index, s.type, _codec_name(s), s.metadata.get("language")) for s in container.streams
                if s.type in SIDE_TYPES]


def can_hold(container_format: str, template: av.stream.Stream) -> bool:
    """Whether a ``container_format`` file accepts a copy of ``template`` (tried on a header written in memory)."""
    try:
        with av.open(io.BytesIO(), "w", format=container_format) as probe:
            probe.add_stream_from_template(template)
            probe.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError, NotImplementedError):
        return False


def _packets(container: av.container.InputContainer, streams: list) -> Iterator[tuple[Fraction, int, av.Packet]]:
    """``(time, order, packet)`` of the real packets of ``streams``, in demux order, for a merge by time."""
    for order, packet in enumerate(container.demux(streams)):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        stamp = packet.dts if packet.dts is not None else packet.pts
        yield (Fraction(0) if stamp is None else stamp * packet.time_base), order, packet


def remux(video: str | os.PathLike, source: str | os.PathLike, output: str | os.PathLike, container_format: str,
          name: str | os.PathLike | None = None) -> list[str]:
    """Write ``output`` from the video stream of ``video`` and the side streams of ``source``, all copied.

    Returns the warnings issued (one per side stream left out, naming the output as ``name``, default
    ``output``: the file the user will see when ``output`` is a temporary one); each is also logged.
    """
    warnings = []
    with av.open(os.fspath(video)) as picture, av.open(os.fspath(source)) as original, \
            av.open(os.fspath(output), "w", format=container_format) as out:
        video_in = picture.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        mapping = {video_in: video_out}
        kept = []
        for stream in (s for s in original.streams if s.type in SIDE_TYPES):
            if not can_hold(container_format, stream):
                side = SideStream(stream.index, stream.type, _codec_name(stream), stream.metadata.get("language"))
                warnings.append(f"{source}: {side.describe()} cannot be stored in {container_format} and is left out "
                                f"of {name or output} (write a .mkv to keep it)")
                log.warning(warnings[-1])
                continue
            copy = out.add_stream_from_template(stream)
            copy.metadata.update(stream.metadata)
            copy.disposition = stream.disposition
            mapping[stream] = copy
            kept.append(stream)
        merged = heapq.merge(_packets(picture, [video_in]), *([_packets(original, kept)] if kept else []),
                             key=lambda item: (item[0], item[1]))
        for _, _, packet in merged:
            packet.stream = mapping[packet.stream]
            out.mux(packet)
    return warnings
