"""DOVER (Wu et al., ICCV 2023): technical, aesthetic and overall video quality, as the official code scores it.

The views are sampled as in the official ``dover.yml`` / ``evaluate_a_set_of_videos.py``:

- technical: 3 segments of the video, in each a clip of 32 frames 2 apart from a random start; every
  32-frame clip is cut into a 7x7 grid of cells and one random 32x32 patch per cell is spliced into a
  224x224 "fragment" frame (videos smaller than 224 are first upsampled, bilinear);
- aesthetic: 32 segments, one frame each (2-frame margin), every frame resized to 224x224 (bilinear, no
  antialias as torchvision did for tensors in DOVER's time; aspect not kept).

Both are normalised with ImageNet mean/std on the 0..255 scale. Each branch's raw score is the mean of
its head over all positions and clips; the official fusion turns the two into three scores in [0, 1]:
``t = (r_tech - 0.1107) / 0.07355``, ``a = (r_aes + 0.08285) / 0.03774``, technical ``sigmoid(t)``,
aesthetic ``sigmoid(a)``, overall ``sigmoid(0.6104 t + 0.3896 a)``. Papers print these x100.

All random draws come from a seeded ``torch.Generator``: the same seed gives the same views.
"""

import warnings

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torchmetrics import Metric

from gvr.metrics.dover_arch import ConvNeXt3D, SwinTransformer3D, VQAHead
from gvr.metrics.weights import WeightFile, load_checkpoint, resolve_weights
from gvr.ops.seeding import generator as seeded_generator

DOVER_WEIGHTS = WeightFile(
    filename="DOVER.pth",
    url="https://github.com/QualityAssessment/DOVER/releases/download/v0.1.0/DOVER.pth "
    "(mirror: https://huggingface.co/teowu/DOVER/resolve/main/DOVER.pth)",
)

MEAN = (123.675, 116.28, 103.53)  # ImageNet, 0..255 scale
STD = (58.395, 57.12, 57.375)
TECH_SHIFT, TECH_SCALE = 0.1107, 0.07355  # official score-level fusion
AES_SHIFT, AES_SCALE = -0.08285, 0.03774
TECH_WEIGHT, AES_WEIGHT = 0.6104, 0.3896


# ---- 1. Temporal and spatial sampling (pure functions) ----------------------------------------------


def frame_indices(
    num_frames: int, clip_len: int, segments: int, interval: int, generator: torch.Generator | None = None
) -> Tensor:
    """Official ``UnifiedFrameSampler``: ``segments`` equal parts, in each ``clip_len`` frames ``interval`` apart.

    The start inside a part is uniform in ``[0, part - clip_len * interval)`` when the part is longer than
    the clip, else 0; indices past the end wrap around (short videos repeat). Returns ``(segments * clip_len,)``.
    """
    if num_frames < 1:
        raise ValueError(f"frame_indices: need at least one frame, got {num_frames}")
    part, span = num_frames // segments, clip_len * interval
    if part > span:
        offsets = torch.randint(0, part - span, (segments,), generator=generator)
    else:
        offsets = torch.zeros(segments, dtype=torch.long)
    starts = torch.arange(segments) * part + offsets
    return (starts[:, None] + torch.arange(clip_len) * interval).flatten() % num_frames


