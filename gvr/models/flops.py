"""Analytic FLOP counts of the attention operators and of the whole SimpleGVR, at a given input size.

Conventions (the same as `torch.utils.flop_counter.FlopCounterMode`, so that the two can be compared):

- A multiply-add is 2 FLOPs. Only matmul-class work is counted: linear layers (without their bias),
  convolutions (without bias), and the two matmuls of attention, `q k^T` and `softmax(.) v`
  (`4 * N_q * N_k * head_dim` per head). Elementwise and reduction work is not counted: softmax,
  norms, RoPE, activations, adaLN, the bilinear resize, the block means of sparse local attention.
  These are O(N * dim) against O(N * dim^2) or O(N^2 * head_dim) for what is counted.
- Padding is counted where the code computes it: the model pads the latent to whole patches before the
  transformer (1080p -> 135 latent rows -> 68 token rows: the transformer runs on 68 rows), and Swin /
  sparse local pad every frame to whole windows / blocks (a 68 x 120 frame in 9 x 12 blocks is computed
  as 72 x 120). Masked-out slots are computed by SDPA, so they count. The upsampler runs on the
  unpadded latent. Temporal units attend each unit directly (no padding, no mask), so nothing is padded.
- Sparse local attention counts its routing too: the relevance matmul `mean(q) . mean(k)` of every
  query block against every key block (`2 * M^2 * head_dim` per head for M blocks); the means
  themselves are reductions (not counted, 2 * N * head_dim additions per head).

The paper's figures (SimpleGVR, 17 frames, 1080p): full 1612.5G, Swin 452.6G, sparse local 377.1G.
The paper does not say what they cover. Two readings fit their numbers, and neither fits the paper's
three numbers at the same time, so `gvr flops` prints ours beside theirs rather than tuning to them:

1. Their ratios (Swin 0.281, sparse 0.234 of full) are what one gets for the matmul work of the model
   with its 3D attention swapped when the full 3D attention core dominates and the per-frame attention
   core is left out. At the 1b preset (dim 1536) on the 5 x 68 x 120 token grid, a block's projections
   and FFN are `32 N dim^2` = 3.08T, its full 3D attention core `4 N^2 dim` = 10.2T, its per-frame
   attention core 2.05T. Our whole model less the per-frame cores gives sparse local / full = 0.240
   (one block: 0.236; paper 0.234). The whole model with its per-frame attention gives 0.341, and the 3D
   attention cores alone 0.0057 (216 keys a query instead of 40,800). Our Swin (8 x 8 windows) lands
   below sparse local; the paper's Swin lies above it, so its windows must be larger: about 2,400 keys a
   query under this reading. The absolute figures do not match under it (ours: 241T for a forward pass).
2. Their full figure alone equals `4 N^2 dim` for dim 1536 and N = 16,200 tokens (1612.4G), i.e. the
   attention core of ONE layer over 2 x 8,100 tokens (two latent frames of 1080p at 16 pixels a token),
   not our 5 latent frames (40,800 tokens: 10.2T a layer). Under that reading the sparse and Swin
   figures would be attention cores over 3,790 and 4,550 keys a query, far more than the
   9 x 12 x (1 + top_k) = 216 of the paper's block size with top-1.

Our absolute numbers are for the model in this repository and are checked against FlopCounterMode.
"""

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.dit import PRESETS, SimpleGVR, block_spatial_ops
from gvr.models.sparse_attention import SparseLocalAttention, SwinAttention, TemporalUnitsAttention

Grid = tuple[int, int, int]

# Paper (SimpleGVR, 17 frames, 1080p): FLOPs of the attention variants, in G. What they cover is not
# stated; see the module docstring.
PAPER_GFLOPS = {"full": 1612.5, "swin": 452.6, "sparse_local": 377.1}


def sdpa_flops(queries: int, keys: int, head_dim: int, heads: int = 1, groups: int = 1) -> int:
    """FLOPs of `groups` independent softmax attentions of `queries` x `keys` tokens: `q k^T` and `p v`."""
    return 4 * groups * heads * queries * keys * head_dim


# --- 1. the attention operators, per layer ------------------------------------------------------------


def full_attention_flops(grid: Grid, heads: int, head_dim: int, batch: int = 1) -> int:
    """Every token attends to every token of the clip."""
    n = math.prod(grid)
    return sdpa_flops(n, n, head_dim, heads, batch)


def frame_attention_flops(grid: Grid, heads: int, head_dim: int, batch: int = 1) -> int:
    """Tokens attend to the tokens of their own frame."""
    t, h, w = grid
    return sdpa_flops(h * w, h * w, head_dim, heads, batch * t)


