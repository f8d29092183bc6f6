"""The command line shared by the prep step scripts (data_prep/prep_*.py): arguments, logging, errors, exit code."""

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from gvr.prep.jobs import RecipeChanged
from gvr.prep.steps import PrepConfig, load_config


def step_main(
    step: str,
    doc: str,
    run: Callable[[argparse.Namespace, PrepConfig], str],
    argv: list[str] | None = None,
    after: str = "",
    src: bool = False,
    workers: bool = True,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse ``--out``, ``--config`` (and ``--src``, ``--workers``, ``extra``), run the step, print what it returns.

    A changed recipe or a missing input is one line on stderr and exit code 1, never a traceback.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if src:
        parser.add_argument("--src", type=Path, required=True, help="folder searched recursively for videos")
    parser.add_argument("--out", type=Path, required=True, help=f"prep output folder{f' (after {after})' if after else ''}")
    parser.add_argument("--config", default="configs/prep.yaml", help="prep recipe (YAML)")
    if workers:
        parser.add_argument("--workers", type=int, default=1, help="processes")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        printed = run(args, load_config(args.config))
    except (RecipeChanged, FileNotFoundError, NotADirectoryError) as err:
        print(f"prep_{step}: error: {err}", file=sys.stderr)
        return 1
    print(printed)
    return 0
