"""A test set that looks like what the cascade upscales: held-out clips degraded as the stage-2 pairs are made.

Each ground-truth clip (`gvr.data.heldout.read_source`: windows of held-out videos, camera-path clips over
held-out photos) gets one LR clip per *variant*, a `Degradation` with a fixed draw: typically the plain
antialiased bicubic downsample, the flow-based degradation, and the model-guided one (downsampled, encoded,
pushed to a fixed ``alpha`` and brought back by the base model, then decoded, as `gvr pairs` makes its
model-guided half). The ground truth is the original HR clip. Everything is written losslessly (FFV1) and
decoded back to check, so a score measures the upscaler alone (the LR frames are rounded to 8 bits once,
as any video file is)::

    testset.json            recipe, fingerprint (with the base checkpoint's SHA-256), clips, complete flag
    gt/<clip>.mkv           ground truth, uint8 RGB
    <variant>/<clip>.mkv    that variant's LR clip, 1 / scale of the ground truth per side

The draw of clip ``i`` under variant ``v`` is seeded by ``(seed, i, crc32(v))``: adding a variant changes
no other variant's clips. A finished folder is reused when its recipe matches and refused when it does not.
``gvr testset --config configs/testset.yaml --out data/testset`` (``make testset``) builds one;
``benchmarks/quality.py --testset data/testset`` scores on every variant.
"""

import hashlib
import json
import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from gvr.data.degradations.degradation import Degradation
from gvr.data.heldout import ImageMotion, expand_sources, read_source
from gvr.data.video import frames_to_tensor, read_video, tensor_to_frames, write_video
from gvr.ops.config import parse_recipe
from gvr.ops.seeding import generator

log = logging.getLogger(__name__)

FORMAT = "gvr-testset/1"
MANIFEST = "testset.json"


class TestSetRecipe:
    """How a test set is made (the schema of ``configs/testset.yaml``).

    Args:
        sources: held-out videos, photos and ``.jsonl`` manifests of either (no training source).
        variants: name -> degradation of the HR clip to its LR size (e.g. ``bicubic``, ``flow``, ``model``).
            A model-guided variant should fix ``alpha`` (``alpha_range: [a, a]``) so every clip sees one level.
        scale: HR / LR side ratio; the crops are rounded down so that the LR side is whole.
        clips: clips per source.
        frames: frames per clip.
        crop: ground-truth crop (height, width), at most.
        image_motion: photos become camera-path clips ("camera") or one static clip ("static").
        seed: seed of the camera paths and of every degradation draw.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        sources: list[str],
        variants: dict[str, Degradation],
        scale: float = 2.5,
        clips: int = 3,
        frames: int = 9,
        crop: tuple[int, int] = (120, 120),
        image_motion: ImageMotion = "camera",
        seed: int = 0,
    ):
        if not variants:
            raise ValueError("TestSetRecipe: give at least one variant")
        bad = [name for name in variants if not name or "/" in name or name in ("gt", ".", "..")]
        if bad:
            raise ValueError(f"TestSetRecipe: variant names become folders; {bad} cannot (nor 'gt')")
        if scale <= 1 or clips < 1 or frames < 1:
            raise ValueError(f"TestSetRecipe: need scale > 1, clips >= 1 and frames >= 1, got {scale}, {clips}, {frames}")
        self.sources, self.variants, self.scale = list(sources), dict(variants), float(scale)
        self.clips, self.frames, self.crop, self.image_motion, self.seed = clips, frames, tuple(crop), image_motion, seed


@dataclass
class TestSetSpec:
    """A parsed recipe: the canonical config (defaults filled in, for the fingerprint) and its objects."""

    __test__ = False

    config: dict
    recipe: TestSetRecipe


@dataclass
class TestClip:
    """One ground-truth clip and its LR clip under each variant (uint8 (T, H, W, 3))."""

    __test__ = False

    name: str
    source: str
    tag: str
    fps: float
    gt: np.ndarray
    lr: dict[str, np.ndarray] = field(default_factory=dict)
    lr_paths: dict[str, Path] = field(default_factory=dict)


def load_spec(path: str | Path) -> TestSetSpec:
    """Parse a test-set YAML (``testset:`` with class_path / init_args variants) into a :class:`TestSetSpec`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"test-set config {path} not found")
    config, recipe = parse_recipe(path, "testset", TestSetRecipe)
    return TestSetSpec(config=config, recipe=recipe)


def fingerprint(spec: TestSetSpec) -> dict:
    """What the set depends on: the recipe and the weights of any base model a variant loads."""
    digests = {}
    for name, variant in spec.recipe.variants.items():
        loader = getattr(variant, "loader", None)
        if loader is not None and hasattr(loader, "digest"):
            digests[name] = loader.digest()
    identity = {"format": FORMAT, "config": spec.config, "base_ckpt_sha256": digests}
    identity["hash"] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return identity


