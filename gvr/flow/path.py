"""Rectified-flow path and the conditional flow-matching loss (pure functions).

Time runs from data to noise: ``z_t = (1 - t) * z0 + t * eps``, so ``t = 1`` is pure noise and the
velocity along the straight path is ``v = eps - z0``. The network predicts ``v``.
"""

import torch
from torch import Tensor


def _expand(t: Tensor, like: Tensor) -> Tensor:
    """Broadcast a per-sample time ``(B,)`` against a batch tensor ``(B, ...)``."""
    return t.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def interpolate(z0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """Point of the straight path at time ``t``: ``(1 - t) z0 + t eps``."""
    t = _expand(t, z0)
    return (1 - t) * z0 + t * eps


def velocity_target(z0: Tensor, eps: Tensor) -> Tensor:
    """Velocity of the straight path from data ``z0`` to noise ``eps``."""
    return eps - z0


def predict_x0(z_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
    """Clean-sample estimate from a velocity prediction: ``x0_hat = z_t - t v``."""
    return z_t - _expand(t, z_t) * v


def flow_matching_loss(v_pred: Tensor, z0: Tensor, eps: Tensor) -> Tensor:
    """Mean squared error between the predicted and the true velocity ``eps - z0``."""
    return torch.mean((v_pred.float() - velocity_target(z0, eps).float()) ** 2)


def augment_condition(c: Tensor, s: Tensor, noise: Tensor) -> Tensor:
    """Noise augmentation of the LR condition: ``c_s = (1 - s) c + s eps'`` (same path as ``z_t``)."""
    return interpolate(c, noise, s)
