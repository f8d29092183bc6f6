"""A seeded mixture of degradations: each clip is degraded by one of them, drawn by weight."""

from collections.abc import Sequence

import torch

from gvr.data.degradations.degradation import Degradation


class MixtureDegradation(Degradation):
    """Degrade each clip with one of ``degradations``, chosen with probability proportional to ``weights``.

    Real-ESRGAN keeps some inputs undegraded and RealBasicVSR mixes degradation orders for the same reason: a
    model that only ever saw heavy blur, noise and compression over-sharpens clean inputs, one that only
    saw clean inputs cannot repair real ones. The choice is the first draw from the clip's generator, so a
    mixture stays reproducible from (seed, index).

    Args:
        degradations: the components (e.g. ``BicubicDownsample`` and ``ClassicDegradation``).
        weights: one non-negative weight each (normalised; None: equal weights).
    """

    def __init__(self, degradations: Sequence[Degradation], weights: Sequence[float] | None = None):
        if not degradations:
            raise ValueError("MixtureDegradation: needs at least one degradation")
        weights = [1.0] * len(degradations) if weights is None else list(weights)
        if len(weights) != len(degradations) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"MixtureDegradation: need one weight >= 0 per degradation with a positive sum, got {weights}")
        self.degradations = list(degradations)
        self.weights = torch.tensor(weights, dtype=torch.float64)

    def choose(self, generator: torch.Generator) -> int:
        """Index of the component that degrades the clip of ``generator`` (consumes one draw)."""
        return int(torch.multinomial(self.weights, 1, generator=generator))

    def __call__(self, hr: torch.Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        return self.degradations[self.choose(generator)](hr, lr_size, generator)
