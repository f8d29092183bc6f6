"""``gvr pairs --config configs/pairs.yaml --out data/pairs``: build (or finish) the stage-2 pair cache (``make pairs``).

HR latents with LR latents made by flow-based degradation (pixel space, then encoded) or by model-guided
degradation (the base model, SDEdit-like in latent space), written as shards by `gvr.data.pair_cache`.
Resumable: rerun after an interruption and finished shards are kept. A folder built from another recipe is
refused; use another --out or delete it.
"""

import argparse
import json
import logging
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr pairs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/pairs.yaml", help="pair recipe (YAML)")
    p.add_argument("--out", default="data/pairs", help="cache folder")
    return p


def main(argv: list[str] | None = None) -> None:
    from gvr.data.pair_cache import build_pair_cache, load_spec

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        manifest = build_pair_cache(load_spec(args.config), args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"gvr pairs: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    kinds = {k: sum(s["kinds"][k] for s in manifest["shards"]) for k in ("flow", "model")}
    print(json.dumps({"out": args.out, "pairs": manifest["num_pairs"], "shards": len(manifest["shards"]), **kinds}))
