"""Wall time and peak memory of each attention operator against tokens and frames (prints tables).

    python benchmarks/attention.py                  # both sweeps, heads 4, head dim 64, batch 1, 2 threads
    python benchmarks/attention.py --sweep frames   # only the frames sweep
    python benchmarks/attention.py --flex           # add the compiled FlexAttention paths (C++ compiler)

Forward only, under `torch.no_grad()`, float32, at layer 1 (shifted partitions: the costlier case).
Each case runs in a fresh subprocess: q, k, v are allocated, the kernel's peak-RSS mark is reset
(`/proc/self/clear_refs` = 5), one forward runs, and the peak memory is `VmHWM - VmRSS` before the call:
the most resident memory the forward added on top of its inputs (outputs and temporaries included).
Time is the fastest of `--repeats` further calls (the one least disturbed by other processes on a shared
machine). Memory is the process's, so it is what the OS had to
give, not what torch's allocator asked for (on CPU torch returns large blocks to the OS at once).

With `--flex`, the compiled FlexAttention paths are called once before the measured first call, so that
their memory is the kernel's rather than the compiler's (compiling takes seconds on first use).

Sweeps: tokens at 5 latent frames (the 17-frame clip), frames at 24 x 32 tokens a frame.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

OPS = ["full", "frame", "temporal_units", "swin", "sparse_local"]
FLEX_OPS = ["temporal_units:flex", "sparse_local:flex"]  # with --flex; their first call includes compiling
TOKEN_GRIDS = [(5, 24, 32), (5, 34, 48), (5, 48, 68), (5, 68, 96), (5, 68, 120)]  # 3,840 .. 40,800 tokens
FRAME_GRIDS = [(5, 24, 32), (10, 24, 32), (20, 24, 32), (40, 24, 32)]  # 3,840 .. 30,720 tokens


def build(name: str):
    """The operator benchmarked under `name` (paper settings: units of 5 frames, 9 x 12 blocks, top-1)."""
    from gvr.models import FrameAttention, FullAttention, SparseLocalAttention, SwinAttention, TemporalUnitsAttention

    return {
        "full": FullAttention,
        "frame": FrameAttention,
        "temporal_units": lambda: TemporalUnitsAttention(5, backend="sdpa"),
        "swin": lambda: SwinAttention((8, 8)),
        "sparse_local": lambda: SparseLocalAttention((9, 12), top_k=1, backend="sdpa"),
        "temporal_units:flex": lambda: TemporalUnitsAttention(5, backend="flex"),
        "sparse_local:flex": lambda: SparseLocalAttention((9, 12), top_k=1, backend="flex"),
    }[name]()


def memory_kib() -> tuple[int, int]:
    """(peak RSS since the last reset, current RSS) of this process, KiB."""
    status = Path("/proc/self/status").read_text()
    return tuple(int(re.search(rf"{key}:\s+(\d+)", status).group(1)) for key in ("VmHWM", "VmRSS"))


def single(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    op, grid = build(args.op), tuple(args.grid)
    n = grid[0] * grid[1] * grid[2]
    q, k, v = torch.randn(3, args.batch, args.heads, n, args.head_dim, generator=torch.Generator().manual_seed(0)).unbind(0)
    with torch.no_grad():
        if args.op.endswith(":flex"):
            op(q, k, v, grid, 1)  # compile first: its memory is the compiler's, not the kernel's
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = memory_kib()[1]
        start = time.perf_counter()
        op(q, k, v, grid, 1)
        first = time.perf_counter() - start
        peak = memory_kib()[0] - before
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            op(q, k, v, grid, 1)
            times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": min(times) if times else first, "first": first, "peak_mb": peak / 1024}))


def run_case(op: str, grid: tuple, args) -> dict:
    cmd = [sys.executable, __file__, "--single", op, "--grid", *map(str, grid), "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--heads", str(args.heads), "--head-dim", str(args.head_dim),
           "--batch", str(args.batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sweep(title: str, grids: list, args) -> None:
    ops = OPS + (FLEX_OPS if args.flex else [])
    print(f"\n### {title}\n")
    print("| T x H x W | tokens | " + " | ".join(f"{op} s" for op in ops) + " | " + " | ".join(f"{op} MB" for op in ops)
          + " | full / sparse_local time |")
    print("|" + "---|" * (3 + 2 * len(ops)))
    for grid in grids:
        n = grid[0] * grid[1] * grid[2]
        results = {op: run_case(op, grid, args) for op in ops}
        times = " | ".join(f"{results[op]['seconds']:.3f}" for op in ops)
        mems = " | ".join(f"{results[op]['peak_mb']:.0f}" for op in ops)
        speedup = results["full"]["seconds"] / results["sparse_local"]["seconds"]
        print(f"| {grid[0]} x {grid[1]} x {grid[2]} | {n:,} | {times} | {mems} | {speedup:.1f}x |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", choices=["tokens", "frames", "both"], default="both", help="which table(s) to print")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--repeats", type=int, default=2, help="timed calls after the first (the fastest counts)")
    p.add_argument("--flex", action="store_true", help="also time the compiled FlexAttention paths (CPU kernels)")
    p.add_argument("--single", choices=OPS + FLEX_OPS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--grid", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single:
        args.op = args.single
        return single(args)
    import torch

    print(f"attention ops, forward, no grad, float32: batch {args.batch}, heads {args.heads}, head dim {args.head_dim}, "
          f"{args.threads} threads, torch {torch.__version__}; time = fastest of {args.repeats} calls after the first, "
          f"memory = peak RSS added by the first call; load average {tuple(round(x, 1) for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.sweep in ("tokens", "both"):
        sweep("Tokens (5 latent frames)", TOKEN_GRIDS, args)
    if args.sweep in ("frames", "both"):
        sweep("Frames (24 x 32 tokens a frame)", FRAME_GRIDS, args)
    print(f"\nload average at the end (1, 5, 15 min): {tuple(round(x, 1) for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
