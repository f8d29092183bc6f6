"""gvr.inference.stabilize: the detail over bicubic steadied along the input's motion, reset at cuts, streamed."""

import numpy as np
import pytest
from test_upscale_streams import cut_video, make_source, pan

from gvr.data.video import frames_to_tensor, read_video, tensor_to_frames
from gvr.inference.stabilize import DetailStabilizer
from gvr.inference.upscale import SceneStabilizer, upscale_video
from gvr.ops.resize import resize_video

SCALE = 2


def bicubic(lr: np.ndarray, depth: int = 8) -> np.ndarray:
    size = (lr.shape[1] * SCALE, lr.shape[2] * SCALE)
    return tensor_to_frames(resize_video(frames_to_tensor(lr)[None], size, "bicubic")[0], depth)


def shimmer(lr: np.ndarray, amplitude: float = 12.0, seed: int = 0) -> np.ndarray:
    """Bicubic plus fresh random detail every frame: detail that does not move with the content."""
    base = bicubic(lr).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, amplitude, base.shape).astype(np.float32)
    return np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)


def residual_change(hr: np.ndarray, lr: np.ndarray) -> float:
    """Mean frame-to-frame change of the residual over bicubic (a still input: no motion to follow)."""
    r = hr.astype(np.float32) - bicubic(lr).astype(np.float32)
    return float(np.abs(np.diff(r, axis=0)).mean())


def test_strength_zero_and_an_empty_batch_pass_through():
    lr = pan(4, 16, 16)
    hr = shimmer(lr)
    assert DetailStabilizer(0.0)(hr, lr) is hr
    assert len(DetailStabilizer(0.5)(hr[:0], lr[:0])) == 0
    with pytest.raises(ValueError, match="strength"):
        DetailStabilizer(1.0)
    with pytest.raises(ValueError, match="3 output frames against 4"):
        DetailStabilizer(0.5)(hr[:3], lr)


def test_shimmer_on_a_still_scene_is_averaged_out_and_the_first_frame_kept():
    lr = np.repeat(pan(1, 16, 16), 8, axis=0)  # a still scene
    hr = shimmer(lr)
    out = DetailStabilizer(0.85)(hr, lr)
    np.testing.assert_array_equal(out[0], hr[0])  # nothing to follow yet
    assert residual_change(out, lr) < 0.5 * residual_change(hr, lr)
    # the recursion is a running average: the residual's spread falls, its mean (the detail) stays
    r_in = hr.astype(np.float32) - bicubic(lr)
    r_out = out.astype(np.float32) - bicubic(lr)
    assert abs(r_out[-1].mean() - r_in.mean()) < 1.0 and r_out[-1].std() < 0.8 * r_in[-1].std()


def test_detail_that_moves_with_the_content_is_kept():
    """A pan whose added detail is part of the scene (it moves with it): the warped previous residual agrees
    with the new one, so the output stays what it was, away from the border the pan uncovers."""
    frames, h, w = 6, 16, 16
    hr_scene = pan(1, h * SCALE, (w + frames) * SCALE, seed=3)[0]
    detail = np.random.default_rng(1).normal(0, 10, hr_scene.shape).astype(np.float32)
    sharp_scene = np.clip(hr_scene + detail, 0, 255)
    hr_frames = np.stack([hr_scene[:, t * SCALE : t * SCALE + w * SCALE] for t in range(frames)])
    lr = tensor_to_frames(resize_video(frames_to_tensor(hr_frames)[None], (h, w), "bicubic")[0])
    base = bicubic(lr).astype(np.float32)
    sharp = np.stack([sharp_scene[:, t * SCALE : t * SCALE + w * SCALE] for t in range(frames)])
    hr = np.clip(np.rint(sharp), 0, 255).astype(np.uint8)
    out = DetailStabilizer(0.85, "medium")(hr, lr)
    inner = (slice(None), slice(6, -6), slice(6, -10))  # the pan uncovers columns on the right
    kept = np.abs(out[inner].astype(np.float32) - hr[inner]).mean()
    shrunk = np.abs(hr[inner].astype(np.float32) - base[inner]).mean()  # what losing the detail would cost
    assert kept < 0.1 * shrunk  # a wrong or zero flow leaves it near 0.9


def test_reset_starts_a_new_scene_and_state_carries_across_calls():
    lr = np.repeat(pan(1, 16, 16), 6, axis=0)
    hr = shimmer(lr)
    whole = DetailStabilizer(0.7)(hr, lr)
    split = DetailStabilizer(0.7)
    np.testing.assert_array_equal(np.concatenate([split(hr[:2], lr[:2]), split(hr[2:], lr[2:])]), whole)
    split.reset()
    np.testing.assert_array_equal(split(hr[3:], lr[3:]), DetailStabilizer(0.7)(hr[3:], lr[3:]))


