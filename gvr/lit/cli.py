"""gvr's LightningCLI: the links between data and model, and where config.yaml is written. ``gvr fit``,
``gvr base fit`` and ``gvr distill`` run it."""

from pathlib import Path

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from gvr.data.datamodule import VideoDataModule
from gvr.lit.vsr_module import VSRModule


class GVRCLI(LightningCLI):
    """LightningCLI with gvr's links: the scale factor and the clip length are set once, on the data, and shared
    with the model."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.scale", "model.scale")
        parser.link_arguments("data.num_frames", "model.train_frames")


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
