"""The stage-2 pair cache: bit-exact round trip, resume, refusal of another recipe, training from it."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_cli_args

from gvr.cli import lightning_main
from gvr.codecs import PatchCodec
from gvr.data.pair_cache import PairCacheDataset, build_pair_cache, load_spec, make_pair


def _spec(tiny_data, base_ckpt, tmp_path, **overrides):
    recipe = {
        "manifest": tiny_data["train"],
        "codec": {"class_path": "gvr.codecs.PatchCodec", "init_args": {"spatial_factor": 2}},
        "flow": {"class_path": "gvr.data.degradations.FlowDegradation", "init_args": {"blur_block_size": 8}},
        "model": {"class_path": "gvr.data.degradations.ModelGuidedDegradation",
                  "init_args": {"base": {"class_path": "gvr.lit.BaseCheckpoint", "init_args": {"path": base_ckpt}},
                                "steps": 2}},
        "model_ratio": 0.5, "num_pairs": 6, "num_frames": 3, "hr_size": [24, 32], "scale": 2,
        "size_multiple": 4, "shard_size": 2, "seed": 0, **overrides,
    }
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump({"pairs": recipe}))
    return load_spec(path)


@pytest.fixture(scope="module")
def cache(tiny_data, tiny_base_ckpt, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pairs")
    spec = _spec(tiny_data, tiny_base_ckpt, tmp)
    manifest = build_pair_cache(spec, tmp / "cache", progress=False)
    return {"spec": spec, "dir": tmp / "cache", "manifest": manifest}


def test_cache_round_trips_bit_exactly(cache):
    spec, manifest = cache["spec"], cache["manifest"]
    assert manifest["complete"] and [s["count"] for s in manifest["shards"]] == [2, 2, 2]
    kinds = {k: sum(s["kinds"][k] for s in manifest["shards"]) for k in ("flow", "model")}
    assert kinds["flow"] + kinds["model"] == 6 and kinds["flow"] > 0 and kinds["model"] > 0
    data = PairCacheDataset(cache["dir"], PatchCodec(spatial_factor=2))
    clips = spec.recipe.clips()
    for j in range(6):
        fresh, stored = make_pair(spec.recipe, clips, j), data.pair(j)
        assert stored["z"].shape == (12, 3, 12, 16) and stored["c"].shape == (12, 3, 6, 8)
        for key in ("z", "c", "kind", "index"):
            assert torch.equal(fresh[key], stored[key]), (j, key)
        assert stored["caption"] == fresh["caption"] == clips[j]["caption"]
    captions = {data.pair(j)["caption"] for j in range(6)}
    assert captions <= {"a blocky texture slides to the right", ""}


def test_stream_is_a_pure_function_of_the_index(cache):
    a, b = PairCacheDataset(cache["dir"], length=10), PairCacheDataset(cache["dir"], length=10)
    order = [int(a[i]["index"]) for i in range(12)]
    assert sorted(order[:6]) == list(range(6)) and sorted(order[6:12]) == list(range(6))  # each epoch: a permutation
    assert [int(b[i]["index"]) for i in (11, 3, 7)] == [order[11], order[3], order[7]]


def test_rebuild_resumes_and_never_trusts_a_half_written_shard(cache, tiny_data, tiny_base_ckpt, tmp_path):
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(cache["dir"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    # Simulate a crash while writing the last shard: not in the manifest, a partial .tmp file left behind.
    manifest["shards"], manifest["complete"] = manifest["shards"][:2], False
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "shard-00002.safetensors").unlink()
    (folder / "shard-00002.safetensors.tmp").write_bytes(b"half")
    with pytest.raises(ValueError, match="unfinished"):
        PairCacheDataset(folder)
    kept = {name: (folder / name).stat().st_mtime_ns for name in ("shard-00000.safetensors", "shard-00001.safetensors")}
    rebuilt = build_pair_cache(_spec(tiny_data, tiny_base_ckpt, tmp_path), folder, progress=False)
    assert rebuilt["complete"] and rebuilt["shards"] == cache["manifest"]["shards"]  # same hashes: same bytes
    assert {name: (folder / name).stat().st_mtime_ns for name in kept} == kept  # finished shards were skipped


def test_another_recipe_or_codec_is_refused(cache, tiny_data, tiny_base_ckpt, tmp_path):
    with pytest.raises(ValueError, match="another recipe"):
        build_pair_cache(_spec(tiny_data, tiny_base_ckpt, tmp_path, model_ratio=0.25), cache["dir"], progress=False)
    with pytest.raises(ValueError, match="codec"):
        PairCacheDataset(cache["dir"], PatchCodec(spatial_factor=4))
    with pytest.raises(FileNotFoundError, match="make pairs"):
        PairCacheDataset(tmp_path / "nothing")


def test_stage2_trains_from_the_cache(cache, tiny_data, tiny_vsr_ckpt, tmp_path):
    cli = lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
        "--data.train_cache", str(cache["dir"]), "--model.init_from", tiny_vsr_ckpt)])
    assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    with pytest.raises(ValueError, match="scale"):
        lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path, "--trainer.max_steps", "1", "--data.scale", "4",
                                               "--data.train_cache", str(cache["dir"]))])


def test_init_from_loads_the_ema_weights_only(tiny_vsr_ckpt):
    from gvr.lit.flow_module import load_network_weights
    from gvr.models import SimpleGVR

    net = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8)
    assert load_network_weights(tiny_vsr_ckpt, "backbone", [net]) == "ema"
    state = torch.load(tiny_vsr_ckpt, weights_only=False)["state_dict"]
    for key, value in net.state_dict().items():
        assert torch.equal(value, state["ema." + key])
    with pytest.raises(ValueError, match="does not fit"):
        load_network_weights(tiny_vsr_ckpt, "backbone", [SimpleGVR(latent_channels=12, dim=64, depth=1, heads=2)])
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_network_weights(str(Path("missing.ckpt")), "backbone", [net])



def test_gvr_pairs_finishes_a_cache_and_refuses_another_recipe(cache, tiny_data, tiny_base_ckpt, tmp_path, capsys):
    """`gvr pairs` (what `make pairs` runs): a rerun on a finished cache keeps it and prints its summary."""
    import json
    import shutil

    from gvr.cli import main

    folder = tmp_path / "cache"
    shutil.copytree(cache["dir"], folder)
    config = cache["dir"].parent / "pairs.yaml"
    main(["pairs", "--config", str(config), "--out", str(folder)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pairs"] == 6 and summary["shards"] == 3 and summary["flow"] + summary["model"] == 6
    other = tmp_path / "other"
    other.mkdir()
    _spec(tiny_data, tiny_base_ckpt, other, model_ratio=0.25)  # writes other/pairs.yaml
    with pytest.raises(SystemExit) as exit_info:
        main(["pairs", "--config", str(other / "pairs.yaml"), "--out", str(folder)])
    assert exit_info.value.code == 1 and capsys.readouterr().err.startswith("gvr pairs: error:")
