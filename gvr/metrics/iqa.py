"""No-reference image quality per frame (MUSIQ, CLIP-IQA, MANIQA) with pyiqa's networks, as torchmetrics Metrics.

The architectures are pyiqa's (``pyiqa.archs``), with the settings of pyiqa's default metrics ``musiq``
(KonIQ-10k), ``clipiqa`` (CLIP RN50, ten antonym prompts) and ``maniqa`` (KonIQ-10k). pyiqa is installed
without its (very large) dependency tree: these three need only timm and openai-clip. Its constructors
download weights, so gvr builds the networks offline and loads the files itself:

- MUSIQ: ``MUSIQ(pretrained=False)`` then ``musiq_koniq_ckpt-e95806b9.pth``, strictly.
- MANIQA: pyiqa's constructor always asks timm for the ImageNet ViT-B/8; it is built with ``pretrained=False``
  instead (the MANIQA checkpoint ``ckpt_koniq10k.pt`` holds every ViT weight, so nothing is lost), then loaded
  strictly.
- CLIP-IQA: pyiqa's ``CLIPIQA`` always loads OpenAI's ``RN50.pt`` in its constructor, so gvr assembles the same
  computation from pyiqa's ``CLIP`` architecture (RN50 hyper-parameters) and the prompts it uses; the CLIP
  weights come from ``RN50.pt`` (a TorchScript archive or a plain state dict).

Weight files are looked for in pyiqa's cache (``<torch hub>/pyiqa``; CLIP: ``<torch hub>/clip``) unless a
path is given; nothing is downloaded. Frames are scored as 8-bit RGB in [0, 1] at full resolution (MANIQA
takes its own 20 crops of 224x224) and averaged over all frames seen.
"""

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from gvr.metrics.image import to_unit_frames
from gvr.metrics.weights import WeightFile, load_checkpoint, resolve_weights, torch_hub_dir


def pyiqa_cache() -> Path:
    """pyiqa's download folder, ``<torch hub>/pyiqa``."""
    return torch_hub_dir() / "pyiqa"


def _pyiqa_file(url: str) -> WeightFile:
    return WeightFile(filename=url.rsplit("/", 1)[-1], url=url, cache_dirs=(pyiqa_cache,))


