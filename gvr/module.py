"""VSRModule: the SimpleGVR backbone trained with rectified flow on codec latents.

Lightning lives here and at the CLI only: the backbone is a pure ``nn.Module``, the objective and the
sampler are pure functions in :mod:`gvr.flow`, the codec is a frozen :class:`LatentCodec`.
"""

import copy
import math

import lightning as L
import torch
from torch import Tensor, nn

from gvr.codecs.base import LatentCodec
from gvr.flow import (
    TimestepSampler,
    UniformTimesteps,
    augment_condition,
    euler_timesteps,
    flow_matching_loss,
    interpolate,
    sample_euler,
)
from gvr.flow.tiled import tiled
from gvr.metrics.baselines import resize_video
from gvr.metrics.image import FramePSNR, FrameSSIM
from gvr.seeding import generator


class VSRModule(L.LightningModule):
    """Latent video super-resolution with rectified flow, noise-augmented condition and EMA weights.

    Args:
        backbone: the velocity network ``v(z_t, t, c, s)`` (e.g. ``gvr.models.SimpleGVR``).
        codec: the frozen latent codec shared by the LR condition and the HR target.
        timesteps: training sampler of the flow time ``t`` (default uniform).
        scale: super-resolution factor (HR size / LR size) that ``gvr upscale`` applies.
        s_range: training range of the condition noise level ``s`` (paper: [0.3, 0.6]).
        s_inference: the one fixed condition noise level used at inference.
        sample_steps: Euler steps at inference (paper: 50).
        sample_shift: time shift of the inference schedule (1 = uniform steps).
        val_sample_steps: Euler steps for validation samples (fewer keeps CPU validation fast).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear learning-rate warm-up steps.
        ema_decay: decay of the EMA weights used for validation and prediction (0 disables EMA).
        seed: seed of the training noise; noise is a function of (seed, step, rank), so resumes are exact.
    """

    def __init__(
        self,
        backbone: nn.Module,
        codec: LatentCodec,
        timesteps: TimestepSampler | None = None,
        scale: float = 2.5,
        s_range: tuple[float, float] = (0.3, 0.6),
        s_inference: float = 0.45,
        sample_steps: int = 50,
        sample_shift: float = 1.0,
        val_sample_steps: int = 10,
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        ema_decay: float = 0.999,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()  # under GVRCLI these are the config dicts: a checkpoint rebuilds everything
        if not 0 <= s_range[0] <= s_range[1] <= 1 or not 0 <= s_inference <= 1:
            raise ValueError(f"s_range {s_range} and s_inference {s_inference} must lie in [0, 1] with s_range ordered")
        want = getattr(backbone, "latent_channels", codec.latent_channels)
        if want != codec.latent_channels:
            raise ValueError(
                f"backbone.latent_channels={want} but the codec makes {codec.latent_channels}-channel latents: "
                "set model.backbone.init_args.latent_channels to match the codec"
            )
        self.backbone, self.codec = backbone, codec
        self.timesteps = timesteps if timesteps is not None else UniformTimesteps()
        # EMA copy: a buffer-like module outside the optimizer, saved in checkpoints so resumes are exact.
        self.ema = copy.deepcopy(backbone).requires_grad_(False).eval() if ema_decay > 0 else None
        self.val_psnr, self.val_ssim = FramePSNR(), FrameSSIM()
        self.val_psnr_bicubic, self.val_ssim_bicubic = FramePSNR(), FrameSSIM()

    # ---- helpers -------------------------------------------------------------------------------

    @property
    def inference_net(self) -> nn.Module:
        """EMA weights when kept, else the live backbone."""
        return self.ema if self.ema is not None else self.backbone

    def _generator(self, *keys: int) -> torch.Generator:
        return generator(self.hparams.seed, *keys, device=self.device)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Pixels ``(B, 3, T, H, W)`` in [-1, 1] -> codec latent (fp32, outside autocast)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.codec.encode(x.float())

    def flow_loss(self, hr: Tensor, lr: Tensor, g: torch.Generator) -> Tensor:
        """Rectified-flow loss of the backbone on one batch, all randomness drawn from ``g``."""
        z0, c = self.encode(hr), self.encode(lr)
        b = z0.shape[0]
        t = self.timesteps.sample(b, g, self.device)
        lo, hi = self.hparams.s_range
        s = lo + (hi - lo) * torch.rand(b, generator=g, device=self.device)
        eps = torch.randn(z0.shape, generator=g, device=self.device)
        c_s = augment_condition(c, s, torch.randn(c.shape, generator=g, device=self.device))
        v = self.backbone(interpolate(z0, eps, t), t, c_s, s)
        return flow_matching_loss(v, z0, eps)

    # ---- training --------------------------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.flow_loss(batch["hr"], batch["lr"], self._generator(self.global_step, self.global_rank))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["hr"].shape[0])
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self._update_ema()

    @torch.no_grad()
    def _update_ema(self) -> None:
        n = self.global_step  # the step counter is already advanced: a pure function of progress
        decay = min(self.hparams.ema_decay, (1 + n) / (10 + n))
        for e, p in zip(self.ema.parameters(), self.backbone.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - decay)
        for e, b in zip(self.ema.buffers(), self.backbone.buffers(), strict=True):
            e.copy_(b)

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.backbone.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, betas=tuple(hp.betas))
        warm = max(1, hp.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def train(self, mode: bool = True):
        super().train(mode)
        self.codec.eval()  # frozen: never in training mode
        if self.ema is not None:
            self.ema.eval()
        return self

    # ---- checkpoints ---------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The codec is frozen and rebuilt from its config (a VAE from its own path): keep its weights
        # out of every checkpoint.
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith("codec.")]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"].update({f"codec.{k}": v for k, v in self.codec.state_dict().items()})

    # ---- sampling ------------------------------------------------------------------------------------

    @torch.no_grad()
    def upscale_clip(
        self,
        lr: Tensor,
        size: tuple[int, int],
        steps: int | None = None,
        s: float | None = None,
        seed: int = 0,
        frame_offset: int = 0,
        tile: int | None = None,
        tile_overlap: int = 8,
    ) -> Tensor:
        """Super-resolve LR pixels ``(B, 3, T, h, w)`` to ``(B, 3, T, *size)`` pixels in [-1, 1].

        Any ``T``, ``h`` and ``w`` work: the clip is padded to what the codec accepts and the result is
        cropped. The initial noise of each latent frame is seeded by ``seed`` and the absolute index of
        its last pixel frame (``frame_offset`` + position), so overlapping chunks of a long video start
        from the same noise where they overlap. ``tile`` (in LR latent pixels) runs the network on
        overlapping spatial tiles blended at every step (:func:`gvr.flow.tiled.tiled`), bounding memory.
        """
        hp = self.hparams
        steps, s = steps or hp.sample_steps, hp.s_inference if s is None else s
        b, _, t, h, w = lr.shape
        padded, _ = self.codec.pad_to_valid(lr.float())
        c = self.encode(padded)
        # HR latent grid covering the padded LR clip at the requested pixel ratio; cropped after decoding.
        f = self.codec.spatial_factor
        hh, ww = (math.ceil(n * side / lr_side / f) for n, side, lr_side in zip(padded.shape[-2:], size, (h, w)))
        z = self._frame_noise((b, self.codec.latent_channels, c.shape[2], hh, ww), seed, frame_offset)
        s_vec = torch.full((b,), s, device=self.device)
        c_s = augment_condition(c, s_vec, self._frame_noise(c.shape, seed + 1, frame_offset))
        ts = euler_timesteps(steps, hp.sample_shift, device=self.device)
        net = self.inference_net
        velocity = tiled(net, tile, tile_overlap) if tile else net
        z0 = sample_euler(lambda x, tt, c, s: velocity(x, tt, c, s), z, ts, {"c": c_s, "s": s_vec})
        with torch.autocast(self.device.type, enabled=False):
            out = self.codec.decode(z0.float())
        return out[:, :, :t, : size[0], : size[1]].clamp(-1, 1)

    def _frame_noise(self, shape: tuple[int, ...], seed: int, frame_offset: int) -> Tensor:
        """Gaussian noise whose latent frame ``k`` depends only on (seed, its last pixel frame)."""
        b, c, t, h, w = shape
        tf = self.codec.temporal_factor
        frames = []
        for k in range(t):
            g = generator(seed, frame_offset + k * tf, device=self.device)
            frames.append(torch.randn((b, c, 1, h, w), generator=g, device=self.device))
        return torch.cat(frames, dim=2)

    # ---- validation / prediction ----------------------------------------------------------------

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        hr, lr = batch["hr"], batch["lr"]
        loss = self.flow_loss(hr, lr, self._generator(10**9, batch_idx))
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=hr.shape[0])
        size = tuple(hr.shape[-2:])
        out = self.upscale_clip(lr, size, steps=self.hparams.val_sample_steps, seed=batch_idx)
        bicubic = resize_video(lr, size, "bicubic")
        for metric, pred in ((self.val_psnr, out), (self.val_ssim, out), (self.val_psnr_bicubic, bicubic), (self.val_ssim_bicubic, bicubic)):
            metric.update(pred, hr)
        self.log_dict(
            {"val/psnr": self.val_psnr, "val/ssim": self.val_ssim,
             "val/psnr_bicubic": self.val_psnr_bicubic, "val/ssim_bicubic": self.val_ssim_bicubic},
            batch_size=hr.shape[0],
        )
        return {"output": out, "bicubic": bicubic, "hr": hr}

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Upscale one window of a video (see :class:`gvr.data.predict.VideoChunkDataset`)."""
        size = (int(batch["out_h"][0]), int(batch["out_w"][0]))
        out = self.upscale_clip(batch["lr"], size, frame_offset=int(batch["start"][0]))
        return {**batch, "output": out}
