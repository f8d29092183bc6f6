"""The stage-2 pair cache: HR latents with flow-degraded or model-guided LR latents, in safetensors shards.

Layout of a cache folder::

    manifest.json               recipe, fingerprint, codec, finished shards (with their SHA-256)
    shard-00000.safetensors     z (N, C, T, H, W), c (N, C, T, h, w), kind (N,) 0 flow / 1 model, index (N,)

Building is resumable: a rerun skips shards the manifest lists with a matching hash and recomputes the rest.
Shards are written to ``*.tmp`` and renamed, and the manifest is rewritten (atomically) after each one, so a
half-written shard is never listed, never read. A folder built from another recipe (another codec,
degradation, base model checkpoint, data) is refused with a clear error, by the builder and by the reader.
"""

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gvr.codecs.codec import LatentCodec
from gvr.data.dataset import VideoClipDataset
from gvr.data.degradations.degradation import BicubicDownsample, Degradation
from gvr.data.degradations.model_guided import ModelGuidedDegradation
from gvr.data.errors import MissingData
from gvr.data.manifest import read_manifest
from gvr.ops.config import parse_recipe
from gvr.ops.files import file_digest
from gvr.ops.seeding import generator

log = logging.getLogger(__name__)

FORMAT = "gvr-pairs/1"
KINDS = ("flow", "model")


class PairRecipe:
    """How the stage-2 pairs are made (the schema of ``configs/pairs.yaml``).

    Args:
        manifest: clip manifest of the source videos (``make manifests``).
        codec: the latent codec of the VSR model (and of the base model).
        flow: the pixel-space flow-based degradation, applied to HR frames before the downsample.
        model: the model-guided degradation (its base model); None makes flow pairs only.
        model_ratio: fraction of pairs made by the model-guided degradation.
        num_pairs: pairs in the cache.
        num_frames: pixel frames per clip.
        hr_size: HR crop (height, width).
        scale: HR size / LR size.
        size_multiple: HR and LR sizes are multiples of this (the codec's spatial factor).
        shard_size: pairs per shard file.
        seed: seed of the clips and of every degradation draw.
    """

    def __init__(
        self,
        manifest: str,
        codec: LatentCodec,
        flow: Degradation,
        model: ModelGuidedDegradation | None = None,
        model_ratio: float = 0.5,
        num_pairs: int = 512,
        num_frames: int = 3,
        hr_size: tuple[int, int] = (60, 60),
        scale: float = 2.5,
        size_multiple: int = 4,
        shard_size: int = 64,
        seed: int = 0,
    ):
        if not 0 <= model_ratio <= 1 or (model is None and model_ratio > 0):
            raise ValueError(f"PairRecipe: model_ratio must be in [0, 1] and 0 without a model, got {model_ratio}")
        if num_pairs < 1 or shard_size < 1:
            raise ValueError(f"PairRecipe: num_pairs and shard_size must be >= 1, got {num_pairs}, {shard_size}")
        self.manifest, self.codec, self.flow, self.model, self.model_ratio = manifest, codec, flow, model, model_ratio
        self.num_pairs, self.num_frames, self.hr_size, self.scale = num_pairs, num_frames, tuple(hr_size), scale
        self.size_multiple, self.shard_size, self.seed = size_multiple, shard_size, seed

    def clips(self) -> VideoClipDataset:
        """The HR clips (random crops of the manifest's videos); their ``lr`` is the clean bicubic downsample."""
        if not Path(self.manifest).is_file():
            raise MissingData(f"manifest {self.manifest} not found: run `make manifests`")
        return VideoClipDataset(read_manifest(self.manifest), self.num_frames, self.hr_size, self.scale,
                                BicubicDownsample(), self.size_multiple, train=True, length=self.num_pairs,
                                seed=self.seed)

    def kind_of(self, index: int) -> str:
        """Which degradation makes pair ``index`` (a seeded draw with probability ``model_ratio`` of 'model')."""
        u = torch.rand((), generator=generator(self.seed, index, 1))
        return "model" if float(u) < self.model_ratio else "flow"


@dataclass
class PairCacheSpec:
    """A parsed recipe: the canonical config (defaults filled in, for the fingerprint) and its objects."""

    config: dict
    recipe: PairRecipe


def load_spec(path: str | Path) -> PairCacheSpec:
    """Parse a pair-cache YAML (class_path / init_args entries) into a :class:`PairCacheSpec`."""
    config, recipe = parse_recipe(path, "pairs", PairRecipe)  # may start from another (``config: pairs.yaml``)
    return PairCacheSpec(config=config, recipe=recipe)


def fingerprint(spec: PairCacheSpec) -> dict:
    """What a cache's content depends on: the recipe, the codec's identity and the base model's weights."""
    model = spec.recipe.model
    loader = model.loader if model is not None else None
    identity = {
        "format": FORMAT,
        "config": spec.config,
        "codec": spec.recipe.codec.describe(),
        "base_ckpt_sha256": loader.digest() if loader is not None else None,
    }
    identity["hash"] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return identity


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


@torch.no_grad()
def make_pair(recipe: PairRecipe, clips: VideoClipDataset, index: int) -> dict:
    """Pair ``index``: HR latent ``z`` and degraded LR latent ``c`` (flow: pixels then encode; model: latent SDEdit),
    with the clip's ``caption``."""
    item = clips[index]
    hr = item["hr"]
    codec = recipe.codec
    z = codec.encode(hr[None])
    g = generator(recipe.seed, index, 2)
    kind = recipe.kind_of(index)
    if kind == "flow":
        c = codec.encode(recipe.flow(hr, clips.lr_size, g)[None])
    else:
        c = recipe.model.degrade_latent(codec.encode(item["lr"][None]), g)
    return {"z": z[0], "c": c[0], "kind": torch.tensor(KINDS.index(kind), dtype=torch.int8),
            "index": torch.tensor(index, dtype=torch.int64), "caption": item.get("caption", "")}


