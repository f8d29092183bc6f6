"""Derived seeds: every random draw of gvr is a pure function of a base seed and integer keys."""

import torch

_MIX = 1_000_003  # odd multiplier that spreads (seed, key) pairs over independent generator seeds


def derive_seed(seed: int, *keys: int) -> int:
    """Fold ``keys`` into ``seed``: ``((seed * M + k1) * M + k2) ... mod 2^63``."""
    for key in keys:
        seed = (seed * _MIX + key) % (2**63)
    return seed


def generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
