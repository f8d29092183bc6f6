"""Seconds per 17-frame clip of each metric at 512p (384x672) and 1080p (1080x1920) (prints a table).

    python benchmarks/metrics.py [--video data/samples/bigbuckbunny.mp4] [--frames 17] [--heavy-frames 1]

Networks are randomly initialised (``pretrained=False``): the architectures, and so the cost, are the real
ones, but no weights are needed (and the scores mean nothing). The output is the real clip blurred, the
reference the real clip, both resized to each size. Per-frame metrics that are slow on this machine
(the networks at 1080p, MANIQA everywhere: its 20 ViT-B/8 crops cost the same at any size) are timed on
``--heavy-frames`` frames and scaled to the clip length; the table marks those rows. FVD and DOVER see the
clip as a whole (FVD: one 16-frame clip per side, features only: one clip has no Fréchet distance).
"""

import argparse
import os
import time

import torch
import torch.nn.functional as F

from gvr.data.video import frames_to_tensor, read_video
from gvr.metrics.registry import FVD_CLIP, REGISTRY, build_metric
from gvr.ops.resize import resize_video

SIZES = {"512p": (384, 672), "1080p": (1080, 1920)}
CHEAP = {"psnr", "psnr_y", "ssim", "ssim_y"}


def blur(video: torch.Tensor) -> torch.Tensor:
    """A 5x5 box blur of every frame: the 'output' scored against the clip."""
    kernel = torch.ones(3, 1, 1, 5, 5) / 25
    return F.conv3d(F.pad(video, (2, 2, 2, 2, 0, 0), mode="replicate"), kernel, groups=3)


def time_metric(name: str, out: torch.Tensor, ref: torch.Tensor) -> float:
    """Seconds to feed the clip to ``name`` and compute it (building the network is not timed)."""
    spec = REGISTRY[name]
    metric = build_metric(name, pretrained=False)
    start = time.perf_counter()
    with torch.no_grad():
        if spec.feed == "clips":
            metric.update(out[:, :, :FVD_CLIP], real=False)
            metric.update(ref[:, :, :FVD_CLIP], real=True)
        elif spec.reference:
            metric.update(out, ref)
            metric.compute()
        else:
            metric.update(out)
            metric.compute()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default="data/samples/bigbuckbunny.mp4")
    p.add_argument("--frames", type=int, default=17, help="clip length")
    p.add_argument("--heavy-frames", type=int, default=1, help="frames timed for the slow per-frame rows")
    p.add_argument("--metrics", default=",".join(REGISTRY), help="comma-separated metric names")
    p.add_argument("--sizes", default="512p,1080p", help=f"comma-separated, from {sorted(SIZES)}")
    args = p.parse_args()
    torch.manual_seed(0)
    frames, _ = read_video(args.video, num_frames=args.frames)
    clip = frames_to_tensor(frames)[None]
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; random-init networks; seconds per {args.frames}-frame clip\n")
    rows = []
    for size_name in args.sizes.split(","):
        size = SIZES[size_name]
        ref = resize_video(clip, size)
        out = blur(ref)
        for name in args.metrics.split(","):
            spec = REGISTRY[name]
            heavy = spec.feed == "frames" and name not in CHEAP and (size_name == "1080p" or name == "maniqa")
            timed = min(args.heavy_frames, args.frames) if heavy else args.frames
            try:
                seconds = time_metric(name, out[:, :, :timed], ref[:, :, :timed]) * args.frames / timed
                note = f"timed on {timed} frame(s), scaled" if timed < args.frames else ""
                if spec.feed == "clips":
                    note = f"I3D features of one {FVD_CLIP}-frame clip per side"
            except Exception as e:  # noqa: BLE001 - a table row, not a crash
                seconds, note = float("nan"), f"unavailable: {type(e).__name__}: {str(e)[:60]}"
            rows.append((size_name, name, seconds, note))
            print(f"| {size_name:5} | {name:8} | {seconds:9.2f} | {note}", flush=True)
    print("\n| size  | metric   | s / clip  | note\n|-------|----------|-----------|-----")
    for size_name, name, seconds, note in rows:
        print(f"| {size_name:5} | {name:8} | {seconds:9.2f} | {note}")


if __name__ == "__main__":
    main()
