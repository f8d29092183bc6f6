"""E*warp and flicker (gvr.metrics.temporal) against hand computations on a synthetic pan."""

import numpy as np
import pytest
import torch

from gvr.data.video import frames_to_tensor
from gvr.metrics.registry import build_metric
from gvr.metrics.temporal import Flicker, WarpError, dis_flow, non_occluded, warp, warp_error_pair
from gvr.metrics.weights import MissingWeights

SHIFT = 2  # pixels the camera pans per frame, to the left: frame t+1 shows the scene moved SHIFT to the left


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture in 40..215 (far from the 8-bit limits, so offsets do not clip)."""
    import cv2

    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (40 + 175 * smooth).round().astype(np.uint8)


def pan(frames: int = 5, h: int = 48, w: int = 64) -> np.ndarray:
    """uint8 ``(T, h, w, 3)``: frame t is the scene from column ``t * SHIFT`` (exact integer motion)."""
    scene = texture(h, w + SHIFT * frames)
    return np.stack([scene[:, t * SHIFT : t * SHIFT + w] for t in range(frames)])


def exact_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The pan's true flow from either frame to the other (sign from which one is later: b is a's successor if
    a's content appears SHIFT to the left in b)."""
    h, w = a.shape[:2]
    forward = np.array_equal(a[:, SHIFT:], b[:, :-SHIFT])
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = -SHIFT if forward else SHIFT
    return flow


def video(frames: np.ndarray) -> torch.Tensor:
    return frames_to_tensor(frames)[None]


def test_warp_of_the_pan_along_its_flow_is_the_previous_frame_inside_the_frame():
    clip = pan()
    warped, inside = warp(clip[1].astype(np.float32), exact_flow(clip[0], clip[1]))
    assert inside[:, :SHIFT].sum() == 0 and inside[:, SHIFT:].all()  # the columns that entered the view are outside
    np.testing.assert_array_equal(warped[:, SHIFT:], clip[0][:, SHIFT:].astype(np.float32))


def test_consistency_check_keeps_exactly_the_pixels_seen_in_both_frames():
    clip = pan()
    mask = non_occluded(exact_flow(clip[0], clip[1]), exact_flow(clip[1], clip[0]))
    assert mask[:, SHIFT:].all() and not mask[:, :SHIFT].any()
    # a flow that does not come back (a wrong backward flow) is occluded everywhere
    assert not non_occluded(exact_flow(clip[0], clip[1]), np.zeros_like(exact_flow(clip[0], clip[1]))).any()


def test_warp_error_is_the_hand_computed_mean_of_the_brightness_steps():
    """Output = reference + a brightness offset c_t per frame: inside the mask the warped difference is exactly
    c_t - c_{t+1} in each of the 3 channels, so E_t = 3 (c_t - c_{t+1})^2 / 255^2."""
    clip = pan()
    offsets = np.array([0, 6, 0, -4, 2])
    out = np.clip(clip.astype(int) + offsets[:, None, None, None], 0, 255).astype(np.uint8)
    metric = WarpError(flow_fn=exact_flow)
    metric.update(video(out), video(clip))
    steps = np.diff(offsets).astype(float)
    expected = np.mean(3 * steps**2 / 255**2) * 1000
    assert metric.compute().item() == pytest.approx(expected, rel=1e-5)
    # the reference scores 0 with the exact flow, and one pair by hand agrees
    metric.reset()
    metric.update(video(clip), video(clip))
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-9)
    assert warp_error_pair(out[0], out[1], clip[0], clip[1], exact_flow) == pytest.approx(3 * 36 / 255**2, rel=1e-5)


def test_dis_flow_finds_the_pan_and_its_warp_error_is_close_to_the_exact_one():
    clip = pan(h=64, w=96)
    flow = dis_flow()(clip[1], clip[2])
    centre = flow[16:-16, 16:-16]
    assert np.abs(centre[..., 0] + SHIFT).mean() < 0.1 and np.abs(centre[..., 1]).mean() < 0.1
    offsets = np.array([0, 6, 0, -4, 2])
    out = np.clip(clip.astype(int) + offsets[:, None, None, None], 0, 255).astype(np.uint8)
    exact, dis = WarpError(flow_fn=exact_flow), WarpError()
    for m in (exact, dis):
        m.update(video(out), video(clip))
    assert dis.compute().item() == pytest.approx(exact.compute().item(), rel=0.1)


def test_flicker_is_the_mean_absolute_change_of_the_offsets_and_zero_for_a_fixed_error():
    clip = pan()
    offsets = np.array([0, 6, 0, -4, 2])
    out = np.clip(clip.astype(int) + offsets[:, None, None, None], 0, 255).astype(np.uint8)
    metric = Flicker()
    metric.update(video(out), video(clip))
    # a grey offset c moves BT.709 luma by 219/255 c before rounding; rounding moves each pixel by < 1 level
    expected = np.abs(np.diff(offsets)).mean() * 219 / 255
    assert metric.compute().item() == pytest.approx(expected, abs=0.6)
    metric.reset()
    steady = np.clip(clip.astype(int) + 5, 0, 255).astype(np.uint8)  # the same error in every frame
    metric.update(video(steady), video(clip))
    assert metric.compute().item() < 0.6  # only rounding of the luma conversion remains


@pytest.mark.parametrize("cls", [Flicker, lambda **kw: WarpError(flow_fn=exact_flow, **kw)])
def test_streamed_chunks_give_the_whole_video_score(cls):
    clip = pan(frames=7)
    rng = np.random.default_rng(1)
    out = np.clip(clip.astype(int) + rng.integers(-8, 9, size=(7, 1, 1, 1)), 0, 255).astype(np.uint8)
    whole, streamed = cls(), cls(stream=True)
    whole.update(video(out), video(clip))
    for lo, hi in ((0, 3), (3, 4), (4, 7)):  # the pairs across chunk borders count too
        streamed.update(video(out[lo:hi]), video(clip[lo:hi]))
    assert streamed.compute().item() == pytest.approx(whole.compute().item(), rel=1e-6)


def test_bad_input_is_refused():
    clip = video(pan())
    with pytest.raises(ValueError, match="expected equal"):
        Flicker().update(clip, clip[:, :, :3])
    with pytest.raises(ValueError, match="one video at a time"):
        Flicker(stream=True).update(clip.repeat(2, 1, 1, 1, 1), clip.repeat(2, 1, 1, 1, 1))
    single = Flicker()
    single.update(clip[:, :, :1], clip[:, :, :1])
    with pytest.raises(ValueError, match="no frame pair"):
        single.compute()
    with pytest.raises(ValueError, match="flow must be"):
        WarpError(flow="farneback")


def test_registry_builds_them_and_raft_without_weights_names_its_file(tmp_path):
    assert isinstance(build_metric("ewarp"), WarpError) and isinstance(build_metric("flicker"), Flicker)
    with pytest.raises(MissingWeights, match="raft_large_C_T_SKHT_V2"):
        build_metric("ewarp_raft", str(tmp_path))


def test_raft_flow_runs_with_a_random_network(tmp_path):
    """The RAFT path end to end with random weights saved as its file: a finite score of the right kind."""
    from torchvision.models.optical_flow import raft_large

    path = tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    torch.save(raft_large(weights=None).state_dict(), path)
    metric = WarpError(flow="raft", weights=str(tmp_path))
    clip = pan(frames=2, h=36, w=44)  # sides not multiples of 8: padded inside
    metric.update(video(clip), video(clip))
    assert np.isfinite(metric.compute().item()) and metric.compute().item() >= 0
