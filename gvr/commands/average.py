"""``gvr average CKPT CKPT [...] --output OUT.ckpt``: the uniform weight average of one run's checkpoints.

Every floating-point tensor of the state dicts (the EMA copy included) is averaged; the output is the most
recent input with the averaged weights and without its optimizer and loop state, so ``gvr upscale``,
``gvr test`` and ``gvr score`` take it like any checkpoint (training does not resume from it). Checkpoints of
different configs are refused, and an existing output is kept unless ``--overwrite``. ``CheckpointAverage``
(``gvr.lit.averaging``) keeps the same average during training without keeping the checkpoints.
"""

import argparse
import json
import sys

from gvr.lit.averaging import average_checkpoints


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr average", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpts", nargs="+", help="checkpoints of one run (e.g. checkpoints/step*.ckpt)")
    p.add_argument("--output", "-o", required=True, help="the averaged checkpoint to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        out = average_checkpoints(args.ckpts, args.output, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        sys.exit(f"gvr average: error: {err}")
    print(json.dumps({"output": str(out), "averaged": len(args.ckpts)}))


if __name__ == "__main__":
    main()
