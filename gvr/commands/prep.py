"""``gvr prep STEP``: prepare a training corpus from a folder of videos (``make prep``), one resumable step at a time.

    gvr prep scan    --src DIR --out OUT   probe every video, cut it at scene changes into clips (OUT/clips.jsonl);
                                           unreadable files go to OUT/unreadable.jsonl with their reason
    gvr prep measure --out OUT             sharpness, brightness, motion, size, duration (and MUSIQ) of each clip
    gvr prep filter  --out OUT             keep the clips that pass the thresholds (OUT/kept.jsonl), drop the rest
                                           with a reason (OUT/dropped.jsonl); the summary (OUT/summary.txt) and a
                                           histogram of each measure (OUT/hist/)
    gvr prep shard   --out OUT             write the kept clips as WebDataset shards (OUT/shards), with HR latents
                                           when a codec is configured; shards of another recipe are refused
    gvr prep all     --src DIR --out OUT   the four in order

Every step reads its recipe from ``--config`` (configs/prep.yaml) and is resumable: a rerun continues after
the last item journalled in OUT; another recipe is refused. A changed recipe or a missing input is one line on
stderr and exit code 1, never a traceback.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

STEPS = ("scan", "measure", "filter", "shard")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr prep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = p.add_subparsers(dest="step", required=True, metavar="STEP")
    for step in (*STEPS, "all"):
        sp = steps.add_parser(step, help=f"the {step} step" if step != "all" else "scan, measure, filter and shard")
        if step in ("scan", "all"):
            sp.add_argument("--src", type=Path, required=True, help="folder searched recursively for videos")
        sp.add_argument("--out", type=Path, required=True, help="prep output folder")
        sp.add_argument("--config", default="configs/prep.yaml", help="prep recipe (YAML)")
        if step != "filter":
            sp.add_argument("--workers", type=int, default=1, help="processes")
        if step in ("filter", "all"):
            sp.add_argument("--no-plots", action="store_true", help="skip the histogram PNGs")
    return p


def run_step(step: str, args: argparse.Namespace, prep) -> str:
    """Run one step and return the line it prints."""
    from gvr.prep.steps import run_filter, run_measure, run_scan, run_shard

    if step == "scan":
        return json.dumps({"step": "scan", **run_scan(args.src, args.out, prep, args.workers)})
    if step == "measure":
        return json.dumps({"step": "measure", **run_measure(args.out, prep, args.workers)})
    if step == "filter":
        return run_filter(args.out, prep, plots=not args.no_plots)
    index = run_shard(args.out, prep, args.workers)
    samples = sum(s["count"] for s in index["shards"].values())
    return json.dumps({"step": "shard", "out": str(args.out / "shards"), "shards": len(index["shards"]),
                       "new": index["new"], "samples": samples, "latents": index["latent_shape"]})


def main(argv: list[str] | None = None) -> None:
    from gvr.prep.jobs import RecipeChanged
    from gvr.prep.steps import load_config

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    step = STEPS[0] if args.step == "all" else args.step  # the step an error is reported for
    try:
        prep = load_config(args.config)  # read once for every step of `all`
        for step in STEPS if args.step == "all" else (args.step,):
            print(run_step(step, args, prep), flush=True)
    except (RecipeChanged, FileNotFoundError, NotADirectoryError) as err:
        print(f"gvr prep {step}: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
