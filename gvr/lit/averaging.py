"""Uniform weight averaging of checkpoints: `gvr average`, and the `CheckpointAverage` callback that keeps it live.

A GAN-trained one-step student swings between checkpoints a few hundred steps apart (README, "One step"); the
uniform average of its periodic checkpoints sits between the swings. This is the averaging of SWA (Izmailov et
al., "Averaging Weights Leads to Wider Optima and Better Generalization", 2018) and of "model soups" over one
run, applied after training (`average_checkpoints`) or during it (`CheckpointAverage`, without keeping the
checkpoints). Every floating-point tensor of the state dict is averaged, the EMA copy included (it is what
`gvr upscale` serves); integer buffers are taken from the most recent checkpoint.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from gvr.lit.checkpoints import read_checkpoint, run_checkpoint_dir
from gvr.ops.files import atomic_path

# Checkpoint entries that belong to the run, not to the weights: an average is served, not resumed.
RUN_STATE_KEYS = ("optimizer_states", "lr_schedulers", "callbacks", "loops")


def average_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform mean of every floating-point tensor of ``state_dicts``; other entries from the last one.

    All state dicts must have the same keys, shapes and dtypes (the same network); the mean accumulates in
    float64 and is returned in each tensor's own dtype.
    """
    if not state_dicts:
        raise ValueError("nothing to average: no state dicts given")
    last = state_dicts[-1]
    for i, sd in enumerate(state_dicts[:-1]):
        if set(sd) != set(last):
            diff = sorted(set(sd) ^ set(last))
            raise ValueError(f"state dict {i} and the last one hold different keys (e.g. {diff[:3]}): not one network")
        for key, value in last.items():
            other = sd[key]
            if torch.is_tensor(value) and (other.shape != value.shape or other.dtype != value.dtype):
                raise ValueError(f"{key}: {tuple(other.shape)} {other.dtype} in state dict {i}, "
                                 f"{tuple(value.shape)} {value.dtype} in the last one")
    out = {}
    for key, value in last.items():
        if torch.is_tensor(value) and value.is_floating_point():
            total = sum(sd[key].detach().to("cpu", torch.float64) for sd in state_dicts)
            out[key] = (total / len(state_dicts)).to(value.dtype)
        else:
            out[key] = value
    return out


def _load_checkpoint(path: str | Path) -> dict:
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(f"{path} is not a gvr checkpoint (no state_dict / hyper_parameters)")
    return ckpt


def average_checkpoints(paths: Sequence[str | Path], output: str | Path, overwrite: bool = False) -> Path:
    """Write the uniform average of the checkpoints ``paths`` (one run's, same config) to ``output``.

    The output is the most recent input (by ``global_step``) with its state dict replaced by the average and
    its run state (optimizer, schedulers, callbacks, loops) dropped: ``gvr upscale``, ``gvr test`` and
    ``gvr score`` load it like any checkpoint; training does not resume from it. ``averaged_from`` lists the
    inputs and their steps. Checkpoints of different configs, a checkpoint listed twice, an existing ``output``
    (unless ``overwrite``) and an ``output`` that is one of the inputs are refused.
    """
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least 2 checkpoints, got {len(paths)}")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
        raise ValueError(f"a checkpoint is listed twice ({', '.join(twice)}): it would weigh double in the average")
    output = Path(output)
    if any(Path(p).resolve() == output.resolve() for p in paths):
        raise ValueError(f"output {output} is one of the checkpoints to average")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; choose another output (or pass overwrite)")
    ckpts = [_load_checkpoint(p) for p in paths]
    first_hp = ckpts[0]["hyper_parameters"]
    for path, ckpt in zip(paths[1:], ckpts[1:]):
        if ckpt["hyper_parameters"] != first_hp:
            raise ValueError(f"{path} was trained with another config than {paths[0]}: not one run to average")
    order = sorted(range(len(ckpts)), key=lambda i: ckpts[i].get("global_step", 0))
    averaged = average_state_dicts([ckpts[i]["state_dict"] for i in order])
    out = {k: v for k, v in ckpts[order[-1]].items() if k not in RUN_STATE_KEYS}
    out["state_dict"] = averaged
    out["averaged_from"] = [{"path": str(paths[i]), "global_step": ckpts[i].get("global_step")} for i in order]
    with atomic_path(output) as tmp:
        torch.save(out, tmp)
    return output


