"""Checkpoints: rebuild a trained gvr module (VSR or base model) from its file alone; save where training stops."""

import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gvr.base.model import BaseModel, BaseModelLoader
from gvr.codecs.codec import LatentCodec
from gvr.lit.strategies import require_single_file
from gvr.ops.files import file_digest

# What each module class needs in the checkpoint's hyper-parameters, and the command that writes it.
_KINDS = {"VSRModule": ("gvr.lit.vsr_module", "backbone", "gvr fit"),
          "BaseModule": ("gvr.lit.base_module", "network", "gvr base fit")}

# Module paths of the layout before the house plan (issue 20) -> today's. A checkpoint stores its config as
# `class_path` strings; `load_gvr_module` rewrites the old ones, so checkpoints written before the move load.
MOVED_MODULES = {
    "gvr.module": "gvr.lit.vsr_module",
    "gvr.training": "gvr.lit.flow_module",
    "gvr.base.module": "gvr.lit.base_module",
    "gvr.checkpoints": "gvr.lit.checkpoints",
    "gvr.averaging": "gvr.lit.averaging",
    "gvr.strategies": "gvr.lit.strategies",
    "gvr.distill.recipe": "gvr.lit.distillation",
    "gvr.distill.losses": "gvr.lit.distill_losses",
    "gvr.distill.discriminator": "gvr.models.discriminator",
    "gvr.metrics.benchmark": "gvr.lit.scoring",
    "gvr.upscale": "gvr.inference.upscale",
    "gvr.colorfix": "gvr.ops.colorfix",
    "gvr.flow.tiled": "gvr.ops.tiling",
    "gvr.metrics.baselines": "gvr.ops.resize",
    "gvr.text": "gvr.models.text",
    "gvr.metrics.realesrgan": "gvr.baselines.realesrgan",
    "gvr.codecs.base": "gvr.codecs.codec",
    "gvr.data.degradations.base": "gvr.data.degradations.degradation",
    "gvr.base.dit": "gvr.base.latent_dit",
}
# Names the old `gvr.distill` package exported, and where each lives now.
MOVED_NAMES = {"gvr.distill.Distillation": "gvr.lit.Distillation",
               "gvr.distill.VideoDiscriminator": "gvr.models.VideoDiscriminator",
               "gvr.data.predict.VideoPredictionWriter": "gvr.inference.VideoPredictionWriter"}


def moved_path(name: str) -> str:
    """Today's dotted path of ``name`` (a ``class_path`` of a checkpoint written before the move), or ``name``."""
    if name in MOVED_NAMES:
        return MOVED_NAMES[name]
    module, _, attr = name.rpartition(".")
    return f"{MOVED_MODULES[module]}.{attr}" if module in MOVED_MODULES else name


def renamed_hparams(value):
    """``value`` (hyper-parameters: dicts, lists, strings) with every old ``class_path`` moved."""
    if isinstance(value, dict):
        return {k: moved_path(v) if k in ("class_path", "_class_path") and isinstance(v, str) else renamed_hparams(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(renamed_hparams(v) for v in value)
    return value


def load_gvr_module(ckpt: str, kind: str = "VSRModule", device: str = "cpu"):
    """Load the ``kind`` module (``VSRModule`` or ``BaseModule``) of ``ckpt`` in eval mode on ``device``.

    The checkpoint's hyper-parameters rebuild the network and the codec (``class_path``s of the layout before
    the house plan are moved, `MOVED_MODULES`); a missing file, a file that is not a checkpoint, or a
    checkpoint of the other kind is a clear error. A VSR checkpoint without ``train_frames`` takes it from its
    datamodule's ``num_frames``.
    """
    import importlib

    from lightning.pytorch.core.saving import _load_state
    from lightning.pytorch.utilities.migration.utils import _pl_migrate_checkpoint

    module_path, key, command = _KINDS[kind]
    path = Path(ckpt)
    meta = read_checkpoint(path, mmap=True)
    hp = meta.get("hyper_parameters", {}) if isinstance(meta, dict) else {}
    if "state_dict" not in meta or hp.get("_class_path", kind).split(".")[-1] != kind or key not in hp:
        raise ValueError(f"{ckpt} is not a gvr {kind} checkpoint (written by `{command}`)")
    cls = getattr(importlib.import_module(module_path), kind)
    meta = _pl_migrate_checkpoint(meta, checkpoint_path=path)
    meta["hyper_parameters"] = hp = renamed_hparams(hp)
    if kind == "VSRModule" and hp.get("train_frames") is None:  # written before train_frames was a hyper-parameter
        hp["train_frames"] = (meta.get("datamodule_hyper_parameters") or {}).get("num_frames")
    with warnings.catch_warnings():  # the stored config rebuilds the networks, which Lightning then sees as hparams
        warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")
        module = _load_state(cls, meta)
    return module.eval().to(device)


def read_checkpoint(path: str | Path, mmap: bool = False):
    """The object saved in the single-file checkpoint ``path`` (on the CPU); a missing file, a sharded folder or a
    file that is not a PyTorch checkpoint is a clear error."""
    path = Path(path)
    require_single_file(path, "checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # any unpickling/zip failure means "not a checkpoint"
        raise ValueError(f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {err})") from err


class BaseCheckpoint(BaseModelLoader):
    """gvr's own base model and its codec from a ``gvr base fit`` checkpoint, loaded on first use.

    Args:
        path: the checkpoint (``logs/base/checkpoints/last.ckpt``, written by ``make base``).
    """

    def __init__(self, path: str):
        self.path = path

    def load(self, device: str) -> tuple[BaseModel, LatentCodec]:
        module = load_gvr_module(self.path, "BaseModule", device)
        return module.base_model, module.codec

    def digest(self) -> str:
        return file_digest(self.path)


class StopCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` whose ``last.ckpt`` also holds the step where training stopped.

    Lightning writes ``last.ckpt`` at the periodic saves only, so a run stopped by ``max_time`` or
    ``max_steps`` between two saves loses the steps since the last one. This subclass also saves it at the
    batch where the run stops, from the same hook as the periodic saves, so the checkpoint resumes exactly
    like theirs. (Checkpoint callbacks run after the others, so ``Timer`` has already set ``should_stop``.)
    Arguments as in ``ModelCheckpoint``, except that without ``dirpath`` a run with a logger saves into
    ``<save_dir>/<name>/checkpoints`` (one folder per run name, not per version), so that an overlay that
    renames the run (``trainer.logger.init_args.name``) moves its checkpoints too.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        logger = trainer.logger
        if self.dirpath is None and logger is not None and getattr(logger, "save_dir", None) is not None:
            self.dirpath = str(Path(logger.save_dir) / logger.name / "checkpoints")
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        stopping = trainer.should_stop or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
        if stopping and self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
