"""Build a JSON-lines video manifest with gvr.data.manifest.

    python data_prep/manifest.py --root data/samples --out data/manifests/train.jsonl --min-frames 17
        [--include GLOB ...] [--exclude GLOB ...]

Globs match paths relative to --root ('bikes*', 'clips/*.mp4'). Unreadable or too-short videos are
skipped with a warning naming the file and the reason.
"""

import argparse
import logging
import sys
from pathlib import Path

from gvr.data.manifest import scan_videos, write_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder searched recursively for videos")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (.jsonl)")
    parser.add_argument("--min-frames", type=int, default=17, help="skip videos with fewer decodable frames")
    glob = dict(action="append", default=[], metavar="GLOB")
    parser.add_argument("--include", **glob, help="keep only files matching one of these (repeatable)")
    parser.add_argument("--exclude", **glob, help="drop files matching any of these (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    records = scan_videos(args.root, args.min_frames, include=args.include, exclude=args.exclude)
    if not records:
        print(f"no usable video under {args.root}; nothing written", file=sys.stderr)
        return 1
    write_manifest(records, args.out)
    print(f"wrote {args.out}: {len(records)} videos, {sum(r['frames'] for r in records)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
