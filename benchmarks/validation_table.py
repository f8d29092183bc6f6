"""PSNR / SSIM of a checkpoint on the held-out validation clips against bicubic, bilinear and nearest.

    python benchmarks/validation_table.py --ckpt logs/stage1/version_0/checkpoints/last.ckpt \\
        --config configs/stage1.yaml --steps 1,10,50

The clips and their degradation are the validation set of the config's data module (deterministic).
Prints a markdown table: one row per upsampler (and Euler step count for the model).
"""

import argparse
import time

import torch
from tqdm.auto import tqdm

from gvr.data.datamodule import VideoDataModule
from gvr.inference.upscale import load_module
from gvr.metrics.image import FramePSNR, FrameSSIM
from gvr.ops.config import instantiate_section
from gvr.ops.resize import resize_video


def score(batches, upsample) -> tuple[float, float, float]:
    """Frame PSNR, frame SSIM and seconds of ``upsample(batch_index, lr, hr_size)`` over the batches."""
    psnr, ssim = FramePSNR(), FrameSSIM()
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        out = upsample(i, batch["lr"], tuple(batch["hr"].shape[-2:]))
        psnr.update(out, batch["hr"])
        ssim.update(out, batch["hr"])
    return psnr.compute().item(), ssim.compute().item(), time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--config", default="configs/stage1.yaml", help="config whose data.val_* define the clips")
    p.add_argument("--steps", default="1,10,50", help="Euler step counts to score")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: the checkpoint's)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    module = load_module(args.ckpt)
    dm = instantiate_section(args.config, "data", VideoDataModule)
    dm.hparams.num_workers = 0
    batches = list(dm.val_dataloader())
    rows = []
    for name in ("bicubic", "bilinear", "nearest"):
        rows.append((name, "-", *score(batches, lambda i, lr, size, name=name: resize_video(lr, size, name))))
    for steps in map(int, args.steps.split(",")):
        upscale = lambda i, lr, size, steps=steps: module.upscale_clip(lr, size, steps=steps, s=args.s, seed=i)  # noqa: E731
        rows.append(("gvr (EMA)", str(steps), *score(tqdm(batches, desc=f"gvr {steps} steps"), upscale)))
    n = sum(b["hr"].shape[0] for b in batches)
    print(f"{n} held-out clips of {tuple(batches[0]['hr'].shape[2:])} (T, H, W) from {dm.hparams.val_manifest}, x{dm.hparams.scale}")
    print("| method | Euler steps | PSNR (dB) | SSIM | seconds |")
    print("|---|---|---|---|---|")
    for name, steps, ps, ss, sec in rows:
        print(f"| {name} | {steps} | {ps:.2f} | {ss:.4f} | {sec:.1f} |")


if __name__ == "__main__":
    main()
