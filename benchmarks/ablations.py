"""The paper's four ablations at small scale: train every arm with one budget, start and seed set, score, judge.

    python benchmarks/ablations.py                           # all four (make ablations), the full budget
    python benchmarks/ablations.py --only degradation        # one (make ablation-degradation)
    python benchmarks/ablations.py --quick                   # a few steps per arm: checks the harness (QUICK=1)
    python benchmarks/ablations.py --overlay configs/ablation_1b.yaml --start CKPT --device cuda   # GPU scale

Every arm is a `gvr fit` run (in this process) of a config plus overrides, with ``--seed_everything`` set per
seed and the run in ``OUT/runs/<ablation>/<arm>/s<seed>``; a run whose ``done.json`` exists is not trained
again, so an interrupted ablation resumes at its first unfinished run. Every run is then scored (once: the scores
stay in its ``scores.json``) by
``benchmarks/quality.py``'s functions on the base-model-like test set (``make testset``; the model-guided
and the plain bicubic variant): PSNR, SSIM, VMAF, the 4-px grid and seconds per frame. The claims (the
paper's findings, see `ABLATIONS`) are judged on the model-guided set by `gvr.analysis.ablations`, whose
rule counts a difference inside the seed range as inconclusive. Writes ``OUT/results.json``, ``table.md`` and
one ``<ablation>.png`` per ablation (default OUT: ``logs/ablations``; ``--quick`` marks them ``"quick": true``).

The regimes:

- ``degradation``: stage 2 from the same stage-1 start (``logs/stage1``, `make stage1`), 1000 steps, on stage 1's
  own data (``classic``: `configs/stage2_control.yaml`), flow pairs only (``+ flow``:
  `configs/pairs_flow.yaml`) and the paper's mix (``+ model``: `configs/pairs.yaml`, needs `make base`).
- ``noise_augmentation`` and ``timesteps``: `configs/ablation_noisy_anchor.yaml` from scratch (an anchored flow
  with sigma 0.1, 4 Euler steps), the nearest regime to the paper's where both choices act on the samples and
  the model still beats bicubic on VMAF; the paper's own regime (`configs/stage1_paper.yaml`: pure-noise flow,
  10 Euler steps) is kept as ``noise_augmentation_paper`` and ``timesteps_paper`` (``--only``; not run by
  default). The detail-aware arm's density comes from `gvr analyze-timesteps` on the logit-normal arm of the
  same seed, which is also the noise-augmentation ablation's [0.3, 0.6] arm (one shared run).
- ``attention``: stage 3's 12-frame clips (`configs/stage3.yaml`) from the stage-1 start, one temporal operator
  per arm (``gvr flops --config configs/stage3.yaml`` counts each operator's FLOPs at this size).
"""

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import gvr_method, load_testset_clips, score_method  # noqa: E402

from gvr.analysis.ablations import Claim, ablation_result, summarise_arm, write_outputs  # noqa: E402

METRICS = ("psnr", "ssim", "vmaf", "grid")
STAGE1 = "logs/stage1/checkpoints/last.ckpt"
NOISY, PAPER = "configs/ablation_noisy_anchor.yaml", "configs/stage1_paper.yaml"
NOISY_DEFAULT, PAPER_DEFAULT = "noisy_anchor_s0.3-0.6", "paper_s0.3-0.6"  # the runs two ablations share


@dataclass
class Arm:
    """One arm: a config and its overrides (``gvr fit`` arguments); ``pairs`` names a pair recipe it needs."""

    config: str
    overrides: list[str] = field(default_factory=list)
    pairs: str | None = None  # pair recipe YAML -> built into data/<its stem> before training
    share: str | None = None  # a run shared by arms of several ablations: runs/shared/<share>/s<seed>


@dataclass
class Ablation:
    arms: dict[str, Arm]
    claims: list[Claim]
    steps: int  # training steps of every arm (the full budget)
    paper: str
    regime: str
    sample_steps: int | None = None  # Euler steps when scoring (None: each checkpoint's own)
    needs: tuple[str, ...] = ()  # files the arms start from
    default: bool = True  # run by a plain `make ablations` (False: only with --only)


