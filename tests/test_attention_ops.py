"""Tests of the long/high-resolution attention operators against dense-mask references built from their
definitions (cyclic roll + mask, top-k block routing), their limits (full and frame attention), batch
independence, a SimpleGVR forward/backward with each, and their YAML schema."""

import json
import math

import pytest
import torch
from jsonargparse import ArgumentParser
from test_models import inputs, perturb_zero_init, small_model
from torch import Tensor

from gvr.models import SimpleGVR
from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.sparse_attention import SparseLocalAttention, SwinAttention, TemporalUnitsAttention


def qkv(grid: tuple[int, int, int], b: int = 2, heads: int = 2, d: int = 8, seed: int = 0) -> list[Tensor]:
    """Random float64 q, k, v `(b, heads, T*H*W, d)` for `grid`."""
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(3, b, heads, math.prod(grid), d, generator=g, dtype=torch.float64).unbind(0))


def coords(grid: tuple[int, int, int]) -> Tensor:
    """(t, y, x) of every token in (t h w) order, `(N, 3)`."""
    return torch.stack(torch.meshgrid(*(torch.arange(s) for s in grid), indexing="ij"), -1).reshape(-1, 3)


def masked_attention(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """Dense softmax attention where query i sees key j iff `allowed[..., i, j]`."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~allowed, -math.inf).softmax(dim=-1) @ v


def shifted_partition(pos: Tensor, length: int, window: int, shift: int) -> Tensor:
    """Swin's cyclic-shift partition along one axis: (window after rolling by -shift, wrapped around?)."""
    return torch.stack([(pos - shift) % length // window, (pos < shift).long()], -1)


def window_keys(grid: tuple[int, int, int], window: tuple[int, int], layer_index: int) -> list[Tensor]:
    """The shifted-window partition keys of every token along height and width (half-window shift on odd layers)."""
    pos, keys = coords(grid), []
    for axis, size in ((1, window[0]), (2, window[1])):
        length = grid[axis]
        shift = size // 2 if layer_index % 2 and length > size else 0
        keys.append(shifted_partition(pos[:, axis], length, min(size, length), shift))
    return keys


def same_region(keys: Tensor) -> Tensor:
    """`(N, N)`: True where two tokens have equal region keys `(N, K)`."""
    return (keys[:, None] == keys[None]).all(-1)


# --- temporal units ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [3, 4, 7])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_temporal_units_covering_the_clip_equal_full_attention(unit: int, layer_index: int):
    grid = (3, 2, 3)
    q, k, v = qkv(grid)
    out = TemporalUnitsAttention(unit)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, FullAttention()(q, k, v, grid, layer_index))


@pytest.mark.parametrize("t", [6, 7, 8, 11])
@pytest.mark.parametrize("layer_index", [0, 1, 2, 3])
def test_temporal_units_equal_roll_and_mask_reference(t: int, layer_index: int):
    grid, unit = (t, 2, 2), 4
    q, k, v = qkv(grid)
    shift = unit // 2 if layer_index % 2 else 0
    allowed = same_region(shifted_partition(coords(grid)[:, 0], t, unit, shift))
    out = TemporalUnitsAttention(unit)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, masked_attention(q, k, v, allowed))


def test_shifted_temporal_units_never_attend_across_the_wrap():
    # 11 frames, units of 4 shifted by 2: roll -> [2..5] [6..9] [10, 0, 1, pad]; the mask splits off [0, 1].
    t, s, unit = 11, 3, 4
    frame = coords((t, 1, s))[:, 0]
    v = torch.nn.functional.one_hot(frame, t).double()[None, None]  # each value tags its frame
    # Queries of frames 0-1 and the keys of frame 10 (the other side of the wrap) align strongly.
    q = torch.where((frame < 2)[:, None], 10.0, 0.0).double().expand(1, 1, -1, 4)
    k = torch.where((frame == 10)[:, None], 10.0, 0.0).double().expand(1, 1, -1, 4)
    assert FullAttention()(q, k, v, (t, 1, s), 1)[0, 0, 0, 10] > 0.99  # the bait: full attention takes it

    frame_mass = TemporalUnitsAttention(unit)(q, k, v, (t, 1, s), layer_index=1)[0, 0]  # (n, frames)
    groups = [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9], [10]]
    for group in groups:
        others = [f for f in range(t) if f not in group]
        queries = torch.isin(frame, torch.tensor(group))
        torch.testing.assert_close(frame_mass[queries][:, others], torch.zeros(queries.sum(), len(others)).double())


