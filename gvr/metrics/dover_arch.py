"""DOVER's networks with the official module names, so that the official ``DOVER.pth`` loads strictly.

- technical branch: Video Swin-T (patch 2x4x4, window 8x7x7, depths 2-2-6-2) with FAST-VQA's gated
  relative position bias (GRPB): in the first three stages a second bias table is used between tokens
  of different fragments;
- aesthetic branch: ConvNeXt-T inflated to 3D (stem 2x4x4, depthwise temporal kernels 1, 3, 1 cycling
  inside each stage), without classifier;
- one head per branch: two 1x1x1 convolutions giving a raw score at every feature position.

Inference only (DOVER is a frozen metric here): no drop-path, dropout or activation checkpointing, which
hold no weights. Quirks of the official code that change the numbers are kept and marked "official".
"""

from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# ---- 1. Video Swin-T with gated relative position bias (technical branch) ----------------------------


def effective_window(size: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Window and shift actually used: a side no longer than its window becomes one window, unshifted."""
    use_window, use_shift = list(window), list(shift)
    for i, n in enumerate(size):
        if n <= window[i]:
            use_window[i], use_shift[i] = n, 0
    return tuple(use_window), tuple(use_shift)


def window_partition(x: Tensor, window: tuple[int, int, int]) -> Tensor:
    """``(B, D, H, W, C)`` -> ``(B * windows, tokens per window, C)``, windows in (d, h, w) order."""
    p, q, r = window
    return rearrange(x, "b (d p) (h q) (w r) c -> (b d h w) (p q r) c", p=p, q=q, r=r)


def window_reverse(windows: Tensor, window: tuple[int, int, int], b: int, d: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition` for a padded ``(B, D, H, W, C)`` volume."""
    p, q, r = window
    return rearrange(windows, "(b d h w) (p q r) c -> b (d p) (h q) (w r) c",
                     b=b, d=d // p, h=h // q, w=w // r, p=p, q=q, r=r)


@lru_cache(maxsize=16)
def shift_mask(d: int, h: int, w: int, window: tuple, shift: tuple, device: torch.device) -> Tensor:
    """Additive mask ``(windows, N, N)`` of shifted-window attention: -100 between tokens of different regions."""
    region = torch.zeros((1, d, h, w, 1), device=device)
    label = 0
    # A zero shift gives the slices (:-ws), (-ws:-0) = empty, (-0:) = all, as in Video Swin: the last
    # slice then relabels everything along that axis, which leaves that axis unsplit.
    for sd in (slice(-window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for sh in (slice(-window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            for sw in (slice(-window[2]), slice(-window[2], -shift[2]), slice(-shift[2], None)):
                region[:, sd, sh, sw, :] = label
                label += 1
    ids = window_partition(region, window).squeeze(-1)  # (windows, N)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


@lru_cache(maxsize=16)
def fragment_gate(d: int, h: int, w: int, window: tuple, shift: tuple, device: torch.device) -> Tensor:
    """GRPB gate ``(windows, N, N)``: L1 distance between the fragment cells of two tokens (0 = same cell).

    Official: the fragment grid is taken as the window's own (h, w) size (7x7 at full size, the 7x7 grid
    of the sampler), spread over the padded volume by nearest-neighbour interpolation, then shifted and
    cut into windows like the tokens.
    """
    grid = torch.stack(torch.meshgrid(*(torch.arange(n) for n in (1, window[1], window[2])), indexing="ij")).float()
    cells = F.interpolate(grid[None].to(device), size=(d, h, w)).long()  # (1, 3, d, h, w), mode "nearest"
    cells = torch.roll(rearrange(cells, "1 k d h w -> 1 d h w k"), shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    cells = window_partition(cells, window)  # (windows, N, 3)
    return (cells[:, None, :] - cells[:, :, None]).abs().sum(-1).float()


def relative_position_index(window: tuple[int, int, int]) -> Tensor:
    """Index ``(N, N)`` into the ``(2Wd-1)(2Wh-1)(2Ww-1)`` bias table for every pair of tokens of a window."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(n) for n in window), indexing="ij")).flatten(1)  # (3, N)
    rel = rearrange(coords[:, :, None] - coords[:, None, :], "k n m -> n m k") + torch.tensor(window) - 1
    strides = torch.tensor([(2 * window[1] - 1) * (2 * window[2] - 1), 2 * window[2] - 1, 1])
    return (rel * strides).sum(-1)


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside 3D windows with a relative position bias (gated when ``frag_bias``)."""

    def __init__(self, dim: int, window: tuple[int, int, int], heads: int, frag_bias: bool):
        """dim: channels; window: full window (Wd, Wh, Ww); heads: attention heads; frag_bias: GRPB table."""
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        table = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table, heads))
        if frag_bias:
            self.fragment_position_bias_table = nn.Parameter(torch.zeros(table, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))  # saved in DOVER.pth
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None, gate: Tensor) -> Tensor:
        """``x`` (B * windows, N, C); ``mask`` and ``gate`` (windows, N, N)."""
        bw, n, c = x.shape
        windows = gate.shape[0]
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B * windows, heads, N, N)
        index = self.relative_position_index[:n, :n].reshape(-1)  # official: top-left block for smaller windows
        bias = rearrange(self.relative_position_bias_table[index], "(n m) h -> h n m", n=n)
        if hasattr(self, "fragment_position_bias_table"):
            frag = rearrange(self.fragment_position_bias_table[index], "(n m) h -> h n m", n=n)
            g = gate[:, None]  # official: the gate is the L1 cell distance, so 2 for diagonal neighbours
            bias = bias[None] * g + frag * (1 - g)  # (windows, heads, N, N)
        else:
            bias = bias[None]
        attn = rearrange(attn, "(b w) h n m -> b w h n m", w=windows) + bias
        if mask is not None:
            attn = attn + mask[None, :, None]
        attn = rearrange(attn, "b w h n m -> (b w) h n m").softmax(-1)
        return self.proj(rearrange(attn @ v, "b h n e -> b n (h e)"))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        """dim: channels; hidden: hidden width."""
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock3D(nn.Module):
    """Pre-norm (shifted-)window attention and MLP on ``(B, D, H, W, C)``."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int, int], shift: tuple[int, int, int], frag_bias: bool):
        """dim: channels; heads: attention heads; window: window size; shift: cyclic shift; frag_bias: GRPB."""
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, heads, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def attention(self, x: Tensor, mask: Tensor) -> Tensor:
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        pads = [(window[i] - n % window[i]) % window[i] for i, n in enumerate((d, h, w))]
        x = F.pad(self.norm1(x), (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        _, dp, hp, wp, _ = x.shape
        shifted = any(s > 0 for s in shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = fragment_gate(dp, hp, wp, window, shift, x.device)
        out = self.attn(window_partition(x, window), mask if shifted else None, gate)
        x = window_reverse(out, window, b, dp, hp, wp)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attention(x, mask)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial patch merging: concatenate neighbours (official order), LayerNorm, halve the channels."""

    def __init__(self, dim: int):
        """dim: input channels."""
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:4]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # official order x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]: column offset outermost
        x = rearrange(x, "b d (h p) (w q) c -> b d h w (q p c)", p=2, q=2)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    """One Swin stage: ``depth`` blocks alternating plain and half-shifted windows, then optional merging."""

    def __init__(self, dim: int, depth: int, heads: int, window: tuple[int, int, int], frag_bias: bool, downsample: bool):
        """dim: channels; depth: blocks; heads: attention heads; window: window size; frag_bias: GRPB;
        downsample: end with patch merging."""
        super().__init__()
        self.window, self.shift = window, tuple(n // 2 for n in window)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock3D(dim, heads, window, (0, 0, 0) if i % 2 == 0 else self.shift, frag_bias)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        b, c, d, h, w = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        padded = [-(-n // k) * k for n, k in zip((d, h, w), window, strict=True)]
        mask = shift_mask(*padded, window, shift, x.device)
        x = rearrange(x, "b c d h w -> b d h w c")
        for block in self.blocks:
            x = block(x, mask)
        if self.downsample is not None:
            x = self.downsample(x)
        return rearrange(x, "b d h w c -> b c d h w")


class PatchEmbed3D(nn.Module):
    """Strided Conv3d patch embedding (zero-padding to whole patches) followed by LayerNorm."""

    def __init__(self, patch: tuple[int, int, int], dim: int):
        """patch: patch size (t, h, w); dim: embedding channels."""
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        d, h, w = x.shape[2:]
        pt, ph, pw = self.patch
        x = F.pad(x, (0, (pw - w % pw) % pw, 0, (ph - h % ph) % ph, 0, (pt - d % pt) % pt))
        x = self.proj(x)
        return rearrange(self.norm(rearrange(x, "b c d h w -> b d h w c")), "b d h w c -> b c d h w")


class SwinTransformer3D(nn.Module):
    """Video Swin-T with GRPB (FAST-VQA's ``swin_tiny_grpb``): ``(B, 3, T, H, W)`` -> ``(B, 768, T/2, H/32, W/32)``."""

    def __init__(
        self,
        patch: tuple[int, int, int] = (2, 4, 4),
        dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        heads: tuple[int, ...] = (3, 6, 12, 24),
        window: tuple[int, int, int] = (8, 7, 7),
        frag_biases: tuple[bool, ...] = (True, True, True, False),
    ):
        """patch: patch size; dim: stage-1 channels; depths: blocks per stage; heads: heads per stage;
        window: attention window; frag_biases: stages with the gated fragment bias."""
        super().__init__()
        self.patch_embed = PatchEmbed3D(patch, dim)
        self.layers = nn.ModuleList(
            BasicLayer(dim * 2**i, depths[i], heads[i], window, frag_biases[i], downsample=i < len(depths) - 1)
            for i in range(len(depths))
        )
        self.num_features = dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return rearrange(self.norm(rearrange(x, "b c d h w -> b d h w c")), "b d h w c -> b c d h w")


# ---- 2. ConvNeXt-T 3D (aesthetic branch) -------------------------------------------------------------


class LayerNorm(nn.Module):
    """ConvNeXt's LayerNorm over channels, for channels-last or channels-first (``(B, C, ...)``) tensors."""

    def __init__(self, dim: int, channels_first: bool = False, eps: float = 1e-6):
        """dim: channels; channels_first: normalise dim 1 instead of the last; eps: variance epsilon."""
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.channels_first, self.eps = channels_first, eps

    def forward(self, x: Tensor) -> Tensor:
        if not self.channels_first:
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return self.weight.view(shape) * ((x - u) / torch.sqrt(s + self.eps)) + self.bias.view(shape)


class Block3D(nn.Module):
    """ConvNeXt block: depthwise (k, 7, 7) conv -> LayerNorm -> Linear 4x -> GELU -> Linear -> layer scale."""

    def __init__(self, dim: int, inflate: int):
        """dim: channels; inflate: temporal kernel of the depthwise convolution (1 or 3)."""
        super().__init__()
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))
        self.dwconv = nn.Conv3d(dim, dim, kernel_size=(inflate, 7, 7), padding=(inflate // 2, 3, 3), groups=dim)
        self.norm = LayerNorm(dim)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        y = rearrange(self.dwconv(x), "b c t h w -> b t h w c")
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + rearrange(y, "b t h w c -> b c t h w")


class ConvNeXt3D(nn.Module):
    """ConvNeXt-T inflated to 3D, spatial output: ``(B, 3, T, H, W)`` -> ``(B, 768, T/2, H/32, W/32)``."""

    def __init__(
        self,
        depths: tuple[int, ...] = (3, 3, 9, 3),
        dims: tuple[int, ...] = (96, 192, 384, 768),
        inflate: str = "131",
    ):
        """depths: blocks per stage; dims: channels per stage; inflate: temporal kernels cycled inside a stage."""
        super().__init__()
        stem = nn.Sequential(nn.Conv3d(3, dims[0], kernel_size=(2, 4, 4), stride=(2, 4, 4)), LayerNorm(dims[0], True))
        self.downsample_layers = nn.ModuleList([stem])
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(LayerNorm(dims[i], True), nn.Conv3d(dims[i], dims[i + 1], kernel_size=(1, 2, 2), stride=(1, 2, 2)))
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block3D(dims[i], int(inflate[j % len(inflate)])) for j in range(depths[i])))
            for i in range(len(dims))
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return rearrange(self.norm(rearrange(x, "b c t h w -> b t h w c")), "b t h w c -> b c t h w")


# ---- 3. Score head -------------------------------------------------------------------------------------


class VQAHead(nn.Module):
    """Per-position raw quality score: 1x1x1 conv to ``hidden`` -> GELU -> 1x1x1 conv to 1 channel."""

    def __init__(self, in_channels: int = 768, hidden: int = 64):
        """in_channels: backbone channels; hidden: hidden channels."""
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden, 1)
        self.gelu = nn.GELU()
        self.fc_last = nn.Conv3d(hidden, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_last(self.gelu(self.fc_hid(x)))  # (B, 1, T', H', W')
