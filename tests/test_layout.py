"""The house plan: the import contract holds, and checkpoints written before the move load and upscale alike."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_import_contract_holds():
    """`lint-imports` (setup.cfg [importlinter]): every layer imports only from the layers below it."""
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 kept, 0 broken" in run.stdout


def _old_paths(value, inverse):
    if isinstance(value, dict):
        return {k: _old_paths(v, inverse) for k, v in value.items()}
    if isinstance(value, list):
        return [_old_paths(v, inverse) for v in value]
    if isinstance(value, str) and value.startswith("gvr."):
        module, _, name = value.rpartition(".")
        return f"{inverse.get(module, module)}.{name}"
    return value


def test_a_checkpoint_with_the_old_class_paths_loads_and_upscales_identically(tiny_vsr_ckpt, tmp_path):
    from gvr.lit.checkpoints import MOVED_MODULES, load_gvr_module

    ckpt = torch.load(tiny_vsr_ckpt, map_location="cpu", weights_only=False)
    # The config as `gvr fit` stores it, in subclass mode (`--model gvr.lit.vsr_module.VSRModule`) and with the
    # networks named by their modules, then every path spelled as before the move.
    hp = dict(ckpt["hyper_parameters"], _class_path="gvr.lit.vsr_module.VSRModule")
    hp["backbone"] = dict(hp["backbone"], class_path="gvr.models.dit.SimpleGVR")
    inverse = {new: old for old, new in MOVED_MODULES.items()}
    old = dict(ckpt, hyper_parameters=_old_paths(hp, inverse))
    old["hyper_parameters"].pop("train_frames")  # not a hyper-parameter before the move: read from the data
    assert old["hyper_parameters"]["_class_path"] == "gvr.module.VSRModule"
    torch.save(old, tmp_path / "old.ckpt")

    new_module, old_module = load_gvr_module(tiny_vsr_ckpt), load_gvr_module(str(tmp_path / "old.ckpt"))
    assert old_module.hparams.train_frames == new_module.hparams.train_frames == ckpt["datamodule_hyper_parameters"]["num_frames"]
    lr = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a = new_module.upscale_clip(lr, (32, 32), steps=2, seed=0)
    b = old_module.upscale_clip(lr, (32, 32), steps=2, seed=0)
    assert torch.equal(a, b)


def _flat_objective(hp: dict) -> dict:
    """``hp`` as written before ``model.objective``: the objective's arguments flat among the module's."""
    hp = dict(hp)
    spec = hp.pop("objective")
    assert spec["class_path"].endswith("FlowObjective")
    return {**hp, **spec["init_args"]}


def test_a_checkpoint_with_flat_objective_arguments_loads_and_upscales_identically(tiny_data, tiny_vsr_ckpt, tmp_path):
    """A checkpoint written while VSRModule took ``source``, ``s_range``, ``sample_steps``... itself (before
    ``model.objective``) loads through the module, the pipeline and ``--ckpt_path`` with the same objective."""
    from conftest import tiny_cli_args

    from gvr.cli import lightning_main
    from gvr.lit.checkpoints import load_gvr_module
    from gvr.pipeline import load_pipeline

    ckpt = torch.load(tiny_vsr_ckpt, map_location="cpu", weights_only=False)
    old = dict(ckpt, hyper_parameters=_flat_objective(ckpt["hyper_parameters"]))
    assert "objective" not in old["hyper_parameters"] and old["hyper_parameters"]["sample_steps"] == 2
    torch.save(old, tmp_path / "old.ckpt")

    new_module, old_module = load_gvr_module(tiny_vsr_ckpt), load_gvr_module(str(tmp_path / "old.ckpt"))
    assert vars(old_module.objective).keys() == vars(new_module.objective).keys()
    assert old_module.objective.sample_steps == new_module.objective.sample_steps == 2
    assert vars(old_module.objective.source) == vars(new_module.objective.source)
    lr = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a = new_module.upscale_clip(lr, (32, 32), seed=0)
    assert torch.equal(a, old_module.upscale_clip(lr, (32, 32), seed=0))
    with torch.no_grad():
        assert torch.equal(a, load_pipeline(str(tmp_path / "old.ckpt")).upscale_clip(lr, (32, 32), seed=0))
    cli = lightning_main(["validate", *tiny_cli_args(tiny_data, tmp_path, "--trainer.limit_val_batches", "1"),
                          "--ckpt_path", str(tmp_path / "old.ckpt")])
    assert cli.model.objective.sample_steps == 2 and "val/psnr" in cli.trainer.callback_metrics


def test_a_module_built_in_python_before_the_objective_argument_gets_a_flow_objective():
    from gvr.flow import FlowObjective, FlowSource
    from gvr.pipeline.checkpoint import upgraded_hparams

    source = FlowSource(anchor="pixel", sigma=0.0)
    hp = upgraded_hparams({"backbone": None, "source": source, "sample_steps": 1, "s_range": (0.0, 0.0), "lr": 1e-3},
                          "VSRModule")
    assert isinstance(hp["objective"], FlowObjective) and hp["objective"].source is source
    assert (hp["objective"].sample_steps, hp["objective"].s_range, hp["lr"]) == (1, (0.0, 0.0), 1e-3)
    assert "sample_steps" not in hp and "source" not in hp
    today = {"objective": FlowObjective(sample_steps=3), "lr": 1e-3}
    assert upgraded_hparams(today, "VSRModule")["objective"] is today["objective"]  # today's: left as it is


def test_old_names_of_the_distill_package_and_the_prediction_writer_move():
    from gvr.lit.checkpoints import moved_path

    assert moved_path("gvr.distill.Distillation") == "gvr.lit.Distillation"
    assert moved_path("gvr.distill.VideoDiscriminator") == "gvr.models.VideoDiscriminator"
    assert moved_path("gvr.data.predict.VideoPredictionWriter") == "gvr.inference.VideoPredictionWriter"
    assert moved_path("gvr.codecs.base.LatentCodec") == "gvr.codecs.codec.LatentCodec"
    assert moved_path("gvr.models.SimpleGVR") == "gvr.models.SimpleGVR"  # unmoved names are left alone


@pytest.mark.parametrize("name", ["gvr.module", "gvr.upscale", "gvr.checkpoints", "gvr.metrics.baselines", "gvr.text"])
def test_the_old_modules_are_gone(name):
    """One home per concept: the moved modules are not importable under their old names."""
    import importlib

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_one_resize_function_serves_all_three_uses():
    """resize_video (baselines), resize_frames (latents) and the degradations all call gvr.ops.resize.resize."""
    import torch.nn.functional as F

    from gvr.ops.resize import resize, resize_frames, resize_video

    x = torch.rand(1, 3, 2, 12, 10) * 2 - 1
    frames = x[0].permute(1, 0, 2, 3)  # (T, C, H, W)
    want = F.interpolate(frames, size=(30, 25), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
    assert torch.equal(resize_video(x, (30, 25))[0].permute(1, 0, 2, 3), want)
    assert torch.equal(resize_frames(x, (6, 5), mode="bilinear")[0].permute(1, 0, 2, 3),
                       resize(frames, (6, 5), "bilinear", antialias=True))
    assert np.isclose(resize(frames, (6, 5), "area", antialias=False).mean().item(), frames.mean().item(), atol=1e-5)


def test_lightning_subcommands_take_a_checkpoint_with_old_class_paths(tiny_data, tiny_vsr_ckpt, tmp_path):
    """`gvr validate / test / fit --ckpt_path OLD.ckpt`: LightningCLI parses the checkpoint's hyper-parameters
    into the model's config, and GVRCLI moves their old class paths first (here a student's gvr.distill.*)."""
    from conftest import tiny_cli_args

    from gvr.cli import lightning_main

    ckpt = torch.load(tiny_vsr_ckpt, map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["distill"] = {"class_path": "gvr.distill.Distillation", "init_args": {"teacher": tiny_vsr_ckpt}}
    torch.save(ckpt, tmp_path / "old.ckpt")
    cli = lightning_main(["validate", *tiny_cli_args(tiny_data, tmp_path, "--trainer.limit_val_batches", "1"),
                          "--ckpt_path", str(tmp_path / "old.ckpt")])
    assert type(cli.model.distill).__name__ == "Distillation" and cli.model.distill.teacher_path == tiny_vsr_ckpt
    assert "val/psnr" in cli.trainer.callback_metrics


def test_a_config_or_flag_with_a_moved_key_is_a_clear_error_naming_the_new_one(tmp_path):
    """`model.sample_steps` (now `model.objective.init_args.sample_steps`) and `data.image_ratio` (now
    `data.photos.ratio`), in a config, in the config it starts from, or as a flag: one message naming each."""
    from gvr.lit.cli import check_moved_keys, lightning_main

    base = tmp_path / "base.yaml"
    base.write_text("model:\n  sample_steps: 4\n  lr: 1.0e-4\ndata:\n  num_frames: 3\n")
    (tmp_path / "over.yaml").write_text("config: base.yaml\ndata:\n  image_ratio: 0.3\n")
    with pytest.raises(SystemExit) as err:
        lightning_main(["fit", "--config", str(tmp_path / "over.yaml"), "--model.timesteps.path", "x.json",
                        "--model.lr", "1e-3"])
    message = str(err.value)
    assert f"{base}: model.sample_steps -> model.objective.init_args.sample_steps" in message
    assert "over.yaml: data.image_ratio -> data.photos.ratio" in message
    assert "--model.timesteps.path -> model.objective.init_args.timesteps" in message
    assert "lr" not in message and "num_frames" not in message
    check_moved_keys(["fit", "--config", str(ROOT / "configs/stage1.yaml"), "--model.objective.sample_steps", "2",
                      "--data.photos.ratio", "0.2"])  # today's keys pass