def temporal_units_flops(grid: Grid, heads: int, head_dim: int, unit: int, layer_index: int, batch: int = 1) -> int:
    """Full attention within units of `unit` frames; odd layers shift them by `unit // 2` (clips > unit)."""
    t, h, w = grid
    shift = unit // 2 if layer_index % 2 and t > unit else 0
    whole_end = shift + (t - shift) // unit * unit
    total = 0
    for start, end, frames in [(0, shift, shift), (shift, whole_end, unit), (whole_end, t, t - whole_end)]:
        if start < end:
            tokens = frames * h * w
            total += sdpa_flops(tokens, tokens, head_dim, heads, batch * (end - start) // frames)
    return total


def swin_flops(
    grid: Grid, heads: int, head_dim: int, window: tuple[int, int], batch: int = 1, across_frames: bool = False,
    frames: int | None = None,
) -> int:
    """Windows (padded to whole windows; a window never exceeds its axis); shifting costs nothing.

    2D windows of one frame, or with `across_frames` 3D windows holding the same patch of `frames` frames
    (None: all `t`; time padded to whole units).
    """
    t, h, w = grid
    p, r = min(window[0], h), min(window[1], w)
    patches = math.ceil(h / p) * math.ceil(w / r)
    if across_frames:
        unit = min(frames or t, t)
        return sdpa_flops(unit * p * r, unit * p * r, head_dim, heads, batch * patches * math.ceil(t / unit))
    return sdpa_flops(p * r, p * r, head_dim, heads, batch * t * patches)


def sparse_local_flops(
    grid: Grid, heads: int, head_dim: int, block: tuple[int, int], top_k: int, batch: int = 1
) -> dict[str, int]:
    """Sparse local attention: `{"attention": ..., "routing": ...}` (padded blocks, relevance matmul)."""
    t, h, w = grid
    m, slots = t * math.ceil(h / block[0]) * math.ceil(w / block[1]), block[0] * block[1]
    selected = 1 + min(top_k, m - 1)
    return {
        "attention": sdpa_flops(slots, selected * slots, head_dim, heads, batch * m),
        "routing": 2 * batch * heads * m * m * head_dim,  # mean(q) @ mean(k)^T over all block pairs
    }


def attention_flops(op: AttentionOp, grid: Grid, heads: int, head_dim: int, layer_index: int = 0, batch: int = 1) -> int:
    """FLOPs of one call of `op` on `(batch, heads, T*H*W, head_dim)` q, k, v over `grid`."""
    counters: dict[type, Callable[[], int]] = {
        FullAttention: lambda: full_attention_flops(grid, heads, head_dim, batch),
        FrameAttention: lambda: frame_attention_flops(grid, heads, head_dim, batch),
        TemporalUnitsAttention: lambda: temporal_units_flops(grid, heads, head_dim, op.unit, layer_index, batch),
        SwinAttention: lambda: swin_flops(grid, heads, head_dim, op.window, batch, op.across_frames, op.frames),
        SparseLocalAttention: lambda: sum(sparse_local_flops(grid, heads, head_dim, op.block, op.top_k, batch).values()),
    }
    if type(op) not in counters:
        raise TypeError(f"attention_flops: no FLOP formula for {type(op).__name__}; add one to gvr.models.flops")
    return counters[type(op)]()


# --- 2. the whole model --------------------------------------------------------------------------------


def simple_gvr_args(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """All SimpleGVR constructor arguments: its defaults, then `PRESETS[preset]`, then `overrides`."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"simple_gvr_args: unknown preset {preset!r}, choose from {sorted(PRESETS)}")
    defaults = {
        name: p.default for name, p in inspect.signature(SimpleGVR.__init__).parameters.items() if name != "self"
    }
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"simple_gvr_args: SimpleGVR has no argument(s) {sorted(unknown)}")
    return {**defaults, **(PRESETS[preset] if preset else {}), **overrides}


def latent_grid(frames: int, height: int, width: int, spatial_factor: int, temporal_factor: int) -> Grid:
    """Latent `(T, H, W)` of a `frames x height x width` video (causal time: the first frame kept alone).

    Sizes that do not divide are rounded up, as the codecs' `valid_size` pads them.
    """
    t = frames if temporal_factor == 1 else math.ceil((frames - 1) / temporal_factor) + 1
    return t, math.ceil(height / spatial_factor), math.ceil(width / spatial_factor)


def token_grid(latent: Grid, patch_size: tuple[int, int, int]) -> Grid:
    """Token grid of a latent, padded to whole patches as `SimpleGVR.forward` does."""
    return tuple(math.ceil(s / p) for s, p in zip(latent, patch_size))


def conv3d_flops(in_channels: int, out_channels: int, kernel: int, outputs: int, batch: int = 1) -> int:
    """A `kernel`^3 Conv3d producing `outputs` positions (T*H*W) per channel."""
    return 2 * batch * in_channels * out_channels * kernel**3 * outputs


def res3d_flops(in_channels: int, out_channels: int, size: Grid, batch: int = 1) -> int:
    """Two 3x3x3 convolutions (causal time, zero-padded space: output size = input size) + 1x1x1 skip."""
    n = math.prod(size)
    skip = conv3d_flops(in_channels, out_channels, 1, n, batch) if in_channels != out_channels else 0
    return conv3d_flops(in_channels, out_channels, 3, n, batch) + conv3d_flops(out_channels, out_channels, 3, n, batch) + skip


def upsampler_flops(
    in_channels: int, out_channels: int, channels: int, expand_time: int, lr: Grid, hr_hw: tuple[int, int], batch: int = 1
) -> int:
    """LatentUpsampler: Res3D, Res3D at the LR grid, resize (not counted), Res3D, Res3D at the HR grid."""
    t, e = lr[0], expand_time
    wide, hr = channels * e, (lr[0], *hr_hw)
    return (
        res3d_flops(in_channels, wide, lr, batch)
        + res3d_flops(channels, channels, (t * e, *lr[1:]), batch)
        + res3d_flops(channels, channels, (t * e, *hr_hw), batch)
        + res3d_flops(wide, out_channels, hr, batch)
    )


def linear_flops(tokens: int, in_features: int, out_features: int) -> int:
    """A linear layer applied to `tokens` rows (bias not counted)."""
    return 2 * tokens * in_features * out_features


def output_conv_flops(channels: int, cond_channels: int, cond_skip: bool, out_refine: int, positions: int) -> int:
    """The optional convolutions on the HR latent grid: the 1x1x1 condition skip and the SeamRefiner's two 1x3x3."""
    skip = 2 * positions * cond_channels * channels if cond_skip else 0
    refine = 2 * positions * 9 * out_refine * (channels + cond_channels + channels)
    return skip + refine


def model_flops(
    args: Mapping[str, Any], latent: Grid, lr_hw: tuple[int, int], batch: int = 1, text_tokens: int = 0
) -> dict[str, int]:
    """FLOPs of one SimpleGVR forward, by component (sum the values for the total).

    Args:
        args: all SimpleGVR constructor arguments (see `simple_gvr_args`); ops None mean the defaults.
        latent: HR latent `(T, H, W)` of `z_t`.
        lr_hw: `(h, w)` of the LR latent condition `c`.
        batch: clips in the batch.
        text_tokens: text length L for the cross-attention (used only when `args["text_dim"]` is set).
    """
    dim, heads, depth = args["dim"], args["heads"], args["depth"]
    head_dim, c = dim // heads, args["latent_channels"]
    cond = args["cond_channels"] or c
    patch_volume = math.prod(args["patch_size"])
    grid = token_grid(latent, tuple(args["patch_size"]))
    n = batch * math.prod(grid)
    spatial_op = args["spatial_op"] or FrameAttention()
    temporal_op = args["temporal_op"] or FullAttention()
    spatial_ops = block_spatial_ops(spatial_op, depth, tuple(args.get("global_blocks") or ()))
    mlp = args["mlp_ratio"] * dim
    hidden = int(2 * mlp / 3) if args["ffn"] == "swiglu" else int(mlp)
    ffn_out = 2 * hidden if args["ffn"] == "swiglu" else hidden
    text, sublayers = args["text_dim"], 4 if args["text_dim"] is not None else 3
    freq_dim = 256  # ScalarEmbedder default

    counts = {
        "upsampler": upsampler_flops(
            cond, cond, args["upsampler_channels"], args["upsampler_expand_time"], (latent[0], *lr_hw), latent[1:], batch
        ),
        "patch_embed": linear_flops(n, (c + cond) * patch_volume, dim),
        "embedders": 2 * (linear_flops(batch, freq_dim, dim) + linear_flops(batch, dim, dim)),
        "modulation": depth * linear_flops(batch, dim, 3 * sublayers * dim),
        "spatial_proj": depth * (linear_flops(n, dim, 3 * dim) + linear_flops(n, dim, dim)),
        "spatial_attention": sum(attention_flops(op, grid, heads, head_dim, i, batch) for i, op in enumerate(spatial_ops)),
        "temporal_proj": depth * (linear_flops(n, dim, 3 * dim) + linear_flops(n, dim, dim)),
        "temporal_attention": sum(attention_flops(temporal_op, grid, heads, head_dim, i, batch) for i in range(depth)),
        "cross_attention": 0,
        "ffn": depth * (linear_flops(n, dim, ffn_out) + linear_flops(n, hidden, dim)),
        "final_layer": linear_flops(batch, dim, 2 * dim) + linear_flops(n, dim, c * patch_volume),
        "output_convs": output_conv_flops(c, cond, args["cond_skip"], args["out_refine"], batch * math.prod(latent)),
    }
    if text is not None:
        length = batch * text_tokens
        counts["embedders"] += linear_flops(length, text, dim) + linear_flops(length, dim, dim)
        counts["cross_attention"] = depth * (
            linear_flops(n, dim, dim)  # q
            + linear_flops(length, dim, 2 * dim)  # kv of the text tokens
            + sdpa_flops(n // batch, text_tokens, head_dim, heads, batch)
            + linear_flops(n, dim, dim)  # proj
        )
    return counts