def _temporal(op: str, **init) -> list[str]:
    """Stage 3 with temporal operator ``op``, started from stage 1 (stage 3's own config starts from stage 2)."""
    return ["--model.backbone.init_args.temporal_op", json.dumps({"class_path": f"gvr.models.{op}", "init_args": init}),
            "--model.init_from", STAGE1]


def _noise(lo: float, hi: float) -> list[str]:
    return ["--model.objective.s_range", f"[{lo}, {hi}]", "--model.objective.s_inference", f"{(lo + hi) / 2:g}"]


def _noise_arms(config: str, share: str) -> dict[str, Arm]:
    """The noise-augmentation arms in one regime: no noise and three ranges of ``s``; [0.3, 0.6] is ``share``d."""
    ranges = {"none": (0.0, 0.0), "[0, 0.3]": (0.0, 0.3), "[0.3, 0.6]": (0.3, 0.6), "[0.6, 0.9]": (0.6, 0.9)}
    return {name: Arm(config, _noise(*r), share=share if r == (0.3, 0.6) else None) for name, r in ranges.items()}


def _timestep_arms(config: str, share: str) -> dict[str, Arm]:
    """The timestep-sampler arms in one regime; logit-normal is the noise ablation's [0.3, 0.6] run (``share``)."""
    return {"uniform": Arm(config, ["--model.objective.timesteps", "gvr.flow.UniformTimesteps"]),
            "logit-normal": Arm(config, _noise(0.3, 0.6), share=share),
            "detail-aware": Arm(config, ["--model.objective.timesteps", "gvr.flow.DetailAwareTimesteps",
                                         "--model.objective.timesteps.path", "{density}"])}


ABLATIONS: dict[str, Ablation] = {
    "degradation": Ablation(
        arms={
            "classic": Arm("configs/stage2_control.yaml"),
            "+ flow": Arm("configs/stage2.yaml", ["--data.train_cache", "data/pairs_flow"], pairs="configs/pairs_flow.yaml"),
            "+ model": Arm("configs/stage2.yaml", ["--data.train_cache", "data/pairs"], pairs="configs/pairs.yaml"),
        },
        claims=[Claim("vmaf", "+ flow", "classic"), Claim("vmaf", "+ model", "+ flow")],
        steps=1000, paper="DOVER 61.25 / 63.41 / 69.64 (classic / + flow / + model)",
        regime="stage 2 (anchored, sigma 0, one step) from logs/stage1, lr 1e-4",
        needs=(STAGE1, "logs/base/checkpoints/last.ckpt")),
    "noise_augmentation": Ablation(
        arms=_noise_arms(NOISY, NOISY_DEFAULT),
        claims=[Claim("vmaf", "[0.3, 0.6]", other) for other in ("none", "[0, 0.3]", "[0.6, 0.9]")],
        steps=1000, sample_steps=4, paper="the middle range [0.3, 0.6] best (Table 3)",
        regime="configs/ablation_noisy_anchor.yaml from scratch (anchored, sigma 0.1, logit-normal t), "
               "scored with 4 Euler steps at the range's middle s"),
    "timesteps": Ablation(
        arms=_timestep_arms(NOISY, NOISY_DEFAULT),
        claims=[Claim("vmaf", "detail-aware", "uniform")],
        steps=1000, sample_steps=4, paper="DOVER 68.94 / 69.64 (uniform / detail-aware)",
        regime="configs/ablation_noisy_anchor.yaml from scratch, s ~ U[0.3, 0.6], 4 Euler steps; the density "
               "from the logit-normal arm of the same seed"),
    "noise_augmentation_paper": Ablation(
        arms=_noise_arms(PAPER, PAPER_DEFAULT),
        claims=[Claim("vmaf", "[0.3, 0.6]", other) for other in ("none", "[0, 0.3]", "[0.6, 0.9]")],
        steps=2000, sample_steps=10, paper="the middle range [0.3, 0.6] best (Table 3)", default=False,
        regime="the paper's stage 1 (pure-noise flow, logit-normal t), scored with 10 Euler steps"),
    "timesteps_paper": Ablation(
        arms=_timestep_arms(PAPER, PAPER_DEFAULT),
        claims=[Claim("vmaf", "detail-aware", "uniform")],
        steps=2000, sample_steps=10, paper="DOVER 68.94 / 69.64 (uniform / detail-aware)", default=False,
        regime="the paper's stage 1, s ~ U[0.3, 0.6]; the density from the logit-normal arm of the same seed"),
    "attention": Ablation(
        arms={"full": Arm("configs/stage3.yaml", _temporal("FullAttention")),
              "swin": Arm("configs/stage3.yaml", _temporal("SwinAttention", window=[5, 5], across_frames=True)),
              "sparse local": Arm("configs/stage3.yaml", _temporal("SparseLocalAttention", block=[5, 5], top_k=2)),
              "temporal units": Arm("configs/stage3.yaml", _temporal("TemporalUnitsAttention", unit=3))},
        claims=[Claim("vmaf", "sparse local", "full", "no_worse"), Claim("vmaf", "sparse local", "swin")],
        steps=600, paper="GFLOPs 1612.5 / 452.6 / 377.1, DOVER 69.64 / 67.95 / 69.11 (full / Swin / sparse local)",
        regime="stage 3 (12-frame clips, anchored) from logs/stage1", needs=(STAGE1,)),
}


