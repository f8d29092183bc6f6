"""Temporal consistency of an upscaled video against its ground truth: the warping error and a flicker score.

Per-frame metrics (PSNR, SSIM, VMAF, the grid) cannot see flicker: a video whose frames are each good but
disagree with one another scores as well as a steady one. Two measures look at consecutive frames:

- **E*warp** (`WarpError`), the warping error of Lai et al., *Learning Blind Video Temporal Consistency*
  (ECCV 2018; `evaluate_WarpError.py` of fast_blind_video_consistency), as VSR papers report it with the
  flow taken from the *ground truth* (the star): for each pair ``(t, t+1)`` the flow ``F`` from reference
  frame ``t`` to ``t+1`` is estimated, output frame ``t+1`` is warped back onto ``t`` along it, and

      E_t = sum_x M(x) * sum_c (O_t(x) - O_{t+1}(x + F(x)))^2 / sum_x M(x)

  with RGB in [0, 1]; ``M`` keeps pixels whose flow stays inside the frame and passes the forward-backward
  consistency check (occlusions masked). The video's score is the mean of ``E_t`` over its pairs, reported
  times 1000 (papers' "x 10^-3"). Lower is steadier; the ground truth itself scores near zero only where
  the flow is right, so compare methods with one flow (DIS here, RAFT where its weights are given).
- **Flicker** (`Flicker`): the temporal change of the output against that of the reference,
  ``mean_x |(O_{t+1} - O_t) - (R_{t+1} - R_t)|`` on 8-bit BT.709 luma (0..255), averaged over pairs. It
  needs no flow: a static or steadily moving reference changes as the output should; 0 for an output whose
  frames differ from the reference by one fixed error.

Both are torchmetrics objects fed ``(B, 3, T, H, W)`` videos in [-1, 1] like the others, and both stream:
with ``stream=True`` successive updates are consecutive chunks of ONE video (the pair across two chunks is
counted), as `gvr.metrics.registry.score_videos` feeds them.
"""

from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from gvr.metrics.image import to_uint8
from gvr.metrics.vmaf import luma_255
from gvr.metrics.weights import WeightFile, resolve_weights
from gvr.ops.flow import ALPHA_1, ALPHA_2, Flow, dis_flow, non_occluded, warp  # noqa: F401  (re-exported)

RAFT_WEIGHTS = WeightFile(
    "raft_large_C_T_SKHT_V2-ff5fadd5.pth", "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth"
)
RAFT_MIN_SIDE = 128


def raft_flow(weights: str, device: str | torch.device = "cpu", iters: int = 12) -> Flow:
    """torchvision's RAFT-large (its C+T+S+K+H weights, from the local file ``weights``) as a `Flow`."""
    import torch.nn.functional as F
    from torchvision.models.optical_flow import raft_large

    from gvr.metrics.weights import load_checkpoint

    net = raft_large(weights=None)
    net.load_state_dict(load_checkpoint(weights, key=None))
    net.eval().requires_grad_(False).to(device)

    @torch.no_grad()
    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        # RAFT needs sides divisible by 8 and at least 128 (its correlation pyramid): pad right and bottom
        pad = (0, max(RAFT_MIN_SIDE, w + -w % 8) - w, 0, max(RAFT_MIN_SIDE, h + -h % 8) - h)
        x, y = (F.pad(torch.from_numpy(f).permute(2, 0, 1)[None].float().div(127.5).sub(1), pad, mode="replicate")
                for f in (a, b))
        out = net(x.to(device), y.to(device), num_flow_updates=iters)[-1][0, :, :h, :w]  # (2, h, w), x then y
        return out.permute(1, 2, 0).cpu().numpy()

    return flow


def warp_error_pair(out_t: np.ndarray, out_next: np.ndarray, ref_t: np.ndarray, ref_next: np.ndarray,
                    flow: Flow) -> float:
    """``E_t`` of one pair of uint8 RGB frames ``(H, W, 3)``, the flow from the reference pair (not times 1000)."""
    forward, backward = flow(ref_t, ref_next), flow(ref_next, ref_t)
    mask = non_occluded(forward, backward)
    warped, _ = warp(out_next.astype(np.float32) / 255.0, forward)
    diff = np.sum((out_t.astype(np.float32) / 255.0 - warped) ** 2, axis=-1)
    kept = mask.sum()
    return float(diff.mean() if kept == 0 else (diff * mask).sum() / kept)  # all occluded: Lai et al. use every pixel


