"""Upscale whole videos with a trained VSRModule, in overlapping temporal chunks blended at the seams, and photos.

Memory stays bounded whatever the length: only one chunk of LR frames and the HR frames of the
chunk being blended are held; finished frames go straight to the encoder. A photo is a still clip of a few
copies (`upscale_image`).
"""

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gvr.data.scenes import THRESHOLD, detect_cuts, scenes
from gvr.data.video import VideoError, VideoWriter, frames_to_tensor, iter_frames, probe_video, tensor_to_frames
from gvr.inference.sizing import Fit, OutputPlan, plan_output
from gvr.inference.stabilize import DetailStabilizer
from gvr.ops.background import BackgroundCalls, prefetch
from gvr.ops.chunks import MIN_FRAMES, ChunkBlender, plan_chunks
from gvr.ops.files import atomic_path, check_output
from gvr.pipeline import VSRPipeline

log = logging.getLogger(__name__)

# Photos `gvr upscale` takes (`upscale_image`), by extension, and the PIL format each is written in.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}


DEFAULT_CHUNK = 17  # the paper's training clip, for checkpoints that do not record theirs


def as_pipeline(model) -> VSRPipeline:
    """What the upscale functions run: ``model`` itself if a `gvr.pipeline.VSRPipeline` (`load_pipeline`, what
    ``gvr upscale`` loads), else the pipeline of a `gvr.lit.VSRModule` (its own weights, nothing copied)."""
    return model if isinstance(model, VSRPipeline) else model.pipeline()


def hr_tokens(module, out_size: tuple[int, int]) -> int:
    """Tokens of one HR output frame of ``out_size`` pixels in ``module``'s network (codec cells over patches)."""
    f = module.codec.spatial_factor
    _, ph, pw = getattr(module.inference_net, "patch_size", (1, 1, 1))
    return math.ceil(out_size[0] / f / ph) * math.ceil(out_size[1] / f / pw)


WINDOW_TOKENS = 1 << 18  # HR tokens of one window of a temporal-unit model (~130 MB a float32 activation at dim 128)


