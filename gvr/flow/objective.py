"""The flow objective: what a LightningModule trains and samples, apart from the network and Lightning.

k-diffusion's ``Denoiser`` is the model: one object owns the path, the draw of ``t``, ``s`` and the noise, the
parametrisation (velocity or data), the loss and the ODE solve; the network is an argument of every call,
so the same objective serves the live weights, the EMA weights, a tiled wrapper or a teacher. Both
LightningModules use it (`gvr.lit.VSRModule` with a condition, `gvr.lit.BaseModule` without).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from gvr.flow.euler import euler_timesteps, sample_euler
from gvr.flow.path import augment_condition, flow_matching_loss, interpolate, velocity_from_data, velocity_target
from gvr.flow.source import FlowSource
from gvr.flow.timesteps import TimestepSampler, UniformTimesteps

Prediction = Literal["velocity", "data"]


@dataclass
class FlowDraw:
    """The random part of one training batch: flow times ``t`` and condition levels ``s`` ``(B,)``, the path's
    noise ``eps`` (the HR latent's shape) and the condition's noise ``cond_noise`` (the LR latent's)."""

    t: Tensor
    s: Tensor
    eps: Tensor
    cond_noise: Tensor


class FlowObjective:
    """Rectified flow from the data ``z0`` (``t = 0``) to the source ``x1 = U(c) + sigma eps`` (``t = 1``).

    Args:
        timesteps: training sampler of ``t`` (None: uniform).
        source: where the flow starts (None: pure noise, the paper's).
        prediction: what the network outputs, "velocity" or "data" (converted by `velocity_from_data`).
        s_range: training range of the condition's noise level ``s``.
        s_inference: the one fixed ``s`` of sampling.
        sample_steps: Euler steps of sampling.
        sample_shift: time shift of the sampling schedule (1: uniform steps).
        temporal_weight: weight of a temporal term added to the loss: the mean square of the frame-to-frame
            change of the velocity error ``e = v - u`` over consecutive latent frames (0: off). It asks the
            error of frame t+1 to be that of frame t (no flicker of the added detail); the per-frame term
            alone lets it change freely between frames. Without ``motion`` (see `loss`) the change is taken at
            one screen position, ``e[t+1] - e[t]``; with it, along the ground truth's motion.
    """

    def __init__(
        self,
        timesteps: TimestepSampler | None = None,
        source: FlowSource | None = None,
        prediction: Prediction = "velocity",
        s_range: tuple[float, float] = (0.3, 0.6),
        s_inference: float = 0.45,
        sample_steps: int = 50,
        sample_shift: float = 1.0,
        temporal_weight: float = 0.0,
    ):
        if prediction not in ("velocity", "data"):
            raise ValueError(f"prediction must be 'velocity' or 'data', got {prediction!r}")
        if not 0 <= s_range[0] <= s_range[1] <= 1 or not 0 <= s_inference <= 1:
            raise ValueError(f"s_range {s_range} and s_inference {s_inference} must lie in [0, 1] with s_range ordered")
        self.timesteps = timesteps if timesteps is not None else UniformTimesteps()
        self.source = source if source is not None else FlowSource()
        self.prediction, self.s_range, self.s_inference = prediction, tuple(s_range), s_inference
        self.sample_steps, self.sample_shift = sample_steps, sample_shift
        if temporal_weight < 0:
            raise ValueError(f"temporal_weight must be >= 0, got {temporal_weight}")
        self.temporal_weight = temporal_weight

    # ---- one network call ---------------------------------------------------------------------------

    def velocity(self, net: Callable, x: Tensor, anchor: Tensor | None, t: Tensor, *args, **kwargs) -> Tensor:
        """The velocity at the path point ``x`` (source ``U(c)`` = ``anchor``): the network sees the source's
        input for ``x`` and its output is a velocity, or a data prediction converted into one."""
        state = self.source.network_input(x, anchor)
        out = net(state, t, *args, **kwargs)
        return out if self.prediction == "velocity" else velocity_from_data(state, out, t)

    def anchor(self, c: Tensor, size: tuple[int, int], codec, ratio: tuple[float, float] | None = None,
               lr_pixels: Tensor | None = None) -> Tensor | None:
        """``U(c)`` on the HR latent grid ``size`` in float32 (None for the pure-noise flow); see `FlowSource`."""
        with torch.autocast(c.device.type, enabled=False):
            return self.source.upsample(c, size, ratio, codec, lr_pixels)

    # ---- training -----------------------------------------------------------------------------------

    def draw(self, z0: Tensor, c: Tensor, g: torch.Generator) -> FlowDraw:
        """Draw ``t``, ``s``, ``eps`` and the condition's noise from ``g``, in that order."""
        b, dev = z0.shape[0], z0.device
        t = self.timesteps.sample(b, g, dev)
        lo, hi = self.s_range
        s = lo + (hi - lo) * torch.rand(b, generator=g, device=dev)
        eps = torch.randn(z0.shape, generator=g, device=dev)
        return FlowDraw(t, s, eps, torch.randn(c.shape, generator=g, device=dev))

    def loss(self, net: Callable, z0: Tensor, c: Tensor, anchor: Tensor | None, draw: FlowDraw, text: tuple = (),
             motion: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Flow-matching loss of ``net(x_t, t, c_s, s, *text)`` on the path from ``z0`` to ``x1`` at ``draw``,
        plus the temporal term when ``temporal_weight`` is set. ``motion`` = ``(grid, mask)``
        (`gvr.lit.motion.latent_motion`): the temporal term compares ``e[t]`` with ``e[t+1]`` warped onto frame
        ``t`` along the ground truth's flow, where the mask says the warp is valid."""
        x1 = self.source.start(anchor, draw.eps)
        c_s = augment_condition(c, draw.s, draw.cond_noise)
        v = self.velocity(net, interpolate(z0, x1, draw.t), anchor, draw.t, c_s, draw.s, *text)
        loss = flow_matching_loss(v, z0, x1)
        if self.temporal_weight and z0.shape[2] > 1:  # (b, c, T, h, w): the change of the error between frames
            error = v.float() - velocity_target(z0, x1).float()
            loss = loss + self.temporal_weight * temporal_change(error, motion)
        return loss

    # ---- sampling -----------------------------------------------------------------------------------

    @torch.no_grad()
    def solve(self, net: Callable, x1: Tensor, anchor: Tensor | None, c: Tensor, cond_noise: Tensor,
              steps: int | None = None, s: float | None = None, text: tuple = (),
              ratio: tuple[float, float] | None = None) -> Tensor:
        """Integrate the ODE from the source sample ``x1`` to ``t = 0`` with Euler steps (default ``sample_steps``),
        the condition ``c`` noise-augmented to the fixed level ``s`` (default ``s_inference``) by ``cond_noise``."""
        steps, s = steps or self.sample_steps, self.s_inference if s is None else s
        s_vec = torch.full((x1.shape[0],), float(s), device=x1.device)
        c_s = augment_condition(c, s_vec, cond_noise)

        def v(x: Tensor, t: Tensor, c: Tensor, s: Tensor) -> Tensor:
            return self.velocity(net, x, anchor, t, c, s, *text, ratio=ratio)

        return sample_euler(v, x1, euler_timesteps(steps, self.sample_shift, device=x1.device), {"c": c_s, "s": s_vec})


def temporal_change(error: Tensor, motion: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Mean square of the change of ``error`` ``(B, C, T, h, w)`` from each frame to the next: at one position, or
    along ``motion`` = ``(grid, mask)`` (frame ``t+1`` sampled at ``grid`` onto frame ``t``, counted where ``mask``)."""
    if motion is None:
        return error.diff(dim=2).pow(2).mean()
    grid, mask = motion
    b, ch, t, h, w = error.shape
    following = rearrange(error[:, :, 1:], "b c t h w -> (b t) c h w")
    warped = F.grid_sample(following, grid.to(error.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    warped = rearrange(warped, "(b t) c h w -> b c t h w", b=b)
    change = (error[:, :, :-1] - warped).pow(2) * mask
    return change.sum() / (mask.sum() * ch).clamp_min(1.0)


def path_loss(velocity: Callable[[Tensor, Tensor], Tensor], z0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """Flow-matching loss of ``velocity(x_t, t)`` on the straight path ``x_t = (1 - t) z0 + t x1``: the loss of
    every gvr flow (the VSR model with its condition, the base model without one)."""
    return flow_matching_loss(velocity(interpolate(z0, x1, t), t), z0, x1)
