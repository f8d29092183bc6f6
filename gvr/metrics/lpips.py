"""LPIPS (v0.1, AlexNet) per frame at full resolution, as a torchmetrics Metric.

The network is the ``lpips`` package's: its linear calibration layers ship inside the package
(``lpips/weights/v0.1/alex.pth``); its AlexNet trunk is torchvision's ImageNet AlexNet
(``alexnet-owt-7be5be79.pth``), read from a local file or the torch hub cache, never downloaded.
"""

import warnings

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from gvr.metrics.image import to_unit_frames
from gvr.metrics.weights import WeightFile, load_checkpoint, resolve_weights


def alexnet_weight_file() -> WeightFile:
    """torchvision's ImageNet AlexNet, under the name torch hub caches it (``<hub>/checkpoints/``)."""
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    return WeightFile(filename=url.rsplit("/", 1)[-1], url=url)


def lpips_network(pretrained: bool = True) -> nn.Module:
    """The ``lpips`` package's LPIPS(net='alex', v0.1) with a randomly initialised trunk.

    ``pretrained``: its linear layers from the package's ``alex.pth``; otherwise random as well.
    """
    import lpips

    with warnings.catch_warnings():  # lpips builds the trunk with torchvision's deprecated `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", version="0.1", pretrained=pretrained, pnet_rand=True, verbose=False)
    return net.eval().requires_grad_(False)


def trunk_key_map(net: nn.Module) -> dict[str, str]:
    """LPIPS trunk key (``net.slice2.3.weight``) -> torchvision AlexNet key (``features.3.weight``).

    lpips splits ``alexnet().features`` into five ``sliceK`` Sequentials that keep the layer indices.
    """
    mapping = {}
    for name in net.net.state_dict():
        _, index, param = name.split(".")  # sliceK, layer index in `features`, weight|bias
        mapping[f"net.{name}"] = f"features.{index}.{param}"
    return mapping


def load_alexnet_trunk(net: nn.Module, path: str) -> None:
    """Copy torchvision AlexNet weights (its ``features.*`` part) from ``path`` into the LPIPS trunk, strictly."""
    state = load_checkpoint(path, key=None)
    mapping = trunk_key_map(net)
    missing = sorted(v for v in mapping.values() if v not in state)
    if missing:
        raise ValueError(f"'{path}' is not a torchvision AlexNet checkpoint: it lacks {missing}")
    net.net.load_state_dict({k[len("net."):]: state[v] for k, v in mapping.items()}, strict=True)


class FrameLPIPS(Metric):
    """LPIPS (AlexNet, v0.1) of every 8-bit frame at full resolution, averaged over frames; lower is better.

    Videos ``(B, C, T, H, W)`` in [-1, 1] are quantised to 8 bits like a saved file, scored frame by frame
    and averaged over all frames seen (for clips of equal length: the mean over frames, then over videos).
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, weights: str | None = None, pretrained: bool = True, batch: int = 8):
        """Args:
        weights: torchvision's ``alexnet-owt-7be5be79.pth`` or a folder holding it; None: the torch hub cache.
        pretrained: load the real weights (linear layers from the lpips package, trunk from ``weights``); False
            builds the architecture with random weights (tests, timing).
        batch: frames per forward pass.
        """
        super().__init__()
        self.batch = batch
        path = resolve_weights("lpips", alexnet_weight_file(), weights) if pretrained else None  # fail before building
        self.net = lpips_network(pretrained=pretrained)
        if path is not None:
            load_alexnet_trunk(self.net, str(path))
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def train(self, mode: bool = True) -> "FrameLPIPS":
        """Keep the network in eval mode (no dropout) whatever a parent module sets."""
        super().train(mode)
        self.net.eval()
        return self

    @torch.no_grad()
    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        """LPIPS ``(N,)`` of frames ``(N, 3, H, W)`` in [0, 1]."""
        out = [self.net(p, t, normalize=True).flatten() for p, t in
               zip(preds.split(self.batch), target.split(self.batch))]
        return torch.cat(out)

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape != target.shape or preds.ndim != 5 or preds.shape[1] != 3:
            raise ValueError(f"FrameLPIPS: expected two RGB videos (B, 3, T, H, W) of one shape, got "
                             f"{tuple(preds.shape)} and {tuple(target.shape)}")
        values = self.score(to_unit_frames(preds), to_unit_frames(target))
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()
