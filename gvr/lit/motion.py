"""The ground truth's motion on the latent grid, for the flow objective's motion-compensated temporal term.

`latent_motion` estimates the optical flow from each HR frame ``t`` to ``t + 1`` (OpenCV DIS, as E*warp
does, `gvr.metrics.temporal`), masks occlusions by the forward-backward check, and brings both to the latent
grid of a codec with ``spatial_factor`` pixels per cell: a ``grid_sample`` grid that warps latent frame ``t+1``
onto frame ``t``, and a mask of the cells whose whole footprint is visible in both frames.
"""

import cv2
import numpy as np
import torch
from torch import Tensor

from gvr.ops.flow import dis_flow, non_occluded


def latent_motion(hr: Tensor, spatial_factor: int) -> tuple[Tensor, Tensor]:
    """``(grid, mask)`` for HR pixel clips ``(B, 3, T, H, W)`` in [-1, 1] and a codec of ``spatial_factor``.

    ``grid`` ``(B * (T - 1), h, w, 2)`` samples latent frame ``t + 1`` at ``x + F(x)`` (normalised for
    ``F.grid_sample(..., align_corners=False)``); ``mask`` ``(B, 1, T - 1, h, w)`` is 1 where the warp is valid.
    """
    b, _, t, height, width = hr.shape
    if t < 2:
        raise ValueError(f"latent_motion: need at least 2 frames, got {t}")
    f = spatial_factor
    h, w = height // f, width // f
    frames = ((hr.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    frames = frames.permute(0, 2, 3, 4, 1).cpu().numpy()  # (b, t, H, W, 3)
    flow = dis_flow()
    grids = np.empty((b, t - 1, h, w, 2), np.float32)
    masks = np.empty((b, t - 1, h, w), np.float32)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for i in range(b):
        for k in range(t - 1):
            forward, backward = flow(frames[i, k], frames[i, k + 1]), flow(frames[i, k + 1], frames[i, k])
            visible = non_occluded(forward, backward).astype(np.float32)
            small = cv2.resize(forward[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA) / f
            masks[i, k] = cv2.resize(visible[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA) > 0.999
            grids[i, k, ..., 0] = (2 * (xs + small[..., 0]) + 1) / w - 1
            grids[i, k, ..., 1] = (2 * (ys + small[..., 1]) + 1) / h - 1
    grid = torch.from_numpy(grids).reshape(b * (t - 1), h, w, 2).to(hr.device)
    mask = torch.from_numpy(masks).unsqueeze(1).to(hr.device)  # (b, 1, t - 1, h, w)
    return grid, mask
