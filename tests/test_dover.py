"""DOVER: official key list, samplers, fusion, missing weights, and outputs against the official code."""

import math
from functools import cache
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gvr.metrics.dover import (
    DOVER,
    DOVERMetric,
    dover_views,
    fragment_view,
    frame_indices,
    fuse,
    resize_view,
)
from gvr.metrics.dover_arch import relative_position_index
from gvr.metrics.weights import MissingWeights

KEYS = Path(__file__).parent / "data" / "dover_keys.txt"

# Raw branch scores of the official implementation (VQAssessment/DOVER at f1ddc96, `DOVER(**dover.yml model
# args)`) loaded with `seeded_state(...)` and run on `seeded_views()` below: the reference for our network.
OFFICIAL_RAW = {"technical": 0.0583790, "aesthetic": 0.4936993}


def official_keys() -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor in the official DOVER state dict (the fixture file)."""
    out = {}
    for line in KEYS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split()
            out[name] = tuple(int(n) for n in shape.split("x"))
    return out


@cache  # load_state_dict copies: sharing the tensors between tests is safe
def seeded_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic, non-trivial weights for every official key (index buffers as built): same on any machine."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in official_keys().items():
        if name.endswith("relative_position_index"):
            state[name] = relative_position_index((8, 7, 7))
        elif name.endswith("gamma") or "bias_table" in name:  # layer scale and position biases must matter
            state[name] = 0.5 * torch.randn(shape, generator=g)
        elif "norm" in name and name.endswith("weight") and len(shape) == 1:
            state[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            state[name] = 0.1 * torch.randn(shape, generator=g)
        else:
            state[name] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    return state


def seeded_views() -> tuple[torch.Tensor, torch.Tensor]:
    """Small normalised views that reach every code path: time and space padding, shifted windows, odd merging."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 2, 3, 18, 40, 40, generator=g), torch.randn(1, 1, 3, 18, 40, 40, generator=g)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> DOVER:
    """The network as the metric builds it: ``DOVER.pth`` (here :func:`seeded_state`) found in a folder, loaded strictly."""
    folder = tmp_path_factory.mktemp("dover_weights")
    torch.save(seeded_state(), folder / "DOVER.pth")
    return DOVER(weights=str(folder)).eval()


# ---- architecture and weights -------------------------------------------------------------------------


def test_state_dict_names_and_shapes_equal_the_official_list():
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in DOVER().state_dict().items()}
    official = official_keys()
    assert len(official) == 381
    assert sorted(set(ours) ^ set(official)) == []
    assert ours == official


def test_official_key_list_loads_strictly_and_extra_or_missing_keys_fail(tmp_path):
    with torch.device("meta"):
        model = DOVER()
        state = {name: torch.empty(shape) for name, shape in official_keys().items()}
    model.load_state_dict(state, strict=True, assign=True)  # meta tensors: the check of names and shapes only
    with pytest.raises(RuntimeError, match="Unexpected"):
        model.load_state_dict({**state, "vqa_head.fc_hid.weight": torch.empty(1, device="meta")}, strict=True, assign=True)
    with pytest.raises(RuntimeError, match="Missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "aesthetic_head.fc_last.bias"}, strict=True, assign=True)
    heads_only = tmp_path / "DOVER.pth"  # a file is loaded strictly too
    torch.save({k: torch.zeros(v.shape) for k, v in state.items() if "head" in k}, heads_only)
    with pytest.raises(RuntimeError, match="Missing key"):
        DOVER(weights=str(heads_only))


def test_relative_position_index_is_the_swin_one(net):
    index = net.technical_backbone.layers[0].blocks[0].attn.relative_position_index
    n = 8 * 7 * 7
    assert index.shape == (n, n) and index.dtype == torch.long
    assert (index.diagonal() == (7 * 13 * 13 + 6 * 13 + 6)).all()  # zero offset: the centre of a 15x13x13 table
    assert int(index.max()) == 15 * 13 * 13 - 1 and int(index.min()) == 0
    assert torch.equal(index, index.max() - index.T)  # offset (a - b) and (b - a) mirror around the centre


def test_raw_scores_match_the_official_implementation(net):
    with torch.no_grad():
        technical, aesthetic = net(*seeded_views())
    assert technical.item() == pytest.approx(OFFICIAL_RAW["technical"], rel=1e-4, abs=1e-5)
    assert aesthetic.item() == pytest.approx(OFFICIAL_RAW["aesthetic"], rel=1e-4, abs=1e-5)


def test_fragment_bias_is_gated_by_fragment_cells(net):
    """GRPB: the fragment table acts between tokens of different cells, so changing it changes the output."""
    x = seeded_views()[0][0][:1, :, :8, :32, :32]  # stage 1: 8x8 tokens in one padded 7x7 window grid
    table = net.technical_backbone.layers[0].blocks[0].attn.fragment_position_bias_table
    kept = table.detach().clone()
    with torch.no_grad():
        before = net.technical_backbone(x)
        table.add_(1.0)
        after = net.technical_backbone(x)
        table.copy_(kept)  # the module-wide network is shared with other tests
    assert before.shape == (1, 768, 4, 1, 1)
    assert not torch.allclose(before, after)


def test_missing_weights_name_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(MissingWeights) as err:
        DOVER(weights=str(tmp_path / "DOVER.pth"))
    message = str(err.value)
    assert "DOVER.pth" in message and "github.com/QualityAssessment/DOVER/releases/download/v0.1.0/DOVER.pth" in message
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(MissingWeights, match="DOVER.pth"):  # a folder without the file
        DOVERMetric(weights=str(tmp_path))


def test_metric_without_a_path_looks_in_the_torch_hub_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeights) as err:
        DOVERMetric()
    assert str(tmp_path / "hub" / "checkpoints" / "DOVER.pth") in str(err.value)