class FrameIQA(Metric):
    """Mean over frames of a no-reference score of each 8-bit frame of videos ``(B, 3, T, H, W)`` in [-1, 1]."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, net: nn.Module, batch: int = 1):
        """Args:
        net: maps frames ``(N, 3, H, W)`` in [0, 1] to scores ``(N, 1)``.
        batch: frames per forward pass.
        """
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.batch = batch
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def train(self, mode: bool = True) -> "FrameIQA":
        """Keep the network in eval mode (pyiqa's networks crop and normalise differently in training)."""
        super().train(mode)
        self.net.eval()
        return self

    @torch.no_grad()
    def score(self, frames: Tensor) -> Tensor:
        """Scores ``(N,)`` of frames ``(N, 3, H, W)`` in [0, 1]."""
        return torch.cat([self.net(chunk).flatten() for chunk in frames.split(self.batch)])

    def update(self, preds: Tensor) -> None:
        if preds.ndim != 5 or preds.shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: expected RGB videos (B, 3, T, H, W), got {tuple(preds.shape)}")
        values = self.score(to_unit_frames(preds))
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


# 1. MUSIQ


def musiq_weight_file() -> WeightFile:
    """pyiqa's MUSIQ KonIQ-10k checkpoint (the default ``musiq`` metric)."""
    from pyiqa.archs.musiq_arch import default_model_urls

    return _pyiqa_file(default_model_urls["koniq10k"])


def musiq_network() -> nn.Module:
    """pyiqa's MUSIQ as its ``musiq`` metric builds it (one output: KonIQ MOS, about 0..100), random weights."""
    from pyiqa.archs.musiq_arch import MUSIQ

    return MUSIQ(pretrained=False, num_class=1)


class FrameMUSIQ(FrameIQA):
    """MUSIQ (KonIQ-10k, about 0..100) of every frame at full resolution, averaged over frames; higher is better."""

    def __init__(self, weights: str | None = None, pretrained: bool = True, batch: int = 1):
        """Args:
        weights: ``musiq_koniq_ckpt-e95806b9.pth`` or a folder holding it; None: pyiqa's cache.
        pretrained: load the weights; False keeps the random initialisation (tests, timing).
        batch: frames per forward pass.
        """
        path = resolve_weights("musiq", musiq_weight_file(), weights) if pretrained else None  # fail before building
        net = musiq_network()
        if path is not None:
            net.load_state_dict(load_checkpoint(path), strict=True)
        super().__init__(net, batch)


# 2. MANIQA


def maniqa_weight_file() -> WeightFile:
    """pyiqa's MANIQA KonIQ-10k checkpoint (the default ``maniqa`` metric)."""
    from pyiqa.archs.maniqa_arch import default_model_urls

    return _pyiqa_file(default_model_urls["koniq"])


@contextmanager
def _timm_without_downloads():
    """Inside: pyiqa's MANIQA module asks timm for randomly initialised networks only."""
    import pyiqa.archs.maniqa_arch as maniqa_arch

    timm = maniqa_arch.timm

    class OfflineTimm:
        def __getattr__(self, name):
            return getattr(timm, name)

        @staticmethod
        def create_model(name, pretrained=False, **kwargs):
            return timm.create_model(name, pretrained=False, **kwargs)

    maniqa_arch.timm = OfflineTimm()
    try:
        yield
    finally:
        maniqa_arch.timm = timm


def maniqa_network() -> nn.Module:
    """pyiqa's MANIQA with the options of its ``maniqa`` metric (KonIQ, scale 0.8), random weights, no download."""
    from pyiqa.archs.maniqa_arch import MANIQA
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    options = {k: v for k, v in DEFAULT_CONFIGS["maniqa"]["metric_opts"].items() if k != "type"}
    with _timm_without_downloads():
        return MANIQA(**options, pretrained=False)


class FrameMANIQA(FrameIQA):
    """MANIQA (KonIQ-10k, about 0..1; 20 crops of 224x224 a frame) averaged over frames; higher is better."""

    def __init__(self, weights: str | None = None, pretrained: bool = True, batch: int = 1):
        """Args:
        weights: ``ckpt_koniq10k.pt`` or a folder holding it; None: pyiqa's cache.
        pretrained: load the weights; False keeps the random initialisation (tests, timing).
        batch: frames per forward pass.
        """
        path = resolve_weights("maniqa", maniqa_weight_file(), weights) if pretrained else None
        net = maniqa_network()
        if path is not None:
            net.load_state_dict(load_checkpoint(path), strict=True)
        super().__init__(net, batch)


# 3. CLIP-IQA

# pyiqa's CLIPIQA prompts (pairs: positive, negative) and OpenAI's RN50 hyper-parameters (as build_model infers them).
CLIPIQA_PROMPTS = ("Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
                   "High resolution image", "low resolution image", "Noise-free image", "noisy image")
CLIP_RN50 = {"embed_dim": 1024, "image_resolution": 224, "vision_layers": (3, 4, 6, 3), "vision_width": 64,
             "vision_patch_size": None, "context_length": 77, "vocab_size": 49408, "transformer_width": 512,
             "transformer_heads": 8, "transformer_layers": 12}
CLIP_CONSTANTS = ("input_resolution", "context_length", "vocab_size")  # ints stored in OpenAI's archives


def clip_weight_file() -> WeightFile:
    """OpenAI's CLIP RN50 (``RN50.pt``), where pyiqa (``<hub>/clip``) and openai-clip (``~/.cache/clip``) keep it."""
    from pyiqa.archs.clip_model import _MODELS

    url = _MODELS["RN50"]
    return WeightFile(filename=url.rsplit("/", 1)[-1], url=url,
                      cache_dirs=(lambda: torch_hub_dir() / "clip", lambda: Path("~/.cache/clip").expanduser()))


def clip_tokenize(texts: tuple[str, ...], context_length: int = 77) -> Tensor:
    """openai-clip's ``clip.tokenize``: ``<sot> BPE <eot>`` zero-padded, ``(N, context_length)`` int64.

    The tokenizer module is loaded from the installed openai-clip package directly: the package's own
    ``__init__`` imports ``pkg_resources``, which setuptools >= 81 no longer ships.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("CLIP-IQA needs the openai-clip package (pip install openai-clip)")
    name = "gvr_clip_simple_tokenizer"
    if name not in sys.modules:
        path = Path(next(iter(spec.submodule_search_locations))) / "simple_tokenizer.py"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        sys.modules[name] = module
    tokenizer = sys.modules[name].SimpleTokenizer()
    sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]
    tokens = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [sot, *tokenizer.encode(text), eot]
        if len(ids) > context_length:
            raise ValueError(f"clip_tokenize: '{text}' is longer than {context_length} tokens")
        tokens[i, : len(ids)] = torch.tensor(ids)
    return tokens


def load_clip_state(path: str | Path) -> dict[str, Tensor]:
    """CLIP tensors from OpenAI's TorchScript archive (or a plain state dict), without the stored int constants."""
    try:
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except RuntimeError:
        state = load_checkpoint(path, key=None)
    return {k: v.float() for k, v in state.items() if k not in CLIP_CONSTANTS}


class CLIPIQANet(nn.Module):
    """pyiqa's ``clipiqa``: the probability of the positive prompt of each antonym pair, averaged over pairs.

    Frames in [0, 1] are normalised with CLIP's mean/std and encoded at their own size (no positional
    embedding on the attention pool, as pyiqa's default); logits are CLIP's scaled cosine similarities.
    """

    def __init__(self):
        super().__init__()
        from pyiqa.archs.clip_model import CLIP
        from pyiqa.archs.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        self.clip = CLIP(**CLIP_RN50)
        self.register_buffer("tokens", clip_tokenize(CLIPIQA_PROMPTS), persistent=False)
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("text_features", None, persistent=False)  # set by `cache_text_features`

    @torch.no_grad()
    def cache_text_features(self) -> None:
        """Encode the prompts once (the text tower's output never changes once weights are loaded)."""
        self.text_features = self.clip.encode_text(self.tokens)  # (prompts, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        text = self.text_features if self.text_features is not None else self.clip.encode_text(self.tokens)
        logits, _ = self.clip((x - self.mean) / self.std, None, pos_embedding=False, text_features=text)  # (n, prompts)
        probs = logits.reshape(len(x), -1, 2).softmax(dim=-1)  # (n, pairs, positive|negative)
        return probs[..., 0].mean(dim=1, keepdim=True)


class FrameCLIPIQA(FrameIQA):
    """CLIP-IQA (CLIP RN50, 0..1) of every frame at full resolution, averaged over frames; higher is better."""

    def __init__(self, weights: str | None = None, pretrained: bool = True, batch: int = 1):
        """Args:
        weights: OpenAI's ``RN50.pt`` or a folder holding it; None: pyiqa's / openai-clip's cache.
        pretrained: load the weights; False keeps the random initialisation (tests, timing).
        batch: frames per forward pass.
        """
        path = resolve_weights("clipiqa", clip_weight_file(), weights) if pretrained else None
        net = CLIPIQANet()
        if path is not None:
            net.clip.load_state_dict(load_clip_state(path), strict=True)
        net.cache_text_features()
        super().__init__(net, batch)
