"""`gvr upscale`'s whole path, file in and file out, with decode, network and encode in series or overlapped.

    python benchmarks/io_overlap.py                                  # make benchmark-io: CPU, 96x96 -> 384x384
    python benchmarks/io_overlap.py --device cuda --precision bf16 --size 270 480 --frames 33   # -> 1080x1920

The model is the one-step student (``--ckpt``, default logs/distill/checkpoints/last.ckpt, or a random-weight
model of configs/distill.yaml: speed does not depend on the weights), over the whole clip in one window as
`gvr upscale` runs it. Each row is `gvr.inference.upscale.upscale_video` on an H.264 clip of smooth moving
noise (probe, scene detection, decode, the network, blending, x264 encode), timed after one warm-up call; the
two modes alternate ``--repeats`` times and the best time of each is printed with frames per second and the
network's share of the wall time (the time inside the model calls; on a GPU, synchronised). What else runs on
the machine shares its cores: say so beside any figure you quote.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def smooth_clip(path: Path, frames: int, h: int, w: int) -> None:
    """A clip of blurred noise panning one pixel a frame (x264 meets texture, not pure noise)."""
    import cv2

    from gvr.data.video import write_video

    noise = np.random.default_rng(0).random((h, w + frames, 3)).astype(np.float32)
    scene = cv2.GaussianBlur(noise, (0, 0), 1.5)
    scene = (255 * (scene - scene.min()) / (scene.max() - scene.min())).astype(np.uint8)
    write_video(path, np.stack([scene[:, t : t + w] for t in range(frames)]), fps=24)


def time_path(module, src: Path, dst: Path, overlap_io: bool, precision: str) -> dict:
    from gvr.inference.upscale import upscale_video

    sync = torch.cuda.synchronize if module.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    summary = upscale_video(module, str(src), str(dst), steps=1, chunk=summary_chunk(src), overwrite=True,
                            progress=False, precision=precision, overlap_io=overlap_io)
    sync()
    return {"wall": time.perf_counter() - start, "network": summary["seconds"]["network"], **summary}


def summary_chunk(src: Path) -> int:
    from gvr.data.video import probe_video

    return probe_video(src).frames  # the whole clip in one window, as the windowed student runs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default="logs/distill/checkpoints/last.ckpt", help="student checkpoint (random if absent)")
    p.add_argument("--config", default="configs/distill.yaml", help="config of the random-weight model")
    p.add_argument("--size", type=int, nargs=2, default=[96, 96], metavar=("H", "W"), help="input frame size")
    p.add_argument("--frames", type=int, default=17, help="frames of the clip")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per mode (best kept)")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--precision", choices=["32", "bf16"], default="32", help="network precision")
    args = p.parse_args(argv)
    from upscale import build  # benchmarks/upscale.py: a checkpoint's module or a random one of a config

    module = build(args.ckpt, args.config).to(args.device).eval()
    h, w = args.size
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        smooth_clip(src, args.frames, h, w)
        time_path(module, src, dst, True, args.precision)  # warm-up: allocator, kernels, caches
        for _ in range(args.repeats):
            for mode in (False, True):
                r = time_path(module, src, dst, mode, args.precision)
                if mode not in rows or r["wall"] < rows[mode]["wall"]:
                    rows[mode] = r
    out_w, out_h = rows[True]["output_size"]
    print(f"`gvr upscale` whole path, {args.frames} frames {w}x{h} -> {out_w}x{out_h}, x{module.hparams.scale:g}, "
          f"{args.device}, precision {args.precision}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print("| decode / network / encode | wall s | output frames/s | network s | network share |")
    print("|---|---|---|---|---|")
    for mode, label in ((False, "in series"), (True, "overlapped (threads)")):
        r = rows[mode]
        print(f"| {label} | {r['wall']:.2f} | {args.frames / r['wall']:.2f} | {r['network']:.2f} | "
              f"{r['network'] / r['wall']:.0%} |")
    print(f"- overlap gain: {rows[False]['wall'] / rows[True]['wall']:.2f}x")


if __name__ == "__main__":
    main()
