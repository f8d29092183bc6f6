"""data_prep/extra.py: opencv-doc's videos and photos copied unchanged, licensed by upstream path, opt-in manifests."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from video_fixtures import make_video, smooth_frames

from data_prep import extra as extra_script
from data_prep import images as images_script
from gvr.data.dataset import VideoClipDataset
from gvr.data.degradations.degradation import BicubicDownsample
from gvr.data.manifest import read_manifest, write_manifest
from gvr.data.video import read_video

DOC = "usr/share/doc/opencv-doc"
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: OpenCV

Files: *
Copyright: 2000-2022, Intel Corporation
License: Apache-2.0 AND BSD-3-Clause

Files: data/*
Copyright: 2004, Cascade Authors
License: BSD-3-Clause
"""


@pytest.fixture
def package(tmp_path, monkeypatch) -> dict:
    """An unpacked fake opencv-doc (a plain and a gzipped video, two photos), the allow-lists pointed at it."""
    root = tmp_path / "unpacked"
    (root / DOC / "examples/data").mkdir(parents=True)
    (root / DOC / "opencv4/html").mkdir(parents=True)
    (root / DOC / "copyright").write_text(COPYRIGHT)
    make_video(root / DOC / "examples/data/walk.mp4", smooth_frames(20, 48, 64, seed=1))
    packed = make_video(tmp_path / "turn.mp4", smooth_frames(18, 48, 64, seed=2))
    with gzip.open(root / DOC / "opencv4/html/turn.mp4.gz", "wb") as f:
        f.write(packed.read_bytes())
    for i, name in enumerate(("a.png", "b.jpg")):
        pixels = np.random.default_rng(i).integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / DOC / "examples/data" / name)
    monkeypatch.setattr(extra_script, "VIDEOS", {"walk.mp4": (f"{DOC}/examples/data/walk.mp4", "people walk"),
                                                 "turn.mp4": (f"{DOC}/opencv4/html/turn.mp4.gz", "a hand turns")})
    monkeypatch.setattr(extra_script, "PHOTOS", {n: f"{DOC}/examples/data/{n}" for n in ("a.png", "b.jpg")})
    monkeypatch.setattr(extra_script, "UPSTREAM", {"walk.mp4": "samples/data/walk.mp4", "turn.mp4": "doc/turn.mp4",
                                                   "a.png": "samples/data/a.png", "b.jpg": "samples/data/b.jpg"})
    fetched = []

    def fetch(name, folder):
        fetched.append(name)
        return root, "4.6.0-1"

    monkeypatch.setattr(extra_script, "fetch", fetch)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    base_video = make_video(tmp_path / "base.mp4", smooth_frames(20, 48, 64, seed=3))
    write_manifest([{"path": str(base_video), "frames": 20, "fps": 24.0, "width": 64, "height": 48}],
                   manifests / "train.jsonl")
    write_manifest([{"path": "data/images/x.jpg", "width": 100, "height": 80}], manifests / "images_train.jsonl")
    return {"root": root, "packed": packed, "out": tmp_path / "extra", "manifests": manifests, "fetched": fetched}


def run(package) -> int:
    return extra_script.main(["--out", str(package["out"]), "--manifests", str(package["manifests"])])


