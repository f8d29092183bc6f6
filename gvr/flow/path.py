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


def velocity_from_data(state: Tensor, x0_hat: Tensor, t: Tensor, t_min: float = 0.05) -> Tensor:
    """Velocity of a data ("x") prediction: ``(z_t - x0_hat) / max(t, t_min)``.

    A network that predicts the clean sample instead of the velocity (JiT, "Back to Basics: Let Denoising
    Generative Models Denoise", Li & He 2025) keeps a low-dimensional target even for large patches; trained
    through this map with the velocity loss, the loss is the data error weighted by ``1 / max(t, t_min)^2``.
    ``state`` and ``x0_hat`` must be in the same frame (both residuals of the anchor, or both absolute).
    """
    return (state - x0_hat) / _expand(t, state).clamp(min=t_min)
