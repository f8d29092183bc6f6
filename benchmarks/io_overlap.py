"""`gvr upscale`'s whole path, file in and file out, with decode, network and encode in series or overlapped.

    python benchmarks/io_overlap.py                                  # make benchmark-io: CPU, 96x96 -> 384x384
    python benchmarks/io_overlap.py --threads 1                      # the network on one core, the other free for I/O
    python benchmarks/io_overlap.py --emulate-network 28.6 --size 270 480 --frames 96 --chunk 16   # a GPU's network
    python benchmarks/io_overlap.py --device cuda --precision bf16 --size 270 480 --frames 33   # -> 1080x1920

The model is the one-step student (``--ckpt``, default logs/distill/checkpoints/last.ckpt, or a random-weight
model of configs/distill.yaml: speed does not depend on the weights), over the whole clip in one window as
`gvr upscale` runs it. Each row is `gvr.inference.upscale.upscale_video` on an H.264 clip of smooth moving
noise (probe, scene detection, decode, the network, blending, x264 encode), timed after one warm-up call; the
two modes alternate ``--repeats`` times and the best time of each is printed with frames per second and the
network's share of the wall time (the time inside the model calls; on a GPU, synchronised). ``--threads N``
gives torch N intra-op threads (default: torch's own, one per core): on a small CPU, ``--threads`` below the
core count leaves a core to the decoder and encoder, the situation of a GPU host, where the network does not
take the CPU. ``--emulate-network MS`` replaces the network by an accelerator that takes MS milliseconds per
output frame and leaves the CPU free meanwhile (a sleep; the frames are the LR ones repeated to the output
size): what decode and encode cost this host, and how much of them the overlap hides, beside a network of a
GPU's speed (28.6 ms is the 35 frames/s of the one-step student at 1080p on an H200). ``--chunk`` sets the
window (default: the whole clip, as the windowed student runs a short clip); only a clip of several windows
has a network call for decode and encode to overlap with. What else runs on the machine shares its cores: say
so beside any figure you quote.
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


def emulated_network(ms_per_frame: float):
    """A stand-in for `gvr.inference.upscale._run`: LR frames repeated to the output size after ``ms_per_frame``
    per frame of sleep, the CPU left free as an accelerator leaves it."""

    def run(module, lr: np.ndarray, size: tuple[int, int], *args, **kwargs) -> np.ndarray:
        time.sleep(ms_per_frame / 1000 * len(lr))
        rows = np.arange(size[0]) * lr.shape[1] // size[0]
        cols = np.arange(size[1]) * lr.shape[2] // size[1]
        return lr[:, rows][:, :, cols]

    return run


def time_path(module, src: Path, dst: Path, overlap_io: bool, precision: str, chunk: int | None = None) -> dict:
    from gvr.inference.upscale import upscale_video

    sync = torch.cuda.synchronize if module.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    summary = upscale_video(module, str(src), str(dst), steps=1, chunk=chunk or summary_chunk(src), overwrite=True,
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
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    p.add_argument("--chunk", type=int, default=None, help="frames per window (default: the whole clip)")
    p.add_argument("--emulate-network", type=float, default=None, metavar="MS",
                   help="an accelerator of MS ms per output frame instead of the network (the CPU free meanwhile)")
    args = p.parse_args(argv)
    if args.emulate_network is not None and args.emulate_network < 0:
        p.error(f"--emulate-network must be >= 0 ms, got {args.emulate_network}")
    if args.chunk is not None and args.chunk < 2:
        p.error(f"--chunk must be >= 2 frames, got {args.chunk}")
    if args.threads is not None:
        if args.threads < 1:
            p.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    from upscale import build  # benchmarks/upscale.py: a checkpoint's module or a random one of a config

    module = build(args.ckpt, args.config).to(args.device).eval()
    if args.emulate_network is not None:
        import gvr.inference.upscale

        gvr.inference.upscale._run = emulated_network(args.emulate_network)
    h, w = args.size
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        smooth_clip(src, args.frames, h, w)
        time_path(module, src, dst, True, args.precision, args.chunk)  # warm-up: allocator, kernels, caches
        for _ in range(args.repeats):
            for mode in (False, True):
                r = time_path(module, src, dst, mode, args.precision, args.chunk)
                if mode not in rows or r["wall"] < rows[mode]["wall"]:
                    rows[mode] = r
    out_w, out_h = rows[True]["output_size"]
    print(f"`gvr upscale` whole path, {args.frames} frames {w}x{h} -> {out_w}x{out_h}, x{module.hparams.scale:g}, "
          f"{args.device}, precision {args.precision}, torch threads {torch.get_num_threads()}, best of {args.repeats}, "
          f"windows of {rows[True]['chunk']} frames"
          + (f", network emulated at {args.emulate_network:g} ms/frame" if args.emulate_network is not None else ""))
    print("| decode / network / encode | wall s | output frames/s | network s | network share |")
    print("|---|---|---|---|---|")
    for mode, label in ((False, "in series"), (True, "overlapped (threads)")):
        r = rows[mode]
        print(f"| {label} | {r['wall']:.2f} | {args.frames / r['wall']:.2f} | {r['network']:.2f} | "
              f"{r['network'] / r['wall']:.0%} |")
    print(f"- overlap gain: {rows[False]['wall'] / rows[True]['wall']:.2f}x")


if __name__ == "__main__":
    main()