def variant_generator(seed: int, index: int, variant: str) -> torch.Generator:
    """The generator of clip ``index`` under ``variant``: independent of the other variants' names."""
    return generator(seed, index, zlib.crc32(variant.encode()))


def degrade_clip(gt: np.ndarray, degradation: Degradation, scale: float, g: torch.Generator) -> np.ndarray:
    """uint8 GT frames (T, H, W, 3) -> the degradation at ``1 / scale`` per side, rounded to uint8."""
    size = (round(gt.shape[1] / scale), round(gt.shape[2] / scale))
    with torch.no_grad():
        lr = degradation(frames_to_tensor(gt), size, g)
    if tuple(lr.shape[-2:]) != size:
        raise ValueError(f"{type(degradation).__name__} returned LR frames of {tuple(lr.shape[-2:])}, expected {size}")
    return tensor_to_frames(lr)


def _write_lossless(path: Path, frames: np.ndarray, fps: float) -> None:
    """FFV1 file of exactly ``frames`` (written to a temporary name, decoded back, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    write_video(tmp, frames, fps, overwrite=True)
    if not np.array_equal(read_video(tmp)[0], frames):
        tmp.unlink()
        raise RuntimeError(f"{path} does not decode to the frames written: the clip is not lossless")
    os.replace(tmp, path)


def build_testset(spec: TestSetSpec, out: str | Path, progress: bool = True) -> dict:
    """Build the test set of ``spec`` in ``out`` (or reuse it when finished with this recipe); returns the manifest.

    A folder holding another recipe's set is refused; an unfinished one (interrupted) is rebuilt.
    """
    out = Path(out)
    identity = fingerprint(spec)
    path = out / MANIFEST
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is not None:
        if old.get("fingerprint", {}).get("hash") != identity["hash"]:
            raise ValueError(f"{out} holds a test set built with another recipe (sources, variants, crop or base "
                             "model differ); build into another folder or delete it first")
        if old.get("complete"):
            log.info("%s: the test set is complete, reused", out)
            return old
    recipe = spec.recipe
    sources = expand_sources(recipe.sources)
    if not sources:
        raise ValueError("TestSetRecipe: no sources")
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        raise FileNotFoundError(f"test-set source(s) not found: {', '.join(missing)} (`make data images`?)")
    manifest = {"fingerprint": identity, "scale": recipe.scale, "variants": list(recipe.variants), "complete": False,
                "clips": []}
    out.mkdir(parents=True, exist_ok=True)
    index = 0
    with tqdm(total=len(sources), unit="source", desc="test set", disable=not progress) as bar:
        for source in sources:
            for tag, gt, fps in read_source(source, recipe.clips, recipe.frames, recipe.crop, recipe.scale,
                                            recipe.image_motion, recipe.seed):
                name = f"{Path(source).stem}_{tag}"
                _write_lossless(out / "gt" / f"{name}.mkv", gt, fps)
                for variant, degradation in recipe.variants.items():
                    lr = degrade_clip(gt, degradation, recipe.scale, variant_generator(recipe.seed, index, variant))
                    _write_lossless(out / variant / f"{name}.mkv", lr, fps)
                manifest["clips"].append({"name": name, "source": source, "tag": tag, "fps": fps, "index": index,
                                          "gt_size": list(gt.shape[1:3]), "frames": len(gt)})
                index += 1
            bar.update(1)
    if len({c["name"] for c in manifest["clips"]}) != len(manifest["clips"]):
        raise ValueError("TestSetRecipe: two sources share a file stem; their clips would overwrite each other")
    manifest["complete"] = True
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return manifest


def read_testset(folder: str | Path, variants: Sequence[str] | None = None) -> tuple[dict, list[TestClip]]:
    """The manifest and clips of a finished test set, with the LR of ``variants`` (default: all of them)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no test set at {folder} ({MANIFEST} missing): run `make testset`")
    manifest = json.loads(path.read_text())
    if manifest.get("fingerprint", {}).get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} test set")
    if not manifest.get("complete"):
        raise ValueError(f"the test set at {folder} is unfinished: run `make testset` again")
    chosen = list(variants or manifest["variants"])
    unknown = [v for v in chosen if v not in manifest["variants"]]
    if unknown:
        raise ValueError(f"the test set at {folder} has no variant {', '.join(unknown)}; it has "
                         f"{', '.join(manifest['variants'])}")
    clips = []
    for row in manifest["clips"]:
        gt = read_video(folder / "gt" / f"{row['name']}.mkv")[0]
        clip = TestClip(row["name"], row["source"], row["tag"], row["fps"], gt)
        for variant in chosen:
            clip.lr_paths[variant] = folder / variant / f"{row['name']}.mkv"
            clip.lr[variant] = read_video(clip.lr_paths[variant])[0]
        clips.append(clip)
    return manifest, clips
