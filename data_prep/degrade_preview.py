"""PNG sheets of what the flow-based degradation does: clean | flow magnitude | motion mask | degraded.

    python data_prep/degrade_preview.py --root data/samples --out data/previews [--frames 4] [--width 480]

One sheet per video, one row per frame (from the middle of the clip), so a person can check that only moving
regions change.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from gvr.data.degradations import FlowDegradation
from gvr.data.degradations.flow import PRESETS, backward_flow, motion_mask
from gvr.data.video import VideoError, probe_video, read_video


def sheet(frames: np.ndarray, degradation: FlowDegradation, seed: int) -> np.ndarray:
    """uint8 (rows * H, 4 * W, 3): for every frame after the first, clean | |flow| | mask | degraded."""
    degraded = degradation.degrade_frames(frames, torch.Generator().manual_seed(seed))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    dis = cv2.DISOpticalFlow_create(PRESETS[degradation.flow_preset])
    rows = []
    for t in range(1, len(frames)):
        flow = backward_flow(dis, grey[t], grey[t - 1])
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        heat = cv2.applyColorMap(np.clip(magnitude * 255 / max(1.0, magnitude.max()), 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        mask = motion_mask(flow, degradation.motion_threshold, degradation.mask_open_size)
        rows.append(np.concatenate([frames[t], heat[..., ::-1], np.repeat(mask[..., None] * 255, 3, -1).astype(np.uint8), degraded[t]], 1))
    return np.concatenate(rows, 0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/samples", help="folder of videos")
    p.add_argument("--out", default="data/previews", help="folder for the PNG sheets")
    p.add_argument("--frames", type=int, default=4, help="frames per sheet (rows = frames - 1)")
    p.add_argument("--width", type=int, default=480, help="frames are resized to this width first")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    degradation = FlowDegradation()
    for path in sorted(Path(args.root).glob("*.mp4")):
        try:
            info = probe_video(path)
            frames, _ = read_video(path, max(0, info.frames // 2 - args.frames // 2), args.frames)
        except VideoError as err:
            print(f"skip {path}: {err}")
            continue
        h = round(info.height * args.width / info.width / 2) * 2
        frames = np.stack([cv2.resize(f, (args.width, h), interpolation=cv2.INTER_AREA) for f in frames])
        target = out / f"{path.stem}_flow.png"
        Image.fromarray(sheet(frames, degradation, args.seed)).save(target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
