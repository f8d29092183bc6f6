"""Configs compose: an overlay names its base (``config: BASE.yaml``) and sets only what differs."""

import shlex
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml
from test_docs import ROOT

from gvr.cli import main
from gvr.lit.checkpoints import StopCheckpoint
from gvr.lit.cli import expand_configs
from gvr.ops.config import load_config, merge


def printed(capsys, monkeypatch, *configs: str, verb: str = "fit") -> dict:
    return printed_args(capsys, monkeypatch, [verb] + [a for c in configs for a in ("--config", c)])


def printed_args(capsys, monkeypatch, args: list[str]) -> dict:
    """The config that `gvr ARGS --print_config` prints, run from the repository's root."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("sys.argv", ["gvr"])
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--print_config"])
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def differences(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)]
    return [] if a == b else [prefix]


@pytest.mark.parametrize(("overlay", "changed"), [
    ("configs/stage1_x4.yaml", {"trainer.logger.init_args.name", "data.scale", "data.hr_size"}),
    ("configs/stage1_fsdp.yaml", {"trainer.logger.init_args.name", "trainer.devices", "trainer.strategy", "data.batch_size"}),
])
def test_an_overlay_changes_only_what_it_says(overlay, changed, capsys, monkeypatch):
    base, over = printed(capsys, monkeypatch, "configs/stage1.yaml"), printed(capsys, monkeypatch, overlay)
    diff = set(differences(base, over))
    assert {d.split(".init_args")[0] if d.startswith("trainer.strategy") else d for d in diff} == changed
    # The same as naming both files on the command line, base first.
    assert printed(capsys, monkeypatch, "configs/stage1.yaml", overlay) == over


def test_load_config_reads_an_overlay_as_the_cli_does(capsys, monkeypatch):
    data = load_config(ROOT / "configs/stage1_x4.yaml")
    base = load_config(ROOT / "configs/stage1.yaml")
    assert "config" not in data and data["data"]["scale"] == 4.0 and data["model"] == base["model"]
    assert data["trainer"]["logger"]["init_args"] == {"save_dir": "logs", "name": "stage1_x4"}  # init_args merged
    assert data["trainer"]["callbacks"] == base["trainer"]["callbacks"]


def test_merge_replaces_lists_and_another_class_whole():
    base = {"a": [1, 2], "m": {"class_path": "X", "init_args": {"p": 1, "q": 2}}}
    assert merge(base, {"a": [3]}) == {"a": [3], "m": base["m"]}
    assert merge(base, {"m": {"init_args": {"q": 5}}})["m"] == {"class_path": "X", "init_args": {"p": 1, "q": 5}}
    assert merge(base, {"m": {"class_path": "Y"}})["m"] == {"class_path": "Y"}


def test_expand_configs_puts_the_bases_first_and_refuses_a_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("seed_everything: 1\n")
    (tmp_path / "b.yaml").write_text("config: a.yaml\n")
    (tmp_path / "c.yaml").write_text("config: b.yaml\n")
    a, b, c = (str(tmp_path / f"{n}.yaml") for n in "abc")
    # A file that names its base goes as its YAML text without the ``config`` key (jsonargparse would load it again).
    assert expand_configs(["fit", "--config", c, "--x", "1"]) == ["fit", f"--config={a}", "--config={}\n", "--config={}\n", "--x", "1"]
    assert expand_configs(["fit", f"--config={a}"]) == ["fit", f"--config={a}"]
    assert expand_configs(None) is None
    (tmp_path / "a.yaml").write_text("config: c.yaml\n")
    with pytest.raises(ValueError, match="include each other"):
        expand_configs(["fit", "--config", c])
    with pytest.raises(ValueError, match="include each other"):
        load_config(c)


def test_stop_checkpoint_without_dirpath_follows_the_loggers_name(tmp_path):
    callback = StopCheckpoint(save_last=True)
    trainer = SimpleNamespace(logger=SimpleNamespace(save_dir=str(tmp_path), name="stage1_x4"), is_global_zero=False,
                              strategy=SimpleNamespace(broadcast=lambda x: x))
    callback.setup(trainer, None, "fit")
    assert callback.dirpath == str(tmp_path / "stage1_x4" / "checkpoints")
    kept = StopCheckpoint(dirpath=str(tmp_path / "mine"))
    kept.setup(trainer, None, "fit")
    assert kept.dirpath == str(tmp_path / "mine")


def test_an_overlay_on_an_overlay_keeps_the_init_args_a_class_path_given_again_does_not_set(tmp_path, capsys, monkeypatch):
    # configs/distill_anyscale.yaml names model.distill's class_path again to set the teacher; the weights come from
    # distill_sharp.yaml under it. An overlay on top of it (a seed's own log folder) must keep them: jsonargparse
    # used to load the chain a second time, nested, and gave distill.yaml's defaults back.
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(f"config: {ROOT / 'configs/distill_anyscale.yaml'}\ntrainer:\n  max_steps: 7\n")
    out = printed(capsys, monkeypatch, str(overlay), verb="distill")
    distill = out["model"]["distill"]["init_args"]
    assert out["trainer"]["max_steps"] == 7 and distill["teacher"] == "logs/anyscale/checkpoints/last.ckpt"
    assert (distill["distill_weight"], distill["pixel_weight"], distill["grid_weight"], distill["adversarial_weight"]) == (10.0, 0.0, 0.1, 0.05)
    assert distill["discriminator"]["class_path"] == "gvr.models.VideoDiscriminator"
    assert distill["adversarial_budget"] == 6.0e-4  # distill_anyscale.yaml's own, beside the teacher
    assert out["model"]["backbone"]["init_args"]["ratio_embedding"] is True and out["model"]["backbone"]["init_args"]["out_refine"] == 32


MORE = {"trainer.logger.init_args.name", "data.train_manifest", "data.photos.train"}


@pytest.mark.parametrize(("base", "overlay", "verb", "changed"), [
    ("anyscale", "anyscale_more", "fit", MORE),
    ("anyscale_control_x2", "anyscale_control_x2_more", "fit", MORE),
    ("anyscale_control_x25", "anyscale_control_x25_more", "fit", MORE),
    ("anyscale_control_x28", "anyscale_control_x28_more", "fit", MORE),
    ("anyscale_control_x3", "anyscale_control_x3_more", "fit", MORE),
    ("anyscale_control_x4", "anyscale_control_x4_more", "fit", MORE),
    ("distill_anyscale", "distill_anyscale_more", "distill", MORE | {"model.distill.init_args.teacher"}),
])
def test_the_more_content_overlays_change_only_the_training_data_and_the_run(base, overlay, verb, changed, capsys, monkeypatch):
    """`make extra`'s runs: the same recipe as their base on train_more.jsonl and images_train_more.jsonl."""
    before = printed(capsys, monkeypatch, f"configs/{base}.yaml", verb=verb)
    after = printed(capsys, monkeypatch, f"configs/{overlay}.yaml", verb=verb)
    assert set(differences(before, after)) == changed
    assert after["data"]["train_manifest"] == "data/manifests/train_more.jsonl"
    assert after["data"]["photos"]["train"] == "data/manifests/images_train_more.jsonl"
    if verb == "distill":
        # every checkpoint (steps, best, average) in the run's folder, logs/<logger name>/checkpoints
        assert all(c["init_args"].get("dirpath") is None for c in after["trainer"]["callbacks"])
        assert after["trainer"]["logger"]["init_args"]["name"] == overlay
        assert after["model"]["distill"]["init_args"]["teacher"] == "logs/anyscale_more/checkpoints/last.ckpt"