def test_files_are_copied_unchanged_and_the_manifests_append_them_to_the_base_ones(package):
    assert run(package) == 0
    out, manifests = package["out"] / "opencv-doc", package["manifests"]
    assert (out / "turn.mp4").read_bytes() == package["packed"].read_bytes()  # un-gzipped, not re-encoded
    assert (out / "walk.mp4").read_bytes() == (package["root"] / DOC / "examples/data/walk.mp4").read_bytes()
    assert (out / "a.png").read_bytes() == (package["root"] / DOC / "examples/data/a.png").read_bytes()

    videos = read_manifest(manifests / "train_more.jsonl")
    assert [Path(r["path"]).name for r in videos] == ["base.mp4", "turn.mp4", "walk.mp4"]
    turn = videos[1]
    assert (turn["frames"], turn["width"], turn["height"], turn["caption"]) == (18, 64, 48, "a hand turns")
    assert read_video(turn["path"])[0].shape == (18, 48, 64, 3)
    photos = read_manifest(manifests / "images_train_more.jsonl")
    assert [Path(r["path"]).name for r in photos] == ["x.jpg", "a.png", "b.jpg"]
    assert (photos[1]["width"], photos[1]["height"], photos[1]["split"]) == (56, 40, "train")
    # The base manifests are untouched; the new videos make clips like any other.
    assert len(read_manifest(manifests / "train.jsonl")) == 1 and len(read_manifest(manifests / "images_train.jsonl")) == 1
    assert VideoClipDataset(videos, 5, (24, 32), 2, BicubicDownsample(), 4, length=8)[3]["hr"].shape == (3, 5, 24, 32)


def test_licenses_follow_the_upstream_path_not_a_suffix_of_the_installed_one(package):
    """Upstream's top-level data/* (the cascades) must not claim samples/data/*, installed as examples/data/*."""
    stanzas = images_script.parse_copyright(COPYRIGHT)
    installed = f"{DOC}/examples/data/a.png"
    assert images_script.license_for(stanzas, installed)[0] == "BSD-3-Clause"  # the suffix match would be wrong
    assert images_script.license_for(stanzas, installed, "samples/data/a.png") == ("Apache-2.0 AND BSD-3-Clause",
                                                                                 "2000-2022, Intel Corporation")
    assert images_script.license_for(stanzas, installed, "data/haarcascade.xml")[0] == "BSD-3-Clause"
    assert run(package) == 0
    records = read_manifest(package["out"] / "manifest.jsonl")
    assert {r["license"] for r in records} == {"Apache-2.0 AND BSD-3-Clause"} and len(records) == 4
    assert all(r["package"] == "opencv-doc" and r["version"] == "4.6.0-1" and len(r["sha256"]) == 64 for r in records)
    licenses = (package["out"] / "LICENSES.md").read_text()
    assert "`turn.mp4`: Apache-2.0 AND BSD-3-Clause, 2000-2022, Intel Corporation" in licenses
    assert (package["out"] / "licenses/opencv-doc.copyright").read_text() == COPYRIGHT


def test_a_rerun_skips_the_download_and_a_foreign_file_is_never_overwritten(package, capsys):
    assert run(package) == 0 and package["fetched"] == ["opencv-doc"]
    first = (package["manifests"] / "train_more.jsonl").read_text()
    assert run(package) == 0 and package["fetched"] == ["opencv-doc"]  # all present with their checksums
    assert "no download" in capsys.readouterr().out
    assert (package["manifests"] / "train_more.jsonl").read_text() == first

    mine = package["out"] / "opencv-doc/walk.mp4"
    mine.write_bytes(b"my own video")
    assert run(package) == 1
    assert mine.read_bytes() == b"my own video" and "CONFLICT" in capsys.readouterr().err
    kept = [json.loads(line)["path"] for line in (package["manifests"] / "train_more.jsonl").read_text().splitlines()]
    assert [Path(p).name for p in kept] == ["base.mp4", "turn.mp4"]


def test_it_refuses_to_run_before_the_base_manifests_exist(package, capsys):
    (package["manifests"] / "images_train.jsonl").unlink()
    assert run(package) == 1
    assert "images_train.jsonl not found: run `make manifests images` first" in capsys.readouterr().err
    assert package["fetched"] == [] and not package["out"].exists()


def test_the_allow_lists_have_an_upstream_path_for_every_file():
    names = set(extra_script.VIDEOS) | set(extra_script.PHOTOS)
    assert names == set(extra_script.UPSTREAM) and len(extra_script.VIDEOS) == 3 and len(extra_script.PHOTOS) == 19
