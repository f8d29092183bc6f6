"""gvr.metrics.lpips: the lpips package's AlexNet LPIPS with official key names, trunk loading, values, errors."""

from pathlib import Path

import pytest
import torch
from torchvision.models import alexnet

from gvr.data.video import frames_to_tensor, read_video
from gvr.metrics.lpips import FrameLPIPS, alexnet_weight_file, lpips_network, trunk_key_map
from gvr.metrics.weights import MissingWeights

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> Path:
    """A randomly initialised torchvision AlexNet saved under the official file name."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hub") / alexnet_weight_file().filename
    torch.save(alexnet().state_dict(), path)
    return path


def test_official_key_names():
    import lpips

    net = lpips_network(pretrained=False)
    keys = set(net.state_dict())
    official_linear = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu")
    assert set(official_linear) == {f"lin{i}.model.1.weight" for i in range(5)}
    assert set(official_linear) <= keys
    for k, v in official_linear.items():  # shapes too, so the package's file loads strictly
        assert net.state_dict()[k].shape == v.shape
    # every trunk key maps onto a key of torchvision's AlexNet `features`, covering all of them, same shapes
    mapping = trunk_key_map(net)
    tv = alexnet().state_dict()
    assert set(mapping.values()) == {k for k in tv if k.startswith("features.")}
    assert all(net.state_dict()[k].shape == tv[v].shape for k, v in mapping.items())
    assert alexnet_weight_file().filename == "alexnet-owt-7be5be79.pth"


def test_pretrained_loads_package_linear_layers_and_trunk_file(alexnet_file):
    import lpips

    metric = FrameLPIPS(weights=str(alexnet_file))
    official = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu")
    state = metric.net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in official.items())
    trunk = torch.load(alexnet_file)
    assert all(torch.equal(state[k], trunk[v]) for k, v in trunk_key_map(metric.net).items())
    # a folder holding the file works as well
    folder = FrameLPIPS(weights=str(alexnet_file.parent))
    assert torch.equal(folder.net.state_dict()["net.slice1.0.weight"], trunk["features.0.weight"])


def test_missing_trunk_names_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    with pytest.raises(MissingWeights, match="alexnet-owt-7be5be79.pth") as info:
        FrameLPIPS()
    assert info.value.filename == "alexnet-owt-7be5be79.pth"
    assert info.value.url.startswith("https://download.pytorch.org/models/")
    assert str(tmp_path / "empty_torch_home") in str(info.value)
    with pytest.raises(MissingWeights, match="nowhere.pth"):
        FrameLPIPS(weights=str(tmp_path / "nowhere.pth"))


def test_torch_hub_cache_is_searched(alexnet_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / alexnet_file.name).symlink_to(alexnet_file)
    FrameLPIPS()  # no error: found in the cache


def test_identical_frames_score_zero_and_distortion_does_not(alexnet_file):
    frames, _ = read_video(SAMPLES / "bikes.mp4", num_frames=3)
    video = frames_to_tensor(frames[:, :64, :96]).unsqueeze(0)  # (1, 3, 3, 64, 96)
    metric = FrameLPIPS(weights=str(alexnet_file))
    metric.update(video, video)
    assert metric.compute().item() == 0.0
    noisy = (video + 0.2 * torch.randn_like(video, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    metric.reset()
    metric.update(noisy, video)
    assert metric.compute().item() > 0.01


def test_mean_over_frames_matches_the_package_per_frame(alexnet_file):
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 4, 32, 40, generator=g) * 2 - 1, torch.rand(2, 3, 4, 32, 40, generator=g) * 2 - 1
    metric = FrameLPIPS(weights=str(alexnet_file), batch=3)
    metric.update(a, b)
    quantise = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1  # noqa: E731
    with torch.no_grad():
        per_frame = [metric.net(quantise(a[i, :, k:k + 1].transpose(0, 1)), quantise(b[i, :, k:k + 1].transpose(0, 1)))
                     for i in range(2) for k in range(4)]
    expected = torch.stack([v.flatten() for v in per_frame]).mean()
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        metric.update(a, b[:, :, :2])
