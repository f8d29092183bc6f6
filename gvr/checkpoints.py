"""Checkpoints: rebuild a trained gvr module (VSR or base model) from its file alone; save where training stops."""

import hashlib
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gvr.strategies import require_single_file

# What each module class needs in the checkpoint's hyper-parameters, and the command that writes it.
_KINDS = {"VSRModule": ("gvr.module", "backbone", "gvr fit"), "BaseModule": ("gvr.base.module", "network", "gvr base fit")}


def load_gvr_module(ckpt: str, kind: str = "VSRModule", device: str = "cpu"):
    """Load the ``kind`` module (``VSRModule`` or ``BaseModule``) of ``ckpt`` in eval mode on ``device``.

    The checkpoint's hyper-parameters rebuild the network and the codec; a missing file, a file that is not
    a checkpoint, or a checkpoint of the other kind is a clear error.
    """
    import importlib

    module_path, key, command = _KINDS[kind]
    path = Path(ckpt)
    meta = read_checkpoint(path, mmap=True)
    hp = meta.get("hyper_parameters", {}) if isinstance(meta, dict) else {}
    if "state_dict" not in meta or hp.get("_class_path", kind).split(".")[-1] != kind or key not in hp:
        raise ValueError(f"{ckpt} is not a gvr {kind} checkpoint (written by `{command}`)")
    cls = getattr(importlib.import_module(module_path), kind)
    with warnings.catch_warnings():  # the stored config rebuilds the networks, which Lightning then sees as hparams
        warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")
        module = cls.load_from_checkpoint(path, map_location=device, weights_only=False).eval().to(device)
    # The training clip length (data.num_frames) tells `gvr upscale` how much temporal context the model learned.
    data = meta.get("datamodule_hyper_parameters") or {}
    module.train_frames = data.get("num_frames")
    return module


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


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class StopCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` whose ``last.ckpt`` also holds the step where training stopped.

    Lightning writes ``last.ckpt`` at the periodic saves only, so a run stopped by ``max_time`` or
    ``max_steps`` between two saves loses the steps since the last one. This subclass also saves it at the
    batch where the run stops, from the same hook as the periodic saves, so the checkpoint resumes exactly
    like theirs. (Checkpoint callbacks run after the others, so ``Timer`` has already set ``should_stop``.)
    Arguments as in ``ModelCheckpoint``.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        stopping = trainer.should_stop or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps)
        if stopping and self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
