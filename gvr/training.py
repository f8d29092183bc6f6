"""Training helpers shared by the Lightning modules: EMA weights, AdamW with warm-up, weights-only init."""

import copy
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def ema_copy(net: nn.Module, decay: float) -> nn.Module | None:
    """A frozen eval-mode copy of ``net`` holding its EMA weights, or None when ``decay`` is 0."""
    return copy.deepcopy(net).requires_grad_(False).eval() if decay > 0 else None


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, step: int, decay: float) -> None:
    """One EMA step after optimizer step ``step``; the warm-up ``(1 + n) / (10 + n)`` caps early decay.

    A pure function of the step counter, so resumed runs keep the same EMA as uninterrupted ones.
    """
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), net.parameters(), strict=True):
        e.lerp_(p.detach(), 1 - d)
    for e, b in zip(ema.buffers(), net.buffers(), strict=True):
        e.copy_(b)


def adamw_with_warmup(
    params, lr: float, weight_decay: float, betas: tuple[float, float], warmup_steps: int
) -> dict:
    """Lightning's ``configure_optimizers`` answer: AdamW and a per-step linear warm-up to ``lr``."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
    warm = max(1, warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def load_network_weights(path: str, prefix: str, into: list[nn.Module]) -> str:
    """Copy a network's weights from a gvr checkpoint into each module of ``into`` (weights only).

    Takes the checkpoint's EMA weights (``ema.*``) when it kept them, else ``{prefix}.*``; returns which.
    Shapes must match exactly: a checkpoint of another architecture is a clear error, never a partial load.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"init_from: checkpoint {path} not found (train the previous stage first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["state_dict"]
    except Exception as err:
        raise ValueError(f"init_from: {path} is not a Lightning checkpoint ({type(err).__name__}: {err})") from err
    source = "ema" if any(k.startswith("ema.") for k in state) else prefix
    weights = {k[len(source) + 1 :]: v for k, v in state.items() if k.startswith(source + ".")}
    if not weights:
        raise ValueError(f"init_from: {path} holds no '{prefix}.*' weights")
    for module in into:
        try:
            module.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(f"init_from: {path} does not fit this network: {str(err).splitlines()[0]} ...") from err
    log.info("initialised the network from %s (%s weights)", path, source)
    return source
