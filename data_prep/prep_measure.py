"""Prep step 2: measure sharpness, brightness, motion, size, duration (and MUSIQ) of each clip (OUT/measured.jsonl).

    python data_prep/prep_measure.py --out DIR [--config configs/prep.yaml] [--workers N]

Resumable: a rerun continues after the last clip journalled in OUT/measure.journal.jsonl; another recipe is
refused.
"""

import json
import sys

from gvr.prep.cli import step_main
from gvr.prep.steps import run_measure


def main(argv: list[str] | None = None) -> int:
    def run(args, prep) -> str:
        return json.dumps({"step": "measure", **run_measure(args.out, prep, args.workers)})

    return step_main("measure", __doc__, run, argv, after="prep_scan.py")


if __name__ == "__main__":
    sys.exit(main())
