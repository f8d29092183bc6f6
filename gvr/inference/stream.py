"""Upscale a video stream as it arrives: ``ffmpeg ... -f nut - | gvr upscale - -o - | ffmpeg -i - ...``.

One pass over the input: frames are decoded as the demuxer delivers them, cuts are found on the fly
(`gvr.data.scenes.CutDetector`), each window is upscaled as soon as its frames (and one frame past it) are in,
and finished frames go straight to the output (`gvr.data.pipes.PipeWriter`), the input's audio and subtitle
packets beside them. Memory holds one window of LR frames and the frames two windows share, whatever the
length. The windows are those of `plan_chunks` on each scene, so a stream upscales to exactly the frames the
same video gives as a file (`gvr.inference.upscale.upscale_video`, same options).
"""

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
from tqdm.auto import tqdm

from gvr.data.pipes import PipeWriter
from gvr.data.scenes import THRESHOLD, CutDetector
from gvr.data.streams import SIDE_TYPES
from gvr.data.video import VideoError, av_errors, frame_colour, frame_to_rgb, stream_bit_depth, stream_fps
from gvr.inference.sizing import Fit
from gvr.inference.upscale import (
    SceneStabilizer,
    _check_run,
    _run,
    as_pipeline,
    auto_chunk,
    auto_overlap,
    auto_tile,
    check_bit_depth,
    output_depth,
    output_plan,
    refuse_hdr,
)
from gvr.ops.chunks import ChunkBlender, chunk_stride

log = logging.getLogger(__name__)

STREAM_MAX_FRAMES = 1 << 30  # "unknown length": the chunk of a model that is not a temporal-unit one ignores it


def stream_windows(frames: Iterator[tuple[np.ndarray, int | None, bool]], chunk: int, overlap: int, align: int = 1,
                   ) -> Iterator[tuple[int, int, np.ndarray, list, int | None]]:
    """Windows of a stream of ``(frame, pts, cut)`` (``cut``: a scene starts at this frame), per scene.

    Yields ``(scene, start, frames, pts, next_start)``: the window's start within its scene, its frames and
    timestamps, and the start of the scene's next window (None for its last); the windows of each scene are
    exactly ``plan_chunks(scene_length, chunk, overlap, align)``, found with one frame of look-ahead.
    """
    stride = chunk_stride(chunk, overlap, align)
    pending = next(frames, None)
    scene = 0
    while pending is not None:
        buffer, start = [], 0  # the frames of this scene from `start` on
        while True:
            while pending is not None and len(buffer) < chunk and not (pending[2] and (buffer or start)):
                buffer.append(pending)
                pending = next(frames, None)
            last = pending is None or pending[2]  # the scene has no frame past the buffer
            yield (scene, start, np.stack([f for f, _, _ in buffer]), [p for _, p, _ in buffer],
                   None if last else start + stride)
            if last:
                break
            buffer, start = buffer[stride:], start + stride
        scene += 1


