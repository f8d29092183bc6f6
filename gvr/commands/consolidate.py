"""``gvr consolidate FOLDER OUTPUT``: gather a sharded (FSDP2) checkpoint folder into one checkpoint file."""

import argparse
from pathlib import Path

from gvr.lit.strategies import consolidate_checkpoint


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr consolidate", description=consolidate_checkpoint.__doc__)
    p.add_argument("folder", help="sharded checkpoint folder (e.g. logs/stage1/checkpoints/last.ckpt)")
    p.add_argument("output", help="the single-file checkpoint to write")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if Path(args.output).exists():
        p.error(f"{args.output} exists; write the gathered checkpoint to another file")
    try:
        print(consolidate_checkpoint(args.folder, args.output))
    except ValueError as err:
        p.error(str(err))
