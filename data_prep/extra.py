"""Fetch more real training content from Debian's opencv-doc package: three camera videos and 19 photographs.

    python data_prep/extra.py --out data/extra --manifests data/manifests

Opt-in: the configs of today's figures do not read it; the `*_more.yaml` configs do (`make extra`). The
package is fetched with `apt-get download` (nothing is installed) and unpacked into a temporary folder; the
allow-listed files are copied to `<out>/opencv-doc/<file>` with their bytes unchanged (the two gzipped
tutorial videos are un-gzipped, which leaves their H.264 stream as packaged). Writes `<out>/manifest.jsonl`
(path, size, frames and fps of the videos, package, version, license, copyright, sha256, source),
`<out>/LICENSES.md` with the package's copyright file beside it, and two training manifests in `--manifests`:

- `train_more.jsonl`: the records of `train.jsonl` (`make manifests`) followed by the three videos;
- `images_train_more.jsonl`: the records of `images_train.jsonl` (`make images`) followed by the 19 photos.

Nothing is held out: the validation manifests stay those of `make manifests` and `make images`, and no
file here is a frame of the held-out clips. A rerun keeps files already present with the package's bytes
and does not download the package when every file is present and listed with its checksum; a different
file under the same name is never overwritten (reported; exit status 1).

The allow-list was chosen by looking at every frame sheet and image of the package: camera footage and
photographs only. Left out: tree.avi (Cinepak at 320x240, its coding blocks visible in every frame), the
Megamind clips (an animated film), the chessboards (left*/right*), renders, logos and drawings, the second
view of each stereo or near-duplicate pair (aloeR, leuvenB, graf3, rubberwhale2, ela_modified), the
grey-scale photos (basketball*, box_in_scene), the deliberately blurred ones (text_*, licenseplate_motion)
and a painting (starry_night).
"""

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep.images import fetch, import_package, license_for, package_stanzas, place, reuse, sha256, write_licenses  # noqa: E402
from gvr.data.manifest import read_manifest, write_manifest  # noqa: E402
from gvr.data.video import VideoError, probe_video  # noqa: E402

PACKAGE = "opencv-doc"
DATA = "usr/share/doc/opencv-doc/examples/data/{}"
HTML = "usr/share/doc/opencv-doc/opencv4/html/{}.mp4.gz"

# file name in <out>/opencv-doc/ -> (path inside the package, caption written by looking at the clip)
VIDEOS: dict[str, tuple[str, str]] = {
    "vtest.avi": (DATA.format("vtest.avi"),
                  "people walk across a car park and a lawn in front of a brick building, seen from a fixed camera"),
    "box.mp4": (HTML.format("box"), "a hand lifts and turns a decorated cardboard box above a white table cloth"),
    "cup.mp4": (HTML.format("cup"), "a hand turns a black plastic cup in front of a white wall"),
}
PHOTOS: dict[str, str] = {name: DATA.format(name) for name in (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
    "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "messi5.jpg",
    "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg")}

# Debian installs upstream's samples/data/ as examples/data/ and the tutorials' videos under opencv4/html/: the
# copyright file's patterns name upstream paths (`data/*` is upstream's top-level folder of cascades, not
# samples/data), so each file's license is looked up by its upstream path (`images.license_for`'s `upstream`).
UPSTREAM = {**{name: f"samples/data/{name}" for name in PHOTOS}, "vtest.avi": "samples/data/vtest.avi",
            "box.mp4": "doc/box.mp4", "cup.mp4": "doc/cup.mp4"}

BASES = {"train_more.jsonl": "train.jsonl", "images_train_more.jsonl": "images_train.jsonl"}


def unpacked(src: Path, folder: Path) -> Path:
    """`src` itself, or for a ``.gz`` file its contents written into `folder`."""
    if src.suffix != ".gz":
        return src
    target = folder / src.stem
    with gzip.open(src, "rb") as f, open(target, "wb") as g:
        shutil.copyfileobj(f, g)
    return target


