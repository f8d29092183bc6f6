"""benchmarks/ablations.py: every arm is a config the CLI parses, every claim names arms, runs resume."""

import json
import sys
from pathlib import Path

import pytest

from gvr.lit.cli import lightning_main
from gvr.ops.config import load_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ablations  # noqa: E402

ARMS = [(name, arm) for name, ab in ablations.ABLATIONS.items() for arm in ab.arms]


def test_the_four_ablations_of_the_issue_with_their_claims():
    default = [name for name, ab in ablations.ABLATIONS.items() if ab.default]
    assert default == ["degradation", "noise_augmentation", "timesteps", "attention"]
    assert ablations.parser().parse_args([]).only == default
    assert {"noise_augmentation_paper", "timesteps_paper"} <= set(ablations.ABLATIONS) - set(default)
    for name, ab in ablations.ABLATIONS.items():
        assert len(ab.arms) >= 3 and ab.claims and ab.paper and ab.regime and ab.steps > 0, name
        for claim in ab.claims:
            assert claim.a in ab.arms and claim.b in ab.arms, (name, claim)


@pytest.mark.parametrize("name, arm", ARMS, ids=[f"{n}/{a}" for n, a in ARMS])
def test_every_arm_parses(name, arm, tmp_path, capsys):
    spec = ablations.ABLATIONS[name].arms[arm]
    density = tmp_path / "timesteps.json"
    density.write_text(json.dumps({"t": [0.0, 0.5, 1.0], "density": [1.0, 2.0, 1.0]}))
    overrides = [str(density) if o == "{density}" else o for o in spec.overrides]
    with pytest.raises(SystemExit) as exit_info:
        lightning_main(["fit", "--config", str(ROOT / spec.config), *overrides, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for flag, value in zip(overrides[::2], overrides[1::2]):
        key = flag.removeprefix("--").split(".")[-1]
        assert key in printed, (flag, value)
    if spec.pairs:
        from gvr.data.pair_cache import load_spec

        assert load_spec(ROOT / spec.pairs).recipe.num_pairs > 0


GPU_ARMS = [(n, a) for n, a in ARMS if not ablations.ABLATIONS[n].arms[a].pairs]


@pytest.mark.parametrize("name, arm", GPU_ARMS, ids=[f"{n}/{a}" for n, a in GPU_ARMS])
def test_every_arm_parses_at_gpu_scale_and_keeps_what_it_ablates(name, arm, tmp_path, capsys, monkeypatch):
    """`--overlay configs/ablation_1b.yaml --start CKPT`: the 1b network on the Wan VAE at 720p, with the arm's
    own operator, s range and t sampler, and the given stage-1 start where the arm starts from stage 1."""
    import yaml

    monkeypatch.chdir(ROOT)  # the runner's arms name their configs from the repository root
    spec = ablations.ABLATIONS[name].arms[arm]
    density = tmp_path / "timesteps.json"
    density.write_text(json.dumps({"t": [0.0, 0.5, 1.0], "density": [1.0, 2.0, 1.0]}))
    start = str(tmp_path / "stage1_1b.ckpt")
    flags = ablations.arm_argv(spec, ["configs/ablation_1b.yaml"], start)
    flags = [str(density) if f == "{density}" else f for f in flags]
    with pytest.raises(SystemExit) as exit_info:
        lightning_main(["fit", *flags, "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    net, data = config["model"]["backbone"]["init_args"], config["data"]
    assert (net["dim"], net["depth"], net["latent_channels"]) == (1536, 18, 16)
    assert config["model"]["codec"]["class_path"].endswith("DiffusersVAE") and data["hr_size"] == [720, 1280]
    assert config["trainer"]["precision"] == "bf16-mixed"
    if "--model.backbone.init_args.temporal_op" in spec.overrides:
        op = json.loads(spec.overrides[spec.overrides.index("--model.backbone.init_args.temporal_op") + 1])
        assert net["temporal_op"]["class_path"] == op["class_path"]
    flow = config["model"]["objective"]["init_args"]
    if "--model.objective.s_range" in spec.overrides:
        assert flow["s_range"] == json.loads(spec.overrides[spec.overrides.index("--model.objective.s_range") + 1])
    starts_at_stage1 = (ablations.STAGE1 in spec.overrides
                        or load_config(spec.config)["model"].get("init_from") == ablations.STAGE1)
    assert (config["model"]["init_from"] == start) == starts_at_stage1


def test_an_overlay_refuses_the_arms_that_train_on_the_tiny_base_models_pairs(tmp_path):
    ab = ablations.ABLATIONS["degradation"]
    with pytest.raises(SystemExit, match="pair cache of gvr's tiny base model"):
        ablations.train(tmp_path, "degradation", ab, "+ model", ab.arms["+ model"], 0, 2, True,
                        ["configs/ablation_1b.yaml"])


def test_a_finished_run_is_not_trained_again(tmp_path, monkeypatch):
    ab = ablations.ABLATIONS["degradation"]
    folder = ablations.run_dir(tmp_path, "degradation", "+ flow", 1)
    assert folder == tmp_path / "runs" / "degradation" / "+_flow" / "s1"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (folder / "done.json").write_text("{}")
    monkeypatch.setattr("gvr.lit.cli.lightning_main", lambda argv: pytest.fail("trained again"))
    ckpt = ablations.train(tmp_path, "degradation", ab, "+ flow", ab.arms["+ flow"], 1, 4, quick=True)
    assert ckpt == folder / "checkpoints" / "last.ckpt"


def test_a_scored_run_is_not_scored_again(tmp_path, monkeypatch):
    from types import SimpleNamespace

    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    sets = {"model": [SimpleNamespace(name="a"), SimpleNamespace(name="b")]}
    calls = []
    monkeypatch.setattr(ablations, "score", lambda *a: calls.append(a) or {"model": {"psnr": 30.0}})
    assert ablations.cached_scores(ckpt, sets, 10) == {"model": {"psnr": 30.0}}
    assert ablations.cached_scores(ckpt, sets, 10) == {"model": {"psnr": 30.0}} and len(calls) == 1
    ablations.cached_scores(ckpt, sets, 2)  # other sampling steps: scored again
    ablations.cached_scores(ckpt, {"model": sets["model"][:1]}, 2)  # other clips: scored again
    assert len(calls) == 3


def test_each_seed_seeds_the_training_noise_and_the_clip_stream_alike(tmp_path, monkeypatch):
    """Seed 1 must reach model.seed as well as data.seed: Lightning refuses a run whose module and data module
    log one hyper-parameter (``seed``) with two values (the full degradation run stopped at its second seed)."""
    ab = ablations.ABLATIONS["degradation"]
    seen = []

    def fake_fit(argv):
        seen.append(argv)
        folder = ablations.run_dir(tmp_path, "degradation", "classic", 1)
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints" / "last.ckpt").write_bytes(b"x")

    monkeypatch.setattr("gvr.lit.cli.lightning_main", fake_fit)
    ablations.train(tmp_path, "degradation", ab, "classic", ab.arms["classic"], 1, 4, quick=True)
    argv = seen[0]
    for flag in ("--seed_everything", "--data.seed", "--model.seed"):
        assert argv[argv.index(flag) + 1] == "1", flag


def test_attention_arms_start_from_stage_1_not_from_stage_3s_own_start():
    for arm in ablations.ABLATIONS["attention"].arms.values():
        at = arm.overrides.index("--model.init_from")
        assert arm.overrides[at + 1] == ablations.STAGE1 and arm.config == "configs/stage3.yaml"


def test_attention_arms_carry_their_analytic_gflops_and_the_table_prints_them():
    from gvr.analysis.ablations import ablation_result, format_markdown, summarise_arm

    arms = ablations.ABLATIONS["attention"].arms
    flops = {name: ablations.arm_gflops(arm) for name, arm in arms.items()}
    assert flops["sparse local"] < flops["swin"] < flops["full"] and flops["temporal units"] < flops["full"]
    assert ablations.arm_gflops(ablations.ABLATIONS["degradation"].arms["classic"]) is None
    result = ablation_result({n: summarise_arm({"vmaf": [50.0]}, [0]) for n in arms}, [], gflops=flops)
    table = format_markdown({"ablations": {"attention": result}})
    assert f"full {flops['full']:.2f}" in table and "GFLOPs of one forward on a training clip" in table


@pytest.mark.parametrize("regime", ["", "_paper"])
def test_the_noise_and_timestep_ablations_share_their_common_arm(regime, tmp_path, capsys):
    """The noise-augmentation ablation's [0.3, 0.6] arm and the timestep ablation's logit-normal arm are one
    config; they are one run (trained and scored once), and the detail-aware density is taken from it."""
    noise, steps = ablations.ABLATIONS["noise_augmentation" + regime], ablations.ABLATIONS["timesteps" + regime]
    a, b = noise.arms["[0.3, 0.6]"], steps.arms["logit-normal"]
    assert a.config == b.config and a.share == b.share is not None and noise.steps == steps.steps
    shared = ablations.run_dir(tmp_path, "noise_augmentation" + regime, "[0.3, 0.6]", 1)
    assert shared == ablations.run_dir(tmp_path, "timesteps" + regime, "logit-normal", 1)
    assert shared.parent.parent.name == "shared"
    printed = []
    for spec in (a, b):  # the same resolved model config, whatever the overrides spell out
        with pytest.raises(SystemExit):
            lightning_main(["fit", "--config", str(ROOT / spec.config), *spec.overrides, "--print_config"])
        out = capsys.readouterr().out
        printed.append(out[out.index("\nmodel:"):])
    assert printed[0] == printed[1]
    assert ablations.run_dir(tmp_path, "noise_augmentation" + regime, "none", 1) != shared
