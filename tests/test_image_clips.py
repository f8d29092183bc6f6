"""Photo clips (a camera path over a still), their mixing into the training stream, and data_prep/images.py."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from data_prep import images as images_script
from gvr.data.datamodule import VideoDataModule
from gvr.data.dataset import VideoClipDataset
from gvr.data.degradations.degradation import BicubicDownsample
from gvr.data.image_clips import ImageClipDataset, MixedClipDataset, PhotoCamera, PhotoClips
from gvr.data.manifest import read_manifest, write_manifest


def photo(path: Path, h: int = 120, w: int = 160, seed: int = 0) -> dict:
    """A smooth random colour texture (bicubic-upsampled noise) saved losslessly; its manifest record."""
    noise = np.random.default_rng(seed).integers(0, 256, size=(h // 8, w // 8, 3)).astype(np.float32)
    image = np.clip(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path)
    return {"path": str(path), "width": w, "height": h}


@pytest.fixture
def photos(tmp_path) -> list[dict]:
    return [photo(tmp_path / f"p{i}.png", seed=i) for i in range(3)]


def clips(records, **kw) -> ImageClipDataset:
    args = dict(num_frames=5, hr_size=(24, 32), scale=2, degradation=BicubicDownsample(), size_multiple=4, length=64,
                seed=3, short_side=(60, 100))
    return ImageClipDataset(records, **{**args, **kw})


def test_items_have_the_video_contract_and_are_functions_of_seed_and_index(photos, tiny_data):
    ds = clips(photos)
    item = ds[5]
    video = VideoClipDataset(read_manifest(tiny_data["train"]), 5, (24, 32), 2, BicubicDownsample(), 4)[0]
    assert item.keys() == video.keys() and item["start"] == 0 and item["caption"] == "" and item["index"] == 5
    assert item["hr"].shape == (3, 5, 24, 32) and item["lr"].shape == (3, 5, 12, 16)
    assert item["hr"].dtype == torch.float32
    assert item["hr"].abs().max() <= 1 and item["hr"].std() > 0.05
    again = clips(photos)[5]  # another worker, a resumed run
    assert torch.equal(item["hr"], again["hr"]) and torch.equal(item["lr"], again["lr"])
    assert not torch.equal(ds[6]["hr"], item["hr"]) and not torch.equal(clips(photos, seed=4)[5]["hr"], item["hr"])
    assert ds[10_000]["hr"].shape == (3, 5, 24, 32)  # an endless stream


def test_a_pure_pan_shifts_each_frame_by_the_paths_step(photos):
    ds = clips(photos, max_zoom=0.0, max_rotation=0.0, max_shift=2.5, short_side=(10_000, 10_000))  # photo pixels 1:1
    for index in range(6):
        path = ds.camera_path(index)
        step = np.diff(path.centres, axis=0)
        assert np.allclose(step, step[0]) and np.allclose(path.scales, 1) and np.abs(step[0]).max() <= 2.5
        frames = ((ds[index]["hr"].permute(1, 2, 3, 0).numpy() + 1) * 127.5).astype(np.float32)
        dx, dy = step[0] * [-1 if path.flip else 1, 1]
        b = 3 + int(np.ceil(np.abs(step[0]).max()))

        def error(k: int, dx: float, dy: float) -> float:
            """Mean |frame k+1 (x, y) - frame k (x + dx, y + dy)| (0-255) away from the borders."""
            moved = cv2.warpAffine(frames[k], np.float32([[1, 0, dx], [0, 1, dy]]), (32, 24),
                                   flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
            return float(np.abs(moved - frames[k + 1])[b:-b, b:-b].mean())

        for k in range(len(frames) - 1):
            err = error(k, dx, dy)
            assert err < 2 and err < 0.5 * error(k, dx + 0.5, dy), (index, k, err)  # 2x better than 0.5 px off
            assert np.abs(frames[k + 1] - frames[k]).mean() < 40  # consecutive frames stay close


def test_without_motion_every_frame_is_the_same(photos):
    item = clips(photos, max_shift=0.0, max_zoom=0.0, max_rotation=0.0)[2]
    assert all(torch.equal(item["hr"][:, 0], item["hr"][:, k]) for k in range(1, 5))


def test_zoom_and_roll_stay_smooth(photos):
    ds = clips(photos, max_zoom=0.02, max_rotation=0.5, easing="ease_in_out", num_frames=9)
    path = ds.camera_path(1)
    assert (path.scales >= 1).all() and np.abs(np.diff(np.log(path.scales))).max() <= 0.02 * 1.5 + 1e-9
    assert np.abs(np.diff(path.angles)).max() <= 0.5 * 1.5 + 1e-9
    hr, other = ds[1]["hr"], ds[2]["hr"]
    assert float((hr[:, 1:] - hr[:, :-1]).abs().mean()) < 0.5 * float((hr - other).abs().mean())  # unlike another clip


def test_zooming_out_does_not_alias(tmp_path):
    board = (np.indices((400, 400)).sum(0) % 2 * 255).astype(np.uint8)  # 1-pixel checkerboard: pure Nyquist
    Image.fromarray(np.stack([board] * 3, -1)).save(tmp_path / "board.png")
    ds = clips([{"path": str(tmp_path / "board.png")}], short_side=(160, 160))  # the photo shrinks 2.5x
    hr = ds[0]["hr"]
    assert hr.mean().abs() < 0.05 and hr.std() < 0.08  # uniform grey, not moiré


def test_clips_are_steered_towards_detail(tmp_path):
    half = np.full((120, 160, 3), 128, np.uint8)
    half[:, 80:] = np.random.default_rng(0).integers(0, 256, (120, 80, 3))  # flat left half, noisy right half
    Image.fromarray(half).save(tmp_path / "half.png")
    records = [{"path": str(tmp_path / "half.png")}]
    on_detail = {}
    for tries in (1, 6):
        ds = clips(records, detail_tries=tries, short_side=(120, 120), hr_size=(24, 24))
        on_detail[tries] = np.mean([ds.camera_path(i).centres[0, 0] > 80 for i in range(200)])
    assert 0.35 < on_detail[1] < 0.65 and on_detail[6] > 0.9


def test_evaluation_clips_are_fixed(photos):
    ds = clips(photos, train=False, clips_per_image=2)
    assert len(ds) == 6 and [ds.camera_path(i).image for i in range(6)] == [0, 0, 1, 1, 2, 2]
    assert not any(ds.camera_path(i).flip for i in range(6))
    assert torch.equal(ds[3]["hr"], clips(photos, train=False, clips_per_image=2)[3]["hr"])
    assert ds[3]["path"] == photos[1]["path"]
    with pytest.raises(IndexError):
        ds[6]


def test_unreadable_or_small_photos_are_skipped_with_a_log(photos, tmp_path, caplog):
    Image.fromarray(np.zeros((200, 300, 3), np.uint8) + 100).save(tmp_path / "cut.jpg", quality=95)
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    photo(tmp_path / "tiny.png", 16, 16)
    extra = [{"path": str(tmp_path / name)} for name in ("cut.jpg", "junk.jpg", "tiny.png", "gone.jpg")]
    ds = clips([photos[0], *extra])
    assert [r["path"] for r in ds.records] == [photos[0]["path"]]
    for name in ("cut.jpg", "junk.jpg", "tiny.png", "gone.jpg"):
        assert f"skipping photo {tmp_path / name}" in caplog.text
    with pytest.raises(ValueError, match="no usable photo"):
        clips(extra)


class Source(torch.utils.data.Dataset):
    def __init__(self, name: str):
        self.name = name

    def __len__(self) -> int:
        return 100

    def __getitem__(self, index: int) -> dict:
        return {"source": self.name, "index": index}


def test_mixing_follows_the_ratio_and_depends_on_the_index_only():
    mixed = MixedClipDataset(Source("video"), Source("image"), 0.3, seed=1)
    assert len(mixed) == 100
    picks = [mixed.is_image(i) for i in range(4000)]
    assert abs(np.mean(picks) - 0.3) < 0.03
    assert [mixed.is_image(i) for i in reversed(range(4000))][::-1] == picks  # order of access is irrelevant
    assert [MixedClipDataset(Source("v"), Source("i"), 0.3, seed=1).is_image(i) for i in range(50)] == picks[:50]
    assert [MixedClipDataset(Source("v"), Source("i"), 0.3, seed=2).is_image(i) for i in range(50)] != picks[:50]
    assert mixed[7] == {"source": "image" if picks[7] else "video", "index": 7}
    assert not any(MixedClipDataset(Source("v"), Source("i"), 0.0).is_image(i) for i in range(200))
    with pytest.raises(ValueError, match="image_ratio"):
        MixedClipDataset(Source("v"), Source("i"), 1.5)


def test_datamodule_mixes_photos_into_training_and_validation(tiny_data, photos, tmp_path):
    write_manifest(photos[:2], tmp_path / "train.jsonl")
    write_manifest(photos[2:], tmp_path / "val.jsonl")
    args = dict(scale=2, num_frames=3, hr_size=(24, 32), size_multiple=4, batch_size=4, num_workers=0,
                samples_per_epoch=16, val_clips_per_video=1,
                photos=PhotoClips(str(tmp_path / "train.jsonl"), 0.5, str(tmp_path / "val.jsonl"), val_clips=2,
                                  camera=PhotoCamera(short_side=(60, 100))))
    dm = VideoDataModule(tiny_data["train"], tiny_data["val"], **args)
    paths = []
    for batch in dm.train_dataloader():
        assert batch["hr"].shape == (4, 3, 3, 24, 32) and batch["lr"].shape == (4, 3, 3, 12, 16)
        paths += batch["path"]
    from_photos = sum(p in {r["path"] for r in photos} for p in paths)
    assert len(paths) == 16 and 0 < from_photos < 16
    resumed = VideoDataModule(tiny_data["train"], tiny_data["val"], **args).train_dataloader().dataset
    assert torch.equal(resumed[11]["hr"], dm.train_dataloader().dataset[11]["hr"])
    val = dm.val_dataloader()
    assert len(val.dataset) == 1 + 2 and [b["hr"].shape[0] for b in val] == [3]
    assert [p for b in val for p in b["path"]][1:] == [photos[2]["path"]] * 2


def test_datamodule_names_make_images_when_the_photos_are_missing(tiny_data, tmp_path):
    args = dict(num_frames=3, hr_size=(24, 32), size_multiple=4, num_workers=0)
    with pytest.raises(FileNotFoundError, match="make images"):
        photos = PhotoClips(train=str(tmp_path / "none.jsonl"), ratio=0.5)
        VideoDataModule(tiny_data["train"], photos=photos, **args).train_dataloader()
    with pytest.raises(ValueError, match="data.photos.train is not set.*make images"):
        VideoDataModule(tiny_data["train"], photos=PhotoClips(ratio=0.5), **args).train_dataloader()
    with pytest.raises(ValueError, match="data.photos.ratio"):
        PhotoClips(ratio=2.0)


def test_the_photo_options_parse_from_a_config_and_the_command_line(capsys):
    """`data.photos` in YAML and ``--data.photos.camera.max_shift`` on the command line, as the CLI builds them."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(VideoDataModule, "data")
    cfg = parser.parse_args(["--data.photos", '{"train": "t.jsonl", "ratio": 0.25, "val_clips": 3}',
                             "--data.photos.camera.max_shift", "2"])
    dm = parser.instantiate_classes(cfg).data
    assert isinstance(dm.photos, PhotoClips) and isinstance(dm.photos.camera, PhotoCamera)
    assert (dm.photos.train, dm.photos.ratio, dm.photos.val_clips, dm.photos.camera.max_shift) == ("t.jsonl", 0.25, 3, 2.0)
    assert dm.photos.camera.max_zoom == PhotoCamera().max_zoom
    assert VideoDataModule().photos == PhotoClips()  # no photos: videos only


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Somebody
License: GPL-2+