def import_videos(package: str, version: str, root: Path, videos: dict[str, tuple[str, str]], out: Path
                  ) -> tuple[list[dict], list[str]]:
    """Copy the allow-listed `videos` of the package unpacked at `root` into `out/<package>/`.

    Returns the manifest records (the `gvr.data.manifest.scan_videos` fields plus caption, license and
    provenance) of the videos now in place and the messages of the ones that were not (missing from the
    package, undecodable, or blocked by a different file already there).
    """
    stanzas = package_stanzas(package, root, out)
    records, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (source, caption) in sorted(videos.items()):
            if not (root / source).is_file():
                problems.append(f"missing  {package}: {source} is not in the package")
                continue
            src, target = unpacked(root / source, Path(tmp)), out / package / name
            digest = sha256(src)
            if target.exists() and sha256(target) != digest:
                problems.append(f"CONFLICT {target} differs from {package}'s {source}; left untouched")
                continue
            try:
                info = probe_video(src)
            except VideoError as err:
                problems.append(f"unreadable {package}: {source}: {err}")
                continue
            place(src, target, f"{info.width}x{info.height}, {info.frames} frames")
            license, holder = license_for(stanzas, source, UPSTREAM.get(name))
            records.append({"path": str(target), "frames": info.frames, "fps": info.fps, "width": info.width,
                            "height": info.height, "caption": caption, "package": package, "version": version,
                            "license": license, "copyright": holder, "split": "train", "sha256": digest,
                            "source": source})
    return records, problems


def write_training_manifests(records: list[dict], manifests: Path) -> list[Path]:
    """`train_more.jsonl` and `images_train_more.jsonl` in `manifests`: each base manifest, then the new files."""
    written = []
    for name, base in BASES.items():
        mine = [r for r in records if ("frames" in r) == (name == "train_more.jsonl")]
        write_manifest(read_manifest(manifests / base) + mine, manifests / name)
        written.append(manifests / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/extra"), help="folder for the videos and photos")
    parser.add_argument("--manifests", type=Path, default=Path("data/manifests"),
                        help="folder of train.jsonl and images_train.jsonl; the *_more.jsonl manifests go there")
    args = parser.parse_args(argv)
    missing = [args.manifests / base for base in BASES.values() if not (args.manifests / base).is_file()]
    if missing:
        print(f"{', '.join(map(str, missing))} not found: run `make manifests images` first", file=sys.stderr)
        return 1
    start = time.monotonic()
    previous = args.out / "manifest.jsonl"
    known = {r["path"]: r for r in read_manifest(previous)} if previous.is_file() else {}
    records = reuse(PACKAGE, {**VIDEOS, **PHOTOS}, args.out, known)
    problems: list[str] = []
    if records is not None:
        print(f"present  {PACKAGE}: {len(records)} files (no download)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                root, version = fetch(PACKAGE, Path(tmp))
            except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as err:
                detail = getattr(err, "stderr", "") or err
                print(f"cannot download or unpack {PACKAGE} ({str(detail).strip()})", file=sys.stderr)
                return 1
            videos, problems = import_videos(PACKAGE, version, root, VIDEOS, args.out)
            photos, bad = import_package(PACKAGE, version, root, PHOTOS, args.out, frozenset(), UPSTREAM)
            records, problems = videos + photos, problems + bad
    for message in problems:
        print(message, file=sys.stderr)
    if not records:
        print("no file obtained; nothing written", file=sys.stderr)
        return 1
    write_manifest(records, args.out / "manifest.jsonl")
    write_licenses(records, args.out, "videos and photographs", "data_prep/extra.py")
    written = write_training_manifests(records, args.manifests)
    videos = [r for r in records if "frames" in r]
    print(f"{len(videos)} videos ({sum(r['frames'] for r in videos)} frames), {len(records) - len(videos)} photos, "
          f"{sum(Path(r['path']).stat().st_size for r in records) / 2**20:.0f} MiB, {time.monotonic() - start:.0f} s")
    print(f"wrote {args.out / 'manifest.jsonl'}, {args.out / 'LICENSES.md'}, {', '.join(map(str, written))}")
    return 1 if any(m.startswith("CONFLICT") for m in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
