"""Euler sampler for the rectified-flow ODE, from noise (``t = 1``) to data (``t = 0``)."""

from collections.abc import Callable

import torch
from torch import Tensor

from gvr.flow.timesteps import shift_time


def euler_timesteps(steps: int, shift: float = 1.0, device: torch.device | str = "cpu") -> Tensor:
    """Decreasing times ``1 = t_0 > ... > t_steps = 0``, uniform then optionally shifted towards noise."""
    if steps < 1:
        raise ValueError(f"euler_timesteps: steps must be >= 1, got {steps}")
    return shift_time(torch.linspace(1.0, 0.0, steps + 1, device=device), shift)


@torch.no_grad()
def sample_euler(
    model: Callable[..., Tensor],
    x: Tensor,
    timesteps: Tensor,
    cond: dict | None = None,
    callback: Callable[[dict], None] | None = None,
) -> Tensor:
    """Integrate ``dx/dt = model(x, t, **cond)`` along ``timesteps`` with explicit Euler steps.

    ``x`` is the state at ``timesteps[0]`` (pure noise when that is 1). The condition stays fixed
    through all steps. ``callback`` receives ``{"i", "t", "t_next", "x", "v"}`` after each step (the
    timestep analysis uses it to read ``x0_hat = x - t v``).
    """
    cond = cond or {}
    for i in range(len(timesteps) - 1):
        t, t_next = timesteps[i], timesteps[i + 1]
        v = model(x, t.expand(x.shape[0]), **cond)
        if callback is not None:
            callback({"i": i, "t": t, "t_next": t_next, "x": x, "v": v})
        x = x + (t_next - t) * v
    return x
