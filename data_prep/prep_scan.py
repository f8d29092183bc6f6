"""Prep step 1: probe every video under SRC and cut it at scene changes into clips (OUT/clips.jsonl).

    python data_prep/prep_scan.py --src DIR --out DIR [--config configs/prep.yaml] [--workers N]

Unreadable files (empty, corrupt, truncated) go to OUT/unreadable.jsonl with their reason. Resumable: a
rerun continues after the last video journalled in OUT/scan.journal.jsonl; another recipe is refused.
"""

import json
import sys

from gvr.prep.cli import step_main
from gvr.prep.steps import run_scan


def main(argv: list[str] | None = None) -> int:
    def run(args, prep) -> str:
        return json.dumps({"step": "scan", **run_scan(args.src, args.out, prep, args.workers)})

    return step_main("scan", __doc__, run, argv, src=True)


if __name__ == "__main__":
    sys.exit(main())