def auto_chunk(module, frames: int, max_frames: int, out_size: tuple[int, int] | None = None) -> int:
    """Frames a window: the whole clip for temporal-unit models, else one training clip.

    A temporal-unit model (its cost per frame is flat in clip length) takes up to ``max_frames`` frames, and
    with ``out_size`` given no more than fit `WINDOW_TOKENS` HR tokens (at least one training clip), so memory
    stays flat in video length and bounded in frame size. The training clip length is the checkpoint's
    ``data.num_frames`` (the module's ``train_frames`` hyper-parameter): a full-attention model sees at
    inference the temporal context it learned, not more.
    """
    module = as_pipeline(module)
    trained = module.train_frames
    if module.inference_net.extends_in_time:
        chunk = min(frames, max_frames)
        if out_size is not None:
            chunk = min(chunk, max(trained or 1, WINDOW_TOKENS // hr_tokens(module, out_size)))
        return max(1, chunk)
    return min(frames, trained or DEFAULT_CHUNK)


def auto_overlap(chunk: int) -> int:
    """Frames shared by neighbouring windows when not given: a quarter of the chunk (at least 1), 4 at 17."""
    return 0 if chunk < 2 else max(1, chunk // 4)


def auto_tile(module, out_size: tuple[int, int], lr_size: tuple[int, int], token_budget: int | None) -> int | None:
    """LR-latent tile side keeping a tile's HR tokens per frame within ``token_budget`` (None: no tiling needed)."""
    if token_budget is None or hr_tokens(module, out_size) <= token_budget:
        return None
    _, ph, pw = getattr(module.inference_net, "patch_size", (1, 1, 1))
    ratio = max(out_size[0] / lr_size[0], out_size[1] / lr_size[1])  # HR pixels per LR pixel
    return max(4, math.floor(math.sqrt(token_budget) * max(ph, pw) / ratio))


def windows(frames: Iterator[np.ndarray], plan: list[tuple[int, int]]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, lr_frames)`` for each planned window, decoding lazily and dropping passed frames."""
    buffer: list[np.ndarray] = []
    base = 0
    for start, end in plan:
        while base + len(buffer) < end:
            try:
                buffer.append(next(frames))
            except StopIteration:
                raise VideoError(f"video ended after {base + len(buffer)} frames, expected at least {end}") from None
        drop = start - base
        buffer, base = buffer[drop:], start
        yield start, np.stack(buffer[: end - start])


class SceneStabilizer:
    """`DetailStabilizer` over the released frames of one scene: ``(start, lr, done)`` takes each window's start
    and LR frames and the frames the blender released after it (in order); it keeps the LR frames not yet
    released, so that each output frame is stabilised against its own input frame. Strength 0 passes through."""

    def __init__(self, strength: float):
        self.stabilizer = DetailStabilizer(strength) if strength > 0 else None
        self.lr: dict[int, np.ndarray] = {}
        self.released = 0

    def __call__(self, start: int, lr: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.stabilizer is None:
            return done
        for i, frame in enumerate(lr):
            self.lr.setdefault(start + i, frame)
        inputs = np.stack([self.lr.pop(self.released + i) for i in range(len(done))]) if len(done) else lr[:0]
        self.released += len(done)
        return self.stabilizer(done, inputs)


def _check_run(module, prompt: str | None, precision: str) -> None:
    """Refuse a precision other than "32" / "bf16", and a prompt for a model that takes no text."""
    if precision not in ("32", "bf16"):
        raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")
    if prompt is not None and getattr(module, "text_encoder", None) is None:
        raise ValueError("this model takes no text: drop --prompt (train with model.text_encoder to use captions)")


def _run(module, lr: np.ndarray, size: tuple[int, int], prompt: str | None, precision: str, depth: int = 8,
         **kwargs) -> np.ndarray:
    """LR frames ``(T, h, w, 3)`` (uint8 or uint16) -> HR frames ``(T, *size, 3)`` (uint8, or uint16 for ``depth``
    16) through ``module.upscale_clip`` (``kwargs``), under bf16 autocast for ``precision`` "bf16"."""
    n = len(lr)
    if n < MIN_FRAMES:  # a one-frame scene (a cut on the last frame): a still clip of it, as a photo is
        lr = np.concatenate([lr, np.repeat(lr[-1:], MIN_FRAMES - n, axis=0)])
    x = frames_to_tensor(lr, module.device).unsqueeze(0)  # integers cross to the device, floats are made there
    with torch.autocast(module.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        hr = module.upscale_clip(x, size, captions=None if prompt is None else [prompt], **kwargs)
    return tensor_to_frames(hr[0], depth)[:n]


def output_plan(module, height: int, width: int, scale: float | None, size: tuple[int, int] | None, fit: Fit,
                force_scale: bool) -> OutputPlan:
    """`gvr.inference.sizing.plan_output` for ``module``'s default factor, its factor checked against what the
    checkpoint was trained for (`VSRModule.check_scale`), and the fit logged where it pads or crops."""
    plan = plan_output(height, width, scale, size, fit, as_pipeline(module).scale)
    module.check_scale(plan.scale, force_scale)
    if plan.fit != "scale":
        how = "black bars around it" if plan.fit == "pad" else "the overflow cut off"
        log.info("upscaling %dx%d by x%.4g to a %dx%d picture in a %dx%d frame, %s", width, height, plan.scale,
                 *plan.picture[::-1], *plan.frame[::-1], how)
    return plan


def check_bit_depth(bit_depth: int | None) -> None:
    """Refuse an output bit depth other than 8, 10 or None (the input's)."""
    if bit_depth not in (None, 8, 10):
        raise ValueError(f"bit_depth must be 8 or 10, got {bit_depth}")


def refuse_hdr(source, colour) -> None:
    """A `VideoError` for an HDR input (PQ, HLG transfer): gvr upscales SDR and never tone-maps silently."""
    if colour.hdr:
        raise VideoError(f"{source} is HDR ({colour.hdr} transfer): gvr upscale works on SDR video and does not "
                         f"tone-map behind your back; convert it to SDR BT.709 first (e.g. ffmpeg's zscale + tonemap)")


def output_depth(source, bit_depth: int | None, input_bits: int) -> tuple[int, int]:
    """``(bit_depth written, depth read)``: None picks 10 bits for an input of more than 8, else 8; a 10-bit output
    reads the input at 16 bits. Writing a deeper input at 8 bits, as asked, is logged."""
    bit_depth = bit_depth or (10 if input_bits > 8 else 8)
    if input_bits > 8 and bit_depth == 8:
        log.warning("%s has %d-bit samples; the upscale is written at 8 bits as asked", source, input_bits)
    return bit_depth, 16 if bit_depth == 10 else 8


def upscale_video(
    module,
    source: str,
    output: str,
    steps: int | None = None,
    s: float | None = None,
    chunk: int | None = None,
    overlap: int | None = None,
    seed: int = 0,
    crf: int = 18,
    tile: int | None = None,
    tile_overlap: int = 8,
    overwrite: bool = False,
    max_frames: int = 121,
    token_budget: int | None = None,
    prompt: str | None = None,
    color_fix: str | None = None,
    precision: str = "32",
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    scene_detect: bool = True,
    scene_threshold: float = THRESHOLD,
    keep_streams: bool = True,
    bit_depth: int | None = None,
    overlap_io: bool = True,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    fit: Fit = "pad",
    force_scale: bool = False,
    stabilize: float = 0.0,
) -> dict:
    """Upscale ``source`` with ``module`` (a VSRModule) and write an H.264 mp4 (or FFV1 mkv) to ``output``.

    Returns a summary: input and output size, frames, fps, scenes and chunks. The output is ``scale`` times the
    input (None: the checkpoint's factor), or a frame of ``size`` ``(height, width)`` filled as ``fit`` says
    (`gvr.inference.sizing`: "pad" letterboxes, "crop" cuts the overflow; the summary's ``fit`` states how); a
    factor the checkpoint was not trained for is refused unless ``force_scale`` (`VSRModule.check_scale`). It has
    the input's frame count, each frame's timestamp (variable frame rate kept)
    and display rotation, and, with ``keep_streams``, the input's audio, subtitle and data streams copied
    unchanged (`gvr.data.streams`; one the container cannot hold is left out with a warning, listed in the
    summary).

    ``scene_detect`` finds hard cuts first (`gvr.data.scenes`, ``scene_threshold`` the ContentDetector
    threshold) and upscales each scene on its own: no window or cross-fade straddles a cut, so the frames after
    a cut come out exactly as they would from a video that starts there (same windows, same noise).
    ``chunk`` None picks :func:`auto_chunk` per scene: a model trained with temporal units takes the whole scene
    in one window (up to ``max_frames`` and `WINDOW_TOKENS`, beyond which windows overlap), others one training
    clip at a time.
    ``token_budget`` (HR tokens per frame) switches on spatial tiling, :func:`auto_tile`, when ``tile`` is unset.
    ``overlap`` None is :func:`auto_overlap`.
    ``prompt`` is the caption of a text-conditioned model (None: the null prompt); other models refuse one.
    ``color_fix`` ("none", "wavelet", "adain"; None: the checkpoint's ``color_fix``) corrects colour against
    the bicubic input (`gvr.ops.colorfix`).
    ``precision`` "bf16" runs the network under bfloat16 autocast (the codec's decode stays float32), "32" in float32.
    ``on_chunk(k, n)`` is called after window ``k`` of the ``n`` planned.
    ``bit_depth`` 8 or 10 (None: 10 for an input of more than 8 bits, else 8): a 10-bit input is read at 16 bits,
    the model sees the extra precision and the output keeps it (10-bit H.264 or FFV1). The input's colour tags
    (matrix, range, primaries, transfer) are carried (`gvr.data.video.Colour`); an HDR input (PQ, HLG) is
    refused, never tone-mapped behind the user's back.
    ``overlap_io`` decodes ahead of the network and encodes behind it in two threads (`gvr.ops.background`), so
    that decode, network and encoder run at once; False runs them in series. The summary's ``seconds`` give the
    whole call's wall time and the network's share of it.
    ``stabilize`` (0: off) is the strength of `gvr.inference.stabilize.DetailStabilizer`, which steadies the
    added detail along the input's motion after the windows are blended (reset at every cut).
    """
    began = time.perf_counter()
    module = as_pipeline(module)
    _check_run(module, prompt, precision)
    check_bit_depth(bit_depth)
    info = probe_video(source)
    refuse_hdr(source, info.colour)
    bit_depth, depth = output_depth(source, bit_depth, info.bit_depth)
    if info.frames < MIN_FRAMES:
        raise VideoError(f"{source} has {info.frames} frame(s); gvr upscale needs at least {MIN_FRAMES} (it is a video model; "
                         f"a photo upscales from an image file: {', '.join(IMAGE_FORMATS)})")
    check_output(source, output, overwrite)
    plan_out = output_plan(module, info.height, info.width, scale, size, fit, force_scale)
    scale, picture = plan_out.scale, plan_out.picture
    out_h, out_w = plan_out.frame
    tile = tile or auto_tile(module, picture, (info.height, info.width), token_budget)
    cuts = detect_cuts(iter_frames(source, 16), scene_threshold)[0] if scene_detect else []
    ranges = scenes(cuts, info.frames)
    plans = []
    for lo, hi in ranges:
        n = hi - lo
        scene_chunk = chunk or auto_chunk(module, n, max_frames, picture)
        scene_overlap = min(auto_overlap(scene_chunk) if overlap is None else overlap, scene_chunk - 1)
        plans.append((lo, hi, scene_chunk, scene_overlap, plan_chunks(n, scene_chunk, scene_overlap,
                                                                       module.codec.temporal_factor)))
    total = sum(len(p[-1]) for p in plans)
    bar = tqdm(total=info.frames, unit="frame", desc=f"upscale x{scale:g}", disable=not progress)
    module.eval()
    timed = info.pts is not None
    network = 0.0
    blocks = iter_frames(source, 16, depth)
    frames = (f for block in (prefetch(blocks, depth=2) if overlap_io else blocks) for f in block)
    written, k = 0, 0
    with VideoWriter(output, info.fps, out_w, out_h, crf=crf, overwrite=overwrite,
                     time_base=info.time_base if timed else None, rotation=info.rotation,
                     streams_from=source if keep_streams else None, bit_depth=bit_depth, colour=info.colour) as writer, \
            BackgroundCalls(writer.write, depth=2 if overlap_io else 1) as encoder:
        for lo, hi, _, _, plan in plans:
            blender = ChunkBlender()  # a fresh one per scene: nothing is cross-faded across a cut
            steady = SceneStabilizer(stabilize)  # nor stabilised across it
            for j, (start, lr) in enumerate(windows(itertools.islice(frames, hi - lo), plan)):
                tick = time.perf_counter()
                hr = _run(module, lr, picture, prompt, precision, depth, steps=steps, s=s, seed=seed,
                          frame_offset=start, tile=tile, tile_overlap=tile_overlap, color_fix=color_fix)
                network += time.perf_counter() - tick
                next_start = plan[j + 1][0] if j + 1 < len(plan) else None
                done = plan_out.place(steady(start, lr, blender.add(start, hr, next_start)))
                pts = info.pts[written : written + len(done)] if timed else None
                encoder.submit(done, pts) if overlap_io else writer.write(done, pts)
                written += len(done)
                bar.update(len(done))
                k += 1
                if on_chunk is not None:
                    on_chunk(k - 1, total)
    bar.close()
    return {"input": source, "output": output, "input_size": [info.width, info.height], "output_size": [out_w, out_h],
            "frames": info.frames, "fps": info.fps, "chunks": total, "chunk": plans[0][2], "tile": tile,
            "scale": scale, "overlap": plans[0][3], "prompt": prompt, "precision": precision,
            "fit": plan_out.describe(), "stabilize": stabilize,
            "scenes": [[lo, hi] for lo, hi in ranges], "streams_left_out": list(writer.warnings), "bit_depth": bit_depth,
            "seconds": {"total": round(time.perf_counter() - began, 3), "network": round(network, 3)}}


def is_image(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a still image by its extension (one of `IMAGE_FORMATS`)."""
    return Path(path).suffix.lower() in IMAGE_FORMATS


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, bool]:
    """The photo at ``path`` as uint8 RGB ``(H, W, 3)``, turned as its EXIF orientation says, and whether it had
    an alpha channel (dropped: the model sees colour only). An unreadable file is a `VideoError`."""
    from PIL import Image, ImageOps

    if not Path(path).is_file():
        raise VideoError(f"image '{path}' does not exist or is not a file")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            alpha = "A" in im.getbands() or "transparency" in im.info
            return np.asarray(im.convert("RGB")), alpha
    except (OSError, SyntaxError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise VideoError(f"cannot read image '{path}': {err}") from err


@torch.no_grad()
def upscale_image(
    module,
    source: str,
    output: str,
    frames: int | None = None,
    steps: int | None = None,
    s: float | None = None,
    seed: int = 0,
    tile: int | None = None,
    tile_overlap: int = 8,
    token_budget: int | None = None,
    prompt: str | None = None,
    color_fix: str | None = None,
    precision: str = "32",
    overwrite: bool = False,
    quality: int = 95,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    fit: Fit = "pad",
    force_scale: bool = False,
) -> dict:
    """Upscale one photo with ``module`` (a VSRModule) and write it to ``output`` (PNG, JPEG, WebP, BMP or TIFF).

    The model sees the photo as a still clip of ``frames`` copies (None: ``MIN_FRAMES``, or one latent frame
    past the first for a codec that packs frames) and the middle output frame is written (``scale``, ``size``,
    ``fit`` as for a video), through a temporary file renamed into place. ``quality`` is the JPEG / WebP quality. The other
    arguments are those of :func:`upscale_video`. Returns a summary like :func:`upscale_video`'s.
    """
    module = as_pipeline(module)
    _check_run(module, prompt, precision)
    if not is_image(output):
        raise ValueError(f"the upscale of an image is an image: {output} must end in one of {sorted(IMAGE_FORMATS)}")
    frames = max(MIN_FRAMES, module.codec.temporal_factor + 1) if frames is None else frames
    if frames < MIN_FRAMES:
        raise ValueError(f"frames must be at least {MIN_FRAMES}, got {frames}")
    image, alpha = read_image(source)
    check_output(source, output, overwrite)
    if alpha:
        log.warning("%s: the alpha channel is dropped; the upscale is opaque RGB", source)
    h, w = image.shape[:2]
    plan_out = output_plan(module, h, w, scale, size, fit, force_scale)
    out_h, out_w = plan_out.frame
    tile = tile or auto_tile(module, plan_out.picture, (h, w), token_budget)
    module.eval()
    hr = _run(module, np.repeat(image[None], frames, axis=0), plan_out.picture, prompt, precision, steps=steps, s=s,
              seed=seed, tile=tile, tile_overlap=tile_overlap, color_fix=color_fix)
    _write_image(plan_out.place(hr[frames // 2 : frames // 2 + 1])[0], output, quality)
    return {"input": source, "output": output, "input_size": [w, h], "output_size": [out_w, out_h], "frames": frames,
            "tile": tile, "scale": plan_out.scale, "fit": plan_out.describe(), "prompt": prompt, "precision": precision,
            "alpha_dropped": alpha}


def _write_image(frame: np.ndarray, output: str, quality: int) -> None:
    """Save uint8 RGB ``frame`` to ``output`` through a hidden temporary file beside it, renamed when whole."""
    from PIL import Image

    fmt = IMAGE_FORMATS[Path(output).suffix.lower()]
    with atomic_path(output) as tmp:
        Image.fromarray(frame).save(tmp, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))


def load_module(ckpt: str, device: str = "cpu"):
    """Rebuild a VSRModule (backbone, codec and EMA weights) from a checkpoint file alone (imports Lightning; to
    upscale, `gvr.pipeline.load_pipeline` is quicker to start and gives the same frames)."""
    from gvr.lit.checkpoints import load_gvr_module

    return load_gvr_module(ckpt, "VSRModule", device)

