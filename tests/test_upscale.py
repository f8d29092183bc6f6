"""Chunk planning and seam blending of the long-video upscaler."""

import numpy as np
import pytest

from gvr.upscale import ChunkBlender, output_size, plan_chunks, windows


def test_output_size_rounds_half_up():
    assert output_size(144, 176, 2.5) == (360, 440)
    assert output_size(101, 33, 1.5) == (152, 50)  # 151.5 -> 152, 49.5 -> 50


@pytest.mark.parametrize("frames,chunk,overlap,align", [(5, 17, 4, 4), (17, 17, 4, 4), (40, 17, 4, 4), (250, 17, 5, 4), (23, 6, 2, 1)])
def test_plan_covers_every_frame_with_overlap(frames, chunk, overlap, align):
    plan = plan_chunks(frames, chunk, overlap, align)
    assert plan[0][0] == 0 and plan[-1][1] == frames
    assert all(0 < e - s <= chunk for s, e in plan)
    for (s0, e0), (s1, e1) in zip(plan, plan[1:]):
        assert s0 < s1 and e0 - s1 >= overlap  # consecutive windows share >= overlap frames
        if (s1, e1) != plan[-1]:
            assert s1 % align == 0


def test_plan_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        plan_chunks(10, 4, 4)


def test_blender_is_exact_on_consistent_chunks_and_releases_in_order():
    rng = np.random.default_rng(0)
    video = rng.uniform(0, 255, size=(23, 4, 5, 3)).astype(np.float32)
    plan = plan_chunks(23, 6, 2)
    blender, out = ChunkBlender(), []
    for k, (s, e) in enumerate(plan):
        nxt = plan[k + 1][0] if k + 1 < len(plan) else None
        done = blender.add(s, video[s:e], nxt)
        assert len(done) == (nxt if nxt is not None else 23) - sum(len(o) for o in out)
        out.append(done)
    result = np.concatenate(out)
    np.testing.assert_array_equal(result, np.clip(np.rint(video), 0, 255).astype(np.uint8))


def test_blender_crossfades_linearly_across_a_seam():
    blender = ChunkBlender()
    first = blender.add(0, np.zeros((6, 1, 1, 3), np.float32), next_start=3)
    second = blender.add(3, np.full((6, 1, 1, 3), 200, np.float32), next_start=None)
    values = np.concatenate([first, second])[:, 0, 0, 0]
    assert values[:3].tolist() == [0, 0, 0] and values[6:].tolist() == [200, 200, 200]
    assert np.all(np.diff(values[2:7].astype(int)) > 0)  # a monotone ramp over the 3 shared frames, no jump


def test_windows_decode_lazily_and_report_short_videos():
    frames = (np.full((2, 2, 3), i, np.uint8) for i in range(10))
    got = [(s, w[:, 0, 0, 0].tolist()) for s, w in windows(frames, plan_chunks(10, 4, 1))]
    assert got[0] == (0, [0, 1, 2, 3]) and got[-1][1] == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="ended after 3 frames"):
        list(windows((np.zeros((2, 2, 3), np.uint8) for _ in range(3)), [(0, 4)]))
