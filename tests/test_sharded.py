"""Sharded training (gvr.lit.strategies.FSDP2Strategy): the same run as DDP, an EMA that no rank holds whole, sharded
checkpoints that resume exactly and gather into one file. Two gloo processes on CPU, the tiny model."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import tiny_cli_args

from gvr.commands.consolidate import main as strategies_main
from gvr.lit.checkpoints import load_gvr_module
from gvr.lit.flow_module import ema_copy, ema_update, read_network_weights
from gvr.lit.strategies import FSDP2Strategy, consolidate_checkpoint, shard_network
from gvr.models import SimpleGVR

TESTS = Path(__file__).resolve().parent
FSDP2 = '{"class_path": "gvr.lit.strategies.FSDP2Strategy", "init_args": {"param_dtype": "%s"}}'


def _fit(tiny_data, log_dir: Path, strategy: str, steps: int, *extra: str) -> dict[int, dict]:
    """`gvr fit` on two CPU processes under ``strategy``; returns each rank's `shard_probe.ShardProbe` record."""
    args = tiny_cli_args(
        tiny_data, log_dir, "--trainer.strategy", strategy, "--trainer.devices", "2",
        "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "1", "--trainer.gradient_clip_val", "0.05",
        "--model.codec", "shard_probe.WeightedPatchCodec", "--model.codec.spatial_factor", "2",
        "--trainer.callbacks+=shard_probe.ShardProbe", f"--trainer.callbacks.out={log_dir / 'probe'}",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(log_dir / "checkpoints"), "--trainer.callbacks.save_last", "true",
        "--trainer.callbacks.every_n_train_steps", "2", "--trainer.callbacks.save_top_k", "-1",
        "--trainer.callbacks.filename", "step{step}", *extra,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "gvr.cli", "fit", *args], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    return {r: json.loads((log_dir / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)}


def _losses(record: dict) -> dict[int, float]:
    return {int(step): loss for step, loss in record["losses"].items()}


@pytest.mark.slow
def test_fsdp2_matches_ddp_shards_the_ema_and_resumes(tiny_data, tmp_path):
    ddp = _fit(tiny_data, tmp_path / "ddp", "ddp", 4)
    fsdp = _fit(tiny_data, tmp_path / "fsdp", FSDP2 % "float32", 4)

    # 1. Same data, noise and numbers as DDP: the per-rank losses of all 4 steps agree.
    for rank in (0, 1):
        a, b = _losses(ddp[rank]), _losses(fsdp[rank])
        assert a.keys() == b.keys() == {1, 2, 3, 4}
        for step in a:
            assert b[step] == pytest.approx(a[step], abs=1e-5), (rank, step)

    # 2. Each rank holds half of the network and half of the EMA; under DDP each holds all of both.
    for rank in (0, 1):
        for name in ("backbone", "ema"):
            held = fsdp[rank]["held"][name]
            assert held["sharded"] and held["local"] <= held["total"] // 2 + 64, (rank, name, held)
            assert ddp[rank]["held"][name]["local"] == held["total"]
    assert sum(fsdp[r]["held"]["ema"]["local"] for r in (0, 1)) == fsdp[0]["held"]["ema"]["total"]

    # 3. The checkpoints are folders of one shard file per rank.
    last = tmp_path / "fsdp" / "checkpoints" / "last.ckpt"
    assert last.is_dir() and len(list(last.glob("*.distcp"))) == 2 and (last / "meta.pt").is_file()

    # 4. Stop at step 2 and resume from the sharded last.ckpt: steps 3 and 4 repeat the uninterrupted run.
    part = tmp_path / "part"
    _fit(tiny_data, part, FSDP2 % "float32", 2)
    resumed = _fit(tiny_data, part, FSDP2 % "float32", 4, "--ckpt_path", "last")
    for rank in (0, 1):
        assert _losses(resumed[rank]) == pytest.approx({k: v for k, v in _losses(fsdp[rank]).items() if k > 2}, abs=1e-6)

    # 5. Gathered into one file, the resumed run's weights and EMA are the uninterrupted run's, and DDP's up to
    #    float rounding (the clipped gradient norm is summed in another order); the file loads as a gvr module.
    full = consolidate_checkpoint(part / "checkpoints" / "last.ckpt", tmp_path / "gathered.ckpt")
    gathered = torch.load(full, weights_only=False)
    straight = torch.load(consolidate_checkpoint(last, tmp_path / "straight.ckpt"), weights_only=False)
    reference = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=False)
    assert gathered["global_step"] == reference["global_step"] == 4
    assert gathered["state_dict"].keys() == reference["state_dict"].keys()
    assert any(k.startswith("ema.") for k in gathered["state_dict"]) and not any(k.startswith("codec.") for k in gathered["state_dict"])
    for key, value in reference["state_dict"].items():
        torch.testing.assert_close(gathered["state_dict"][key], straight["state_dict"][key], rtol=0, atol=1e-7, msg=key)
        torch.testing.assert_close(gathered["state_dict"][key], value, rtol=0, atol=1e-5, msg=key)
    assert load_gvr_module(str(full)).hparams.scale == 2