SEEDED = {"seed_everything", "model.seed", "data.seed", "trainer.logger.init_args.name"}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("target", "verb"), [("anyscale-more", "fit"), ("anyscale-control-x25-more", "fit"),
                                             ("distill-anyscale-more", "distill")])
def test_make_seed_trains_another_seed_in_its_own_run(target, verb, capsys, monkeypatch):
    """`make TARGET SEED=1`: the target's config with every seed 1 and the run in logs/<run>_s1; SEED 0 adds nothing."""
    def command(*extra):
        out = subprocess.run(["make", "-n", "-s", target, *extra], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout
        run = [line for line in out.splitlines() if f"gvr {verb} --config" in line]
        assert len(run) == 1, out
        return shlex.split(run[0].split("gvr ", 1)[1])

    plain, seeded = command(), command("SEED=1")
    assert plain == [verb, "--config", f"configs/{target.replace('-', '_')}.yaml"]
    assert seeded[:len(plain)] == plain
    before, after = printed_args(capsys, monkeypatch, plain), printed_args(capsys, monkeypatch, seeded)
    assert set(differences(before, after)) == SEEDED
    assert after["seed_everything"] == after["model"]["seed"] == after["data"]["seed"] == 1
    assert after["trainer"]["logger"]["init_args"]["name"] == before["trainer"]["logger"]["init_args"]["name"] + "_s1"
