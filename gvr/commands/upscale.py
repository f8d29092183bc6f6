"""``gvr upscale INPUT --ckpt CKPT --output OUT.mp4``: super-resolve one video file (or one photo, to an image),
or every video and photo under a folder (``gvr upscale DIR --output OUTDIR``; `gvr.inference.folder`)."""

import argparse
import json
import logging
import os
import sys

from gvr.data.video import VideoError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr upscale", description="Upscale a video (or a photo) with a trained gvr checkpoint.")
    p.add_argument("input", help="video file (anything PyAV decodes), a photo (.png, .jpg, .jpeg, .webp, .bmp, .tif, "
                                 ".tiff), or a folder: every video and photo under it, one model load, finished "
                                 "outputs skipped on a rerun")
    p.add_argument("--ckpt", required=True, help="checkpoint written by `gvr fit` (rebuilds model and codec)")
    p.add_argument("--output", "-o", required=True,
                   help="output .mp4 (H.264) or .mkv (FFV1); for a photo an image file; for a folder a folder")
    p.add_argument("--pipe-format", choices=["nut", "matroska", "y4m"], default="nut",
                   help="with - as input or output: the stream written (NUT / Matroska: lossless FFV1 plus the input's "
                        "audio and subtitles; Y4M: raw YUV, video only)")
    p.add_argument("--video-ext", choices=[".mp4", ".mkv"], default=".mp4",
                   help="folder input only: container of the upscaled videos (photos keep their format)")
    p.add_argument("--scale", type=float, default=None,
                   help="upscale factor, e.g. 2.8 (default: the checkpoint's data.scale); a checkpoint refuses a factor "
                        "it was not trained for (an any-scale one takes any inside its data.scale_range)")
    p.add_argument("--size", default=None, metavar="WxH",
                   help="output frame size, e.g. 1920x1080, aspect ratio kept (see --fit); exclusive with --scale")
    p.add_argument("--fit", choices=["pad", "crop"], default="pad",
                   help="with --size: 'pad' fits the picture inside the frame with black bars, 'crop' fills the frame "
                        "and cuts the overflow (centred either way; the summary's 'fit' says where)")
    p.add_argument("--force-scale", action="store_true",
                   help="run a factor the checkpoint was not trained for anyway (a warning instead of an error)")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default: the checkpoint's sample_steps)")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: the checkpoint's s_inference)")
    p.add_argument("--chunk", type=int, default=None,
                   help="frames per temporal chunk (default: the whole clip up to --max-frames for models trained with "
                        "temporal units, else the training clip length stored in the checkpoint, 17 if none)")
    p.add_argument("--max-frames", type=int, default=121, help="longest window for temporal-unit models")
    p.add_argument("--overlap", type=int, default=None,
                   help="frames shared by neighbouring chunks (cross-faded; default a quarter of the chunk)")
    p.add_argument("--color-fix", choices=["none", "wavelet", "adain"], default=None,
                   help="colour correction against the bicubic input (default: the checkpoint's color_fix)")
    p.add_argument("--stabilize", type=float, default=0.5, metavar="A",
                   help="steady the added detail along the input's motion, strength A in [0, 1) (default 0.5: on "
                        "held-out clips steadier and higher in PSNR at every factor measured, "
                        "docs/upscaling.md#temporal-consistency; 0: off, the network's frames as they are); "
                        "reset at every scene cut")
    p.add_argument("--tile", type=int, default=None,
                   help="run the model on spatial tiles of this many LR latent pixels (bounds memory at high resolution)")
    p.add_argument("--tile-overlap", type=int, default=8, help="LR latent pixels shared by neighbouring tiles")
    p.add_argument("--token-budget", type=int, default=None,
                   help="tile space automatically when an output frame has more HR tokens than this")
    p.add_argument("--prompt", default=None, help="caption of the video, for a text-conditioned model")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality (lower is better)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--precision", choices=["32", "bf16"], default="32",
                   help="network precision: bf16 autocast (fast on GPUs with bfloat16 tensor cores) or float32")
    p.add_argument("--frames", type=int, default=None,
                   help="photo only: copies of it in the still clip the model sees (default: 2, or one latent frame "
                        "past the first for a codec that packs frames)")
    p.add_argument("--quality", type=int, default=95, help="photo only: JPEG / WebP quality of the output")
    p.add_argument("--scene-detect", choices=["on", "off"], default="on",
                   help="find hard cuts first and upscale each scene on its own, so no window spans a cut (default on)")
    p.add_argument("--scene-threshold", type=float, default=27.0,
                   help="cut threshold (PySceneDetect ContentDetector: mean HSV change, 0..255; lower finds more cuts)")
    p.add_argument("--bit-depth", type=int, choices=[8, 10], default=None,
                   help="output bits per sample (default: 10 for an input of more than 8 bits, else 8)")
    p.add_argument("--drop-streams", action="store_true",
                   help="write the picture only (default: audio, subtitle and data streams are copied unchanged)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from gvr.inference.folder import SUMMARY, upscale_folder
    from gvr.inference.sizing import parse_size
    from gvr.inference.upscale import is_image, upscale_image, upscale_video
    from gvr.pipeline import load_pipeline

    try:
        if not 0 <= args.stabilize < 1:
            raise ValueError(f"--stabilize must be in [0, 1), got {args.stabilize}")
        size = parse_size(args.size) if args.size is not None else None
        if size is not None and args.scale is not None:
            raise ValueError("give --scale or --size, not both")
    except ValueError as err:
        sys.exit(f"gvr upscale: error: {err}")
    sizing = dict(scale=args.scale, size=size, fit=args.fit, force_scale=args.force_scale)
    video_kw = dict(**sizing, steps=args.steps, s=args.s, chunk=args.chunk, overlap=args.overlap, seed=args.seed, crf=args.crf,
                    tile=args.tile, tile_overlap=args.tile_overlap, color_fix=args.color_fix, max_frames=args.max_frames,
                    token_budget=args.token_budget, prompt=args.prompt, precision=args.precision,
                    scene_detect=args.scene_detect == "on", scene_threshold=args.scene_threshold,
                    keep_streams=not args.drop_streams, bit_depth=args.bit_depth, stabilize=args.stabilize)
    image_kw = dict(**sizing, frames=args.frames, steps=args.steps, s=args.s, seed=args.seed, tile=args.tile,
                    tile_overlap=args.tile_overlap, token_budget=args.token_budget, prompt=args.prompt,
                    color_fix=args.color_fix, precision=args.precision, quality=args.quality)
    try:
        if "-" in (args.input, args.output):  # a pipe on either side: one pass, window by window
            return _stream(args, video_kw)
        folder = os.path.isdir(args.input)
        if not folder and not os.path.isfile(args.input):  # before the model loads
            raise FileNotFoundError(f"{args.input} does not exist or is not a file or folder")
        if folder and os.path.isfile(args.output):
            raise NotADirectoryError(f"{args.output} is a file; the upscales of a folder go to a folder")
        if not folder and not is_image(args.input) and is_image(args.output):
            raise ValueError(f"{args.output} is an image but {args.input} is not one: write the video to .mp4 or .mkv")
        module = load_pipeline(args.ckpt, args.device)
        if args.scale is not None:  # once, before any file (a folder would otherwise fail file by file)
            module.check_scale(args.scale, args.force_scale)
        if folder:
            summary = upscale_folder(module, args.input, args.output, video_ext=args.video_ext, overwrite=args.overwrite,
                                     video_kw=video_kw, image_kw=image_kw)
            counts = summary["counts"]
            print(f"gvr upscale: {counts['done']} done, {counts['skipped']} skipped (already there), "
                  f"{counts['failed']} failed in {summary['seconds']:.1f} s; summary in "
                  f"{os.path.join(args.output, SUMMARY)}", file=sys.stderr)
            for failure in summary["failed"]:
                print(f"  failed {failure['input']}: {failure['reason']}", file=sys.stderr)
        elif is_image(args.input):
            summary = upscale_image(module, args.input, args.output, overwrite=args.overwrite, **image_kw)
        else:
            summary = upscale_video(module, args.input, args.output, overwrite=args.overwrite, **video_kw)
    except (VideoError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as err:
        sys.exit(f"gvr upscale: error: {err}")
    print(json.dumps(summary))


def _stream(args, video_kw: dict) -> None:
    """``gvr upscale - -o -`` (either side may be a file): `gvr.inference.stream.upscale_stream`; the summary goes
    to stderr so that stdout carries the video alone."""
    from gvr.inference.stream import upscale_stream
    from gvr.inference.upscale import is_image
    from gvr.pipeline import load_pipeline

    if is_image(args.input) or is_image(args.output):
        raise ValueError("pipes carry video streams; upscale a photo from and to files")
    if args.output != "-" and os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    if args.input != "-" and not os.path.isfile(args.input):
        raise FileNotFoundError(f"{args.input} does not exist or is not a file")
    module = load_pipeline(args.ckpt, args.device)
    kw = {k: v for k, v in video_kw.items() if k != "crf"}  # the stream is lossless (FFV1) or raw (Y4M)
    source = sys.stdin.buffer if args.input == "-" else args.input
    if args.output == "-":
        summary = upscale_stream(module, source, sys.stdout.buffer, fmt=args.pipe_format, **kw)
    else:
        from gvr.ops.files import atomic_path

        with atomic_path(args.output) as tmp:  # a file appears whole, as every gvr output does
            summary = upscale_stream(module, source, tmp, fmt=args.pipe_format, **kw)
        summary["output"] = args.output
    print(json.dumps(summary), file=sys.stderr if args.output == "-" else sys.stdout)
