"""Flow-based degradation: the motion blur and ghosting of base-model output, added to real video (pixel space).

For each frame t >= 1 (frame 0 stays as it is), with the flow from frame t back to frame t-1 (DIS, OpenCV):

1. motion mask: flow magnitude above a threshold, cleaned by a morphological opening;
2. ghosting: elliptical regions centred on moving pixels take colours of the previous frame, sampled with
   Gaussian jitter around the flow-matched positions, blended with a weight that falls off from the centre;
3. motion blur: block by block, a line kernel along the block's mean flow, longer and stronger the faster
   the block moves.

Only pixels inside the motion mask change, so static regions stay bit-identical. Flow and colours come from
the clean input frames: a frame's degradation depends on it and its predecessor alone, never on earlier
degraded frames.
"""

import math
from typing import Literal, NoReturn

import cv2
import numpy as np
import torch
from einops import rearrange

from gvr.data.degradations.degradation import Degradation, check_input
from gvr.ops.resize import ResizeMode, resize

FlowPreset = Literal["ultrafast", "fast", "medium"]
PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# DIS picks its coarsest pyramid level from the frame size; when that falls below the preset's finest level
# (short or small frames, e.g. 16x101) OpenCV 4.x / 5.0 crash with a segfault. Frames are edge-padded to
# this side length for the flow, which keeps the coarsest level >= the finest for every preset.
MIN_FLOW_SIDE = 96
REMAP_COLS = 4096  # cv2.remap takes maps below 32767 rows and columns: point lists are folded into this width


