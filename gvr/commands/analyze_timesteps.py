"""``gvr analyze-timesteps --ckpt CKPT --manifest M --out DIR``: where along ``t`` does the model create detail?

Runs the checkpoint for ``--steps`` Euler steps on ``--clips`` clips of the manifest, measures the change
of the high-frequency DCT coefficients of ``x0_hat`` between consecutive steps, and writes
``DIR/timesteps.json`` (the distribution ``gvr.flow.DetailAwareTimesteps`` trains with: set
``model.objective.init_args.timesteps.class_path: gvr.flow.DetailAwareTimesteps`` and its ``init_args.path:
DIR/timesteps.json``)
and ``DIR/timesteps.png`` (the curve).
"""

import argparse
import json
import logging
import math
import sys
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr analyze-timesteps",
                                description="Measure where a trained model creates detail and write the detail-aware "
                                            "timestep distribution.")
    p.add_argument("--ckpt", required=True, help="checkpoint written by `gvr fit`")
    p.add_argument("--manifest", default="data/manifests/val.jsonl", help="clip manifest (jsonl) to draw clips from")
    p.add_argument("--out", required=True, help="output folder for timesteps.json and timesteps.png")
    p.add_argument("--clips", type=int, default=4, help="number of clips (random windows, seeded)")
    p.add_argument("--steps", type=int, default=50, help="Euler steps (paper: 50)")
    p.add_argument("--cutoff", type=float, default=0.5, help="high-frequency cutoff, fraction of Nyquist (radial)")
    p.add_argument("--norm", choices=("l2", "l1"), default="l2", help="size of a change: RMS (l2) or mean absolute (l1)")
    p.add_argument("--s", type=float, default=None, help="condition noise level (default: the checkpoint's s_inference)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clips, degradations and noise")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the checkpoint's data.num_frames)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="HR clip size (default: the checkpoint's data.hr_size)")
    p.add_argument("--degradation", choices=("classic", "bicubic"), default="classic", help="how LR clips are made")
    p.add_argument("--batch", type=int, default=1, help="clips per forward pass")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    return p


def data_hparams(ckpt: str) -> dict:
    """The datamodule hyper-parameters saved in a checkpoint (empty when it has none)."""
    import torch

    meta = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    return dict(meta.get("datamodule_hyper_parameters") or {}) if isinstance(meta, dict) else {}


def run(args: argparse.Namespace) -> dict:
    import torch

    from gvr.analysis.measure import measure_changes
    from gvr.analysis.plot import line_plot
    from gvr.analysis.timesteps import change_rate, mass_between, to_density
    from gvr.data.dataset import VideoClipDataset
    from gvr.data.degradations import BicubicDownsample, ClassicDegradation
    from gvr.data.manifest import read_manifest
    from gvr.flow.timesteps import DetailAwareTimesteps
    from gvr.lit.checkpoints import load_gvr_module

    if args.steps < 2 or args.clips < 1 or args.batch < 1:
        raise ValueError(f"need --steps >= 2, --clips >= 1 and --batch >= 1 (got {args.steps}, {args.clips}, {args.batch})")
    if not Path(args.manifest).is_file():
        raise FileNotFoundError(f"manifest {args.manifest} not found: run `make manifests` or pass --manifest")
    module = load_gvr_module(args.ckpt, "VSRModule", args.device)
    data = data_hparams(args.ckpt)
    frames = args.frames or data.get("num_frames", 5)
    size = tuple(args.size or data.get("hr_size", (160, 160)))
    degradation = ClassicDegradation() if args.degradation == "classic" else BicubicDownsample()
    dataset = VideoClipDataset(read_manifest(args.manifest), frames, size, float(module.hparams.scale), degradation,
                               data.get("size_multiple", 8), train=True, length=args.clips, seed=args.seed)
    # 1. the change of x0_hat's high frequencies between steps, batch by batch
    changes = []
    for k in range(math.ceil(args.clips / args.batch)):
        items = [dataset[i] for i in range(k * args.batch, min(args.clips, (k + 1) * args.batch))]
        hr, lr = (torch.stack([item[key] for item in items]) for key in ("hr", "lr"))
        timesteps, change = measure_changes(module, hr, lr, args.steps, args.s, seed=args.seed * 1_000_003 + k,
                                            cutoff=args.cutoff, norm=args.norm,
                                            captions=[item["caption"] for item in items])
        changes.append(change)
        logging.info("batch %d/%d done", k + 1, math.ceil(args.clips / args.batch))
    # 2. rate per unit t, mean over clips, normalised to a density
    t_mid, rate = change_rate(torch.cat(changes, 1), timesteps)
    t, density = to_density(t_mid, rate.mean(1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    thirds = {"low_noise_t<1/3": mass_between(t, density, 0, 1 / 3), "mid_noise": mass_between(t, density, 1 / 3, 2 / 3),
              "high_noise_t>2/3": mass_between(t, density, 2 / 3, 1)}
    config = {k: v for k, v in vars(args).items() if k != "out"} | {"frames": frames, "size": list(size),
                                                                    "s": module.objective.s_inference if args.s is None else args.s}
    record = {"t": t.tolist(), "density": density.tolist(), "t_mid": t_mid.tolist(), "rate_mean": rate.mean(1).tolist(),
              "rate_std": rate.std(1).tolist() if rate.shape[1] > 1 else [0.0] * len(t_mid), "mass": thirds, "config": config}
    json_path = out / "timesteps.json"
    json_path.write_text(json.dumps(record, indent=1))
    DetailAwareTimesteps(str(json_path))  # the file must be what the sampler reads
    png = line_plot(out / "timesteps.png", t.tolist(), {"detail-aware density": density.tolist(), "uniform": [1.0] * len(t)},
                    title=f"detail created per unit t ({args.clips} clips, {args.steps} steps, cutoff {args.cutoff}, "
                          f"{args.norm})",
                    xlabel="flow time t (1 = noise)", ylabel="density")
    return {"json": str(json_path), "png": str(png), "mass": thirds, "peak_t": float(t[density.argmax()])}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"gvr analyze-timesteps: error: {err}")
    print(json.dumps(summary))
