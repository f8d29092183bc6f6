"""The ``gvr`` command: LightningCLI's fit | validate | test | predict, plus user verbs (``gvr upscale``)."""

import sys
from pathlib import Path

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from gvr.data.datamodule import VideoDataModule
from gvr.module import VSRModule

VERBS = {
    "upscale": "gvr.commands.upscale",
    "degrade": "gvr.commands.degrade",
    "base": "gvr.commands.base",
    "generate": "gvr.commands.generate",
    "flops": "gvr.commands.flops",
    "analyze-timesteps": "gvr.commands.analyze_timesteps",
    "score": "gvr.commands.score",
    "distill": "gvr.commands.distill",
    "average": "gvr.commands.average",
}


class GVRCLI(LightningCLI):
    """LightningCLI with gvr's links: the scale factor is set once, on the data, and shared with the model."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.scale", "model.scale")


class SaveConfig(SaveConfigCallback):
    """LightningCLI's config.yaml, written into the logger's run folder, or without a logger into an explicit
    ``trainer.default_root_dir``: never into the working directory, where it would replace a user's own file."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.logger is None and Path(trainer.default_root_dir).resolve() == Path.cwd().resolve():
            if self.save_to_log_dir and not self.already_saved:
                rank_zero_info("no logger and no trainer.default_root_dir: config.yaml is not written "
                               "(the checkpoint holds the model's hyper-parameters)")
            self.save_to_log_dir = False
        super().setup(trainer, pl_module, stage)


# What every gvr LightningCLI (`gvr fit ...`, `gvr base fit ...`) passes besides its model class.
CLI_DEFAULTS = dict(
    trainer_defaults={"use_distributed_sampler": False},  # StreamSampler shards the stream itself
    save_config_callback=SaveConfig,
    save_config_kwargs={"overwrite": True},
)


def lightning_main(args: list[str] | None = None) -> GVRCLI:
    """Run a Lightning subcommand (fit, validate, test, predict)."""
    return GVRCLI(VSRModule, VideoDataModule, **CLI_DEFAULTS, args=args)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gvr`` console script."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if from_shell else argv)
    if argv and argv[0] in VERBS:
        import importlib

        importlib.import_module(VERBS[argv[0]]).main(argv[1:])
        return
    if not argv or argv[0] in ("-h", "--help"):
        print("gvr: latent video super-resolution (SimpleGVR)\n\nuser verbs:\n"
              "  upscale    upscale a video with a trained checkpoint (gvr upscale --help)\n"
              "  degrade    apply a training degradation to a video (gvr degrade --help)\n"
              "  score      score a video against a reference (PSNR, SSIM, LPIPS, VMAF, ...) or alone\n"
              "             (MUSIQ, CLIP-IQA, MANIQA, DOVER); prints JSON (gvr score --help)\n"
              "  distill    distil a trained checkpoint into a one-step student: gvr distill --config configs/distill.yaml\n"
              "  average    the uniform weight average of one run's checkpoints (gvr average --help)\n"
              "  base       train gvr's own base model: gvr base fit --config configs/base.yaml\n"
              "  generate   run the whole cascade, base model -> SimpleGVR -> mp4 (gvr generate --help)\n"
              "  flops      analytic FLOPs of each attention op and of the whole model (gvr flops --help)\n"
              "  analyze-timesteps  measure where a checkpoint creates detail, write the detail-aware\n"
              "             timestep distribution (gvr analyze-timesteps --help)\n\n"
              "Lightning subcommands (gvr fit --help, ...); gvr test --config configs/benchmark.yaml --ckpt_path CKPT\n"
              "scores a checkpoint and the baselines into metrics.json / metrics.md:", flush=True)
    lightning_main(None if from_shell else argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
