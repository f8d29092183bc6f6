"""Prep step 4: write the kept clips as WebDataset tar shards (OUT/shards), with HR latents when a codec is configured.

    python data_prep/prep_shard.py --out DIR [--config configs/prep.yaml] [--workers N]

Resumable: finished shards (listed in OUT/shards/index.json with their hash) are kept. Shards of another
recipe (other kept clips, size, windows or codec) are refused; use another OUT or delete OUT/shards.
"""

import json
import sys

from gvr.prep.cli import step_main
from gvr.prep.steps import run_shard


def main(argv: list[str] | None = None) -> int:
    def run(args, prep) -> str:
        index = run_shard(args.out, prep, args.workers)
        samples = sum(s["count"] for s in index["shards"].values())
        return json.dumps({"step": "shard", "out": str(args.out / "shards"), "shards": len(index["shards"]),
                           "new": index["new"], "samples": samples, "latents": index["latent_shape"]})

    return step_main("shard", __doc__, run, argv, after="prep_filter.py")


if __name__ == "__main__":
    sys.exit(main())