class _PairMetric(Metric):
    """A mean over consecutive frame pairs of ``(output, reference)`` videos, optionally streamed."""

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, stream: bool = False):
        super().__init__()
        self.stream = stream
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self._last: tuple[Tensor, Tensor] | None = None  # (output, reference) last frame of the previous chunk

    def reset(self) -> None:
        super().reset()
        self._last = None

    def _prepare(self, video: Tensor) -> Tensor:
        """What the pair score reads, per frame: ``(B, T, ...)``."""
        raise NotImplementedError

    def _pairs(self, out: Tensor, ref: Tensor) -> Tensor:
        """Scores ``(B, T - 1)`` of consecutive frames of prepared ``(B, T, ...)`` videos."""
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or preds.ndim != 5:
            raise ValueError(f"{type(self).__name__}: expected equal (B, 3, T, H, W) videos, got "
                             f"{tuple(preds.shape)} and {tuple(target.shape)}")
        out, ref = self._prepare(preds), self._prepare(target)
        if self.stream:
            if out.shape[0] != 1:
                raise ValueError(f"{type(self).__name__}(stream=True) takes one video at a time, got a batch of {out.shape[0]}")
            if self._last is not None:
                out, ref = torch.cat([self._last[0], out], 1), torch.cat([self._last[1], ref], 1)
            self._last = (out[:, -1:], ref[:, -1:])
        if out.shape[1] < 2:
            return
        scores = self._pairs(out, ref)
        self.total += scores.double().sum().cpu()
        self.count += scores.numel()

    def compute(self) -> Tensor:
        if self.count == 0:
            raise ValueError(f"{type(self).__name__}: no frame pair seen (a video needs at least 2 frames)")
        return (self.total / self.count).float()


class WarpError(_PairMetric):
    """E*warp x 1000 of output videos against references ``(B, 3, T, H, W)`` in [-1, 1], mean over frame pairs.

    Args:
        flow: "dis" (OpenCV DIS, medium preset, no weights) or "raft" (torchvision RAFT-large, ``weights``).
        weights: RAFT's weight file, or a folder holding it (only with ``flow="raft"``).
        stream: successive updates are consecutive chunks of one video (batch 1).
        flow_fn: a flow of your own, ``(frame t, frame t+1) -> (H, W, 2)`` (overrides ``flow``; tests).
    """

    def __init__(self, flow: Literal["dis", "raft"] = "dis", weights: str | None = None, stream: bool = False,
                 flow_fn: Flow | None = None):
        super().__init__(stream)
        if flow not in ("dis", "raft"):
            raise ValueError(f"WarpError: flow must be 'dis' or 'raft', got {flow!r}")
        if flow_fn is None:
            flow_fn = raft_flow(str(resolve_weights("ewarp_raft", RAFT_WEIGHTS, weights))) if flow == "raft" else dis_flow()
        self.flow_fn = flow_fn

    def _prepare(self, video: Tensor) -> Tensor:
        return to_uint8(video).permute(0, 2, 3, 4, 1).cpu()  # (b, t, h, w, 3) uint8

    def _pairs(self, out: Tensor, ref: Tensor) -> Tensor:
        o, r = out.numpy(), ref.numpy()
        scores = [[warp_error_pair(o[b, t], o[b, t + 1], r[b, t], r[b, t + 1], self.flow_fn) for t in range(o.shape[1] - 1)]
                  for b in range(o.shape[0])]
        return torch.tensor(scores, dtype=torch.float64) * 1000.0


class Flicker(_PairMetric):
    """Mean |temporal change of the output - that of the reference| on 8-bit BT.709 luma (0..255), over frame pairs.

    Args:
        stream: successive updates are consecutive chunks of one video (batch 1).
    """

    def _prepare(self, video: Tensor) -> Tensor:
        return luma_255(video)[:, :, 0]  # (b, t, h, w) floats, integer-valued

    def _pairs(self, out: Tensor, ref: Tensor) -> Tensor:
        change = out.diff(dim=1) - ref.diff(dim=1)  # (b, t - 1, h, w)
        return change.abs().mean(dim=(2, 3))