Files: art/b.png
Copyright: 2021, A. Photographer
           2022, B. Editor
License: CC-BY-4.0

Files: debian/*
Copyright: 2023 Packager
License: Expat
"""


def test_prep_copies_photos_writes_manifests_licenses_and_is_idempotent(tmp_path, capsys):
    root, out, manifests = tmp_path / "unpacked", tmp_path / "images", tmp_path / "manifests"
    (root / "usr/share/backgrounds").mkdir(parents=True)
    (root / "usr/share/doc/fakepkg").mkdir(parents=True)
    (root / "usr/share/doc/fakepkg/copyright").write_text(COPYRIGHT)
    photo(root / "usr/share/backgrounds/a.png", 60, 80, 1)
    photo(root / "usr/share/backgrounds/b.png", 90, 70, 2)
    wanted = {"a.png": "usr/share/backgrounds/a.png", "b.png": "usr/share/backgrounds/b.png",
              "c.png": "usr/share/none.png"}
    held_out = frozenset({"fakepkg/b.png"})

    records, problems = images_script.import_package("fakepkg", "1.0-1", root, wanted, out, held_out)
    assert [(Path(r["path"]).name, r["width"], r["height"], r["license"], r["split"]) for r in records] == [
        ("a.png", 80, 60, "GPL-2+", "train"), ("b.png", 70, 90, "CC-BY-4.0", "val")]
    assert records[1]["copyright"] == "2021, A. Photographer 2022, B. Editor" and records[0]["version"] == "1.0-1"
    assert problems == ["missing  fakepkg: usr/share/none.png is not in the package"]
    images_script.write_outputs(records, out, manifests)
    val = [json.loads(line)["path"] for line in (manifests / "images_val.jsonl").read_text().splitlines()]
    assert val == [records[1]["path"]] and len(read_manifest(out / "manifest.jsonl")) == 2
    assert (out / "licenses/fakepkg.copyright").read_text() == COPYRIGHT
    licenses = (out / "LICENSES.md").read_text()
    assert "## fakepkg 1.0-1" in licenses and "`b.png`: CC-BY-4.0, 2021, A. Photographer" in licenses
    assert clips(read_manifest(manifests / "images_train.jsonl"), hr_size=(24, 32))[0]["hr"].shape == (3, 5, 24, 32)

    # A rerun keeps what is there; the previous manifest lets it skip the download.
    capsys.readouterr()
    again, _ = images_script.import_package("fakepkg", "1.0-1", root, wanted, out, held_out)
    assert again == records and capsys.readouterr().out.count("present") == 2
    known = {r["path"]: r for r in read_manifest(out / "manifest.jsonl")}
    del wanted["c.png"]
    assert images_script.reuse("fakepkg", wanted, out, known) == records

    # A different file under a photo's name is reported, never overwritten.
    (out / "fakepkg/a.png").write_bytes(b"mine")
    assert images_script.reuse("fakepkg", wanted, out, known) is None
    kept, problems = images_script.import_package("fakepkg", "1.0-1", root, wanted, out)
    assert [Path(r["path"]).name for r in kept] == ["b.png"] and problems[0].startswith("CONFLICT")
    assert (out / "fakepkg/a.png").read_bytes() == b"mine"


def test_the_allow_list_holds_out_photos_it_lists():
    listed = {f"{package}/{name}" for package, photos in images_script.PHOTOS.items() for name in photos}
    assert images_script.VAL <= listed and 4 <= len(images_script.VAL) <= 6 and 20 <= len(listed) <= 60


def test_the_photo_camera_of_the_data_module_is_the_datasets_own_defaults():
    """`VideoDataModule.photos.camera` (a `PhotoCamera`) passes ImageClipDataset's camera arguments, defaults included."""
    import inspect
    from dataclasses import asdict

    params = inspect.signature(ImageClipDataset.__init__).parameters
    assert {k: params[k].default for k in asdict(PhotoCamera())} == asdict(PhotoCamera())