def test_ten_bit_frames_stay_sixteen_bit():
    lr8 = np.repeat(pan(1, 16, 16), 4, axis=0)
    lr = lr8.astype(np.uint16) * 257
    hr = shimmer(lr8).astype(np.uint16) * 257
    out = DetailStabilizer(0.85)(hr, lr)
    assert out.dtype == np.uint16 and out.shape == hr.shape
    eight = DetailStabilizer(0.85)(shimmer(lr8), lr8)
    assert np.abs(out.astype(np.float32) / 257 - eight).max() <= 2  # the same filter at 16 bits


def test_the_scene_stabilizer_matches_each_output_frame_with_its_own_input():
    """Overlapping windows release frames out of step with the windows: each released frame is stabilised
    against its own LR frame, as the whole blended stream in one call would be."""
    lr = np.repeat(pan(1, 16, 16), 10, axis=0) + np.arange(10, dtype=np.uint8)[:, None, None, None]
    hr = shimmer(lr)
    steady, out = SceneStabilizer(0.85), []
    windows = [(0, 4, 3), (3, 7, 6), (6, 10, None)]  # (start, end, next start): one frame shared each time
    released = 0
    for start, end, nxt in windows:
        upto = end if nxt is None else nxt
        out.append(steady(start, lr[start:end], hr[released:upto]))
        released = upto
    np.testing.assert_array_equal(np.concatenate(out), DetailStabilizer(0.85)(hr, lr))
    assert SceneStabilizer(0.0)(0, lr, hr) is hr


@pytest.fixture(scope="module")
def module():
    from test_upscale import _vsr

    return _vsr()


def test_upscale_video_stabilises_within_each_scene_only(module, tmp_path):
    video = cut_video()
    src, tail = tmp_path / "in.mkv", tmp_path / "tail.mkv"
    make_source(src, video, audio=None)
    make_source(tail, video[17:], audio=None)
    kw = dict(steps=1, chunk=6, overlap=2, progress=False)
    plain = upscale_video(module, str(src), str(tmp_path / "plain.mkv"), **kw)
    summary = upscale_video(module, str(src), str(tmp_path / "out.mkv"), stabilize=0.85, **kw)
    assert summary["stabilize"] == 0.85 and plain["stabilize"] == 0.0
    upscale_video(module, str(tail), str(tmp_path / "tail_out.mkv"), stabilize=0.85, **kw)
    whole, alone = read_video(tmp_path / "out.mkv")[0], read_video(tmp_path / "tail_out.mkv")[0]
    np.testing.assert_array_equal(whole[17:], alone)  # nothing carried across the cut
    before = read_video(tmp_path / "plain.mkv")[0]
    np.testing.assert_array_equal(whole[0], before[0])  # a scene's first frame passes unchanged
    np.testing.assert_array_equal(whole[17], before[17])
    assert not np.array_equal(whole[1:17], before[1:17])


def test_gvr_upscale_stabilises_at_half_strength_by_default_and_zero_turns_it_off(tiny_vsr_ckpt, tmp_path):
    from gvr.commands.upscale import main
    from gvr.pipeline import load_pipeline

    src = tmp_path / "pan.mkv"
    make_source(src, pan(9, 16, 16, seed=3), audio=None)
    main([str(src), "--ckpt", tiny_vsr_ckpt, "-o", str(tmp_path / "default.mkv")])
    main([str(src), "--ckpt", tiny_vsr_ckpt, "-o", str(tmp_path / "off.mkv"), "--stabilize", "0"])
    pipe = load_pipeline(tiny_vsr_ckpt)
    for name, strength in (("half", 0.5), ("plain", 0.0)):
        upscale_video(pipe, str(src), str(tmp_path / f"{name}.mkv"), stabilize=strength, progress=False)
    default, off = read_video(tmp_path / "default.mkv")[0], read_video(tmp_path / "off.mkv")[0]
    np.testing.assert_array_equal(default, read_video(tmp_path / "half.mkv")[0])
    np.testing.assert_array_equal(off, read_video(tmp_path / "plain.mkv")[0])
    assert not np.array_equal(default[1:], off[1:])
    with pytest.raises(SystemExit, match="--stabilize must be in"):
        main([str(src), "--ckpt", tiny_vsr_ckpt, "-o", str(tmp_path / "x.mkv"), "--stabilize", "1"])