# ---- sampling -------------------------------------------------------------------------------------


def test_frame_indices_follow_the_official_segments():
    g = torch.Generator().manual_seed(0)
    tech = frame_indices(240, 32, 3, 2, g)  # technical: 3 clips of 32 frames, 2 apart
    assert tech.shape == (96,)
    clips = tech.view(3, 32)
    assert (clips.diff(dim=1) == 2).all()
    for k, clip in enumerate(clips):  # each clip inside its own 80-frame segment, start in [0, 80 - 64)
        assert 80 * k <= clip[0] < 80 * k + 16 and clip[-1] < 80 * (k + 1)
    aes = frame_indices(240, 1, 32, 2, g)  # aesthetic: one frame in each of 32 segments of 7 frames
    assert aes.shape == (32,) and ((aes - torch.arange(32) * 7) >= 0).all() and ((aes - torch.arange(32) * 7) < 5).all()
    short = frame_indices(20, 32, 3, 2, g)  # shorter than a clip: start at each segment, wrap around
    assert torch.equal(short.view(3, 32)[:, 0], torch.tensor([0, 6, 12])) and int(short.max()) < 20


def test_frame_indices_are_seeded():
    draw = lambda seed: frame_indices(500, 32, 3, 2, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def position_video(t: int, h: int, w: int) -> torch.Tensor:
    """Float video whose channel 0 is the row, channel 1 the column and channel 2 the frame index."""
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1).expand(t, h, w)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, w).expand(t, h, w)
    frames = torch.arange(t, dtype=torch.float32).view(t, 1, 1).expand(t, h, w)
    return torch.stack([rows, cols, frames])


def test_fragments_take_one_patch_per_cell_and_per_clip():
    h, w = 260, 300
    out = fragment_view(position_video(8, h, w), grid=7, patch=32, aligned=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 8, 224, 224) and out.dtype == torch.float32
    assert torch.equal(out[2], torch.arange(8.0).view(8, 1, 1).expand(8, 224, 224))  # frames kept in order
    rows, cols = torch.arange(32.0).view(1, 32, 1).expand(4, 32, 32), torch.arange(32.0).view(1, 1, 32).expand(4, 32, 32)
    for i in range(7):
        for j in range(7):
            cell = out[:, :, 32 * i : 32 * (i + 1), 32 * j : 32 * (j + 1)]
            for clip in (cell[:, :4], cell[:, 4:]):
                top, left = clip[0, 0, 0, 0], clip[1, 0, 0, 0]
                assert torch.equal(clip[0], top + rows) and torch.equal(clip[1], left + cols)  # one patch, fixed in time
                assert h // 7 * i <= top < h // 7 * i + h // 7 - 32  # inside its cell
                assert w // 7 * j <= left < w // 7 * j + w // 7 - 32


