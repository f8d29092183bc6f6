"""gvr.metrics.registry.score_videos and ``gvr score``: frame alignment, values against the metrics used
directly, unavailable metrics and --strict, the registration hook (DOVER), the JSON the command prints."""

import json
import sys
import types

import numpy as np
import pytest
import torch
from torchmetrics import Metric
from video_fixtures import smooth_frames

from gvr.data.video import frames_to_tensor, read_video, write_video
from gvr.metrics import registry
from gvr.metrics.image import FramePSNR, FrameSSIM
from gvr.metrics.registry import MetricSpec, Unavailable, register_metric, score_videos
from gvr.metrics.vmaf import VideoVMAF
from gvr.metrics.weights import MissingWeights


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    """A 7-frame 48x64 reference, a distorted copy, a shorter copy and a smaller one (lossless H.264)."""
    root = tmp_path_factory.mktemp("score")
    ref = smooth_frames(7, 48, 64, seed=3)
    noise = np.random.default_rng(0).normal(0, 12, ref.shape)
    out = (ref + noise).clip(0, 255).round().astype(np.uint8)
    paths = {"ref": root / "ref.mp4", "out": root / "out.mp4", "short": root / "short.mp4", "small": root / "small.mp4"}
    write_video(paths["ref"], ref, fps=24, crf=0)
    write_video(paths["out"], out, fps=24, crf=0)
    write_video(paths["short"], out[:5], fps=24, crf=0)
    write_video(paths["small"], out[:, :32, :32], fps=24, crf=0)
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def direct(metric: Metric, out: str, ref: str) -> float:
    metric.update(*(frames_to_tensor(read_video(p)[0])[None] for p in (out, ref)))
    return metric.compute().item()


def test_values_match_the_metrics_used_directly_for_any_chunk(videos):
    expected = {"psnr": direct(FramePSNR(), videos["out"], videos["ref"]),
                "ssim_y": direct(FrameSSIM("y"), videos["out"], videos["ref"]),
                "vmaf": direct(VideoVMAF(), videos["out"], videos["ref"])}
    for chunk, names in ((16, ["psnr", "ssim_y", "vmaf"]), (3, ["psnr", "vmaf"])):
        result = score_videos(videos["out"], videos["ref"], names, chunk=chunk)
        assert result["frames"] == 7 and (result["width"], result["height"]) == (64, 48)
        assert result["unavailable"] == {} and set(result["metrics"]) == set(names)
        for name in names:
            value = expected[name]
            assert result["metrics"][name] == pytest.approx(value, abs=1e-3), (name, chunk)  # float32 batching
    assert 20 < expected["psnr"] < 40 and expected["vmaf"] < 100


def test_alignment_errors_and_max_frames(videos):
    with pytest.raises(ValueError, match="has 5.*max_frames"):
        score_videos(videos["ref"], videos["short"], ["psnr"])
    with pytest.raises(ValueError, match="32x32"):
        score_videos(videos["small"], videos["ref"], ["psnr"])
    prefix = score_videos(videos["ref"], videos["short"], ["psnr"], max_frames=5)
    assert prefix["frames"] == 5
    assert prefix["metrics"]["psnr"] == pytest.approx(  # short.mp4 is the first 5 frames of out.mp4
        score_videos(videos["out"], videos["ref"], ["psnr"], max_frames=5)["metrics"]["psnr"], abs=1e-4)
    with pytest.raises(ValueError, match="only 5 frames"):
        score_videos(videos["ref"], videos["short"], ["psnr"], max_frames=6)
    with pytest.raises(KeyError, match="unknown metric"):
        score_videos(videos["ref"], videos["out"], ["psnr", "sharpness"])


def test_unavailable_metrics_are_reported_and_strict_raises(videos, no_weights):
    result = score_videos(videos["out"], videos["ref"], ["psnr", "lpips", "fvd"])
    assert set(result["metrics"]) == {"psnr"}
    assert "alexnet-owt-7be5be79.pth" in result["unavailable"]["lpips"]
    assert "download.pytorch.org" in result["unavailable"]["lpips"]
    assert "32 frames" in result["unavailable"]["fvd"]  # 7 frames: not two 16-frame clips
    no_ref = score_videos(videos["out"], None, ["psnr"])
    assert no_ref["metrics"] == {} and "reference" in no_ref["unavailable"]["psnr"]
    with pytest.raises(MissingWeights, match="alexnet-owt-7be5be79.pth"):
        score_videos(videos["out"], videos["ref"], ["psnr", "lpips"], strict=True)
    with pytest.raises(Unavailable, match="reference"):
        score_videos(videos["out"], None, ["psnr"], strict=True)