def fragment_view(
    video: Tensor, grid: int = 7, patch: int = 32, aligned: int = 32, generator: torch.Generator | None = None
) -> Tensor:
    """Official ``get_spatial_fragments``: ``(C, T, H, W)`` on the 0..255 scale -> float ``(C, T, grid*patch, grid*patch)``.

    Each run of ``aligned`` frames gets its own random patch position inside every cell of a ``grid`` x
    ``grid`` split. A video smaller than the view is upsampled (bilinear) first; official: cell positions
    are then still computed from the original size, and a uint8 video is truncated back to uint8.
    """
    c, t, h, w = video.shape
    if t > 1 and t % aligned:
        raise ValueError(f"fragment_view: {t} frames is not a multiple of aligned={aligned}")
    if min(h, w) < patch:
        raise ValueError(f"fragment_view: a {h}x{w} video is smaller than one {patch}x{patch} patch")
    aligned = 1 if t == 1 else aligned
    size = grid * patch
    ratio = min(h / size, w / size)
    if ratio < 1:
        up = F.interpolate(video / 255.0, scale_factor=1 / ratio, mode="bilinear") * 255.0
        video = up.to(video.dtype)
    starts_h = [min(h // grid * i, h - patch) for i in range(grid)]
    starts_w = [min(w // grid * j, w - patch) for j in range(grid)]
    cell_h, cell_w = h // grid, w // grid
    runs = t // aligned
    def draw(cell: int) -> Tensor:  # draw order as official: all row offsets, then all column offsets
        if cell > patch:
            return torch.randint(cell - patch, (grid, grid, runs), generator=generator)
        return torch.zeros((grid, grid, runs), dtype=torch.long)

    off_h, off_w = draw(cell_h), draw(cell_w)
    out = torch.zeros((c, t, size, size), device=video.device)
    for i, y in enumerate(starts_h):
        for j, x in enumerate(starts_w):
            for r in range(runs):
                y0, x0 = y + int(off_h[i, j, r]), x + int(off_w[i, j, r])
                frames = slice(r * aligned, (r + 1) * aligned)
                cell = video[:, frames, y0 : y0 + patch, x0 : x0 + patch]
                out[:, frames, i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = cell
    return out


def resize_view(video: Tensor, size: int = 224) -> Tensor:
    """Official aesthetic view: ``(C, T, H, W)`` -> float ``(C, T, size, size)``, bilinear without antialias.

    A uint8 video is rounded back to integers, as torchvision's ``Resize`` does for integer tensors.
    """
    x = F.interpolate(rearrange(video, "c t h w -> t c h w").float(), size=(size, size), mode="bilinear",
                      align_corners=False, antialias=False)
    if not video.is_floating_point():
        x = x.round()
    return rearrange(x, "t c h w -> c t h w")


def normalize(view: Tensor) -> Tensor:
    """ImageNet normalisation of ``(C, T, H, W)`` on the 0..255 scale."""
    mean = torch.tensor(MEAN, device=view.device).view(3, 1, 1, 1)
    std = torch.tensor(STD, device=view.device).view(3, 1, 1, 1)
    return (view.float() - mean) / std


def dover_views(
    video: Tensor,
    generator: torch.Generator | None = None,
    grid: int = 7,
    patch: int = 32,
    clip_len: int = 32,
    clips: int = 3,
    interval: int = 2,
    size: int = 224,
) -> dict[str, Tensor]:
    """Both normalised views of one video ``(3, T, H, W)`` (uint8, or float on 0..255).

    Returns ``technical`` ``(clips, 3, clip_len, grid*patch, grid*patch)`` and ``aesthetic``
    ``(1, 3, clip_len, size, size)``. Draw order: technical frames, aesthetic frames, patch positions.
    """
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"dover_views: expected an RGB video (3, T, H, W), got {tuple(video.shape)}")
    n = video.shape[1]
    tech_frames = frame_indices(n, clip_len, clips, interval, generator).to(video.device)
    aes_frames = frame_indices(n, 1, clip_len, interval, generator).to(video.device)
    technical = fragment_view(video[:, tech_frames], grid, patch, clip_len, generator)
    aesthetic = resize_view(video[:, aes_frames], size)
    return {
        "technical": rearrange(normalize(technical), "c (k t) h w -> k c t h w", k=clips),
        "aesthetic": normalize(aesthetic)[None],
    }


def fuse(technical: Tensor, aesthetic: Tensor) -> dict[str, Tensor]:
    """Official score-level fusion of the raw branch scores into technical, aesthetic and overall in [0, 1]."""
    t = (technical - TECH_SHIFT) / TECH_SCALE
    a = (aesthetic - AES_SHIFT) / AES_SCALE
    overall = torch.sigmoid(TECH_WEIGHT * t + AES_WEIGHT * a)
    return {"technical": torch.sigmoid(t), "aesthetic": torch.sigmoid(a), "overall": overall}


# ---- 2. The network --------------------------------------------------------------------------------


def find_weights(weights: str | None) -> str:
    """Path of ``DOVER.pth``: ``weights`` (the file or a folder holding it), or with None the torch hub
    ``checkpoints`` folder.

    Raises:
        MissingWeights: not there; the message names ``DOVER.pth``, where it looked and the download URL.
    """
    return str(resolve_weights("DOVER", DOVER_WEIGHTS, weights))


class DOVER(nn.Module):
    """Both DOVER branches and their heads, named as in the official model so ``DOVER.pth`` loads strictly.

    Args:
        weights: ``DOVER.pth`` or a folder holding it; None keeps the random initialisation (tests only).
    """

    def __init__(self, weights: str | None = None):
        super().__init__()
        path = find_weights(weights) if weights is not None else None  # fail before building 58M parameters
        # With a weight file, build on the meta device and take the file's tensors (no random init, one copy).
        with torch.device("meta" if path is not None else "cpu"):
            self.technical_backbone = SwinTransformer3D()
            self.aesthetic_backbone = ConvNeXt3D()
            self.technical_head = VQAHead()
            self.aesthetic_head = VQAHead()
        if path is not None:
            self.load_weights(path, assign=True)

    def load_weights(self, path: str, assign: bool = False) -> "DOVER":
        """Load a ``DOVER.pth`` file strictly (every official key, no other); ``assign`` takes its tensors as they are."""
        self.load_state_dict(load_checkpoint(path, key="state_dict"), strict=True, assign=assign)
        return self

    def forward(self, technical: Tensor, aesthetic: Tensor) -> tuple[Tensor, Tensor]:
        """Raw branch scores ``(B,)``, ``(B,)`` of normalised views ``(B, K, 3, T, H, W)`` (K clips per video)."""
        scores = []
        for views, backbone, head in ((technical, self.technical_backbone, self.technical_head),
                                      (aesthetic, self.aesthetic_backbone, self.aesthetic_head)):
            b = views.shape[0]
            out = head(backbone(rearrange(views, "b k c t h w -> (b k) c t h w")))  # (B K, 1, T', H', W')
            scores.append(rearrange(out, "(b k) 1 t h w -> b (k t h w)", b=b).mean(1))
        return scores[0], scores[1]


# ---- 3. The metric ---------------------------------------------------------------------------------


class DOVERMetric(Metric):
    """Mean DOVER technical, aesthetic and overall scores (0..1; papers print x100) over the videos seen.

    ``update`` takes videos ``(B, 3, T, H, W)`` in [-1, 1] (converted to uint8 like decoded frames). The
    views of the ``k``-th video since the last reset are drawn from a generator seeded with ``(seed, k)``.

    Args:
        weights: ``DOVER.pth`` or a folder holding it; None looks in the torch hub ``checkpoints`` folder.
        seed: seed of the view sampling.
        pretrained: False keeps randomly initialised networks (tests only: the scores then mean nothing).
        grid: fragment grid per side (official 7).
        patch: fragment patch size in pixels (official 32).
        clip_len: frames per clip of either view (official 32).
        clips: technical clips per video (official 3).
        interval: frame step inside a clip (official 2).
        size: side of the resized aesthetic frames (official 224).
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        weights: str | None = None,
        seed: int = 0,
        pretrained: bool = True,
        grid: int = 7,
        patch: int = 32,
        clip_len: int = 32,
        clips: int = 3,
        interval: int = 2,
        size: int = 224,
    ):
        super().__init__()
        self.net = DOVER(find_weights(weights) if pretrained else None)
        if not pretrained:
            warnings.warn("DOVERMetric(pretrained=False): randomly initialised networks, the scores mean nothing", stacklevel=2)
        self.net.eval().requires_grad_(False)
        self.seed, self.seen = seed, 0
        self.sampling = {"grid": grid, "patch": patch, "clip_len": clip_len, "clips": clips, "interval": interval, "size": size}
        for name in ("technical", "aesthetic", "overall"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def train(self, mode: bool = True) -> "DOVERMetric":
        """Keep the network in eval mode whatever mode a parent module sets."""
        super().train(mode)
        self.net.eval()
        return self

    def reset(self) -> None:
        super().reset()
        self.seen = 0

    @torch.no_grad()
    def score(self, video: Tensor) -> dict[str, Tensor]:
        """The three scores of one uint8 video ``(3, T, H, W)``, with the generator of its index."""
        g = seeded_generator(self.seed, self.seen)
        self.seen += 1
        views = dover_views(video, g, **self.sampling)
        raw_t, raw_a = self.net(views["technical"][None], views["aesthetic"][None])
        return {k: v[0] for k, v in fuse(raw_t, raw_a).items()}

    def update(self, videos: Tensor) -> None:
        if videos.ndim != 5 or videos.shape[1] != 3:
            raise ValueError(f"DOVERMetric: expected videos (B, 3, T, H, W) in [-1, 1], got {tuple(videos.shape)}")
        frames = ((videos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        for video in frames:
            for name, value in self.score(video).items():
                setattr(self, name, getattr(self, name) + value.double())
            self.count += 1

    def compute(self) -> dict[str, Tensor]:
        if self.count == 0:
            raise ValueError("DOVERMetric: no videos were scored")
        return {name: (getattr(self, name) / self.count).float() for name in ("technical", "aesthetic", "overall")}