class CheckpointAverage(Callback):
    """Keep the uniform average of the module's weights at every ``every_n_train_steps``-th step; save it.

    At steps ``every_n_train_steps``, ``2 * every_n_train_steps``, ... (from ``start_step`` on and up to
    ``end_step``, if given: a run whose later steps drift keeps the average of the steps before) the module's state
    dict joins a running mean held on the CPU by rank 0 (one float32 copy of the weights), and
    ``dirpath/filename.ckpt`` (without ``dirpath``: in the run's folder, beside its `StopCheckpoint` files) is
    rewritten: a checkpoint of the averaged weights, written by ``trainer.save_checkpoint`` with the averaged
    weights swapped in for the call (weights only; the training weights are restored at once). It equals
    ``average_checkpoints`` of the checkpoints saved at the same steps, without keeping them. The running mean and
    its count travel in the run's own checkpoints, so a resumed run continues the same average (in its own folder
    too, if it has a new one); a new run beside another run's file writes ``filename-v1.ckpt``.
    Single-device and DDP runs only: under a sharded strategy rank 0 does not hold the whole state dict;
    average the saved (consolidated) checkpoints with ``gvr average`` instead.
    """

    def __init__(self, dirpath: str | None = None, *, every_n_train_steps: int, filename: str = "average",
                 start_step: int = 0, end_step: int | None = None):
        if every_n_train_steps < 1:
            raise ValueError(f"every_n_train_steps must be >= 1, got {every_n_train_steps}")
        first = -(-max(start_step, 1) // every_n_train_steps) * every_n_train_steps  # the first step averaged
        if end_step is not None and end_step < first:
            raise ValueError(f"end_step {end_step} leaves no step to average (start_step {start_step}, "
                             f"every_n_train_steps {every_n_train_steps})")
        self.dirpath = None if dirpath is None else Path(dirpath)  # None: the run's folder, at setup
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename
        self.start_step, self.end_step = start_step, end_step
        self.name = filename  # the file's stem in this run: filename, or filename-vN beside another run's file
        self.mean: dict[str, torch.Tensor] | None = None
        self.count = 0
        self.steps: list[int] = []

    @property
    def state_key(self) -> str:
        # not the folder: a run resumed into another folder (a longer run under a new name) continues its average
        return self._generate_state_key(filename=self.filename, every_n_train_steps=self.every_n_train_steps)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Checkpoints written before the key left out the folder name it ``{'dirpath': ..., 'filename': ...,
        'every_n_train_steps': ...}``: such a state is read as this callback's when its filename and period are."""
        states = checkpoint.get("callbacks", {})
        if self.state_key in states:
            return
        head, rest = self.state_key.split("{", 1)  # the old key is this one with the folder put first
        old = [key for key in states if key.startswith(head + "{'dirpath'") and key.endswith(", " + rest)]
        if len(old) == 1:
            states[self.state_key] = states[old[0]]

    @property
    def path(self) -> Path:
        return self.dirpath / f"{self.name}.ckpt"

    def setup(self, trainer, pl_module, stage: str) -> None:
        from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

        if self.dirpath is None:
            found = run_checkpoint_dir(trainer)
            if found is None:
                raise ValueError("CheckpointAverage without dirpath saves into the run's folder, and this trainer "
                                 "has no logger to name it: give dirpath")
            self.dirpath = Path(found)
        if not isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)):
            raise ValueError(f"CheckpointAverage needs the whole state dict on rank 0; "
                             f"{type(trainer.strategy).__name__} shards it. Average the saved checkpoints "
                             f"with `gvr average` instead.")
        if stage == "fit" and trainer.ckpt_path is None:  # a new run never replaces another run's average
            name, version = self.filename, 0
            while (self.dirpath / f"{name}.ckpt").exists():
                version += 1
                name = f"{self.filename}-v{version}"
            self.name = trainer.strategy.broadcast(name)
            if self.name != self.filename:
                rank_zero_warn(f"{self.dirpath / self.filename}.ckpt exists: this run's average goes to {self.path}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step < max(self.start_step, 1) or step % self.every_n_train_steps or (self.steps and self.steps[-1] == step):
            return
        if self.end_step is not None and step > self.end_step:
            return
        self.steps.append(step)
        self.count += 1
        if not trainer.is_global_zero:  # rank 0 alone holds the mean and writes the file; the others join the
            trainer.save_checkpoint(self.path, weights_only=True)  # collective save, which writes on rank 0 only
            return
        current = pl_module.state_dict()
        if self.mean is None:
            self.mean = {k: v.detach().to("cpu", torch.float32, copy=True)
                         for k, v in current.items() if v.is_floating_point()}
        else:
            for key, mean in self.mean.items():
                mean.add_((current[key].detach().to("cpu", torch.float32) - mean) / self.count)
        backup = {k: current[k].detach().to("cpu", copy=True) for k in self.mean}
        pl_module.load_state_dict({k: v.to(current[k].dtype) for k, v in self.mean.items()}, strict=False)
        try:
            with atomic_path(self.path) as tmp:
                trainer.save_checkpoint(tmp, weights_only=True)
        finally:
            pl_module.load_state_dict(backup, strict=False)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "count": self.count, "steps": list(self.steps), "name": self.name}

    def load_state_dict(self, state_dict: dict) -> None:
        self.mean, self.count, self.steps = state_dict["mean"], state_dict["count"], list(state_dict["steps"])
        self.name = state_dict.get("name", self.filename)
