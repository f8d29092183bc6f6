"""Steady the detail an upscaler adds, along the input's own motion: a recursive filter on the residual.

A per-window VSR model adds detail to the bicubic picture frame by frame; where the detail does not move
with the content it shows as shimmer, which E*warp (`gvr.metrics.temporal`) measures. `DetailStabilizer`
blends each frame's residual over bicubic, ``r_t = O_t - B_t``, with the previous *stabilised* residual
warped onto frame ``t`` along the optical flow of the input:

    S_0 = r_0,    S_t = (1 - a M) r_t + a M warp(S_{t-1}, F_{t -> t-1}),    O'_t = B_t + S_t

where ``a`` is the strength and ``M`` keeps the pixels whose flow passes the forward-backward check
(occlusions and pixels that leave the frame take the new residual alone). The flow is estimated on the LR
frames (what is known at inference; DIS, weight-free) and scaled to the output grid, so it costs two LR
flows per frame. Like a multi-frame filter it integrates the detail that agrees with the motion across
frames and lets what disagrees (the shimmer) average out; unlike shrinking the residual it keeps detail
that moves with the content. It is causal and holds one frame of state, so it streams; `reset` starts a new
scene (nothing is carried across a cut). Training-free: it works on any model's output, but it is tuned
nowhere but on held-out clips (docs/upscaling.md#temporal-consistency).
"""

import numpy as np
import torch

from gvr.data.video import frames_to_tensor, frames_to_uint8, tensor_to_frames
from gvr.ops.flow import dis_flow, non_occluded, warp
from gvr.ops.resize import resize_video


class DetailStabilizer:
    """``__call__(hr, lr)``: the stabilised HR frames of consecutive output frames ``hr`` ``(n, H, W, 3)`` and their
    LR input frames ``lr`` ``(n, h, w, 3)`` (uint8, or uint16 for both), in stream order; state carries across
    calls until `reset`.

    Args:
        strength: ``a`` in [0, 1): the weight of the warped previous residual (0: the output unchanged).
        preset: DIS preset of the flow ("ultrafast", "fast", "medium"; "fast" scored as well as "medium" on the
            bicubic HR frames and better than "medium" on small LR frames).
    """

    def __init__(self, strength: float = 0.85, preset: str = "fast"):
        if not 0 <= strength < 1:
            raise ValueError(f"DetailStabilizer: strength must be in [0, 1), got {strength}")
        self.strength, self.preset = float(strength), preset
        self.flow = dis_flow(preset) if strength > 0 else None
        self.reset()

    def reset(self) -> None:
        """Start a new scene: the next frame passes unchanged and becomes the state."""
        self.prev_lr: np.ndarray | None = None
        self.prev_residual: np.ndarray | None = None

    def hr_flow(self, lr_from: np.ndarray, lr_to: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The flow from LR frame ``lr_from`` to ``lr_to``, resized to the HR grid ``size`` and scaled to HR pixels."""
        import cv2

        flow = self.flow(frames_to_uint8(lr_from), frames_to_uint8(lr_to))
        (h, w), (hh, ww) = flow.shape[:2], size
        up = cv2.resize(flow, (ww, hh), interpolation=cv2.INTER_LINEAR)
        return up * np.array([ww / w, hh / h], np.float32)

    def __call__(self, hr: np.ndarray, lr: np.ndarray) -> np.ndarray:
        if len(hr) != len(lr):
            raise ValueError(f"DetailStabilizer: {len(hr)} output frames against {len(lr)} input frames")
        if self.strength == 0 or not len(hr):
            return hr
        depth = 16 if hr.dtype == np.uint16 else 8
        size = hr.shape[1:3]
        with torch.no_grad():
            base = resize_video(frames_to_tensor(lr)[None], size, "bicubic")[0]
        base = tensor_to_frames(base, depth).astype(np.float32)
        out = np.empty_like(hr)
        top = float(np.iinfo(hr.dtype).max)
        for k in range(len(hr)):
            residual = hr[k].astype(np.float32) - base[k]
            if self.prev_residual is not None:
                forward = self.hr_flow(lr[k], self.prev_lr, size)  # frame t -> t-1
                backward = self.hr_flow(self.prev_lr, lr[k], size)
                keep = non_occluded(forward, backward).astype(np.float32)[..., None] * self.strength
                previous, _ = warp(self.prev_residual, forward)
                residual = (1 - keep) * residual + keep * previous
            self.prev_lr, self.prev_residual = lr[k], residual
            out[k] = np.clip(np.rint(base[k] + residual), 0, top).astype(hr.dtype)
        return out
