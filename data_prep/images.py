"""Fetch freely licensed natural photographs from Debian wallpaper packages, for training on stills.

    python data_prep/images.py --out data/images --manifests data/manifests

Each package of `PHOTOS` is fetched with `apt-get download` (nothing is installed) and unpacked with
`dpkg-deb -x` into a temporary folder; the allow-listed photographs are copied, unconverted, to
`<out>/<package>/<file>`. Writes `<out>/manifest.jsonl` (path, width, height, package, version, license,
copyright, split, sha256, source), `<out>/LICENSES.md` with each package's copyright file beside it
(`<out>/licenses/<package>.copyright`), and the dataset manifests `<manifests>/images_train.jsonl` and
`<manifests>/images_val.jsonl` that `gvr.data.image_clips.ImageClipDataset` reads.

A rerun keeps files already present with the package's bytes and does not download a package whose photos
are all present and listed with their checksum. A different file under the same name is never overwritten
(reported; exit status 1). A package that cannot be downloaded is skipped with a message, as long as some
photos were obtained.

The allow-list was chosen by looking at every image of the candidates: only photographs taken with a
camera. gnome-backgrounds (43), ukui-wallpapers, sway-backgrounds and desktop-base ship renders, vector art
and logos only, so they are not fetched; neither are the paintings and renders of the packages below.
"""

import argparse
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from gvr.data.manifest import read_manifest, write_manifest

PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"  # the one real file; other sizes are links to it
MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
LOMIRI = "usr/share/backgrounds/{}.jpg"

