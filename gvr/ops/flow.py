"""Optical flow on frames, weight-free: OpenCV's DIS, backward warping and the forward-backward occlusion check.

Shared by the temporal metrics (`gvr.metrics.temporal`: E*warp), the motion-compensated training term
(`gvr.lit.motion`) and the detail stabiliser of inference (`gvr.inference.stabilize`); numpy and OpenCV only.
"""

from collections.abc import Callable
from typing import Literal

import numpy as np

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (uint8 RGB frame t, frame t+1) -> (H, W, 2) flow t -> t+1

# Lai et al.'s (after Sundaram et al.) forward-backward consistency: occluded where
# |F(x) + B(x + F(x))|^2 > ALPHA_1 (|F(x)|^2 + |B(x + F(x))|^2) + ALPHA_2.
ALPHA_1, ALPHA_2 = 0.01, 0.5



def dis_flow(preset: Literal["ultrafast", "fast", "medium"] = "medium") -> Flow:
    """OpenCV's DIS optical flow (weight-free, CPU) on the frames' grey levels, as a `Flow`."""
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    dis = cv2.DISOpticalFlow_create(presets[preset])

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        grey_a, grey_b = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b))
        return dis.calc(grey_a, grey_b, None)

    return flow


def warp(frame: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``frame(x + flow(x))`` by bilinear sampling, and where ``x + flow(x)`` lies inside the frame.

    ``frame`` is ``(H, W, C)`` float32, ``flow`` ``(H, W, 2)`` in pixels (x, then y).
    """
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    out = cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return out.reshape(frame.shape), inside


def non_occluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of frame ``t`` whose flow to ``t+1`` lands inside ``t+1`` and comes back (the consistency check)."""
    back, inside = warp(backward.astype(np.float32), forward)
    err = np.sum((forward + back) ** 2, axis=-1)
    bound = ALPHA_1 * (np.sum(forward**2, axis=-1) + np.sum(back**2, axis=-1)) + ALPHA_2
    return inside & (err <= bound)