def arm_gflops(arm: Arm) -> float | None:
    """Analytic GFLOPs of one forward of the arm's backbone on its config's training clip (`gvr.models.flops`,
    as `gvr flops` counts them), for an arm that sets ``temporal_op``; None for any other arm."""
    if "--model.backbone.init_args.temporal_op" not in arm.overrides:
        return None
    from gvr.codecs.codec import LatentCodec
    from gvr.commands.flops import from_config
    from gvr.models.attention import AttentionOp
    from gvr.models.flops import latent_grid, model_flops, simple_gvr_args
    from gvr.ops.config import instantiate

    args, codec_spec, data = from_config(arm.config)
    spec = json.loads(arm.overrides[arm.overrides.index("--model.backbone.init_args.temporal_op") + 1])
    args = simple_gvr_args(None, **{**args, "temporal_op": instantiate(AttentionOp, spec)})
    codec = instantiate(LatentCodec, codec_spec)
    frames, (height, width), scale = data["num_frames"], data["hr_size"], float(data.get("scale", 2.5))
    latent = latent_grid(frames, height, width, codec.spatial_factor, codec.temporal_factor)
    lr_hw = latent_grid(frames, round(height / scale), round(width / scale), codec.spatial_factor,
                        codec.temporal_factor)[1:]
    return sum(model_flops(args, latent, lr_hw).values()) / 1e9


def run_dir(out: Path, ablation: str, arm: str, seed: int) -> Path:
    """The run of ``arm`` of ``ablation`` at ``seed``: ``runs/<ablation>/<arm>/s<seed>``, or
    ``runs/shared/<share>/s<seed>`` for an arm whose `Arm.share` names a run two ablations have in common."""
    spec = ABLATIONS[ablation].arms.get(arm) if ablation in ABLATIONS else None
    if spec is not None and spec.share:
        return out / "runs" / "shared" / spec.share / f"s{seed}"
    return out / "runs" / ablation / arm.replace(" ", "_").replace("/", "_") / f"s{seed}"


def ensure_pairs(recipe: str) -> str:
    """Build (or finish) the pair cache of ``recipe`` in ``data/<recipe stem>``; returns the folder."""
    from gvr.data.pair_cache import build_pair_cache, load_spec

    folder = f"data/{Path(recipe).stem}"
    build_pair_cache(load_spec(recipe), folder, progress=False)
    return folder


def density_for(out: Path, ablation: str, seed: int, quick: bool) -> str:
    """``timesteps.json`` of `gvr analyze-timesteps` on the logit-normal arm of ``ablation`` at ``seed``
    (computed once)."""
    from gvr.commands import analyze_timesteps

    folder = run_dir(out, ablation, "logit-normal", seed) / "analysis"
    path = folder / "timesteps.json"
    if not path.is_file():
        ckpt = run_dir(out, ablation, "logit-normal", seed) / "checkpoints" / "last.ckpt"
        analyze_timesteps.main(["--ckpt", str(ckpt), "--out", str(folder), "--clips", "2" if quick else "8",
                                "--steps", "5" if quick else "50", "--seed", str(seed)])
    return str(path)


