"""Prep step 3: keep the clips that pass the thresholds (OUT/kept.jsonl), drop the rest with a reason (OUT/dropped.jsonl).

    python data_prep/prep_filter.py --out DIR [--config configs/prep.yaml] [--no-plots]

Prints the summary table (also OUT/summary.txt) and draws a histogram of each measure with its thresholds
(OUT/hist/hist_<measure>.png).
"""

import sys

from gvr.prep.cli import step_main
from gvr.prep.steps import run_filter


def main(argv: list[str] | None = None) -> int:
    def run(args, prep) -> str:
        return run_filter(args.out, prep, plots=not args.no_plots)

    def plots(parser) -> None:
        parser.add_argument("--no-plots", action="store_true", help="skip the histogram PNGs")

    return step_main("filter", __doc__, run, argv, after="prep_measure.py", workers=False, extra=plots)


if __name__ == "__main__":
    sys.exit(main())
