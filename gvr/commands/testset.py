"""``gvr testset --config configs/testset.yaml --out data/testset``: the base-model-like test set (``make testset``).

Held-out clips with one LR version per variant of the recipe (plain bicubic, flow-based, model-guided by the
base model at a fixed alpha), written losslessly by `gvr.data.testset`. A finished folder of the same recipe
is reused; another recipe's folder is refused. ``benchmarks/quality.py --testset DIR`` scores on it.
"""

import argparse
import json
import logging
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr testset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/testset.yaml", help="test-set recipe (YAML)")
    p.add_argument("--out", default="data/testset", help="test-set folder")
    return p


def main(argv: list[str] | None = None) -> None:
    from gvr.data.testset import build_testset, load_spec

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        manifest = build_testset(load_spec(args.config), args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"gvr testset: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    sizes = sorted({"x".join(map(str, c["gt_size"])) for c in manifest["clips"]})
    print(json.dumps({"out": args.out, "clips": len(manifest["clips"]), "variants": manifest["variants"],
                      "gt_sizes": sizes, "scale": manifest["scale"]}))