def arm_argv(arm: Arm, overlays: list[str] = (), start: str | None = None) -> list[str]:
    """The arm's config, then each of ``overlays`` (``--config``: e.g. `configs/ablation_1b.yaml`, the GPU scale),
    then the arm's own flags, so an overlay changes the scale and never what the arm ablates. ``start``: the
    checkpoint that replaces stage 1 (`STAGE1`) where the arm starts from it (its flags or its config)."""
    from gvr.ops.config import load_config

    overrides = list(arm.overrides)
    if start is not None:
        overrides = [start if o == STAGE1 else o for o in overrides]
        if load_config(arm.config).get("model", {}).get("init_from") == STAGE1 and start not in overrides:
            overrides += ["--model.init_from", start]
    return ["--config", arm.config, *(f for o in overlays for f in ("--config", o)), *overrides]


def train(out: Path, name: str, ablation: Ablation, arm_name: str, arm: Arm, seed: int, steps: int, quick: bool,
          overlays: list[str] = (), start: str | None = None) -> Path:
    """Train one arm at one seed (skipped when its ``done.json`` exists); returns its last.ckpt."""
    from gvr.lit.cli import lightning_main

    folder = run_dir(out, name, arm_name, seed)
    ckpt = folder / "checkpoints" / "last.ckpt"
    if (folder / "done.json").is_file() and ckpt.is_file():
        return ckpt
    if arm.pairs and overlays:
        raise SystemExit(f"{name} / {arm_name} trains on the pair cache of gvr's tiny base model ({arm.pairs}); with "
                         "--overlay build pairs with your base model and codec and run it as its own gvr fit")
    flags = arm_argv(arm, overlays, start)
    if "{density}" in flags:
        flags[flags.index("{density}")] = density_for(out, name, seed, quick)
    if arm.pairs:
        ensure_pairs(arm.pairs)
    argv = ["fit", *flags, "--seed_everything", str(seed), "--data.seed", str(seed),
            "--model.seed", str(seed),
            "--trainer.max_steps", str(steps), "--trainer.max_time", "null",
            "--trainer.logger.init_args.save_dir", str(folder.parent), "--trainer.logger.init_args.name", folder.name,
            "--trainer.logger.init_args.version", "0", "--trainer.enable_progress_bar", "false"]
    if quick:  # no validation, no previews: the harness only
        argv += ["--trainer.limit_val_batches", "0", "--trainer.val_check_interval", str(steps)]
    start = time.perf_counter()
    lightning_main(argv)
    if not ckpt.is_file():
        raise RuntimeError(f"{name} / {arm_name} / seed {seed}: training wrote no {ckpt}")
    (folder / "done.json").write_text(json.dumps({"steps": steps, "seconds": time.perf_counter() - start,
                                                  "argv": argv}, indent=1))
    return ckpt


def score(ckpt: Path, sets: dict, sample_steps: int | None, metrics, device: str = "cpu") -> dict[str, dict[str, float]]:
    """Mean scores of ``ckpt`` on each variant of the test set (``{variant: {metric: value}}``), run on ``device``."""
    from gvr.inference.upscale import load_module

    module = load_module(str(ckpt), device)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, clips in sets.items():
            method = gvr_method(module, tmp, sample_steps)
            out[variant] = score_method(variant, method, clips, metrics).mean
    return out


def cached_scores(ckpt: Path, sets: dict, sample_steps: int | None, device: str = "cpu") -> dict[str, dict[str, float]]:
    """`score` of a run, kept in its ``scores.json`` beside ``done.json`` (keyed by the clips and steps scored),
    so that a resumed ablation does not score a finished run again."""
    key = {"sample_steps": sample_steps, "metrics": list(METRICS),
           "clips": {v: [c.name for c in clips] for v, clips in sets.items()}}
    path = ckpt.parent.parent / "scores.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["scores"]
    scores = score(ckpt, sets, sample_steps, METRICS, device)
    path.write_text(json.dumps({"key": key, "scores": scores}, indent=1))
    return scores