class MeanLevel(Metric):
    """A no-reference test metric: the mean 8-bit level of the frames."""

    def __init__(self, weights: str | None = None):
        super().__init__()
        self.weights = weights
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, videos: torch.Tensor) -> None:
        self.total += ((videos + 1) * 127.5).double().sum()
        self.count += videos.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        return {"level": self.total / self.count, "frames_seen": self.count / 3 / 48 / 64}


def test_registration_hook_whole_video_and_dover_contract(videos, monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "level", registry.REGISTRY.get("level"))  # restored afterwards
    register_metric(MetricSpec("level", registry.lazy(__name__, "MeanLevel"), False, "video", "mean level"))
    frames = read_video(videos["out"])[0]
    result = score_videos(videos["out"], None, ["level"], chunk=2)
    assert result["metrics"]["level"]["frames_seen"] == pytest.approx(7)  # the whole video in one update
    assert result["metrics"]["level"]["level"] == pytest.approx(frames.mean(), abs=1e-3)
    # `dover` builds gvr.metrics.dover.DOVERMetric(weights=..., pretrained=...) from the weights config
    seen = {}

    class FakeDOVER(MeanLevel):
        def __init__(self, weights: str | None = None, pretrained: bool = True):
            super().__init__(weights)
            seen.update(weights=weights, pretrained=pretrained)

    monkeypatch.setitem(sys.modules, "gvr.metrics.dover", types.SimpleNamespace(DOVERMetric=FakeDOVER))
    out = score_videos(videos["out"], None, ["dover"], weights={"dover": "/models/DOVER.pth"})
    assert seen == {"weights": "/models/DOVER.pth", "pretrained": True} and "level" in out["metrics"]["dover"]
    score_videos(videos["out"], None, ["dover"], weights_dir="/models")
    assert seen["weights"] == "/models"


def test_gvr_score_prints_json(videos, tmp_path, capsys, no_weights):
    from gvr.cli import VERBS, main

    assert VERBS["score"][0] == "gvr.commands.score"
    main(["score", videos["out"], "--reference", videos["ref"], "--metrics", "psnr,ssim,lpips", "--no-progress"])
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["metrics"]) == {"psnr", "ssim"} and "lpips" in printed["unavailable"]
    assert printed["metrics"]["psnr"] == pytest.approx(direct(FramePSNR(), videos["out"], videos["ref"]), abs=1e-4)
    config = tmp_path / "weights.yaml"
    config.write_text(f"weights:\n  lpips: {tmp_path / 'alex.pth'}\n")
    with pytest.raises(SystemExit, match="alex.pth"):
        main(["score", videos["out"], "-r", videos["ref"], "-m", "lpips", "--config", str(config), "--strict",
              "--no-progress"])
    with pytest.raises(SystemExit, match="unknown metric"):
        main(["score", videos["out"], "-m", "nope", "--no-progress"])
    with pytest.raises(SystemExit, match="has 5: frames would be misaligned"):
        main(["score", videos["out"], "-r", videos["short"], "-m", "psnr", "--no-progress"])


@pytest.mark.slow
def test_fvd_over_16_frame_clips(tmp_path):
    ref = smooth_frames(32, 32, 32, seed=5)
    write_video(tmp_path / "a.mp4", ref, fps=24, crf=0)
    write_video(tmp_path / "b.mp4", ref[:, ::-1].copy(), fps=24, crf=0)
    same = score_videos(tmp_path / "a.mp4", tmp_path / "a.mp4", ["fvd"], pretrained=False)["metrics"]["fvd"]
    other = score_videos(tmp_path / "b.mp4", tmp_path / "a.mp4", ["fvd"], pretrained=False)["metrics"]["fvd"]
    assert abs(same) < 1e-3 and other > same