def backward_flow(dis: cv2.DISOpticalFlow, cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) float32 (dx, dy) from grey uint8 frame ``cur`` (H, W) to ``prev``: cur(p) ~ prev(p + flow(p))."""
    h, w = cur.shape
    pad = ((0, max(MIN_FLOW_SIDE - h, 0)), (0, max(MIN_FLOW_SIDE - w, 0)))
    if pad[0][1] or pad[1][1]:
        cur, prev = np.pad(cur, pad, mode="edge"), np.pad(prev, pad, mode="edge")
    return np.ascontiguousarray(dis.calc(cur, prev, None)[:h, :w])


def motion_mask(flow: np.ndarray, threshold: float, open_size: int) -> np.ndarray:
    """Bool (H, W): flow magnitude > ``threshold`` px, opened with a disc of diameter ``open_size`` (<= 1: none)."""
    mask = (np.hypot(flow[..., 0], flow[..., 1]) > threshold).astype(np.uint8)
    if open_size > 1:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_size, open_size))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, disc)
    return mask.astype(bool)


def ellipse_weights(
    size: tuple[int, int], centres: np.ndarray, axes: np.ndarray, angles: np.ndarray, strengths: np.ndarray
) -> np.ndarray:
    """Blend weights (H, W) float32: ``strength * (1 - d^2)`` inside each ellipse, the maximum where they overlap.

    ``centres`` (N, 2) are (y, x) pixels, ``axes`` (N, 2) the semi-axes in px, ``angles`` (N,) the rotation of the
    first axis (rad, y down), and ``d`` the normalised distance from the centre (1 on the ellipse's border).
    """
    h, w = size
    weights = np.zeros(size, np.float32)
    for (cy, cx), (a, b), angle, strength in zip(centres, axes, angles, strengths):
        r = math.ceil(max(a, b))
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
        dy, dx = np.ogrid[y0 - cy : y1 - cy, x0 - cx : x1 - cx]
        u = dx * math.cos(angle) + dy * math.sin(angle)  # along the first axis
        v = dy * math.cos(angle) - dx * math.sin(angle)  # along the second axis
        falloff = strength * np.clip(1 - (u / a) ** 2 - (v / b) ** 2, 0, None)
        np.maximum(weights[y0:y1, x0:x1], falloff, out=weights[y0:y1, x0:x1])
    return weights


def sample_points(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, C) of ``image`` (H, W, C) float32 at points ``x``, ``y`` (N,), edges replicated."""
    n = x.size
    rows = -(-n // REMAP_COLS)
    fold = lambda z: np.pad(z.astype(np.float32), (0, rows * REMAP_COLS - n)).reshape(rows, REMAP_COLS)  # noqa: E731
    samples = cv2.remap(image, fold(x), fold(y), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return samples.reshape(rows * REMAP_COLS, -1)[:n]


def ghost(
    cur: np.ndarray, prev: np.ndarray, flow: np.ndarray, weights: np.ndarray, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Blend colours of ``prev`` into ``cur`` (H, W, 3) float32 by ``weights`` (H, W); zero weight: exact same bits.

    The colour for pixel p is sampled from ``prev`` at p + flow(p) + N(0, sigma^2) (independent per pixel and axis).
    """
    ys, xs = np.nonzero(weights)
    out = cur.copy()
    if ys.size == 0:
        return out
    jitter = rng.normal(0.0, sigma, size=(2, ys.size)).astype(np.float32)
    colours = sample_points(prev, xs + flow[ys, xs, 0] + jitter[0], ys + flow[ys, xs, 1] + jitter[1])
    here = cur[ys, xs]
    out[ys, xs] = here + weights[ys, xs, None] * (colours - here)
    return out


def line_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised (length, length) float32 kernel: an anti-aliased line through its centre at ``angle`` (rad)."""
    line = np.zeros((length, length), np.float32)
    line[length // 2] = 1
    centre = (length - 1) / 2
    rotation = cv2.getRotationMatrix2D((centre, centre), -math.degrees(angle), 1.0)  # OpenCV turns counter-clockwise
    kernel = cv2.warpAffine(line, rotation, (length, length), flags=cv2.INTER_LINEAR)
    return kernel / kernel.sum()


def block_motion_blur(
    frame: np.ndarray,
    flow: np.ndarray,
    mask: np.ndarray,
    block: int,
    threshold: float,
    length_gain: float,
    length_range: tuple[int, int],
    strength_gain: float,
    strength_max: float,
) -> np.ndarray:
    """Blur ``frame`` (H, W, 3) float32 along the motion, block by block, inside ``mask`` (H, W) only.

    A block whose mean flow over its moving pixels is longer than ``threshold`` px (averaging over the whole block
    would let its static part dilute a small object's motion) is convolved, with a margin of context then cropped,
    with a line kernel along that flow, of the odd length nearest ``length_gain * |flow|`` (clipped to
    ``length_range``), and blended with the block at weight ``min(strength_gain * |flow|, strength_max)``.
    """
    h, w = mask.shape
    starts_y, starts_x = np.arange(0, h, block), np.arange(0, w, block)
    block_sum = lambda x: np.add.reduceat(np.add.reduceat(x, starts_y, axis=0), starts_x, axis=1)  # noqa: E731
    counts = block_sum(mask.astype(np.float32))  # (by, bx) moving pixels
    means = block_sum(flow * mask[..., None]) / np.maximum(counts, 1)[..., None]  # (by, bx, 2)
    speeds = np.hypot(means[..., 0], means[..., 1])
    out = frame.copy()
    for by, bx in zip(*np.nonzero(speeds > threshold)):
        speed, (dx, dy) = speeds[by, bx], means[by, bx]
        length = int(np.clip(2 * math.floor(length_gain * speed / 2) + 1, *length_range))  # odd: a centred line
        m = length // 2
        y0, x0 = starts_y[by], starts_x[bx]
        y1, x1 = min(y0 + block, h), min(x0 + block, w)
        cy0, cx0 = max(y0 - m, 0), max(x0 - m, 0)  # context the kernel reaches
        region = frame[cy0 : min(y1 + m, h), cx0 : min(x1 + m, w)]
        blurred = cv2.filter2D(region, -1, line_kernel(length, math.atan2(dy, dx)), borderType=cv2.BORDER_REFLECT_101)
        blurred = blurred[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
        original = frame[y0:y1, x0:x1]
        alpha = min(strength_gain * speed, strength_max)
        out[y0:y1, x0:x1] = np.where(mask[y0:y1, x0:x1, None], original + alpha * (blurred - original), original)
    return out


class FlowDegradation(Degradation):
    """Motion-dependent ghosting and blur like a text-to-video base model's, then a resize (stage-2 training pairs).

    Distances are in pixels of the input frames. ``degrade_frames`` keeps the input resolution (uint8 frames);
    ``__call__`` degrades an HR clip and resizes it to the LR size. DIS flow is reproducible on any number of
    OpenCV threads (its spatial propagation runs in a fixed number of stripes), so the caller's
    ``cv2.setNumThreads`` changes the speed, never the result.

    Args:
        flow_preset: DIS optical-flow preset (ultrafast / fast / medium: slower, more accurate flow).
        motion_threshold: flow magnitude, in px per frame, above which a pixel (and a block's mean) counts as moving.
        mask_open_size: diameter in px of the disc that opens the motion mask (drops specks); 0 or 1: no opening.
        ellipse_count: range of the number of ghosting ellipses per frame (0 allowed).
        ellipse_axes: range of an ellipse's semi-axes as a fraction of the frame's shorter side.
        ghost_strength: range of an ellipse's blend weight at its centre (falls to 0 at its border as 1 - d^2).
        ghost_sigma: standard deviation in px of the jitter around the flow-matched position a colour is taken from.
        blur_block_size: side in px of the blocks that each get one motion-blur kernel.
        blur_length_gain: range of the kernel length per px of block motion, drawn once per clip.
        blur_length: range of the kernel length in px (odd bounds; 1 leaves a block sharp).
        blur_strength_gain: blend weight of the blurred block per px of block motion.
        blur_strength_max: cap of that blend weight, in [0, 1].
        resize_mode: interpolation of the final resize to the LR size (``__call__`` only).
        resize_antialias: low-pass bicubic / bilinear downsampling.
    """

    def __init__(
        self,
        flow_preset: FlowPreset = "fast",
        motion_threshold: float = 1.0,
        mask_open_size: int = 5,
        ellipse_count: tuple[int, int] = (1, 4),
        ellipse_axes: tuple[float, float] = (0.05, 0.25),
        ghost_strength: tuple[float, float] = (0.3, 0.8),
        ghost_sigma: float = 1.5,
        blur_block_size: int = 32,
        blur_length_gain: tuple[float, float] = (1.0, 2.0),
        blur_length: tuple[int, int] = (3, 31),
        blur_strength_gain: float = 0.15,
        blur_strength_max: float = 0.9,
        resize_mode: ResizeMode = "bicubic",
        resize_antialias: bool = True,
    ):
        def fail(name: str, value: object, must: str) -> NoReturn:
            raise ValueError(f"FlowDegradation: {name} must be {must}, got {value!r}")

        if flow_preset not in PRESETS:
            fail("flow_preset", flow_preset, f"one of {sorted(PRESETS)}")
        if resize_mode not in ("bicubic", "bilinear", "area"):
            fail("resize_mode", resize_mode, "bicubic, bilinear or area")
        scalars = dict(motion_threshold=(motion_threshold, 0, math.inf), mask_open_size=(mask_open_size, 0, math.inf),
                       ghost_sigma=(ghost_sigma, 0, math.inf), blur_block_size=(blur_block_size, 1, math.inf),
                       blur_strength_gain=(blur_strength_gain, 0, math.inf),
                       blur_strength_max=(blur_strength_max, 0, 1))
        for name, (value, lo, hi) in scalars.items():
            if not lo <= value <= hi:
                fail(name, value, f"within [{lo}, {hi}]")
        ranges = dict(ellipse_count=(ellipse_count, 0, math.inf), ellipse_axes=(ellipse_axes, 1e-6, 1),
                      ghost_strength=(ghost_strength, 0, 1), blur_length_gain=(blur_length_gain, 0, math.inf),
                      blur_length=(blur_length, 1, math.inf))
        for name, (bounds, lo, hi) in ranges.items():
            if len(bounds) != 2 or not lo <= bounds[0] <= bounds[1] <= hi:
                fail(name, bounds, f"an ordered range (low, high) within [{lo}, {hi}]")
        integers = dict(mask_open_size=mask_open_size, blur_block_size=blur_block_size, ellipse_count=ellipse_count,
                        blur_length=blur_length)
        for name, value in integers.items():
            if not all(isinstance(v, int) for v in np.atleast_1d(value).tolist()):
                fail(name, value, "made of ints")
        if blur_length[0] % 2 == 0 or blur_length[1] % 2 == 0:
            fail("blur_length", blur_length, "a range of odd lengths")

        self.flow_preset, self.motion_threshold, self.mask_open_size = flow_preset, motion_threshold, mask_open_size
        self.ellipse_count, self.ellipse_axes = tuple(ellipse_count), tuple(ellipse_axes)
        self.ghost_strength, self.ghost_sigma = tuple(ghost_strength), ghost_sigma
        self.blur_block_size, self.blur_length = blur_block_size, tuple(blur_length)
        self.blur_length_gain = tuple(blur_length_gain)
        self.blur_strength_gain, self.blur_strength_max = blur_strength_gain, blur_strength_max
        self.resize_mode, self.resize_antialias = resize_mode, resize_antialias

    def __call__(self, hr: torch.Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        size = check_input(hr, lr_size, type(self).__name__)
        frames = rearrange(hr.detach().cpu().float().add(1).mul(127.5), "c t h w -> t h w c").numpy()
        x = torch.from_numpy(self.degrade(np.ascontiguousarray(frames), generator)).div(127.5).sub(1)
        lr = resize(rearrange(x, "t h w c -> c t h w"), size, self.resize_mode, self.resize_antialias)
        return lr.clamp(-1, 1).to(device=hr.device, dtype=hr.dtype).contiguous()

    def degrade_frames(self, frames: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """Degrade uint8 RGB frames (T, H, W, 3) at their own resolution; unchanged pixels keep their exact values."""
        if not (isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4
                and frames.shape[-1] == 3):
            got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
            raise ValueError(f"FlowDegradation.degrade_frames: expected uint8 frames (T, H, W, 3), got {got}")
        return np.rint(self.degrade(frames.astype(np.float32), generator)).clip(0, 255).astype(np.uint8)

    def degrade(self, frames: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """Degrade float32 RGB frames (T, H, W, 3) on the 0..255 scale; pixels off the motion masks keep their bits."""
        rng = np.random.default_rng(int(torch.randint(2**63 - 1, (), generator=generator)))
        length_gain = rng.uniform(*self.blur_length_gain)
        grey = [cv2.cvtColor(np.rint(f).clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in frames]
        dis = cv2.DISOpticalFlow_create(PRESETS[self.flow_preset])
        out = frames.copy()
        for t in range(1, len(frames)):
            flow = backward_flow(dis, grey[t], grey[t - 1])
            mask = motion_mask(flow, self.motion_threshold, self.mask_open_size)
            if not mask.any():
                continue
            weights = self.ghost_weights(mask, rng)
            ghosted = ghost(frames[t], frames[t - 1], flow, weights, self.ghost_sigma, rng)
            out[t] = block_motion_blur(ghosted, flow, mask, self.blur_block_size, self.motion_threshold, length_gain,
                                       self.blur_length, self.blur_strength_gain, self.blur_strength_max)
        return out

    def ghost_weights(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Random ellipses centred on pixels of ``mask`` (H, W) -> blend weights (H, W), zero outside the mask."""
        n = int(rng.integers(self.ellipse_count[0], self.ellipse_count[1] + 1))
        centres = np.stack(np.divmod(rng.choice(np.flatnonzero(mask), size=n), mask.shape[1]), -1)  # (n, 2) (y, x)
        axes = rng.uniform(*self.ellipse_axes, size=(n, 2)) * min(mask.shape)
        angles = rng.uniform(0, math.pi, size=n)
        strengths = rng.uniform(*self.ghost_strength, size=n)
        return ellipse_weights(mask.shape, centres, axes, angles, strengths) * mask
