"""Inception-v1 I3D (Kinetics-400), the FVD feature extractor of VideoGPT / TATS / cd-fvd.

The architecture and the module names follow piergiaj's pytorch-i3d as VideoGPT, TATS and cd-fvd ship it,
so ``i3d_pretrained_400.pt`` (converted from the TF-Hub Kinetics-400 RGB model) loads strictly. As in
those copies, BatchNorm uses eps 1e-5 (piergiaj's original has 1e-3, which changes the features) and
every convolution and pooling pads like TensorFlow's "SAME".
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

WEIGHTS_SOURCE = (
    "the TATS release (https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt, "
    "also fetched by the cd-fvd package)"
)


def pad_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """Zero-pad ``(B, C, T, H, W)`` like TF "SAME": output size ``ceil(n / s)``, the odd pixel at the end."""
    pad = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


class Unit3D(nn.Module):
    """Conv3d ("SAME") -> BatchNorm3d -> ReLU; the logits layer is a biased conv without BN or ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        logits: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride, self.logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        return x if self.logits else F.relu(self.bn(x))


class MaxPool3dSame(nn.Module):
    """Max pooling with TF "SAME" zero padding (exact here: it always follows a ReLU)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | maxpool -> 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D RGB network: uint8 videos ``(B, 3, T, H, W)`` -> Kinetics logits ``(B, num_classes)``.

    Frames are resized straight to 224x224 (bilinear, no antialias, no crop) and scaled to [-1, 1]; the
    output is the pre-softmax logits averaged over time, the FVD feature of TATS / cd-fvd. Attribute
    names are the state-dict keys of ``i3d_pretrained_400.pt``. Dropout before the logits is left out:
    it has no weights and FVD runs in eval mode.
    """

    resolution = 224
    min_frames = 9  # time shrinks 8x before the final 2x7x7 average pool: fewer than 9 frames leave 1 step

    def __init__(self, num_classes: int = 400):
        """Args:
        num_classes: outputs of the logits layer (400 for the Kinetics-400 weights).
        """
        super().__init__()
        # Attribute names ARE the checkpoint's keys; the order of assignment is the order of `forward`.
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = InceptionModule(self.Mixed_3b.out_channels, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(self.Mixed_3c.out_channels, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = InceptionModule(self.Mixed_4b.out_channels, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = InceptionModule(self.Mixed_4c.out_channels, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = InceptionModule(self.Mixed_4d.out_channels, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = InceptionModule(self.Mixed_4e.out_channels, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(self.Mixed_4f.out_channels, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = InceptionModule(self.Mixed_5b.out_channels, (384, 192, 384, 48, 128, 128))
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=1)
        self.logits = Unit3D(self.Mixed_5c.out_channels, num_classes, logits=True)

    def preprocess(self, videos: Tensor) -> Tensor:
        """uint8-range RGB ``(B, 3, T, H, W)`` -> float ``(B, 3, T, 224, 224)`` in [-1, 1] (as cd-fvd)."""
        b = videos.shape[0]
        frames = rearrange(videos.float(), "b c t h w -> (b t) c h w")
        size = (self.resolution, self.resolution)
        frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=False)
        return rearrange(2 * frames / 255 - 1, "(b t) c h w -> b c t h w", b=b)

    def forward(self, videos: Tensor) -> Tensor:
        b, c, t, h, w = videos.shape
        if c != 3 or t < self.min_frames:
            raise ValueError(f"InceptionI3d: expected RGB videos of >= {self.min_frames} frames, got {(b, c, t, h, w)}")
        x = self.preprocess(videos)
        for stage in list(self.children())[:-2]:  # the trunk, up to Mixed_5c
            x = stage(x)
        x = self.logits(self.avg_pool(x))  # (b, classes, t', 1, 1)
        return x.flatten(2).mean(dim=2)


def load_i3d(path: str | Path) -> InceptionI3d:
    """The Kinetics-400 I3D from a local ``i3d_pretrained_400.pt``, on CPU, frozen, in eval mode.

    The file has no BatchNorm ``num_batches_tracked`` counters (inference never reads them); the model's
    own counters fill them in and every other key must match exactly (strict loading).

    Raises:
        FileNotFoundError: the file does not exist (nothing is downloaded).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights '{path}' not found: download i3d_pretrained_400.pt from {WEIGHTS_SOURCE}")
    model = InceptionI3d(num_classes=400)
    counters = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    model.load_state_dict({**counters, **torch.load(path, map_location="cpu", weights_only=True)}, strict=True)
    return model.eval().requires_grad_(False)
