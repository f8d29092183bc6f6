"""Frames per second of each degradation at 512p (384x672) on real sample frames (prints a table).

    python benchmarks/degradation.py [--video data/samples/bigbuckbunny.mp4] [--frames 17] [--repeats 3]

The flow-based degradation is also timed step by step: DIS flow + motion mask, ghosting, block motion blur.
Model-guided degradation (encode, base-model SDEdit from alpha ~ U[0.3, 0.4] back to 0, decode) runs with the
embedded base model (``--base-ckpt``, made by ``make base``): at 512p on ``--model-frames`` frames (its 3D
attention is full attention over every token of the clip, so cost grows with frames squared), and at the
base model's training size (32x32, 3 frames) for comparison.
"""

import argparse
import math
import time

import cv2
import numpy as np
import torch

from gvr.data.degradations import ClassicDegradation, FlowDegradation
from gvr.data.degradations.flow import PRESETS, backward_flow, block_motion_blur, ghost, motion_mask
from gvr.data.video import frames_to_tensor, read_video

SIZE = (384, 672)


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def flow_steps(d: FlowDegradation, frames: np.ndarray) -> dict[str, float]:
    """Seconds spent in each step of the flow-based degradation over the clip."""
    rng = np.random.default_rng(0)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    dis = cv2.DISOpticalFlow_create(PRESETS[d.flow_preset])
    clock = {"flow + mask": 0.0, "ghosting": 0.0, "motion blur": 0.0}
    x = frames.astype(np.float32)
    for t in range(1, len(frames)):
        start = time.perf_counter()
        flow = backward_flow(dis, grey[t], grey[t - 1])
        mask = motion_mask(flow, d.motion_threshold, d.mask_open_size)
        clock["flow + mask"] += time.perf_counter() - start
        if not mask.any():
            continue
        start = time.perf_counter()
        ghosted = ghost(x[t], x[t - 1], flow, d.ghost_weights(mask, rng), d.ghost_sigma, rng)
        clock["ghosting"] += time.perf_counter() - start
        start = time.perf_counter()
        block_motion_blur(ghosted, flow, mask, d.blur_block_size, d.motion_threshold, 1.5, d.blur_length,
                          d.blur_strength_gain, d.blur_strength_max)
        clock["motion blur"] += time.perf_counter() - start
    return clock


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default="data/samples/bigbuckbunny.mp4")
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scale", type=float, default=2.8, help="downscale factor of the classic degradation")
    p.add_argument("--base-ckpt", default="logs/base/checkpoints/last.ckpt", help="embedded base model (make base)")
    p.add_argument("--model-frames", type=int, default=1, help="frames of the 512p model-guided timing")
    p.add_argument("--model-steps", type=int, default=10, help="Euler steps of the model-guided degradation")
    args = p.parse_args()
    torch.set_num_threads(2)
    raw, _ = read_video(args.video, 0, args.frames)
    frames = np.stack([cv2.resize(f, SIZE[::-1], interpolation=cv2.INTER_AREA) for f in raw])
    n = len(frames)
    lr = tuple(math.floor(s / args.scale + 0.5) for s in SIZE)
    classic, flow = ClassicDegradation(), FlowDegradation()
    hr = frames_to_tensor(frames)
    rows = [
        ("classic (all steps on)", best_of(args.repeats, lambda: ClassicDegradation(codec_prob=1.0)(hr, lr, torch.Generator().manual_seed(0)))),
        ("classic (defaults)", best_of(args.repeats, lambda: classic(hr, lr, torch.Generator().manual_seed(0)))),
        ("flow-based (full res, uint8)", best_of(args.repeats, lambda: flow.degrade_frames(frames, torch.Generator().manual_seed(0)))),
    ]
    print(f"{n} frames of {args.video} at {SIZE[1]}x{SIZE[0]} (classic -> {lr[1]}x{lr[0]}), 2 threads, best of {args.repeats}")
    print("| degradation | frames / s | ms / frame |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {n / seconds:.1f} | {1000 * seconds / n:.1f} |")
    steps = flow_steps(flow, frames)
    for name, seconds in steps.items():
        print(f"| flow step: {name} | {(n - 1) / seconds:.1f} | {1000 * seconds / (n - 1):.1f} |")
    for name, seconds, count in model_guided_rows(args, hr):
        print(f"| {name} | {count / seconds:.3g} | {1000 * seconds / count:.1f} |")


def model_guided_rows(args, hr: torch.Tensor) -> list[tuple[str, float, int]]:
    """(label, seconds, frames) of the model-guided degradation with the embedded base model, if it exists."""
    from pathlib import Path

    from gvr.data.degradations import ModelGuidedDegradation

    if not Path(args.base_ckpt).is_file():
        print(f"(model-guided: no base model at {args.base_ckpt}; run `make base` first)")
        return []
    from gvr.lit import BaseCheckpoint

    deg = ModelGuidedDegradation(BaseCheckpoint(args.base_ckpt), steps=args.model_steps)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    k = args.model_frames
    small = torch.nn.functional.interpolate(hr[:, :3], size=(80, 80), mode="area")
    with torch.inference_mode():
        return [
            (f"model-guided, {args.model_steps} steps, base model at 512p ({k} frame(s) a clip)",
             best_of(1, lambda: deg(hr[:, :k], SIZE, g())), k),
            (f"model-guided, {args.model_steps} steps, at its training size 32x32 (3 frames a clip)",
             best_of(args.repeats, lambda: deg(small, (32, 32), g())), 3),
        ]


if __name__ == "__main__":
    main()
