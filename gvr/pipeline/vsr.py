"""VSRPipeline: a trained VSR model at inference, without Lightning.

The network (the EMA weights of a checkpoint), the frozen codec, the flow objective that solves from the source to
the data, the text encoder if any, and the settings the checkpoint was trained with (its factor or range of
factors, its clip length, its colour fix). ``gvr upscale`` runs it; `gvr.lit.VSRModule` builds one from its own
parts for validation, ``gvr test`` and ``gvr predict``, so that both paths are the same code.
"""

import itertools
import logging
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gvr.codecs.codec import LatentCodec
from gvr.flow.objective import FlowObjective
from gvr.models.text import TextEncoder
from gvr.ops.colorfix import ColorFix, color_fix_to_input
from gvr.ops.seeding import generator
from gvr.ops.tiling import tiled

log = logging.getLogger(__name__)

SCALE_TOLERANCE = 0.02  # how far (relative) a requested factor may lie from what a checkpoint was trained on


class VSRPipeline(nn.Module):
    """Upscale LR pixels (or latents) with a trained network.

    Args:
        net: the velocity (or data) network ``v(z_t, t, c, s)``, in eval mode.
        codec: the frozen latent codec of the LR condition and the HR output.
        objective: the flow (`gvr.flow.FlowObjective`): source, parametrisation, ``s`` and the Euler schedule.
        text_encoder: caption features for a backbone with ``text_dim``; None: no text.
        scale: the factor it serves by default (``data.scale`` of its training).
        scale_range: ``[low, high]``, the factors an any-scale model was trained on; None: ``scale`` only.
        train_frames: frames of a training clip (the temporal context a full-attention model gets).
        color_fix: the default colour correction of decoded outputs ("none", "wavelet" or "adain").
        seed: the training seed (kept for the record; sampling takes its own ``seed``).
    """

    def __init__(
        self,
        net: nn.Module,
        codec: LatentCodec,
        objective: FlowObjective,
        text_encoder: TextEncoder | None = None,
        scale: float = 2.5,
        scale_range: Sequence[float] | None = None,
        train_frames: int | None = None,
        color_fix: ColorFix = "none",
        seed: int = 0,
    ):
        super().__init__()
        self.net, self.codec, self.text_encoder, self.objective = net, codec, text_encoder, objective
        self.scale, self.train_frames, self.color_fix, self.seed = float(scale), train_frames, color_fix, seed
        self.scale_range = tuple(float(v) for v in scale_range) if scale_range is not None else None

    @property
    def inference_net(self) -> nn.Module:
        """The network that samples (the name `gvr.lit.VSRModule` uses for its EMA weights)."""
        return self.net

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (the CPU for a network without any)."""
        for tensor in itertools.chain(self.net.parameters(), self.net.buffers()):
            return tensor.device
        return torch.device("cpu")

    def check_scale(self, factor: float, force: bool = False) -> None:
        """Refuse a factor this checkpoint was not trained for: outside ``scale_range`` for an any-scale model, or
        more than `SCALE_TOLERANCE` away from ``scale`` for a single-scale one. ``force`` logs a warning instead."""
        low, high = self.scale_range or (self.scale, self.scale)
        if low / (1 + SCALE_TOLERANCE) <= factor <= high * (1 + SCALE_TOLERANCE):
            return
        trained = f"at x{low:g} only" if low == high else f"on factors x{low:g} to x{high:g}"
        message = (f"this checkpoint was trained {trained}; x{factor:.3g} lies outside"
                   + (" (an any-scale model: data.scale_range with a ratio_embedding backbone, configs/anyscale.yaml, "
                      "serves every factor of its range)" if low == high else ""))
        if not force:
            raise ValueError(message + "; --force-scale runs it anyway")
        log.warning("%s; running it anyway (--force-scale)", message)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Pixels ``(B, 3, T, H, W)`` in [-1, 1] -> codec latent (fp32, outside autocast)."""
        with torch.autocast(x.device.type, enabled=False):
            return self.codec.encode(x.float())

    def text(self, captions: Sequence[str] | None, batch: int) -> tuple:
        """``(features, mask)`` of the captions (None: the null prompt "" for each clip), or ``()`` without text."""
        if self.text_encoder is None:
            return ()
        return self.text_encoder(list(captions) if captions is not None else [""] * batch, self.device)

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
        captions: Sequence[str] | None = None,
        color_fix: ColorFix | None = None,
    ) -> Tensor:
        """Super-resolve LR pixels ``(B, 3, T, h, w)`` to ``(B, 3, T, *size)`` pixels in [-1, 1].

        Any ``T``, ``h`` and ``w`` work: the clip is padded to what the codec accepts and the result is
        cropped. LR maps to HR by the exact ratio ``size / (h, w)`` (the padding extends past the crop; it is
        never stretched onto the output). The initial noise of each latent frame is seeded by ``seed`` and
        the absolute index of its last pixel frame (``frame_offset`` + position), so overlapping chunks of a
        long video start from the same noise where they overlap. ``tile`` (in LR latent pixels) runs the
        network on overlapping spatial tiles blended at every step (:func:`gvr.ops.tiling.tiled`), bounding
        memory. ``captions`` (one per clip) feed a text-conditioned backbone; None is the null prompt.
        ``color_fix`` (None: the pipeline's ``color_fix``) corrects the output's colour against bicubic of ``lr``.
        """
        _, _, t, h, w = lr.shape
        padded, _ = self.codec.pad_to_valid(lr.float())
        c = self.encode(padded)
        ratio = (size[0] / h, size[1] / w)
        # HR latent grid covering the padded LR clip at the exact ratio; cropped to `size` after decoding.
        hh, ww = (math.ceil(n * r / self.codec.spatial_factor) for n, r in zip(padded.shape[-2:], ratio))
        z0 = self.upscale_latent(c, (hh, ww), steps, s, seed, frame_offset, tile, tile_overlap, captions,
                                 ratio=ratio, lr_pixels=padded)
        with torch.autocast(z0.device.type, enabled=False):
            out = self.codec.decode(z0.float())
        out = out[:, :, :t, : size[0], : size[1]].clamp(-1, 1)
        fix = self.color_fix if color_fix is None else color_fix
        return color_fix_to_input(out, lr, fix) if fix != "none" else out

    @torch.no_grad()
    def upscale_latent(
        self,
        c: Tensor,
        size: tuple[int, int],
        steps: int | None = None,
        s: float | None = None,
        seed: int = 0,
        frame_offset: int = 0,
        tile: int | None = None,
        tile_overlap: int = 8,
        captions: Sequence[str] | None = None,
        ratio: tuple[float, float] | None = None,
        lr_pixels: Tensor | None = None,
    ) -> Tensor:
        """Sample the HR latent ``(B, C, T, *size)`` conditioned on the LR latent ``c`` (no decode).

        This is the cascade's second stage: ``gvr generate`` feeds it the base model's latent directly.
        Arguments as in :meth:`upscale_clip`; ``size`` is the HR latent grid and ``ratio`` the HR / LR latent
        pixels per axis (None: ``size`` over ``c``'s grid, edge to edge). ``lr_pixels`` are the LR pixels that
        ``c`` encodes, if known (the pixel anchor then needs no decode).
        """
        b = c.shape[0]
        flow = self.objective
        anchor = flow.anchor(c.float(), size, self.codec, ratio, lr_pixels)
        shape = (b, self.codec.latent_channels, c.shape[2], *size)
        z = flow.source.start(anchor, self.frame_noise(shape, seed, frame_offset, c.device))
        net = tiled(self.net, tile, tile_overlap) if tile else self.net
        return flow.solve(net, z, anchor, c.float(), self.frame_noise(c.shape, seed + 1, frame_offset, c.device),
                          steps, s, self.text(captions, b), ratio)

    def frame_noise(self, shape: tuple[int, ...], seed: int, frame_offset: int, device: torch.device) -> Tensor:
        """Gaussian noise whose latent frame ``k`` depends only on (seed, its last pixel frame)."""
        b, c, t, h, w = shape
        tf = self.codec.temporal_factor
        frames = []
        for k in range(t):
            g = generator(seed, frame_offset + k * tf, device=device)
            frames.append(torch.randn((b, c, 1, h, w), generator=g, device=device))
        return torch.cat(frames, dim=2)

