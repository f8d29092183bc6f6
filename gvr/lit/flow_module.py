"""Training helpers shared by the Lightning modules: EMA weights, AdamW with warm-up, weights-only init, and
`CodecFlowModule`, the base class of `VSRModule` and `BaseModule`."""

import copy
import logging
from pathlib import Path

import lightning as L
import torch
from torch import Tensor, nn

from gvr.lit.strategies import FSDP2Strategy
from gvr.ops.files import require_single_file
from gvr.pipeline.checkpoint import network_weights

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


def read_network_weights(path: str, prefix: str, option: str = "init_from") -> tuple[dict[str, Tensor], str]:
    """A network's weights from a gvr checkpoint, unprefixed, and where they came from ("ema" or `prefix`).

    Takes the checkpoint's EMA weights (``ema.*``) when it kept them, else ``{prefix}.*``. `option` names
    the config option in errors.
    """
    require_single_file(path, option)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{option}: checkpoint {path} not found (train the previous stage first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["state_dict"]
    except Exception as err:
        raise ValueError(f"{option}: {path} is not a Lightning checkpoint ({type(err).__name__}: {err})") from err
    weights, source = network_weights(state, prefix)
    if not weights:
        raise ValueError(f"{option}: {path} holds no '{prefix}.*' weights")
    return weights, source


def load_network_weights(path: str, prefix: str, into: list[nn.Module]) -> str:
    """Copy a network's weights from a gvr checkpoint into each module of ``into`` (weights only).

    Takes the checkpoint's EMA weights (``ema.*``) when it kept them, else ``{prefix}.*``; returns which.
    Shapes must match exactly: a checkpoint of another architecture is a clear error, never a partial load. The
    one exception is what the network lists in ``optional_weights`` (state-dict prefixes of parts that start at
    zero output, e.g. `SimpleGVR`'s ratio embedding): a checkpoint without them starts the network unchanged, and
    those parts keep their fresh values (logged).
    """
    weights, source = read_network_weights(path, prefix)
    for module in into:
        optional = tuple(getattr(module, "optional_weights", ()))
        fresh = [k for k in module.state_dict() if optional and k.startswith(optional) and k not in weights]
        try:
            missing, unexpected = module.load_state_dict(weights, strict=not fresh)
            if fresh and (sorted(missing) != sorted(fresh) or unexpected):  # anything else off: not this network
                module.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(f"init_from: {path} does not fit this network: {str(err).splitlines()[0]} ...") from err
        if fresh:
            log.info("init_from: %s has no %s weights; they start at zero output (the network is unchanged)", path,
                     ", ".join(sorted({k.split(".")[0] for k in fresh})))
    log.info("initialised the network from %s (%s weights)", path, source)
    return source


class CodecFlowModule(L.LightningModule):
    """What `VSRModule` and `BaseModule` share: a frozen codec kept out of checkpoints, and one trained network
    with AdamW + warm-up and EMA weights.

    Subclasses set `codec`, `ema` (or None) and the network named by `network_attr`, and keep `lr`,
    `weight_decay`, `betas`, `warmup_steps` and `ema_decay` in their hyper-parameters.
    """

    network_attr: str = "network"
    checkpoint_excludes: tuple[str, ...] = ("codec.",)  # state-dict prefixes kept out of checkpoints

    @property
    def trained_network(self) -> nn.Module:
        return getattr(self, self.network_attr)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Pixels ``(B, 3, T, H, W)`` in [-1, 1] -> codec latent (fp32, outside autocast)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.codec.encode(x.float())

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:  # the step counter is already advanced: a pure function of progress
            ema_update(self.ema, self.trained_network, self.global_step, self.hparams.ema_decay)

    def configure_model(self) -> None:
        # Lightning's sharding hook: `gvr.lit.strategies.FSDP2Strategy` shards the trained network and its EMA by the
        # same plan (no rank holds a full EMA); every other strategy leaves the module whole.
        if self._trainer is not None and isinstance(self.trainer.strategy, FSDP2Strategy):
            self.trainer.strategy.shard([m for m in (self.trained_network, self.ema) if m is not None])

    def optimizer_params(self) -> list:
        """What AdamW steps: the trained network's parameters (subclasses may return parameter groups)."""
        return [p for p in self.trained_network.parameters() if p.requires_grad]

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_with_warmup(self.optimizer_params(), hp.lr, hp.weight_decay, hp.betas, hp.warmup_steps)

    def train(self, mode: bool = True):
        super().train(mode)
        self.codec.eval()  # frozen: never in training mode
        if self.ema is not None:
            self.ema.eval()
        return self

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The codec is frozen and rebuilt from its config (a VAE from its own path): keep its weights
        # out of every checkpoint.
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(self.checkpoint_excludes)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "state_dict" not in checkpoint:  # a sharded checkpoint: the strategy loaded the weights itself
            return
        checkpoint["state_dict"].update({f"codec.{k}": v for k, v in self.codec.state_dict().items()})
