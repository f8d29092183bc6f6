"""Frames per second of one-step upscaling to 1080p on a GPU: the tiny student and teacher, and the `1b` preset on
the Wan 2.1 VAE (prints a table; random weights: speed does not depend on them).

    python benchmarks/gpu.py                        # all rows, on cuda
    python benchmarks/gpu.py --rows student,1b --frames 17 --repeats 3

Rows (output 1080 x 1920 in every row):
- ``student``: configs/distill.yaml (tiny, windowed 2D/3D attention, PatchCodec), x4 from 270 x 480, fp32 and bf16;
- ``teacher``: configs/stage1_x4.yaml (tiny, full attention), x4, one training clip (3 frames), bf16;
- ``1b``: ``SimpleGVR.preset("1b")`` (1.08B parameters, full attention) on the Wan 2.1 VAE (diffusers
  ``AutoencoderKLWan`` with its default = Wan 2.1 config, bf16 weights), x2.5 from 432 x 768 (the paper's), bf16,
  once with the paper's pure-noise source and once with the input-anchored source (``FlowSource(anchor="pixel")``:
  one more VAE encode, of the bicubic HR clip).

Each row times ``VSRModule.upscale_clip`` on a clip already on the GPU (LR encode, the network's Euler step,
HR decode, crop; no mp4 decode or encode) after one warm-up call, the GPU synchronised: frames per second, seconds
per output frame, the backbone's share of the time (CUDA events around its calls) and peak GPU memory
(``torch.cuda.max_memory_allocated``). With ``--whole``, the student also runs `gvr upscale`'s whole path
(``gvr.inference.upscale.upscale_video``: PyAV decode, the model over the whole clip in one window, H.264 encode) on a
random 1080p-output mp4.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def tiny(config: str):
    from upscale import build  # benchmarks/upscale.py: a random-weight module of a config, its scale and clip length

    return build(None, config)


def one_b(anchor: str):
    from diffusers import AutoencoderKLWan

    from gvr.codecs.diffusers_vae import DiffusersVAE
    from gvr.flow import FlowObjective, FlowSource
    from gvr.lit.vsr_module import VSRModule
    from gvr.models import SimpleGVR

    torch.manual_seed(0)
    codec = DiffusersVAE.from_model(AutoencoderKLWan().to(torch.bfloat16), "wan")
    source = FlowSource(anchor="none", sigma=1.0) if anchor == "none" else FlowSource(anchor=anchor, sigma=0.0)
    with torch.device("cuda"):  # a 1B model initialises in seconds on the GPU, minutes on a CPU
        backbone = SimpleGVR.preset("1b")
    objective = FlowObjective(source=source, sample_steps=1, s_inference=0.0)
    return VSRModule(backbone=backbone, codec=codec, objective=objective, scale=2.5)


ROWS = {
    # name: (builder, LR height, LR width, frames (None: --frames), dtypes)
    "student": (lambda: tiny("configs/distill.yaml"), 270, 480, None, ("float32", "bfloat16")),
    "teacher": (lambda: tiny("configs/stage1_x4.yaml"), 270, 480, 3, ("bfloat16",)),
    "1b": (lambda: one_b("none"), 432, 768, 17, ("bfloat16",)),
    "1b-anchored": (lambda: one_b("pixel"), 432, 768, 17, ("bfloat16",)),
}


class NetTimer:
    """CUDA events around every call of ``net``: the milliseconds spent inside it since the last ``reset``."""

    def __init__(self, net: torch.nn.Module):
        self.pairs: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        net.register_forward_pre_hook(lambda *_: self.pairs.append((self._event(), None)))
        net.register_forward_hook(lambda *_: self.pairs.__setitem__(-1, (self.pairs[-1][0], self._event())))

    @staticmethod
    def _event() -> torch.cuda.Event:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def reset(self) -> None:
        self.pairs = []

    def seconds(self) -> float:
        return sum(a.elapsed_time(b) for a, b in self.pairs) / 1e3


def time_row(module, h: int, w: int, frames: int, dtype: str, repeats: int) -> dict:
    scale = float(module.hparams.scale)
    size = (round(h * scale), round(w * scale))
    lr = torch.rand(1, 3, frames, h, w, device="cuda") * 2 - 1
    timer = NetTimer(module.inference_net)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    with torch.no_grad(), autocast:
        out = module.upscale_clip(lr, size, steps=1)  # warm-up (cuDNN autotuning, allocator)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        timer.reset()
        start = time.perf_counter()
        for _ in range(repeats):
            out = module.upscale_clip(lr, size, steps=1)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / repeats
    assert out.shape == (1, 3, frames, *size), out.shape
    return {"size": size, "frames": frames, "seconds": seconds, "net": timer.seconds() / repeats,
            "peak_gb": torch.cuda.max_memory_allocated() / 2**30}


def whole_path(module, h: int, w: int, frames: int) -> dict:
    """`gvr upscale`'s whole path (decode, model, encode) on a random mp4, bf16, on the GPU."""
    import numpy as np

    from gvr.data.video import write_video
    from gvr.inference.upscale import upscale_video

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.mp4"), os.path.join(tmp, "out.mp4")
        rng = np.random.default_rng(0)
        write_video(src, rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8), fps=24)
        upscale_video(module, src, dst, steps=1, chunk=frames, progress=False, precision="bf16", overwrite=True)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        summary = upscale_video(module, src, dst, steps=1, chunk=frames, progress=False, precision="bf16", overwrite=True)
        torch.cuda.synchronize()
        return {**summary, "seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--frames", type=int, default=17, help="input frames of the student rows")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per row (after one warm-up)")
    p.add_argument("--whole", action="store_true", help="also time the student through gvr upscale's whole path")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, TF32 on for float32 rows; random weights; "
          f"one Euler step; {args.repeats} timed calls after a warm-up\n")
    print("| model | params | input | output | frames | dtype | frames / s | s / output frame | network share | peak GPU memory (GiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.rows.split(","):
        build, h, w, frames, dtypes = ROWS[name]
        module = build().cuda().eval()
        params = sum(p.numel() for p in module.inference_net.parameters())
        for dtype in dtypes:
            r = time_row(module, h, w, frames or args.frames, dtype, args.repeats)
            n = r["frames"]
            print(f"| {name} | {params / 1e6:.1f}M | {w}x{h} | {r['size'][1]}x{r['size'][0]} | {n} | {dtype} | "
                  f"{n / r['seconds']:.2f} | {r['seconds'] / n:.4f} | {r['net'] / r['seconds']:.0%} | {r['peak_gb']:.1f} |",
                  flush=True)
        if name == "student" and args.whole:
            r = whole_path(module, h, w, args.frames)
            print(f"| student, `gvr upscale` whole path (mp4 in/out) | | {w}x{h} | {r['output_size'][0]}x{r['output_size'][1]} | "
                  f"{r['frames']} | bfloat16 | {r['frames'] / r['seconds']:.2f} | {r['seconds'] / r['frames']:.4f} | | |",
                  flush=True)
        del module
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