def build_pair_cache(spec: PairCacheSpec, out: str | Path, progress: bool = True) -> dict:
    """Build (or finish) the cache of ``spec`` in ``out``; returns the manifest. Refuses another recipe's folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    identity = fingerprint(spec)
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else None
    if manifest is not None and manifest.get("fingerprint", {}).get("hash") != identity["hash"]:
        raise ValueError(f"{out} holds a pair cache built with another recipe (codec, degradations, base model or "
                         "data differ); build into another folder or delete it first")
    recipe = spec.recipe
    if recipe.model is not None and recipe.model_ratio > 0 and recipe.model.codec.describe() != recipe.codec.describe():
        raise ValueError(f"the base model's codec {recipe.model.codec.describe()} differs from the recipe's codec "
                         f"{recipe.codec.describe()}: the cascade needs one latent space")
    shards = {s["file"]: s for s in (manifest or {}).get("shards", [])}
    manifest = {"fingerprint": identity, "num_pairs": recipe.num_pairs, "shard_size": recipe.shard_size,
                "complete": False, "shards": []}
    clips = recipe.clips()
    n_shards = math.ceil(recipe.num_pairs / recipe.shard_size)
    with tqdm(total=recipe.num_pairs, unit="pair", desc="pairs", disable=not progress) as bar:
        for k in range(n_shards):
            name, lo = _shard_name(k), k * recipe.shard_size
            hi = min(lo + recipe.shard_size, recipe.num_pairs)
            done = shards.get(name)
            if done is not None and (out / name).is_file() and file_digest(out / name) == done["sha256"]:
                manifest["shards"].append(done)  # finished in an earlier run
                bar.update(hi - lo)
                continue
            items = []
            for i in range(lo, hi):
                items.append(make_pair(recipe, clips, i))
                bar.update(1)
            tensors = {key: torch.stack([it[key] for it in items]).contiguous() for key in items[0] if key != "caption"}
            tmp = out / (name + ".tmp")
            # One metadata key: safetensors writes a metadata map in no fixed order, and shards are compared by hash.
            save_file(tensors, str(tmp), metadata={"gvr": f"{FORMAT} {identity['hash']}"})
            os.replace(tmp, out / name)
            counts = {kind: int((tensors["kind"] == j).sum()) for j, kind in enumerate(KINDS)}
            manifest["shards"].append({"file": name, "count": hi - lo, "sha256": file_digest(out / name), "kinds": counts,
                                       "captions": [it["caption"] for it in items]})
            _write_json(path, manifest)
    manifest["complete"] = True
    _write_json(path, manifest)
    return manifest


class PairCacheDataset(Dataset):
    """Reads a finished pair cache: items ``{"z", "c", "kind", "index", "caption"}`` as an endless shuffled stream.

    Index ``i`` of the stream is pair ``perm_e[i % n]`` with a permutation seeded by the epoch
    ``e = i // n``: every item is a pure function of its index, as :class:`gvr.data.sampler.StreamSampler`
    needs for exact resumes.

    Args:
        path: cache folder (``make pairs``).
        codec: the model's codec; a cache built with another codec is refused.
        length: items per epoch of the stream (default: the number of pairs).
        seed: seed of the per-epoch permutations.
    """

    def __init__(self, path: str | Path, codec: LatentCodec | None = None, length: int | None = None, seed: int = 0):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise MissingData(f"no pair cache at {self.path} (manifest.json missing): run `make pairs`")
        self.manifest = json.loads(manifest_path.read_text())
        if not self.manifest.get("complete"):
            raise ValueError(f"the pair cache at {self.path} is unfinished: run `make pairs` again to complete it")
        if codec is not None and self.manifest["fingerprint"]["codec"] != json.loads(json.dumps(codec.describe())):
            raise ValueError(f"the pair cache at {self.path} was built with codec {self.manifest['fingerprint']['codec']}, "
                             f"but the model uses {codec.describe()}: rebuild the cache with the model's codec")
        self.shards = self.manifest["shards"]
        self.offsets = [0]
        for shard in self.shards:
            self.offsets.append(self.offsets[-1] + shard["count"])
        self.num_pairs = self.offsets[-1]
        self.length, self.seed = length or self.num_pairs, seed
        self._loaded: dict[int, dict[str, Tensor]] = {}
        self._perm: tuple[int, Tensor] | None = None

    def __len__(self) -> int:
        return self.length

    def _shard(self, k: int) -> dict[str, Tensor]:
        if k not in self._loaded:
            self._loaded[k] = load_file(str(self.path / self.shards[k]["file"]))
        return self._loaded[k]

    def pair(self, j: int) -> dict:
        """Pair ``j`` of the cache, in build order."""
        if not 0 <= j < self.num_pairs:
            raise IndexError(j)
        k = next(k for k in range(len(self.shards)) if j < self.offsets[k + 1])
        shard, r = self._shard(k), j - self.offsets[k]
        captions = self.shards[k].get("captions") or [""] * self.shards[k]["count"]  # caches built before captions
        return {**{key: value[r] for key, value in shard.items()}, "caption": captions[r]}

    def __getitem__(self, index: int) -> dict:
        epoch, r = divmod(index, self.num_pairs)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, torch.randperm(self.num_pairs, generator=generator(self.seed, epoch)))
        return self.pair(int(self._perm[1][r]))
