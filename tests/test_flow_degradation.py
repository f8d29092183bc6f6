"""Flow-based degradation: static regions bit-identical, moving ones changed, conventions, reproducibility, errors."""

import math
import pickle
import random

import cv2
import numpy as np
import pytest
import torch

from gvr.data.degradations import FlowDegradation
from gvr.data.degradations.flow import PRESETS, backward_flow, ghost, line_kernel, motion_mask

SQUARE, STEP = 24, 5  # side of the moving square and its motion in px per frame


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """uint8 (H, W, 3): random colours on a 4 px grid, bilinearly upsampled (sharp enough for flow, no flat areas)."""
    cells = np.random.default_rng(seed).integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR)


def square_clip(t: int = 5, h: int = 128, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A still background with a textured square moving right by STEP px a frame; also the union of its positions."""
    frames = np.repeat(texture(h, w, 0)[None], t, 0)
    square = texture(SQUARE, SQUARE, 1)
    covered = np.zeros((h, w), bool)
    for k in range(t):
        y, x = h // 3, 16 + STEP * k
        frames[k, y : y + SQUARE, x : x + SQUARE] = square
        covered[y : y + SQUARE, x : x + SQUARE] = True
    return frames, covered


@pytest.mark.parametrize(
    "kwargs",
    [dict(flow_preset=p) for p in sorted(PRESETS)]
    + [dict(ellipse_count=(0, 0)), dict(blur_length=(1, 1), blur_strength_max=0.0)],
    ids=[*sorted(PRESETS), "blur_only", "ghost_only"],
)
def test_static_background_is_bit_identical_and_motion_is_degraded(kwargs):
    frames, covered = square_clip()
    out = FlowDegradation(**kwargs).degrade_frames(frames, gen())
    margin = 24  # flow spreads beyond the object's edges: up to 4 px (fast, medium), 17 px (ultrafast's coarse patches)
    near = cv2.dilate(covered.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.array_equal(out[0], frames[0])
    assert np.array_equal(out[:, ~near], frames[:, ~near])
    y, changed = frames.shape[1] // 3, []
    for k in range(1, len(frames)):
        x = 16 + STEP * k
        changed.append((out[k, y : y + SQUARE, x : x + SQUARE] != frames[k, y : y + SQUARE, x : x + SQUARE]).any(-1))
    assert all(c.any() for c in changed) and np.mean(changed) > 0.3  # a moving square's pixels: most are degraded


def test_static_clip_is_returned_unchanged():
    frames = np.repeat(texture(64, 80, 2)[None], 4, 0)
    assert np.array_equal(FlowDegradation().degrade_frames(frames, gen()), frames)


def test_reproducible_from_the_generator_alone():
    frames, _ = square_clip(t=4)
    d = FlowDegradation(ellipse_count=(2, 4))
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    first = d.degrade_frames(frames, gen(7))
    torch.manual_seed(2), random.seed(2), np.random.seed(2)  # global RNG state must not matter
    for seed in (8, 7):
        assert np.array_equal(first, d.degrade_frames(frames, gen(seed))) == (seed == 7)
    assert np.array_equal(first, pickle.loads(pickle.dumps(d)).degrade_frames(frames, gen(7)))  # as in a worker


@pytest.mark.parametrize(
    ("hr_shape", "lr_size"),
    [((3, 4, 70, 90), (25, 33)), ((3, 3, 9, 9), (4, 3)), ((3, 2, 12, 40), (5, 14)), ((3, 1, 16, 16), (21, 25))],
)
def test_call_size_range_dtype(hr_shape, lr_size):
    # (12, 40) and (9, 9) frames crash a bare DIS call (segfault): the flow pads them
    hr = torch.rand(*hr_shape, generator=gen(1)) * 2 - 1
    lr = FlowDegradation()(hr, lr_size, gen())
    assert lr.shape == (3, hr_shape[1], *lr_size)
    assert lr.dtype == torch.float32 and lr.is_contiguous()
    assert torch.isfinite(lr).all() and lr.min() >= -1 and lr.max() <= 1


def test_flow_direction_and_colour_sampling():
    frames, _ = square_clip(t=2)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flow = backward_flow(cv2.DISOpticalFlow_create(PRESETS["medium"]), grey[1], grey[0])
    y, x = frames.shape[1] // 3 + SQUARE // 2, 16 + STEP + SQUARE // 2  # centre of the square in frame 1
    assert flow[y, x] == pytest.approx((-STEP, 0), abs=0.5)  # frame 1 at p matches frame 0 at p + flow(p)
    prev = np.random.default_rng(0).uniform(0, 255, size=(20, 30, 3)).astype(np.float32)
    shift = np.zeros((20, 30, 2), np.float32)
    shift[..., 0] = 3
    sampled = ghost(np.zeros_like(prev), prev, shift, np.ones((20, 30), np.float32), 0.0, np.random.default_rng(0))
    assert np.allclose(sampled[:, :-3], prev[:, 3:], atol=1e-3)


def test_motion_mask_and_line_kernel():
    flow = np.zeros((32, 32, 2), np.float32)
    flow[2, 2] = flow[10:20, 10:20] = (3, 4)  # a speck and a moving patch
    assert motion_mask(flow, 1.0, 0).sum() == 101
    opened = motion_mask(flow, 1.0, 3)  # the 3 px disc is a cross: the patch loses its 4 corners, the speck goes
    assert opened.sum() == opened[10:20, 10:20].sum() == 96 and motion_mask(flow, 5.0, 0).sum() == 0
    diagonal = line_kernel(7, math.atan2(1, 1))  # flow (1, 1): down and right
    assert diagonal.sum() == pytest.approx(1) and np.trace(diagonal) > 0.6
    assert line_kernel(5, 0.0)[2].sum() == pytest.approx(1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(flow_preset="slow"), dict(motion_threshold=-1.0), dict(mask_open_size=-1), dict(mask_open_size=2.5),
        dict(ellipse_count=(3, 1)), dict(ellipse_count=(1.5, 2)), dict(ellipse_axes=(0.0, 0.1)),
        dict(ellipse_axes=(0.1, 1.5)), dict(ghost_strength=(0.5, 1.2)), dict(ghost_sigma=float("nan")),
        dict(blur_block_size=0), dict(blur_length=(4, 9)), dict(blur_length=(3,)), dict(blur_length_gain=(2.0, 1.0)),
        dict(blur_strength_gain=-0.1), dict(blur_strength_max=1.5), dict(resize_mode="nearest"),
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=f"FlowDegradation: {next(iter(kwargs))}"):
        FlowDegradation(**kwargs)


def test_bad_frames_raise():
    with pytest.raises(ValueError, match="uint8 frames"):
        FlowDegradation().degrade_frames(np.zeros((2, 8, 8, 3), np.float32), gen())
