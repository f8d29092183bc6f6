"""Throughput of the data path: each prep step, and training samples per second from mp4s against shards.

    python benchmarks/data.py [--src data/samples] [--workers 2] [--samples 24]

Prep: the four steps of ``make prep`` over ``--src`` (configs/prep.yaml with a 17-frame 256x256 shard
recipe), then the shard step again with a codec (HR latents stored). Training: one process draws
``--samples`` training items (17 frames, 256x256 HR, x4) and encodes what the model would encode:

- ``mp4``: :class:`gvr.data.dataset.VideoClipDataset` decoding a random window of the source videos per
  item (no frame cache, as on a corpus too large for memory), then encode HR and LR;
- ``shards``: :class:`gvr.data.shards.ShardClipDataset` reading the prep shards, then encode HR and LR;
- ``shards + latents``: the same with the HR latent read from the shard, so only LR is encoded.

The LR clip is a bicubic downsample in all three (the degradation costs the same everywhere and is timed by
``make benchmark-degradation``). The codec is gvr's weight-free PatchCodec (x8): with a real VAE the encode
of the HR clip, which ``shards + latents`` skips, is the dominant cost. Each row runs in a fresh process;
peak memory is its maximum resident set (with its worker processes).
"""

import argparse
import logging
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

SHARD = {"num_frames": 17, "size": [256, 256], "windows": 2, "shard_size": 4}
CODEC = {"class_path": "gvr.codecs.PatchCodec", "init_args": {"spatial_factor": 8}}


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def prep_step(step: str, src: str, out: str, workers: int, latents: bool) -> tuple[float, int, float]:
    """(seconds, clips handled, peak MiB) of one prep step."""
    from gvr.prep.jobs import count_lines
    from gvr.prep.steps import load_config, run_filter, run_measure, run_scan, run_shard

    shard = {**SHARD, "codec": CODEC} if latents else SHARD
    prep = load_config("configs/prep.yaml", {"shard": shard})
    out_path = Path(out)
    start = time.perf_counter()
    if step == "scan":
        run_scan(Path(src), out_path, prep, workers)
        clips = count_lines(out_path / "clips.jsonl")
    elif step == "measure":
        run_measure(out_path, prep, workers)
        clips = count_lines(out_path / "clips.jsonl")
    elif step == "filter":
        run_filter(out_path, prep)
        clips = count_lines(out_path / "measured.jsonl")
    else:
        run_shard(out_path, prep, workers)
        clips = count_lines(out_path / "kept.jsonl")
    return time.perf_counter() - start, clips, _peak_mib()


def train_samples(kind: str, src: str, shards: str, samples: int) -> tuple[float, int, float]:
    """(seconds, samples, peak MiB) of drawing ``samples`` training items and encoding them."""
    import torch

    from gvr.codecs import PatchCodec
    from gvr.data.dataset import VideoClipDataset
    from gvr.data.degradations.degradation import BicubicDownsample
    from gvr.data.manifest import scan_videos
    from gvr.data.shards import ShardClipDataset

    logging.disable(logging.WARNING)  # the mp4 set skips the samples too small for 256x256 crops, quietly
    torch.set_num_threads(1)
    codec = PatchCodec(spatial_factor=8)
    if kind == "mp4":
        dataset = VideoClipDataset(scan_videos(src, 17), 17, (256, 256), 4, BicubicDownsample(), 8, length=samples,
                                   cache_frames=False)
    else:
        dataset = ShardClipDataset(shards, 17, (256, 256), 4, BicubicDownsample(), length=samples,
                                   latents=kind == "shards + latents")
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(samples):
            item = dataset[i]
            z = item["z"] if "z" in item else codec.encode(item["hr"][None])
            c = codec.encode(item["lr"][None])
            assert z.numel() and c.numel()
    return time.perf_counter() - start, samples, _peak_mib()


def _fresh(fn, *args):
    """Run ``fn(*args)`` in a fresh process (its own peak memory)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default="data/samples", help="folder of source videos")
    parser.add_argument("--workers", type=int, default=2, help="processes of each prep step")
    parser.add_argument("--samples", type=int, default=24, help="training items drawn per row")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out, out_z = Path(tmp) / "prep", Path(tmp) / "prep_latents"
        rows = []
        for step in ("scan", "measure", "filter", "shard"):
            rows.append((f"prep {step}", *_fresh(prep_step, step, args.src, str(out), args.workers, False)))
        out_z.mkdir()
        (out_z / "kept.jsonl").write_bytes((out / "kept.jsonl").read_bytes())
        rows.append(("prep shard + latents", *_fresh(prep_step, "shard", args.src, str(out_z), args.workers, True)))
        print(f"prep of {args.src} with {args.workers} worker processes")
        print(f"{'step':<24}{'clips':>7}{'seconds':>9}{'clips/s':>9}{'peak MiB':>10}")
        for name, seconds, clips, peak in rows:
            print(f"{name:<24}{clips:>7}{seconds:>9.2f}{clips / seconds:>9.2f}{peak:>10.0f}")
        print(f"\ntraining items (17 x 256 x 256 HR, x4, PatchCodec x8 encode), one process, {args.samples} items")
        print(f"{'source':<24}{'samples/s':>10}{'peak MiB':>10}")
        for kind, shards in (("mp4", ""), ("shards", str(out / "shards")), ("shards + latents", str(out_z / "shards"))):
            seconds, n, peak = _fresh(train_samples, kind, args.src, shards, args.samples)
            print(f"{kind:<24}{n / seconds:>10.2f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