def upscale_stream(
    module,
    source: BinaryIO | str | os.PathLike,
    output: BinaryIO | str | os.PathLike,
    fmt: str = "nut",
    steps: int | None = None,
    s: float | None = None,
    chunk: int | None = None,
    overlap: int | None = None,
    seed: int = 0,
    tile: int | None = None,
    tile_overlap: int = 8,
    max_frames: int = 121,
    token_budget: int | None = None,
    prompt: str | None = None,
    color_fix: str | None = None,
    precision: str = "32",
    scene_detect: bool = True,
    scene_threshold: float = THRESHOLD,
    keep_streams: bool = True,
    bit_depth: int | None = None,
    progress: bool = True,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    fit: Fit = "pad",
    force_scale: bool = False,
    stabilize: float = 0.0,
) -> dict:
    """Upscale the video stream read from ``source`` (a file object such as ``sys.stdin.buffer``, or a path) into
    ``output`` in ``fmt`` (`gvr.data.pipes.PIPE_FORMATS`), window by window as frames arrive.

    The options are `upscale_video`'s (``stabilize`` too); ``chunk`` None picks `auto_chunk` with ``max_frames`` as the length (the
    length of a stream is not known in advance). Returns a summary like `upscale_video`'s (frames counted at the end).
    """
    module = as_pipeline(module)
    _check_run(module, prompt, precision)
    check_bit_depth(bit_depth)
    began = time.perf_counter()
    name = getattr(source, "name", str(source))
    with av_errors(name, "read"):
        container = av.open(source if not isinstance(source, (str, os.PathLike)) else os.fspath(source))
    try:
        if not container.streams.video:
            raise VideoError(f"'{name}' has no video stream")
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        width, height = vstream.codec_context.width, vstream.codec_context.height
        bit_depth, depth = output_depth(name, bit_depth, stream_bit_depth(vstream))
        plan_out = output_plan(module, height, width, scale, size, fit, force_scale)
        scale, picture = plan_out.scale, plan_out.picture
        out_h, out_w = plan_out.frame
        extends = module.inference_net.extends_in_time
        tile = tile or auto_tile(module, picture, (height, width), token_budget)
        chunk = chunk or auto_chunk(module, max_frames if extends else STREAM_MAX_FRAMES, max_frames, picture)
        overlap = min(auto_overlap(chunk) if overlap is None else overlap, chunk - 1)
        side = [s for s in container.streams if s.type in SIDE_TYPES] if keep_streams else []
        rate = Fraction(stream_fps(vstream, name)).limit_denominator(1001 * 1000)
        writer = PipeWriter(output, fmt, out_w, out_h, rate, vstream.time_base, bit_depth, side)
        detector = CutDetector(scene_threshold) if scene_detect else None
        count = {"frames": 0, "cuts": []}

        def frames() -> Iterator[tuple[np.ndarray, int | None, bool]]:
            with av_errors(name, "read"):
                for packet in container.demux(vstream, *side):
                    if packet.stream is not vstream:
                        writer.mux_side(packet)
                        continue
                    for frame in packet.decode():
                        if count["frames"] == 0:
                            refuse_hdr(name, frame_colour(frame))
                        rgb = frame_to_rgb(frame, depth)
                        cut = detector.push(rgb) if detector is not None else False
                        if cut:
                            count["cuts"].append(count["frames"])
                        count["frames"] += 1
                        yield rgb, frame.pts, cut

        module.eval()
        bar = tqdm(unit="frame", desc=f"upscale x{scale:g} (stream)", disable=not progress)
        windows, blender, stamps, queued = 0, ChunkBlender(), deque(), 0  # stamps: of frames not yet written
        steady = SceneStabilizer(stabilize)
        for _, start, lr, pts, next_start in stream_windows(frames(), chunk, overlap, module.codec.temporal_factor):
            hr = _run(module, lr, picture, prompt, precision, depth, steps=steps, s=s, seed=seed,
                      frame_offset=start, tile=tile, tile_overlap=tile_overlap, color_fix=color_fix)
            stamps.extend(pts[max(0, queued - start):])
            queued = start + len(lr)
            done = plan_out.place(steady(start, lr, blender.add(start, hr, next_start)))
            writer.write(done, [stamps.popleft() for _ in range(len(done))])
            bar.update(len(done))
            windows += 1
            if next_start is None:  # the next window opens a new scene: nothing is shared across the cut
                blender, queued, steady = ChunkBlender(), 0, SceneStabilizer(stabilize)
        bar.close()
        writer.close()
    finally:
        container.close()
    if count["frames"] == 0:
        raise VideoError(f"'{name}' has no decodable frames")
    return {"input": name, "output": getattr(output, "name", str(output)), "format": fmt,
            "input_size": [width, height], "output_size": [out_w, out_h], "frames": count["frames"],
            "chunks": windows, "chunk": chunk, "overlap": overlap, "scale": scale, "fit": plan_out.describe(),
            "bit_depth": bit_depth,
            "cuts": count["cuts"], "streams_left_out": list(writer.warnings),
            "seconds": round(time.perf_counter() - began, 3)}
