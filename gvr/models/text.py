"""Caption features for text-conditioned VSR: captions -> `(B, L, D)` token features and a `(B, L)` mask.

The VSR DiT's optional cross-attention reads the same prompt as the base model. Text encoders are large
(umT5-XXL for Wan2.1) and nothing is downloaded here, so gvr reads captions through one small interface
with two implementations:

- `HashTextEncoder`: weight-free, for tiny presets and tests. Each lower-cased word maps to a fixed random
  vector drawn from a generator seeded by (seed, a stable hash of the word); no word order, no meaning
  beyond identity, but the same caption always gives the same features and different captions differ.
- `PrecomputedTextEncoder`: features computed elsewhere (e.g. umT5 on a GPU machine) and saved with
  `save_text_features` as a safetensors file, one `(L, D)` tensor per caption; an unknown caption is an
  error naming it and the file.

The empty caption "" is the null prompt (used for caption dropout in training): one all-zero token for
`HashTextEncoder`, the file's `""` entry for `PrecomputedTextEncoder` (zeros when the file has none).
"""

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

NULL_TOKENS = 1  # length of the all-zero null prompt where no features for "" are given


class TextEncoder(nn.Module, ABC):
    """Captions -> features `(B, L, dim)` and mask `(B, L)` (True for real tokens); no trainable weights.

    Attributes:
        dim: feature width, the `text_dim` of the backbone that reads them.
    """

    dim: int

    @abstractmethod
    def features(self, caption: str) -> Tensor:
        """Features `(L, dim)` of one caption, `L >= 1`."""

    def forward(self, captions: Sequence[str], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Features of a batch of captions, zero-padded to the longest, and the mask of real tokens."""
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise TypeError(f"{type(self).__name__}: captions must be a list of strings, got {captions!r}")
        feats = [self.features(c) for c in captions]
        length = max(f.shape[0] for f in feats)
        out = torch.zeros(len(feats), length, self.dim)
        mask = torch.zeros(len(feats), length, dtype=torch.bool)
        for i, f in enumerate(feats):
            out[i, : f.shape[0]], mask[i, : f.shape[0]] = f, True
        return out.to(device), mask.to(device)


class HashTextEncoder(TextEncoder):
    """Weight-free caption features: one fixed random vector per word (see the module docstring).

    Args:
        dim: feature width (the backbone's `text_dim`).
        max_tokens: words kept per caption (the rest is cut).
        seed: seed of the word vectors.
    """

    def __init__(self, dim: int = 32, max_tokens: int = 32, seed: int = 0):
        super().__init__()
        if dim < 1 or max_tokens < 1:
            raise ValueError(f"HashTextEncoder: dim and max_tokens must be >= 1, got {dim}, {max_tokens}")
        self.dim, self.max_tokens, self.seed = dim, max_tokens, seed

    def features(self, caption: str) -> Tensor:
        words = caption.lower().split()[: self.max_tokens]
        if not words:
            return torch.zeros(NULL_TOKENS, self.dim)
        rows = []
        for word in words:
            key = int.from_bytes(hashlib.sha256(f"{self.seed}:{word}".encode()).digest()[:7], "little")
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(key)))
        return torch.stack(rows) / self.dim**0.5


class PrecomputedTextEncoder(TextEncoder):
    """Caption features read from a file written by `save_text_features`.

    Args:
        path: the safetensors file.
    """

    def __init__(self, path: str):
        super().__init__()
        from safetensors import safe_open

        if not Path(path).is_file():
            raise FileNotFoundError(f"PrecomputedTextEncoder: {path} not found (write it with gvr.models.text.save_text_features)")
        with safe_open(path, "pt") as f:
            names = json.loads((f.metadata() or {}).get("captions", "null"))
            if not isinstance(names, dict):
                raise ValueError(f"PrecomputedTextEncoder: {path} has no caption index (not written by save_text_features)")
            tensors = {name: f.get_tensor(name) for name in names}
        self.path = path
        self.table = {caption: tensors[name].float() for name, caption in names.items()}
        widths = {f.shape[-1] for f in self.table.values()}
        if len(widths) != 1 or any(f.ndim != 2 or f.shape[0] < 1 for f in self.table.values()):
            raise ValueError(f"PrecomputedTextEncoder: {path} must hold (L, D) features of one width D, got {widths}")
        self.dim = widths.pop()

    def features(self, caption: str) -> Tensor:
        if caption in self.table:
            return self.table[caption]
        if caption == "":
            return torch.zeros(NULL_TOKENS, self.dim)
        raise KeyError(f"PrecomputedTextEncoder: no features for the caption {caption!r} in {self.path}")


def save_text_features(path: str, features: Mapping[str, Tensor]) -> None:
    """Write `{caption: (L, D) features}` for `PrecomputedTextEncoder` (include "" for the null prompt)."""
    from safetensors.torch import save_file

    names = {f"t{i}": caption for i, caption in enumerate(features)}
    tensors = {name: features[caption].detach().float().contiguous().cpu() for name, caption in names.items()}
    save_file(tensors, path, metadata={"captions": json.dumps(names)})
