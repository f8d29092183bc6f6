"""Checkpoints: rebuild a trained gvr module (VSR or base model) from its file alone; save where training stops."""

import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from gvr.base.model import BaseModel, BaseModelLoader
from gvr.codecs.codec import LatentCodec
from gvr.ops.files import file_digest
from gvr.pipeline.checkpoint import (  # noqa: F401  (public here too, as before the pipeline)
    MOVED_MODULES,
    MOVED_NAMES,
    check_kind,
    moved_path,
    read_checkpoint,
    renamed_hparams,
)

# What each module class needs in the checkpoint's hyper-parameters, and the command that writes it.
_KINDS = {"VSRModule": ("gvr.lit.vsr_module", "backbone", "gvr fit"),
          "BaseModule": ("gvr.lit.base_module", "network", "gvr base fit")}

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
    hp = check_kind(meta, kind, key, command, ckpt)
    cls = getattr(importlib.import_module(module_path), kind)
    meta = _pl_migrate_checkpoint(meta, checkpoint_path=path)
    meta["hyper_parameters"] = hp
    with warnings.catch_warnings():  # the stored config rebuilds the networks, which Lightning then sees as hparams
        warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")
        module = _load_state(cls, meta)
    return module.eval().to(device)


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


def run_checkpoint_dir(trainer) -> str | None:
    """``<save_dir>/<name>/checkpoints`` of the trainer's logger (one folder per run name, not per version, so
    that an overlay or ``make ... SEED=N`` that renames the run moves its checkpoints too); None without one."""
    logger = trainer.logger
    if logger is None or getattr(logger, "save_dir", None) is None:
        return None
    return str(Path(logger.save_dir) / logger.name / "checkpoints")


class RunCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` that, without ``dirpath``, saves into the run's folder (`run_checkpoint_dir`) instead
    of Lightning's ``<log_dir>/<version>/checkpoints``: e.g. the best-by-validation checkpoint beside the run's
    step checkpoints."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = run_checkpoint_dir(trainer)
        super().setup(trainer, pl_module, stage)


class StopCheckpoint(RunCheckpoint):
    """`RunCheckpoint` whose ``last.ckpt`` also holds the step where training stopped.

    Lightning writes ``last.ckpt`` at the periodic saves only, so a run stopped by ``max_time`` or
    ``max_steps`` between two saves loses the steps since the last one. This subclass also saves it at the
    batch where the run stops, from the same hook as the periodic saves, so the checkpoint resumes exactly
    like theirs. (Checkpoint callbacks run after the others, so ``Timer`` has already set ``should_stop``.)
    Arguments as in ``ModelCheckpoint``; without ``dirpath`` a run with a logger saves into
    ``<save_dir>/<name>/checkpoints`` (`RunCheckpoint`).
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        stopping = trainer.should_stop or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
        if stopping and self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
