"""gvr.metrics.vmaf: VMAF of a real clip against itself, under degradation, streamed vs whole, luma and errors."""

from pathlib import Path

import pytest
import torch

from gvr.data.video import frames_to_tensor, read_video
from gvr.metrics.vmaf import VideoVMAF, luma_255
from gvr.ops.resize import resize_video

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """Five real frames of bikes.mp4, a 64x128 crop with texture: (1, 3, 5, 64, 128) in [-1, 1]."""
    frames, _ = read_video(SAMPLES / "bikes.mp4", num_frames=5)
    return frames_to_tensor(frames[:, 140:204, 260:388]).unsqueeze(0)


def vmaf(preds: torch.Tensor, target: torch.Tensor, **kwargs) -> float:
    metric = VideoVMAF(**kwargs)
    metric.update(preds, target)
    return metric.compute().item()


def test_luma_limited_range():
    video = torch.stack([-torch.ones(3, 1, 2, 2), torch.ones(3, 1, 2, 2)], dim=0)  # black, white
    y = luma_255(video)
    assert y.shape == (2, 1, 1, 2, 2)
    assert y[0].unique().tolist() == [16.0] and y[1].unique().tolist() == [235.0]
    grey = torch.zeros(1, 3, 1, 1, 1)  # 127.5 -> 128 after 8-bit quantisation
    assert luma_255(grey).item() == round(16 + 219 * 128 / 255)


def test_identical_clip_scores_about_100(clip):
    metric = VideoVMAF()
    per_frame = metric.per_frame(clip[0], clip[0])
    print("VMAF of the clip against itself, per frame:", [round(v, 3) for v in per_frame.tolist()])
    # clipped at 100; below it where the reference barely moves (motion2 enters the model; 0 on the first frame)
    assert per_frame.min().item() >= 97.0 and per_frame.max().item() == 100.0
    score = vmaf(clip, clip)
    assert 98.0 < score <= 100.0
    torch.testing.assert_close(torch.tensor(score), per_frame.mean(), rtol=0, atol=1e-4)


def test_degradation_lowers_vmaf(clip):
    h, w = clip.shape[-2:]
    down2 = resize_video(resize_video(clip, (h // 2, w // 2)), (h, w))
    down4 = resize_video(resize_video(clip, (h // 4, w // 4)), (h, w))
    kernel = torch.ones(3, 1, 1, 5, 5) / 25
    blur = torch.nn.functional.conv3d(torch.nn.functional.pad(clip, (2, 2, 2, 2, 0, 0), mode="replicate"), kernel, groups=3)
    same, s2, s4, sb = (vmaf(x, clip) for x in (clip, down2, down4, blur))
    assert same > s2 > s4
    assert sb < same - 10 and s4 < same - 15


def test_stream_chunks_equal_whole_video(clip):
    h, w = clip.shape[-2:]
    degraded = resize_video(resize_video(clip, (h // 2, w // 2)), (h, w))
    reference = VideoVMAF().per_frame(degraded[0], clip[0]).mean()  # vmaf-torch over the whole clip
    for chunks in ([1, 4], [2, 2, 1]):
        metric, start = VideoVMAF(stream=True), 0
        for n in chunks:
            metric.update(degraded[:, :, start:start + n], clip[:, :, start:start + n])
            start += n
        torch.testing.assert_close(metric.compute(), reference, rtol=0, atol=1e-3)
    torch.testing.assert_close(torch.tensor(vmaf(degraded, clip)), reference, rtol=0, atol=1e-3)


@pytest.mark.slow
def test_batch_of_videos_is_the_mean_over_their_frames(clip):
    h, w = clip.shape[-2:]
    degraded = resize_video(resize_video(clip, (h // 2, w // 2)), (h, w))
    both = vmaf(torch.cat([clip, degraded]), torch.cat([clip, clip]))
    assert both == pytest.approx((vmaf(clip, clip) + vmaf(degraded, clip)) / 2, abs=1e-3)


def test_errors(clip):
    with pytest.raises(ValueError, match="chunks of one video"):
        VideoVMAF(stream=True).update(torch.cat([clip, clip]), torch.cat([clip, clip]))
    with pytest.raises(ValueError, match="one shape"):
        VideoVMAF().update(clip, clip[:, :, :2])
    with pytest.raises(ValueError, match="luma"):
        VideoVMAF(luma="bt2020")