# --- Swin windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [(3, 5), (4, 8)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_swin_window_covering_the_frame_equals_frame_attention(window: tuple[int, int], layer_index: int):
    grid = (2, 3, 5)
    q, k, v = qkv(grid)
    out = SwinAttention(window)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, FrameAttention()(q, k, v, grid, layer_index))


@pytest.mark.parametrize("grid", [(2, 4, 8), (2, 5, 7), (1, 7, 3)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_swin_equals_roll_and_mask_reference(grid: tuple[int, int, int], layer_index: int):
    window = (2, 4)
    q, k, v = qkv(grid)
    keys = [coords(grid)[:, :1], *window_keys(grid, window, layer_index)]  # the frame, then the windows
    out = SwinAttention(window)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, masked_attention(q, k, v, same_region(torch.cat(keys, -1))))


@pytest.mark.parametrize("window", [(3, 5), (4, 8)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_3d_swin_window_covering_the_frame_equals_full_attention(window: tuple[int, int], layer_index: int):
    grid = (3, 3, 5)
    q, k, v = qkv(grid)
    out = SwinAttention(window, across_frames=True)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, FullAttention()(q, k, v, grid, layer_index))


@pytest.mark.parametrize("grid", [(3, 4, 8), (2, 5, 7), (1, 7, 3)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_3d_swin_equals_roll_and_mask_reference(grid: tuple[int, int, int], layer_index: int):
    # As the 2D reference, without the frame in the region key: a window holds its patch of every frame.
    window = (2, 4)
    q, k, v = qkv(grid)
    keys = window_keys(grid, window, layer_index)
    out = SwinAttention(window, across_frames=True)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, masked_attention(q, k, v, same_region(torch.cat(keys, -1))))


@pytest.mark.parametrize("t,frames", [(7, 3), (6, 3), (5, 2), (4, 4), (3, 5)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_3d_swin_with_temporal_units_equals_roll_and_mask_reference(t: int, frames: int, layer_index: int):
    # Time is cut into units of `frames` frames, shifted by half a unit on odd layers, like space.
    grid, window = (t, 5, 4), (2, 4)
    q, k, v = qkv(grid)
    pos, keys = coords(grid), []
    unit = min(frames, t)
    keys.append(shifted_partition(pos[:, 0], t, unit, unit // 2 if layer_index % 2 and t > unit else 0))
    keys += window_keys(grid, window, layer_index)
    out = SwinAttention(window, across_frames=True, frames=frames)(q, k, v, grid, layer_index)
    torch.testing.assert_close(out, masked_attention(q, k, v, same_region(torch.cat(keys, -1))))


def test_swin_frames_needs_3d_windows():
    with pytest.raises(ValueError, match="needs across_frames"):
        SwinAttention((4, 4), frames=3)
    with pytest.raises(ValueError, match=">= 1"):
        SwinAttention((4, 4), across_frames=True, frames=0)


# --- sparse local attention -------------------------------------------------------------------------


def sparse_reference(q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], block: tuple[int, int], top_k: int):
    """MoBA-like routing on unpadded tokens: own block + top_k others by mean(q) . mean(k), dense mask."""
    t, h, w = grid
    i, j = math.ceil(h / block[0]), math.ceil(w / block[1])
    pos = coords(grid)
    block_id = pos[:, 0] * i * j + pos[:, 1] // block[0] * j + pos[:, 2] // block[1]  # (N,)
    member = torch.nn.functional.one_hot(block_id).double()  # (N, M)
    q_mean, k_mean = (member.T @ x / member.sum(0)[:, None] for x in (q, k))  # (b, n, M, d)
    relevance = q_mean @ k_mean.transpose(-1, -2)
    relevance.diagonal(dim1=-2, dim2=-1).fill_(-math.inf)
    chosen = torch.eye(member.shape[1], dtype=torch.bool).expand_as(relevance).clone()
    chosen.scatter_(-1, relevance.topk(top_k, dim=-1).indices, True)  # (b, n, M query, M key blocks)
    return masked_attention(q, k, v, chosen[..., block_id[:, None], block_id[None, :]])


@pytest.mark.parametrize("grid", [(2, 6, 8), (3, 5, 7)])
def test_sparse_local_with_all_blocks_equals_full_attention(grid: tuple[int, int, int]):
    q, k, v = qkv(grid)
    blocks = grid[0] * math.ceil(grid[1] / 3) * math.ceil(grid[2] / 4)
    for top_k in (blocks - 1, blocks + 5):  # more than there are: all other blocks
        out = SparseLocalAttention((3, 4), top_k)(q, k, v, grid, layer_index=0)
        torch.testing.assert_close(out, FullAttention()(q, k, v, grid, 0))


@pytest.mark.parametrize("grid", [(2, 6, 8), (3, 5, 7)])
@pytest.mark.parametrize("top_k", [0, 1, 3])
def test_sparse_local_equals_dense_reference(grid: tuple[int, int, int], top_k: int):
    q, k, v = qkv(grid)
    out = SparseLocalAttention((3, 4), top_k)(q, k, v, grid, layer_index=0)
    torch.testing.assert_close(out, sparse_reference(q, k, v, grid, (3, 4), top_k))


@pytest.mark.parametrize("grid", [(3, 6, 8), (2, 7, 9)])
def test_sparse_local_in_chunks_of_query_blocks_equals_one_chunk(grid: tuple[int, int, int]):
    q, k, v = (x.requires_grad_() for x in qkv(grid))
    whole, chunked = SparseLocalAttention((3, 4), top_k=2, backend="sdpa"), SparseLocalAttention((3, 4), top_k=2, backend="sdpa")
    chunked.gather_tokens = 1  # one query block a chunk
    a, b = whole(q, k, v, grid, 0), chunked(q, k, v, grid, 0)
    torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)
    for ga, gb in zip(torch.autograd.grad(a.square().sum(), (q, k, v)), torch.autograd.grad(b.square().sum(), (q, k, v))):
        torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-5)


def test_sparse_local_routes_to_the_most_relevant_block_in_any_frame():
    op = SparseLocalAttention((2, 2), top_k=1)  # a (3, 4, 4) grid: 4 blocks a frame, 12 in all
    g = torch.Generator().manual_seed(0)
    q_blocks, k_blocks = 0.01 * torch.randn(2, 1, 1, 12, 4, 8, generator=g)  # (b, n, (t i j), (p r), d)
    q_blocks[:, :, 0, :, 0] = 1.0  # block 0 (frame 0) asks for direction 0 ...
    k_blocks[:, :, 11, :, 0] = 1.0  # ... which block 11 (last of frame 2, in the future) answers
    selected = op.select_blocks(q_blocks, k_blocks, torch.ones(12, 4, dtype=torch.bool))
    assert selected.shape == (1, 1, 12, 2) and selected[0, 0, :, 0].tolist() == list(range(12))
    assert selected[0, 0, 0, 1] == 11


# --- all operators ----------------------------------------------------------------------------------

OPS = [TemporalUnitsAttention(2), SwinAttention((2, 3)), SparseLocalAttention((2, 3), top_k=2)]


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
@pytest.mark.parametrize("layer_index", [0, 1])
def test_ops_are_batch_independent(op: AttentionOp, layer_index: int):
    grid = (5, 3, 5)
    q, k, v = (x.float() for x in qkv(grid))
    out = op(q, k, v, grid, layer_index)
    single = torch.cat([op(q[i : i + 1], k[i : i + 1], v[i : i + 1], grid, layer_index) for i in range(2)])
    torch.testing.assert_close(out, single)


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_ops_reject_wrong_grid(op: AttentionOp):
    q = torch.randn(1, 1, 12, 8)
    with pytest.raises(ValueError, match="grid"):
        op(q, q, q, grid=(2, 2, 2), layer_index=0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TemporalUnitsAttention(0),
        lambda: SwinAttention((0, 4)),
        lambda: SwinAttention((4,)),
        lambda: SparseLocalAttention((3, 4, 5)),
        lambda: SparseLocalAttention(top_k=-1),
    ],
)
def test_ops_reject_bad_arguments(build):
    with pytest.raises(ValueError, match="must be"):
        build()


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_simple_gvr_trains_with_each_op(op: AttentionOp):
    model = perturb_zero_init(small_model(temporal_op=op))
    z, t, c, s = inputs(t=3, hr=(10, 14))  # a (3, 5, 7) token grid: shifts and padding everywhere
    out = model(z, t, c, s)
    assert out.shape == z.shape
    out.square().mean().backward()
    grad = model.blocks[1].temporal_attn.qkv.weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(
    "name, init_args",
    [("TemporalUnitsAttention", {"unit": 2}), ("SwinAttention", {"window": (2, 4)}),
     ("SparseLocalAttention", {"block": (3, 4), "top_k": 2})],
)  # fmt: skip
def test_ops_parse_from_yaml_into_simple_gvr(name: str, init_args: dict):
    parser = ArgumentParser()
    parser.add_class_arguments(SimpleGVR, "net")
    config = f"""
net:
  latent_channels: 4
  dim: 32
  depth: 2
  heads: 2
  upsampler_channels: 8
  temporal_op:
    class_path: gvr.models.sparse_attention.{name}
    init_args: {json.dumps(init_args)}
"""
    net = parser.instantiate_classes(parser.parse_string(config)).net
    op = net.blocks[0].temporal_attn.op
    assert type(op).__name__ == name and op is net.blocks[1].temporal_attn.op  # one op shared by all blocks
    assert all(getattr(op, arg) == value for arg, value in init_args.items())


@pytest.mark.parametrize("cls", [TemporalUnitsAttention, SwinAttention, SparseLocalAttention])
def test_every_op_argument_is_documented(cls):
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "op")
    assert all(action.help for action in parser._actions if action.dest.startswith("op."))


def test_stage3_config_is_stage1_with_temporal_units_on_4x_longer_clips():
    from pathlib import Path

    import yaml

    configs = Path(__file__).resolve().parents[1] / "configs"
    stage1, stage3 = (yaml.safe_load((configs / f"stage{i}.yaml").read_text()) for i in (1, 3))
    assert stage3["data"]["num_frames"] == 4 * stage1["data"]["num_frames"]
    assert stage3["model"]["codec"] == stage1["model"]["codec"]
    parser = ArgumentParser()
    parser.add_class_arguments(SimpleGVR, "net")
    first, third = (parser.instantiate_classes(parser.parse_object({"net": c["model"]["backbone"]["init_args"]})).net
                    for c in (stage1, stage3))
    op = third.blocks[1].temporal_attn.op
    assert isinstance(op, TemporalUnitsAttention) and op.unit == stage1["data"]["num_frames"]
    # Same parameters as stage 1 (the ops have none), so stage-1/2 weights load into it.
    assert {k: v.shape for k, v in first.state_dict().items()} == {k: v.shape for k, v in third.state_dict().items()}
