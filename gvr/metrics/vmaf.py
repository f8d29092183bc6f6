"""VMAF (v0.6.1, the model vmaf-torch carries) on the 8-bit luma of pixel videos, as a torchmetrics Metric.

VMAF's motion feature of frame ``i`` looks at frames ``i - 1`` and ``i + 1`` of the *reference*, so a video
must be scored in order. ``stream=False``: each ``update`` holds whole videos. ``stream=True``: successive
``update`` calls are consecutive chunks of ONE video (batch 1); the last frame of a chunk waits for the next
chunk's first frame, and `compute` closes the video. Both give exactly vmaf-torch's whole-video scores:
per-frame motion2 = min(SAD to previous, SAD to next) of the blurred reference luma, 0 for the first frame
and SAD to the previous one for the last.
"""

from typing import Literal

import torch
from torch import Tensor
from torchmetrics import Metric

from gvr.metrics.image import to_uint8

# Luma weights (R, G, B) of the two usual matrices; Y = 16 + 219 / 255 * (w . RGB), limited range, as encoders write.
LUMA_WEIGHTS = {"bt709": (0.2126, 0.7152, 0.0722), "bt601": (0.299, 0.587, 0.114)}


def luma_255(x: Tensor, matrix: Literal["bt709", "bt601"] = "bt709") -> Tensor:
    """Video ``(B, 3, T, H, W)`` in [-1, 1] -> 8-bit limited-range luma ``(B, T, 1, H, W)`` as floats in 0..255.

    The RGB is first quantised to 8 bits like a saved video; Y is rounded to integers like a YUV plane.
    """
    rgb = to_uint8(x).float()
    y = 16.0 + (219.0 / 255.0) * torch.einsum("bcthw,c->bthw", rgb, rgb.new_tensor(LUMA_WEIGHTS[matrix]))
    return y.round().unsqueeze(2)


class VideoVMAF(Metric):
    """VMAF of distorted videos against references ``(B, 3, T, H, W)`` in [-1, 1], mean over frames; higher is better.

    The per-frame features (ADM, VIF at four scales, motion2) and the SVM are vmaf-torch's; scores are
    averaged over all frames seen (for clips of equal length: the mean over frames, then over videos).
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, stream: bool = False, luma: Literal["bt709", "bt601"] = "bt709", clip_score: bool = True,
                 neg: bool = False):
        """Args:
        stream: successive updates are consecutive chunks of one video (batch 1), closed by `compute`.
        luma: RGB -> Y matrix (gvr writes BT.709; use bt601 for SD sources), limited range.
        clip_score: clip each frame's score to [0, 100] as libvmaf does by default.
        neg: VMAF NEG (no enhancement gain) instead of the regular model.
        """
        super().__init__()
        from vmaf_torch import VMAF

        if luma not in LUMA_WEIGHTS:
            raise ValueError(f"VideoVMAF: luma must be one of {sorted(LUMA_WEIGHTS)}, got {luma!r}")
        self.stream, self.luma = stream, luma
        self.vmaf = VMAF(temporal_pooling=False, enable_motion=True, clip_score=clip_score, NEG=neg)
        self.vmaf.requires_grad_(False)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self._clear_stream()

    def _clear_stream(self) -> None:
        self._prev_blur: Tensor | None = None  # blurred reference luma of the last frame seen
        self._pending: tuple[Tensor, Tensor, Tensor, bool] | None = None  # (adm, vif, motion, is_first) of it

    def reset(self) -> None:
        super().reset()
        self._clear_stream()

    def _blur(self, ref: Tensor) -> Tensor:
        """The motion feature's blurred reference ``(N, 1, H, W)``, vmaf-torch's padding and 5-tap Gaussian."""
        from vmaf_torch.utils import fast_gaussian_blur, vmaf_pad

        motion = self.vmaf.motion
        return fast_gaussian_blur(vmaf_pad(ref, [(motion.kernel_size - 1) // 2] * 4), weight=motion.blur_win)

    def _frames(self, ref: Tensor, dist: Tensor) -> None:
        """Score consecutive frames ``(N, 1, H, W)`` of one video; the last one stays pending."""
        adm = self.vmaf.compute_adm_score(ref, dist)  # (n, 1)
        vif = self.vmaf.compute_vif_features(ref, dist)  # (n, 4)
        blur = self._blur(ref)
        previous = blur[:1] if self._prev_blur is None else self._prev_blur
        motion = (blur - torch.cat([previous, blur[:-1]])).abs().mean(dim=(-1, -2))  # (n, 1) SAD to the previous
        first = torch.zeros(len(ref), dtype=torch.bool, device=ref.device)
        first[0] = self._prev_blur is None
        if self._pending is not None:  # the previous chunk's last frame now has its successor
            adm, vif, motion = (torch.cat([p, x]) for p, x in zip(self._pending[:3], (adm, vif, motion)))
            first = torch.cat([first.new_tensor([self._pending[3]]), first])
        motion2 = torch.minimum(motion[:-1], motion[1:]).masked_fill(first[:-1, None], 0.0)
        self._add(adm[:-1], motion2, vif[:-1])
        self._pending = (adm[-1:], vif[-1:], motion[-1:], bool(first[-1]))
        self._prev_blur = blur[-1:]

    def _pending_score(self) -> Tensor | None:
        """Score of the pending last frame as the last of its video (motion2 = SAD to the previous frame)."""
        if self._pending is None:
            return None
        adm, vif, motion, first = self._pending
        return self.vmaf.predict(adm, torch.zeros_like(motion) if first else motion, vif)

    def _add(self, adm: Tensor, motion2: Tensor, vif: Tensor) -> None:
        if len(adm):
            scores = self.vmaf.predict(adm, motion2, vif)
            self.total += scores.double().sum()
            self.count += scores.numel()

    @torch.no_grad()
    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or preds.ndim != 5 or preds.shape[1] != 3:
            raise ValueError(f"VideoVMAF: expected two RGB videos (B, 3, T, H, W) of one shape, got "
                             f"{tuple(preds.shape)} and {tuple(target.shape)}")
        if self.stream and preds.shape[0] != 1:
            raise ValueError(f"VideoVMAF(stream=True): updates are chunks of one video, got a batch of {preds.shape[0]}")
        dist, ref = luma_255(preds, self.luma), luma_255(target, self.luma)  # (b, t, 1, h, w)
        for d, r in zip(dist, ref):
            self._frames(r, d)
            if not self.stream:  # each video ends with its update
                last = self._pending_score()
                self.total += last.double().sum()
                self.count += last.numel()
                self._clear_stream()

    def compute(self) -> Tensor:
        last = self._pending_score()  # an open stream's last frame (not added: compute changes no state)
        total = self.total + (0.0 if last is None else last.double().sum())
        count = self.count + (0 if last is None else last.numel())
        return (total / count).float()

    def per_frame(self, preds: Tensor, target: Tensor) -> Tensor:
        """vmaf-torch's own whole-video per-frame scores ``(T,)`` of one video pair ``(3, T, H, W)`` (a reference)."""
        dist, ref = (luma_255(v[None], self.luma)[0] for v in (preds, target))  # (t, 1, h, w)
        with torch.no_grad():
            return self.vmaf(ref, dist).flatten()
