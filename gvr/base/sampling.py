"""Sampling with a :class:`BaseModel`: text-to-video from noise, and SDEdit-like refinement from ``alpha``.

Both are Euler integrations of the base model's flow ODE towards ``t = 0`` (:func:`gvr.flow.sample_euler`).
"""

import torch
from torch import Tensor

from gvr.base.model import BaseModel
from gvr.flow import euler_timesteps, interpolate, sample_euler


def _text(base: BaseModel, text: Tensor | None, batch: int) -> Tensor | None:
    return base.null_text(batch) if text is None else text


@torch.no_grad()
def refine_latent(
    base: BaseModel, c0: Tensor, alpha: Tensor, eps: Tensor, steps: int, text: Tensor | None = None
) -> Tensor:
    """Model-guided degradation: noise ``c0`` to level ``alpha`` and integrate the base model back to 0.

    ``c_alpha = (1 - alpha) c0 + alpha eps``, then ``steps`` Euler steps on ``alpha -> 0``, uniform in ``t``;
    ``alpha`` is ``(B,)`` and each sample follows its own schedule ``t_k = alpha (1 - k / steps)`` in one
    batched pass. A sample with ``alpha = 0`` never moves: the result is ``c0`` exactly. ``text`` defaults
    to the null prompt.
    """
    base.check_latent(c0)
    if eps.shape != c0.shape or alpha.shape != c0.shape[:1]:
        raise ValueError(f"refine_latent: eps {tuple(eps.shape)} must match c0 {tuple(c0.shape)}, alpha must be (B,)")
    if steps < 1 or not bool(((alpha >= 0) & (alpha <= 1)).all()):
        raise ValueError(f"refine_latent: need steps >= 1 and alpha in [0, 1], got steps={steps}, alpha={alpha.tolist()}")
    text = _text(base, text, c0.shape[0])
    alpha = alpha.to(c0.dtype)
    x = interpolate(c0, eps, alpha)
    for k in range(steps):
        t, t_next = alpha * (1 - k / steps), alpha * (1 - (k + 1) / steps)
        v = base.velocity(x, t, text)
        x = x + (t_next - t).view(-1, 1, 1, 1, 1) * v
    return x


@torch.no_grad()
def generate_latent(
    base: BaseModel, noise: Tensor, steps: int = 50, shift: float = 1.0, text: Tensor | None = None
) -> Tensor:
    """Text-to-video (or unconditional) sampling: integrate ``noise`` from ``t = 1`` to 0 in ``steps`` steps."""
    base.check_latent(noise)
    text = _text(base, text, noise.shape[0])
    cond = {} if text is None else {"text": text}
    return sample_euler(base.velocity, noise, euler_timesteps(steps, shift, device=noise.device), cond)
