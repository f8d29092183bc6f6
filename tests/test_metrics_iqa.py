"""gvr.metrics.iqa: MUSIQ, CLIP-IQA and MANIQA built offline from pyiqa's architectures, their checkpoint
layouts, loading from pyiqa's cache or a path, missing weights, and scores on small frames."""

import sys

import pytest
import torch

pytest.importorskip("pyiqa", reason="pyiqa is installed by `make install` (pip --no-deps, see the Makefile)")

from gvr.metrics.iqa import (
    CLIP_RN50,
    CLIPIQA_PROMPTS,
    FrameCLIPIQA,
    FrameMANIQA,
    FrameMUSIQ,
    clip_tokenize,
    clip_weight_file,
    load_clip_state,
    maniqa_network,
    maniqa_weight_file,
    musiq_network,
    musiq_weight_file,
)
from gvr.metrics.weights import MissingWeights


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME: pyiqa's cache is ``<it>/hub/pyiqa``, CLIP's ``<it>/hub/clip``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))  # openai-clip's ~/.cache/clip
    return tmp_path


def video(t: int = 2, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# 1. MUSIQ


def test_musiq_layout_is_pyiqa_koniq():
    from pyiqa.archs.musiq_arch import MUSIQ

    state = musiq_network().state_dict()
    official = MUSIQ(pretrained=False, num_class=1).state_dict()
    assert list(state) == list(official)
    assert all(state[k].shape == v.shape for k, v in official.items())
    assert state["head.weight"].shape == (1, 384)  # the KonIQ checkpoint: one MOS output, no AVA softmax
    assert musiq_weight_file().filename == "musiq_koniq_ckpt-e95806b9.pth"
    assert "IQA-PyTorch-Weights" in musiq_weight_file().url


def test_musiq_loads_from_pyiqa_cache(torch_home):
    torch.manual_seed(0)
    state = musiq_network().state_dict()
    cache = torch_home / "hub" / "pyiqa"
    cache.mkdir(parents=True)
    torch.save({"params": {f"module.{k}": v for k, v in state.items()}}, cache / musiq_weight_file().filename)
    metric = FrameMUSIQ()  # from the cache; 'params' / 'module.' wrappers are unwrapped
    loaded = metric.net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(v, state[k]) for k, v in loaded.items())


@pytest.mark.slow
def test_musiq_scores_each_8bit_frame():
    metric = FrameMUSIQ(pretrained=False)
    x = video()
    metric.update(x)
    frames = ((x[0].transpose(0, 1) + 1) * 127.5).round() / 255  # (t, 3, h, w) 8-bit in [0, 1]
    with torch.no_grad():
        expected = torch.cat([metric.net(f[None]).flatten() for f in frames]).mean()
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-5, atol=1e-5)


def test_musiq_missing_weights(torch_home):
    with pytest.raises(MissingWeights, match="musiq_koniq_ckpt-e95806b9.pth") as info:
        FrameMUSIQ()
    assert str(torch_home / "hub" / "pyiqa") in str(info.value) and "huggingface.co" in info.value.url
    with pytest.raises(MissingWeights, match="elsewhere"):
        FrameMUSIQ(weights=str(torch_home / "elsewhere"))


# 2. CLIP-IQA


def test_clip_tokenizer_matches_openai_clip(monkeypatch):
    import types

    import packaging.version

    # openai-clip's clip.py imports `packaging` from pkg_resources (gone in setuptools >= 81): stand one in
    monkeypatch.setitem(sys.modules, "pkg_resources", types.SimpleNamespace(packaging=packaging))
    import clip

    tokens = clip_tokenize(CLIPIQA_PROMPTS)
    assert tokens.shape == (10, 77) and tokens.dtype == torch.long
    assert torch.equal(tokens, clip.tokenize(list(CLIPIQA_PROMPTS)).long())
    assert tokens[0, :4].tolist() == [49406, tokens[0, 1].item(), tokens[1, 2].item(), 49407]  # <sot> good image <eot>


@pytest.mark.slow
def test_clipiqa_layout_loads_from_openai_style_file_and_scores(torch_home):
    from pyiqa.archs.clip_model import build_model

    torch.manual_seed(0)
    metric = FrameCLIPIQA(pretrained=False)
    state = metric.net.clip.state_dict()
    for key in ("visual.attnpool.positional_embedding", "visual.layer4.2.conv3.weight", "token_embedding.weight",
                "transformer.resblocks.11.attn.in_proj_weight", "text_projection", "logit_scale"):
        assert key in state
    assert state["visual.attnpool.positional_embedding"].shape == (50, 2048)  # RN50 at 224: 7x7 + 1
    # OpenAI's file also stores three ints; pyiqa's loader rebuilds RN50 from the keys alone and loads strictly
    saved = {**state, "input_resolution": torch.tensor(224), "context_length": torch.tensor(77),
             "vocab_size": torch.tensor(49408)}
    path = torch_home / "hub" / "clip" / clip_weight_file().filename
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    rebuilt = build_model(dict(saved))
    assert rebuilt.visual.attnpool.c_proj.out_features == CLIP_RN50["embed_dim"]
    loaded = FrameCLIPIQA()  # from <hub>/clip/RN50.pt
    assert torch.equal(load_clip_state(path)["text_projection"], loaded.net.clip.state_dict()["text_projection"])
    loaded.update(video(t=2))
    score = loaded.compute().item()
    assert 0.0 <= score <= 1.0
    torch.testing.assert_close(loaded.net.text_features, loaded.net.clip.encode_text(loaded.net.tokens))


def test_clipiqa_missing_weights(torch_home):
    with pytest.raises(MissingWeights, match="RN50.pt") as info:
        FrameCLIPIQA()
    assert info.value.url.startswith("https://openaipublic.azureedge.net/clip/models/")
    assert str(torch_home / "hub" / "clip") in str(info.value)


# 3. MANIQA


@pytest.mark.slow
def test_maniqa_layout_is_pyiqa_koniq_and_builds_offline(torch_home):
    state = maniqa_network().state_dict()  # no download attempted: TORCH_HOME is empty and there is no network
    assert any(k.startswith("vit.blocks.11.") for k in state)  # the checkpoint carries the whole ViT-B/8
    for key in ("tablock1.0.c_q.weight", "conv1.weight", "swintransformer1.layers.0.blocks.0.attn.relative_position_bias_table",
                "swintransformer2.layers.1.conv.weight", "tablock2.1.c_v.bias", "fc_score.3.weight", "fc_weight.3.bias"):
        assert key in state, key
    assert state["vit.patch_embed.proj.weight"].shape == (768, 3, 8, 8)
    torch.save(state, torch_home / maniqa_weight_file().filename)
    metric = FrameMANIQA(weights=str(torch_home))  # a folder holding ckpt_koniq10k.pt
    metric.net.test_sample = 1  # one 224x224 crop instead of 20, to keep the test short
    metric.update(video(t=1, h=64, w=64))
    assert 0.0 <= metric.compute().item() <= 1.0 + 1e-6


def test_maniqa_missing_weights(torch_home):
    with pytest.raises(MissingWeights, match="ckpt_koniq10k.pt"):
        FrameMANIQA()


def test_frame_iqa_rejects_non_video():
    metric = FrameMUSIQ(pretrained=False)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        metric.update(torch.zeros(1, 3, 8, 8))