@pytest.mark.slow
def test_fsdp2_bf16_params_and_checkpointing_match_ddp_bf16(tiny_data, tmp_path):
    extra = ("--trainer.precision", "bf16-mixed", "--model.backbone.gradient_checkpointing", "true")
    ddp = _fit(tiny_data, tmp_path / "ddp", "ddp", 3, *extra)
    fsdp = _fit(tiny_data, tmp_path / "fsdp", FSDP2 % "bfloat16", 3, *extra)
    for rank in (0, 1):
        assert _losses(fsdp[rank]) == pytest.approx(_losses(ddp[rank]), abs=1e-3)
        assert fsdp[rank]["held"]["ema"]["local"] < fsdp[rank]["held"]["ema"]["total"]


@pytest.fixture
def one_rank_group(tmp_path):
    """A gloo process group of one rank in this process (FSDP2's API needs a group, even of one)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


def test_shard_network_units_and_ema_update_on_shards(one_rank_group):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    mesh = init_device_mesh("cpu", (1,))
    torch.manual_seed(0)
    net = SimpleGVR(latent_channels=12, dim=32, depth=2, heads=2, upsampler_channels=8)
    ema = ema_copy(net, 0.5)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    for module in (net, ema):
        shard_network(module, mesh, torch.bfloat16)
    # Units: each DiTBlock, each module declared fp32 (own fp32 unit under bf16 params), and the network.
    assert all(isinstance(b, FSDPModule) for b in net.blocks) and isinstance(net, FSDPModule)
    assert isinstance(net.t_embedder, FSDPModule) and isinstance(net.blocks[0].spatial_attn.norm_q, FSDPModule)
    assert not isinstance(net.upsampler, FSDPModule)
    z, c = torch.randn(1, 12, 2, 8, 8), torch.randn(1, 12, 2, 4, 4)
    # A training forward returns a tensor of its own: FSDP2 warns of a view output (in-place ops on it would
    # skip the pre-backward all-gather).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cpu", torch.bfloat16):
            out = net(z, torch.rand(1), c, torch.rand(1))
        out.float().square().mean().backward()
    assert not [w for w in caught if "view" in str(w.message)], [str(w.message) for w in caught]
    net.zero_grad(set_to_none=True)
    # An inference forward leaves every parameter a shard (the root's too), so the EMA update stays shard-wise.
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        ema(z, torch.rand(1), c, torch.rand(1))
    assert all(isinstance(p, DTensor) for p in ema.parameters())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema_update(ema, net, step=1000, decay=0.5)  # ema <- (ema + net) / 2 = start + 0.5
    for name, p in ema.named_parameters():
        torch.testing.assert_close(p.full_tensor(), start[name] + 0.5, msg=name)


def test_strategy_arguments_and_consolidate_errors(tmp_path):
    with pytest.raises(ValueError, match="param_dtype"):
        FSDP2Strategy(param_dtype="float16")
    assert FSDP2Strategy(param_dtype="bfloat16").param_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="not a sharded checkpoint"):
        consolidate_checkpoint(tmp_path, tmp_path / "out.ckpt")
    with pytest.raises(SystemExit):  # the command line says it in one line, no traceback
        strategies_main([str(tmp_path), str(tmp_path / "out.ckpt")])
    mine = tmp_path / "mine.ckpt"
    mine.write_bytes(b"user data")
    with pytest.raises(SystemExit):
        strategies_main([str(tmp_path), str(mine)])
    assert mine.read_bytes() == b"user data"
    folder = tmp_path / "last.ckpt"  # what FSDP2Strategy saves: where one file is needed, say how to gather it
    folder.mkdir()
    torch.save({}, folder / "meta.pt")
    with pytest.raises(ValueError, match="gvr consolidate"):
        load_gvr_module(str(folder))
    with pytest.raises(ValueError, match="init_from: .* sharded checkpoint folder"):
        read_network_weights(str(folder), "backbone")