def test_fragments_are_seeded_and_upsample_small_videos():
    video = torch.randint(0, 256, (3, 32, 120, 160), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = fragment_view(video, generator=torch.Generator().manual_seed(5))
    b = fragment_view(video, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 32, 224, 224) and torch.equal(a, b)
    big = torch.randint(0, 256, (3, 32, 240, 300), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(fragment_view(big, generator=torch.Generator().manual_seed(5)),
                           fragment_view(big, generator=torch.Generator().manual_seed(6)))
    # Smaller than 224: upsampled by 224 / 120, truncated to uint8, and cells at the original-size positions.
    up = (F.interpolate(video / 255.0, scale_factor=224 / 120, mode="bilinear") * 255.0).to(torch.uint8)
    assert torch.equal(a[:, :, :32, :32], up[:, :, :32, :32].float())
    assert torch.equal(a[:, :, 32:64, 32:64], up[:, :, 17:49, 22:54].float())  # 120 // 7 = 17, 160 // 7 = 22
    with pytest.raises(ValueError, match="multiple of aligned"):
        fragment_view(video[:, :20])
    with pytest.raises(ValueError, match="smaller than one"):
        fragment_view(video[:, :, :20])


def test_resize_view_is_torchvision_resize_without_antialias():
    torchvision = pytest.importorskip("torchvision")
    video = torch.randint(0, 256, (3, 4, 90, 160), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = resize_view(video, 224)
    frames = torchvision.transforms.functional.resize(video.transpose(0, 1), [224, 224], antialias=False)
    assert ours.shape == (3, 4, 224, 224) and torch.equal(ours, frames.transpose(0, 1).float())


def test_views_are_normalised_and_seeded():
    video = torch.randint(0, 256, (3, 50, 64, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    views = dover_views(video, torch.Generator().manual_seed(0), grid=2, patch=16, clip_len=4, clips=3, interval=2, size=32)
    assert views["technical"].shape == (3, 3, 4, 32, 32) and views["aesthetic"].shape == (1, 3, 4, 32, 32)
    gray = torch.full((3, 8, 40, 40), 128, dtype=torch.uint8)
    flat = dover_views(gray, None, grid=2, patch=16, clip_len=4, clips=2, size=32)["aesthetic"]
    expected = torch.tensor([(128 - 123.675) / 58.395, (128 - 116.28) / 57.12, (128 - 103.53) / 57.375])
    assert torch.allclose(flat[0, :, 0, 0, 0], expected)
    again = dover_views(video, torch.Generator().manual_seed(0), grid=2, patch=16, clip_len=4, clips=3, interval=2, size=32)
    assert all(torch.equal(views[k], again[k]) for k in views)
    with pytest.raises(ValueError, match="RGB video"):
        dover_views(video[:1])


# ---- fusion and the metric ---------------------------------------------------------------------------


def test_fusion_formula():
    r_tech, r_aes = torch.tensor([0.1107, 0.2]), torch.tensor([-0.08285, 0.0])
    scores = fuse(r_tech, r_aes)
    t, a = (0.2 - 0.1107) / 0.07355, (0.0 + 0.08285) / 0.03774
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert scores["technical"].tolist() == pytest.approx([0.5, sig(t)])
    assert scores["aesthetic"].tolist() == pytest.approx([0.5, sig(a)])
    assert scores["overall"].tolist() == pytest.approx([0.5, sig(0.6104 * t + 0.3896 * a)])


def test_metric_averages_three_scores_over_videos_and_is_seeded():
    sampling = dict(grid=2, patch=16, clip_len=4, clips=2, interval=1, size=32)
    with pytest.warns(UserWarning, match="randomly initialised"):
        metric = DOVERMetric(pretrained=False, seed=0, **sampling)
    videos = torch.rand(2, 3, 9, 40, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metric.update(videos)
    first = metric.compute()
    assert set(first) == {"technical", "aesthetic", "overall"}
    assert all(0 < float(v) < 1 for v in first.values())
    metric.reset()  # the k-th video after a reset draws the same views: same scores in any batching
    metric.update(videos[:1])
    metric.update(videos[1:])
    assert all(float(metric.compute()[k]) == pytest.approx(float(first[k]), abs=1e-6) for k in first)
    with pytest.raises(ValueError, match="expected videos"):
        metric.update(videos[0])


@pytest.mark.slow
def test_full_size_views_give_one_score_per_video(net):
    video = torch.randint(0, 256, (3, 100, 180, 320), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    views = dover_views(video, torch.Generator().manual_seed(0))
    assert views["technical"].shape == (3, 3, 32, 224, 224) and views["aesthetic"].shape == (1, 3, 32, 224, 224)
    with torch.no_grad():
        technical, aesthetic = net(views["technical"][None], views["aesthetic"][None])
    assert technical.shape == aesthetic.shape == (1,) and torch.isfinite(technical).all() and torch.isfinite(aesthetic).all()
