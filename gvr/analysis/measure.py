"""Run a trained VSRModule along its Euler schedule and record how much high-frequency detail each step adds."""

from typing import Literal

import torch
from torch import Tensor

from gvr.analysis.timesteps import high_frequency_change
from gvr.flow import augment_condition, euler_timesteps, sample_euler
from gvr.flow.path import predict_x0
from gvr.ops.seeding import generator


@torch.no_grad()
def measure_changes(
    module,
    hr: Tensor,
    lr: Tensor,
    steps: int = 50,
    s: float | None = None,
    seed: int = 0,
    cutoff: float = 0.5,
    norm: Literal["l2", "l1"] = "l2",
    captions: list[str] | None = None,
) -> tuple[Tensor, Tensor]:
    """High-frequency change of ``x0_hat = z_t - t v`` between consecutive Euler steps on one batch.

    ``hr`` and ``lr`` are pixel clips ``(B, 3, T, H, W)`` in [-1, 1] (HR only gives the latent grid).
    The condition is noise-augmented at ``s`` (default: the module's ``s_inference``) and the schedule is
    the module's (``sample_shift``). Returns the times ``(steps + 1,)`` and the changes ``(steps - 1, B)``;
    only the previous estimate is kept, so memory does not grow with the number of steps. ``captions``
    feed a text-conditioned model (None: the null prompt).
    """
    s = module.objective.s_inference if s is None else s
    device = module.device
    c = module.encode(lr.to(device))
    shape = module.encode(hr.to(device)).shape
    b = shape[0]
    g = generator(seed, device=device)
    z = torch.randn(shape, generator=g, device=device)
    s_vec = torch.full((b,), float(s), device=device)
    c_s = augment_condition(c, s_vec, torch.randn(c.shape, generator=g, device=device))
    timesteps = euler_timesteps(steps, module.objective.sample_shift, device=device)
    changes: list[Tensor] = []
    previous: list[Tensor] = []

    def record(state: dict) -> None:
        x0_hat = predict_x0(state["x"], state["t"].expand(b), state["v"])
        if previous:
            changes.append(high_frequency_change(previous[0], x0_hat, cutoff, norm).cpu())
        previous[:] = [x0_hat]

    net, text = module.inference_net, module.text(captions, b)
    sample_euler(lambda x, t, c, s: net(x, t, c, s, *text), z, timesteps, {"c": c_s, "s": s_vec}, callback=record)
    return timesteps.cpu(), torch.stack(changes)
