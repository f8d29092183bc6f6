"""BaseModule: trains gvr's own base model (a :class:`LatentDiT`) as a latent video generator with flow matching.

``gvr base fit --config configs/base.yaml``. The clips are the data module's low-resolution clips (the
``lr`` side of each pair, made with a clean bicubic downsample in ``configs/base.yaml``): the base model
learns the distribution the cascade's first stage produces, in the codec's latent space. Lightning at the
edges only: the network is the pure :class:`LatentDiT`, the loss and sampler come from :mod:`gvr.flow`.
"""

from typing import Literal

import torch
from torch import Tensor

from gvr.base.model import BaseModel
from gvr.base.sampling import generate_latent
from gvr.codecs.codec import LatentCodec
from gvr.flow import TimestepSampler, UniformTimesteps
from gvr.flow.objective import path_loss
from gvr.lit.flow_module import CodecFlowModule, ema_copy
from gvr.ops.seeding import generator


class BaseModule(CodecFlowModule):
    """Flow-matching training of a base video generator on codec latents, with EMA weights.

    Args:
        network: the base model to train (e.g. ``gvr.base.LatentDiT``).
        codec: the frozen latent codec; must be the VSR model's codec for the cascade to fit together.
        timesteps: training sampler of the flow time ``t`` (default uniform).
        clip_key: which clip of each data item to learn: ``lr`` (the base resolution) or ``hr``.
        sample_steps: Euler steps of the validation samples and the default of ``gvr generate``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear learning-rate warm-up steps.
        ema_decay: decay of the EMA weights used for sampling (0 disables EMA).
        seed: seed of the training noise (a function of (seed, step, rank): resumes are exact).
    """

    def __init__(
        self,
        network: BaseModel,
        codec: LatentCodec,
        timesteps: TimestepSampler | None = None,
        clip_key: Literal["lr", "hr"] = "lr",
        sample_steps: int = 50,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 100,
        ema_decay: float = 0.995,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        if network.latent_channels != codec.latent_channels:
            raise ValueError(
                f"network.latent_channels={network.latent_channels} but the codec makes {codec.latent_channels}-channel "
                "latents: set model.network.init_args.latent_channels to match the codec"
            )
        self.network, self.codec = network, codec
        self.timesteps = timesteps if timesteps is not None else UniformTimesteps()
        self.ema = ema_copy(network, ema_decay)

    @property
    def base_model(self) -> BaseModel:
        """The network used for sampling: EMA weights when kept."""
        return self.ema if self.ema is not None else self.network

    def flow_loss(self, c0: Tensor, g: torch.Generator) -> Tensor:
        """Rectified-flow loss on clean latents ``c0``, all randomness drawn from ``g``."""
        t = self.timesteps.sample(c0.shape[0], g, self.device)
        eps = torch.randn(c0.shape, generator=g, device=self.device)
        text = self.network.null_text(c0.shape[0])
        return path_loss(lambda x, tt: self.network.velocity(x, tt, text), c0, eps, t)  # pure noise at t = 1

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        c0 = self.encode(batch[self.hparams.clip_key])
        loss = self.flow_loss(c0, generator(self.hparams.seed, self.global_step, self.global_rank, device=self.device))
        self.log("train/loss", loss, prog_bar=True, batch_size=c0.shape[0])
        return loss

    @torch.no_grad()
    def sample(self, shape: tuple[int, ...], steps: int | None = None, seed: int = 0) -> Tensor:
        """Generate latents of ``shape`` ``(B, C, T, h, w)`` from seeded noise with the EMA weights."""
        noise = torch.randn(shape, generator=generator(seed, device=self.device), device=self.device)
        return generate_latent(self.base_model, noise, steps or self.hparams.sample_steps)

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        real = batch[self.hparams.clip_key]
        c0 = self.encode(real)
        loss = self.flow_loss(c0, generator(self.hparams.seed, 10**9, batch_idx, device=self.device))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=c0.shape[0])
        with torch.autocast(self.device.type, enabled=False):
            fake = self.codec.decode(self.sample(tuple(c0.shape), seed=batch_idx).float())
        return {"real": real, "generated": fake[..., : real.shape[-2], : real.shape[-1]].clamp(-1, 1)}
