"""Losses of one-step distillation (pure functions): pixel-space sharpness terms and the relativistic GAN.

- `frequency_loss`: L1 distance of the 2D spectra of each frame (the amplitude and phase of every spatial
  frequency; the focal-frequency loss of Jiang et al., ICCV 2021, without its adaptive weights). Pixel L1
  alone is minimised by the blurry mean; this term weighs the high frequencies that carry detail as much
  as the low ones.
- `gradient_loss`: L1 distance of the horizontal and vertical finite differences (edges).
- `grid_excess_loss`: how far the output's periodic token-seam pattern (`gvr.metrics.image.grid_energy`)
  exceeds the ground truth's; zero when the output has no more of it than the real frames.
- `feature_loss`: the relative squared distance of the student's hidden states to the teacher's, block by block
  (``||h_S - h_T||^2 / ||h_T||^2``, averaged over the blocks): feature-level distillation (FitNets, Romero et
  al., ICLR 2015), for a student that has the teacher's sizes and differs in its attention pattern.
- `relativistic_d_loss` / `relativistic_g_loss`: the relativistic pairing GAN loss
  ``softplus(-(D(real) - D(fake)))`` for the discriminator and its mirror for the generator (RpGAN,
  Jolicoeur-Martineau 2019; the form R3GAN and SeedVR2's APT train with).
- `approximate_r1`: SeedVR2's approximated R1 (and R2) penalty ``|| D(x) - D(x + sigma n) ||^2``, a finite
  difference in place of the gradient norm (no double backward), applied to real (R1) and fake (R2) inputs.
"""

import torch
from einops import rearrange
from torch import Tensor
from torch.nn import functional as F

from gvr.metrics.image import grid_energy


def frequency_loss(x: Tensor, y: Tensor) -> Tensor:
    """Mean ``|FFT2(x) - FFT2(y)|`` over the spatial frequencies of each frame of ``(B, C, T, H, W)`` videos (orthonormal FFT)."""
    if x.shape != y.shape:
        raise ValueError(f"frequency_loss: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    return (torch.fft.rfft2(x.float(), norm="ortho") - torch.fft.rfft2(y.float(), norm="ortho")).abs().mean()


def gradient_loss(x: Tensor, y: Tensor) -> Tensor:
    """Mean L1 distance of the vertical and horizontal finite differences of ``(..., H, W)`` images or videos."""
    if x.shape != y.shape:
        raise ValueError(f"gradient_loss: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    d = x.float() - y.float()
    return 0.5 * ((d[..., 1:, :] - d[..., :-1, :]).abs().mean() + (d[..., :, 1:] - d[..., :, :-1]).abs().mean())


def grid_excess_loss(x: Tensor, y: Tensor, period: int = 4) -> Tensor:
    """Mean ``relu(grid(x) - grid(y))`` over frames of ``(B, C, T, H, W)`` videos in [-1, 1], in 8-bit levels.

    ``grid`` is `gvr.metrics.image.grid_energy` on RGB (it sees only the high-pass, so the frames need no
    shift into [0, 1], only the halving of their range), with ``eps=1e-8`` so that its gradient stays finite
    on frames without any pattern.
    """
    if x.shape != y.shape:
        raise ValueError(f"grid_excess_loss: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")

    def grid(v: Tensor) -> Tensor:
        return grid_energy(rearrange(v.float(), "b c t h w -> (b t) c h w") * 0.5, period, eps=1e-8)

    with torch.no_grad():
        target = grid(y)
    return F.relu(grid(x) - target).mean()


def feature_loss(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """Mean over blocks of ``||s - t||^2 / ||t||^2`` for paired hidden states (each ``(B, N, D)``); scale-free, so
    a block whose residual stream is large weighs as much as a small one."""
    if len(student) != len(teacher) or not student:
        raise ValueError(f"feature_loss: {len(student)} student blocks against {len(teacher)} teacher blocks")
    terms = []
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape != t.shape:
            raise ValueError(f"feature_loss: block {i} shapes differ, {tuple(s.shape)} vs {tuple(t.shape)}")
        s, t = s.float(), t.float()
        terms.append((s - t).square().sum() / t.square().sum().clamp_min(1e-12))
    return torch.stack(terms).mean()


def relativistic_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss: real should score above its paired fake, ``softplus(fake - real)``."""
    return F.softplus(fake_logits - real_logits).mean()


def relativistic_g_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Generator loss: the fake should score above its paired real, ``softplus(real - fake)``."""
    return F.softplus(real_logits - fake_logits).mean()


def approximate_r1(discriminator, x: Tensor, sigma: float, g: torch.Generator | None = None, **kwargs) -> Tensor:
    """``mean || D(x) - D(x + sigma n) ||^2``: SeedVR2's finite-difference stand-in for the R1 / R2 gradient penalty."""
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    return (discriminator(x, **kwargs) - discriminator(x + sigma * noise, **kwargs)).float().square().mean()