# package -> {file name in <out>/<package>/: path inside the package}
PHOTOS: dict[str, dict[str, str]] = {
    "plasma-workspace-wallpapers": {f"{name}.jpg": PLASMA.format(name) for name in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am")},
    "mate-backgrounds": {f"{name}.jpg": MATE.format(name) for name in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower")},
    "lomiri-wallpapers-16.04": {f"{name}.jpg": LOMIRI.format(name) for name in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")},
    "lomiri-wallpapers-20.04": {"Kleiber_by_Lukas_Baubkus.jpg": LOMIRI.format("Kleiber_by_Lukas_Baubkus")},
}

# Held out as the second validation set: a lake at dusk, a forest path, a dune, mountains, two dogs.
VAL = frozenset({
    "plasma-workspace-wallpapers/EveningGlow.jpg", "plasma-workspace-wallpapers/Path.jpg", "mate-backgrounds/Dune.jpg",
    "lomiri-wallpapers-16.04/picosdeeuropa_by_Aitzol_Berasategi.jpg",
    "lomiri-wallpapers-16.04/friends_by_Aitzol_Berasategi.jpg",
})

SUMMARIES = {  # what each license asks of someone who redistributes the photos or images derived from them
    "GPL-2+": "GNU GPL 2 or later: copy, modify and redistribute; derived works under the GPL, with their source",
    "CC-BY-4.0": "Creative Commons Attribution 4.0: any use, credit the author and link the license",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0: credit the author; adaptations under CC-BY-SA",
    "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0: credit the author; adaptations under CC-BY-SA",
    "CC0-1.0": "Creative Commons Zero: dedicated to the public domain, no conditions",
    "Apache-2.0 AND BSD-3-Clause": "Apache 2.0 and BSD 3-clause (OpenCV): any use; keep the copyright notices and terms",
}


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_copyright(text: str) -> list[dict]:
    """The ``Files`` stanzas of a machine-readable Debian copyright file: ``{"files", "copyright", "license"}``."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            holders = " ".join(fields.get("copyright", "").split())
            stanzas.append({"files": fields["files"].split(), "copyright": holders,
                            "license": fields["license"].split("\n")[0].strip()})
    return stanzas


def license_for(stanzas: list[dict], source: str, upstream: str | None = None) -> tuple[str, str]:
    """(license, copyright) of the installed file `source` (the last matching stanza wins, as in DEP-5).

    Patterns name files of the upstream tree ('nature/Dune.jpg', '16.04/x.jpg'), not installed paths: a
    pattern matches when it matches the end of `source`, or when its last part names the same file. Where
    the file's path in the upstream tree is known (`upstream`), a pattern must match that whole path instead
    (DEP-5's anchoring; ``*`` matches ``/`` too), so that a short pattern such as ``data/*`` cannot claim a
    file installed under some other ``.../data/`` folder.
    """
    found = ("unknown", "")
    for stanza in stanzas:
        for pattern in stanza["files"]:
            tail = pattern.rsplit("/", 1)[-1]
            if upstream is not None:
                hit = fnmatch.fnmatch(upstream, pattern)
            else:
                hit = fnmatch.fnmatch(source, "*" + pattern) or (not set("*?[") & set(tail) and tail == Path(source).name)
            if hit:
                found = (stanza["license"], stanza["copyright"])
    return found


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied); raises on files PIL cannot identify."""
    with Image.open(path) as im:
        w, h = im.size
        return (h, w) if im.getexif().get(0x0112) in (5, 6, 7, 8) else (w, h)


def package_stanzas(package: str, root: Path, out: Path) -> list[dict]:
    """The copyright stanzas of the package unpacked at `root` ([] without a copyright file); the file is
    copied to `out/licenses/<package>.copyright`."""
    doc = root / "usr/share/doc" / package / "copyright"
    if not doc.is_file():
        return []
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(doc, out / "licenses" / f"{package}.copyright")
    return parse_copyright(doc.read_text(encoding="utf-8", errors="replace"))


def import_package(package: str, version: str, root: Path, photos: dict[str, str], out: Path,
                   val: frozenset[str] = VAL, upstream: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """Copy the allow-listed `photos` of the package unpacked at `root` into `out/<package>/`.

    `val` names the held-out photos as ``<package>/<file name>``; `upstream` maps file names to their paths
    in the upstream tree, where the package installs them elsewhere (see `license_for`). Returns the manifest
    records of the photos now in place and the messages of the ones that were not (missing from the package,
    unreadable, or blocked by a different file already there).
    """
    stanzas = package_stanzas(package, root, out)
    records, problems = [], []
    for name, source in sorted(photos.items()):
        src, target = root / source, out / package / name
        key = f"{package}/{name}"
        if not src.is_file():
            problems.append(f"missing  {package}: {source} is not in the package")
            continue
        digest = sha256(src)
        if target.exists() and sha256(target) != digest:
            problems.append(f"CONFLICT {target} differs from {package}'s {source}; left untouched")
            continue
        try:
            width, height = image_size(src)
        except OSError as err:
            problems.append(f"unreadable {package}: {source}: {err}")
            continue
        place(src, target, f"{width}x{height}, {src.stat().st_size // 1024} KiB")
        license, holder = license_for(stanzas, source, (upstream or {}).get(name))
        records.append({"path": str(target), "width": width, "height": height, "package": package, "version": version,
                        "license": license, "copyright": holder, "split": "val" if key in val else "train",
                        "sha256": digest, "source": source})
    return records, problems


def place(src: Path, target: Path, detail: str) -> None:
    """Copy `src` to `target` (a ``.part`` file beside it, then a rename) unless it is there; print which."""
    if target.exists():
        print(f"present  {target}")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    shutil.copyfile(src, part)
    os.replace(part, target)
    print(f"wrote    {target} ({detail})")


def reuse(package: str, photos: dict[str, str], out: Path, known: dict[str, dict]) -> list[dict] | None:
    """The records of `package` from the previous manifest if all its photos are present and unchanged, else None."""
    records = []
    for name in sorted(photos):
        target = out / package / name
        record = known.get(str(target))
        if record is None or not target.is_file() or sha256(target) != record.get("sha256"):
            return None
        records.append(record)
    return records


def fetch(package: str, folder: Path) -> tuple[Path, str]:
    """Download `package`'s .deb into `folder` with apt-get, unpack it; (unpacked root, version)."""
    subprocess.run(["apt-get", "download", package], cwd=folder, check=True, capture_output=True, text=True)
    (deb,) = folder.glob(f"{package}_*.deb")
    field = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True)
    version = field.stdout.strip()
    root = folder / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    deb.unlink()
    return root, version


def write_outputs(records: list[dict], out: Path, manifests: Path) -> None:
    """manifest.jsonl and LICENSES.md in `out`; images_train.jsonl and images_val.jsonl in `manifests`."""
    write_manifest(records, out / "manifest.jsonl")
    for split in ("train", "val"):
        write_manifest([r for r in records if r["split"] == split], manifests / f"images_{split}.jsonl")
    write_licenses(records, out, "photographs", "data_prep/images.py")


def write_licenses(records: list[dict], out: Path, what: str, script: str) -> None:
    """`out`/LICENSES.md: each package's license and copyright holders for every file of `records`."""
    lines = [f"# Licenses of the {what} in this folder", "",
             f"Copied from Debian packages by {script}; each package's copyright file is in",
             "licenses/. Attribute the authors below when you redistribute the files or anything derived from them.", ""]
    used = sorted({r["license"] for r in records})
    lines += ["Licenses in use:", ""]
    lines += [f"- {name}: {SUMMARIES.get(name, 'see the copyright file')}" for name in used] + [""]
    for package in sorted({r["package"] for r in records}):
        mine = [r for r in records if r["package"] == package]
        terms = f"licenses/{package}.copyright"
        lines += [f"## {package} {mine[0]['version']}", "", f"Full terms: [{terms}]({terms})", ""]
        lines += [f"- `{Path(r['path']).name}`: {r['license']}, {r['copyright'] or 'see the copyright file'}"
                  for r in mine]
        lines.append("")
    (out / "LICENSES.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/images"), help="folder for the photos")
    parser.add_argument("--manifests", type=Path, default=Path("data/manifests"),
                        help="folder for images_train.jsonl and images_val.jsonl")
    args = parser.parse_args(argv)
    start = time.monotonic()
    previous = args.out / "manifest.jsonl"
    known = {r["path"]: r for r in read_manifest(previous)} if previous.is_file() else {}
    records, problems, fetched = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for package, photos in PHOTOS.items():
            previous = reuse(package, photos, args.out, known)
            if previous is not None:
                print(f"present  {package}: {len(previous)} photos (no download)")
                records += previous
                continue
            try:
                root, version = fetch(package, Path(tmp))
            except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as err:
                detail = getattr(err, "stderr", "") or err
                problems.append(f"skipped  {package}: cannot download or unpack it ({str(detail).strip()})")
                continue
            fetched.append(f"{package} {version}")
            got, bad = import_package(package, version, root, photos, args.out)
            records, problems = records + got, problems + bad
            shutil.rmtree(root)
    for message in problems:
        print(message, file=sys.stderr)
    if not records:
        print("no photographs obtained; nothing written", file=sys.stderr)
        return 1
    write_outputs(records, args.out, args.manifests)
    sizes = sorted(min(r["width"], r["height"]) for r in records)
    disk = sum(Path(r["path"]).stat().st_size for r in records)
    print(f"fetched {', '.join(fetched) or 'nothing (all present)'}")
    print(f"{len(records)} photos ({sum(r['split'] == 'train' for r in records)} train, "
          f"{sum(r['split'] == 'val' for r in records)} val), short side {sizes[0]}-{sizes[-1]} px "
          f"(median {sizes[len(sizes) // 2]}), {disk / 2**20:.0f} MiB, {time.monotonic() - start:.0f} s")
    print(f"wrote {args.out / 'manifest.jsonl'}, {args.out / 'LICENSES.md'}, "
          f"{args.manifests / 'images_train.jsonl'}, {args.manifests / 'images_val.jsonl'}")
    return 1 if any(m.startswith("CONFLICT") for m in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
