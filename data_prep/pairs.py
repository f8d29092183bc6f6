"""Build (or finish) the stage-2 pair cache with gvr.data.pair_cache.

    python data_prep/pairs.py --config configs/pairs.yaml --out data/pairs

Resumable: rerun after an interruption and finished shards are kept. A folder built from another recipe is
refused; use another --out or delete it.
"""

import argparse
import json
import logging
import sys

from gvr.data.pair_cache import build_pair_cache, load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/pairs.yaml", help="pair recipe (YAML)")
    parser.add_argument("--out", default="data/pairs", help="cache folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        manifest = build_pair_cache(load_spec(args.config), args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"pairs: error: {err}", file=sys.stderr)
        return 1
    kinds = {k: sum(s["kinds"][k] for s in manifest["shards"]) for k in ("flow", "model")}
    print(json.dumps({"out": args.out, "pairs": manifest["num_pairs"], "shards": len(manifest["shards"]), **kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
