"""gvr's LightningCLI: the links between data and model, and where config.yaml is written. ``gvr fit``,
``gvr base fit`` and ``gvr distill`` run it."""

import sys
import warnings
from pathlib import Path

import yaml
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from gvr.data.datamodule import VideoDataModule
from gvr.lit.vsr_module import VSRModule
from gvr.ops.config import config_layers

# `gvr distill` and `gvr base` hand LightningCLI the expanded arguments (`expand_configs`) while sys.argv still holds
# what the user typed; Lightning's warning about that would print every config's YAML text once more.
warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")


class GVRCLI(LightningCLI):
    """LightningCLI with gvr's links: the scale factor and the clip length are set once, on the data, and shared
    with the model."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.scale", "model.scale")
        parser.link_arguments("data.scale_range", "model.scale_range")
        parser.link_arguments("data.num_frames", "model.train_frames")

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's own (``--ckpt_path`` hyper-parameters update the model's config), with the ``class_path``s
        of checkpoints written before the house plan moved to today's modules and their flat objective arguments
        gathered into ``model.objective`` (`gvr.pipeline.checkpoint.upgraded_hparams`)."""
        import torch

        from gvr.pipeline.checkpoint import upgraded_hparams

        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not (ckpt_path and Path(ckpt_path).is_file()):
            return
        hparams = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {})
        hparams = upgraded_hparams(hparams, getattr(self.model_class, "__name__", None))
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise


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


def expand_configs(args: list[str] | None) -> list[str] | None:
    """``args`` with every ``--config FILE`` whose YAML starts from another (``config: BASE.yaml``, a path relative
    to FILE) preceded by ``--config BASE`` (recursively) and given as its text without that key (`config_flag`), so
    that an overlay names its base once and the CLI merges the two in order (`gvr.ops.config.load_config` reads them the same way outside the CLI). None (the
    command line, which LightningCLI reads itself) stays None."""
    if args is None:
        return None
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--config") and i + 1 < len(args):
            path, step = args[i + 1], 2
        elif arg.startswith("--config="):
            path, step = arg.split("=", 1)[1], 1
        else:
            out.append(arg)
            i += 1
            continue
        out += [config_flag(layer, data) for layer, data in config_layers(path)]  # the deepest first
        i += step
    return out


def config_flag(path: Path, data: object) -> str:
    """``--config`` for one layer of an overlay chain. A file that names its base (``config: BASE.yaml``) goes as
    its YAML text without that key: jsonargparse would otherwise load the base a second time, nested inside the
    file, and a ``class_path`` given again there (``model.distill``) came back with its defaults instead of the
    base's ``init_args`` (an overlay on configs/distill_anyscale.yaml trained distill.yaml's weights)."""
    if not (isinstance(data, dict) and "config" in data):
        return f"--config={path}"
    return "--config=" + yaml.safe_dump({k: v for k, v in data.items() if k != "config"}, sort_keys=False)


def moved_keys() -> dict[str, str]:
    """Config keys of the VSR model and its data that moved (issue 20) -> where they are now."""
    from gvr.pipeline.checkpoint import OBJECTIVE_ARGS

    moved = {f"model.{k}": f"model.objective.init_args.{k} (gvr.flow.FlowObjective)" for k in OBJECTIVE_ARGS}
    photos = {"train_images": "train", "image_ratio": "ratio", "val_images": "val", "val_clips_per_image": "val_clips",
              "image_camera": "camera"}
    moved |= {f"data.{old}": f"data.photos.{new} (gvr.data.image_clips.PhotoClips)" for old, new in photos.items()}
    return moved


def check_moved_keys(args: list[str]) -> None:
    """A clear error for a config file (``--config``, with the configs it starts from) or a flag that still uses a
    key that moved (`moved_keys`), naming the new one, instead of the parser's "does not accept"."""
    moved, found = moved_keys(), []
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args) or arg.startswith("--config="):
            path = args[i + 1] if "=" not in arg else arg.split("=", 1)[1]
            for layer, data in config_layers(path):
                for section in ("model", "data"):
                    keys = data.get(section) if isinstance(data, dict) else None
                    keys = keys if isinstance(keys, dict) else {}
                    found += [(f"{layer}: {section}.{k}", f"{section}.{k}") for k in keys if f"{section}.{k}" in moved]
        elif arg.startswith("--"):
            key = arg[2:].split("=", 1)[0]
            found += [(f"--{key}", old) for old in moved if key == old or key.startswith(old + ".")]
    if found:
        raise SystemExit("these keys moved (the objective is model.objective, the photo options data.photos):\n"
                         + "\n".join(f"  {where} -> {moved[old]}" for where, old in found))


def lightning_main(args: list[str] | None = None) -> GVRCLI:
    """Run a Lightning subcommand (fit, validate, test, predict)."""
    if args is None:  # from the shell: LightningCLI reads sys.argv itself (and warns when given both)
        check_moved_keys(sys.argv[1:])
        sys.argv[1:] = expand_configs(sys.argv[1:])
        return GVRCLI(VSRModule, VideoDataModule, **CLI_DEFAULTS)
    check_moved_keys(args)
    return GVRCLI(VSRModule, VideoDataModule, **CLI_DEFAULTS, args=expand_configs(args))