def run_ablation(name: str, out: Path, args) -> dict:
    ablation = ABLATIONS[name]
    needs = [args.start if p == STAGE1 and args.start else p for p in ablation.needs]
    missing = [p for p in needs if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"{name}: needs {', '.join(missing)} (`make stage1` / `make base` first)")
    steps = args.steps or (args.quick_steps if args.quick else ablation.steps)
    sets = load_testset_clips(args.testset, args.variants, 2.5)
    if args.quick:
        sets = {v: clips[:: max(1, len(clips) // args.quick_clips)][: args.quick_clips] for v, clips in sets.items()}
    sample_steps = (2 if args.quick and ablation.sample_steps else ablation.sample_steps)
    start = time.perf_counter()
    per_arm: dict[str, dict[str, dict[str, list[float]]]] = {}
    order = sorted(ablation.arms, key=lambda a: "{density}" in ablation.arms[a].overrides)  # density arm last
    for arm_name in order:
        for seed in args.seeds:
            ckpt = train(out, name, ablation, arm_name, ablation.arms[arm_name], seed, steps, args.quick,
                         args.overlay, args.start)
            scores = cached_scores(ckpt, sets, sample_steps, args.device)
            for variant, values in scores.items():
                for metric, value in values.items():
                    per_arm.setdefault(variant, {}).setdefault(arm_name, {}).setdefault(metric, []).append(value)
    judged_on = "model" if "model" in sets else next(iter(sets))
    arms = {arm: summarise_arm(per_arm[judged_on][arm], args.seeds) for arm in ablation.arms}
    other = {v: {arm: summarise_arm(per_arm[v][arm], args.seeds) for arm in ablation.arms}
             for v in sets if v != judged_on}
    # At the embedded size; an overlay's codec may be a VAE whose weights only its GPU machine has (`gvr flops
    # --config` counts a config there).
    flops = {arm: None if args.overlay else arm_gflops(spec) for arm, spec in ablation.arms.items()}
    extra = {} if all(v is None for v in flops.values()) else {"gflops": flops}
    return ablation_result(arms, ablation.claims, args.quick, paper=ablation.paper, regime=ablation.regime, **extra,
                           test_set=f"{args.testset} ({judged_on} LR; {len(sets[judged_on])} clips)",
                           steps=steps, sample_steps=sample_steps, other_sets=other,
                           seconds=time.perf_counter() - start)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(ABLATIONS), default=[n for n, a in ABLATIONS.items() if a.default],
                   help="ablations to run (default: the four of the paper in gvr's regimes; the paper-regime ones "
                        "noise_augmentation_paper and timesteps_paper only when named)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every arm (at least two)")
    p.add_argument("--steps", type=int, default=None, help="training steps of every arm (default: each ablation's)")
    p.add_argument("--quick", action="store_true", help="a few steps per arm and a few clips: checks the harness")
    p.add_argument("--quick-steps", type=int, default=4)
    p.add_argument("--quick-clips", type=int, default=3)
    p.add_argument("--testset", default="data/testset", help="`make testset` folder")
    p.add_argument("--variants", nargs="+", default=["model", "bicubic"], help="test-set variants to score")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--overlay", nargs="+", action="extend", default=[], metavar="CONFIG",
                   help="configs laid on every arm's config, e.g. configs/ablation_1b.yaml (the GPU scale)")
    p.add_argument("--start", default=None, metavar="CKPT",
                   help=f"the stage-1 checkpoint the arms that start from {STAGE1} start from instead")
    p.add_argument("--device", default="cpu", help="where the runs are scored (cuda with --overlay ablation_1b)")
    p.add_argument("--out", default=None, help="output folder (default logs/ablations, logs/ablations_quick)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or ("logs/ablations_quick" if args.quick else "logs/ablations"))
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if results.get("quick", args.quick) != args.quick:
        raise SystemExit(f"{out} holds {'QUICK' if results['quick'] else 'full'} results; use another --out")
    results = {"quick": args.quick, "seeds": args.seeds, "ablations": results.get("ablations", {})}
    for name in args.only:
        print(f"== {name}")
        results["ablations"][name] = run_ablation(name, out, args)
        write_outputs(results, out)  # after each ablation: a long run shows its finished tables early
        print(f"{name}: {results['ablations'][name]['verdict']} ({results['ablations'][name]['seconds']:.0f} s)")
    written = write_outputs(results, out)
    print((out / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return results


if __name__ == "__main__":
    main()
