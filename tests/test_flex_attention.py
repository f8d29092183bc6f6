"""FlexAttention paths of temporal units and sparse local attention equal their SDPA paths.

Three checks, since the two ways of running FlexAttention read different parts of a block mask: the eager
reference (the mask function at every pair), the compiled CPU kernel (the block lists, with the mask
function only inside partial blocks), and the block lists against `create_block_mask`'s dense ones. The
compiled CUDA kernel is checked by the GPU-only test at the end.
"""

import shutil

import pytest
import torch

from gvr.models import SparseLocalAttention, TemporalUnitsAttention
from gvr.models.flex import (
    eager_reference,
    flex_available,
    segment_block_mask,
    unit_groups,
)

pytestmark = [
    pytest.mark.skipif(not flex_available(), reason="this torch has no FlexAttention"),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # eager FlexAttention warns that it is not compiled
]


def _qkv(grid, b=2, heads=2, d=8, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    n = grid[0] * grid[1] * grid[2]
    return [torch.randn(b, heads, n, d, generator=g).to(device) for _ in range(3)]


needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compiling FlexAttention on CPU needs a C++ compiler"
)


@pytest.mark.parametrize("grid,unit", [((7, 3, 4), 3), ((8, 2, 3), 3), ((5, 3, 3), 2), ((3, 4, 4), 5)])
@pytest.mark.parametrize("layer", [0, 1])
def test_temporal_units_flex_equals_sdpa(grid, unit, layer):
    q, k, v = _qkv(grid)
    sdpa = TemporalUnitsAttention(unit, backend="sdpa")(q, k, v, grid, layer)
    with eager_reference():
        flex = TemporalUnitsAttention(unit, backend="flex")(q, k, v, grid, layer)
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sizes", [[336], [100, 28, 200, 7], [128, 128, 5], [1, 300, 130], [700]])
def test_segment_block_lists_match_create_block_mask(sizes):
    from torch.nn.attention.flex_attention import create_block_mask

    group = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    n = group.numel()
    mask = segment_block_mask(group)
    dense = create_block_mask(lambda b, h, i, j: group[i] == group[j], None, None, n, n, device="cpu")
    assert torch.equal(mask.to_dense(), dense.to_dense())  # the same tiles are visited
    # A tile listed as full needs no mask: every pair inside it is allowed and lies within the sequence.
    pairs = torch.nn.functional.pad(group[:, None] == group[None, :], (0, -n % 128, 0, -n % 128))
    tiles = pairs.unflatten(0, (-1, 128)).unflatten(2, (-1, 128)).all(dim=(1, 3))
    full = torch.zeros_like(tiles)
    for i, (count, row) in enumerate(zip(mask.full_kv_num_blocks[0, 0], mask.full_kv_indices[0, 0])):
        full[i, row[:count].long()] = True
    assert not (full & ~tiles).any()


def test_unit_groups_follow_the_shifted_partition():
    assert unit_groups(8, 3, 1, torch.device("cpu")).tolist() == [0, 1, 1, 1, 2, 2, 2, 3]
    assert unit_groups(7, 3, 0, torch.device("cpu")).tolist() == [1, 1, 1, 2, 2, 2, 3]


def test_segment_block_mask_of_a_77_frame_1080p_clip_is_built_without_an_n_by_n_mask():
    # 1b preset at 1080p: 20 latent frames of 68 x 120 tokens; a dense (N, N) mask would be 26.6 GB.
    n_frame = 68 * 120
    group = unit_groups(20, 5, 2, torch.device("cpu")).repeat_interleave(n_frame)
    mask = segment_block_mask(group)
    tiles = -(-20 * n_frame // 128)
    assert mask.kv_indices.shape == (1, 1, tiles, tiles)
    seen = mask.kv_num_blocks + mask.full_kv_num_blocks  # key tiles each query tile visits
    unit_tiles = -(-5 * n_frame // 128) + 1  # a unit of 5 frames, plus a tile straddling its end
    assert seen.median() <= unit_tiles  # a query tile inside one unit sees that unit only
    assert seen.max() <= 2 * unit_tiles  # one straddling two units sees both
    assert seen.min() >= -(-2 * n_frame // 128)  # the first group holds the 2 shifted frames


@pytest.mark.parametrize("grid,block", [((3, 6, 8), (3, 4)), ((2, 7, 9), (3, 4)), ((2, 5, 5), (5, 5))])
@pytest.mark.parametrize("top_k", [0, 1, 3])
def test_sparse_local_flex_equals_sdpa(grid, block, top_k):
    q, k, v = _qkv(grid, seed=top_k)
    sdpa = SparseLocalAttention(block, top_k, backend="sdpa")(q, k, v, grid, 0)
    with eager_reference():
        flex = SparseLocalAttention(block, top_k, backend="flex")(q, k, v, grid, 0)
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)


@needs_compiler
@pytest.mark.parametrize(
    "op,grid",
    [
        (TemporalUnitsAttention(3, backend="flex"), (7, 6, 8)),  # 336 tokens: a partial last tile
        (TemporalUnitsAttention(5, backend="flex"), (10, 9, 12)),  # tiles straddling unit borders
        (SparseLocalAttention((3, 4), 2, backend="flex"), (2, 7, 9)),  # padded blocks
        (SparseLocalAttention((4, 32), 1, backend="flex"), (3, 8, 64)),  # blocks of exactly one tile: full
    ],
)
def test_compiled_flex_on_cpu_equals_sdpa(op, grid):
    q, k, v = _qkv(grid, b=1, heads=2, d=16)
    sdpa = type(op)(**_settings(op), backend="sdpa")
    with torch.no_grad():
        for layer in (0, 1):
            torch.testing.assert_close(op(q, k, v, grid, layer), sdpa(q, k, v, grid, layer), atol=1e-5, rtol=1e-5)


def test_flex_with_gradients_on_cpu_falls_back_to_sdpa():
    grid = (4, 3, 4)
    for op in (TemporalUnitsAttention(2, backend="flex"), SparseLocalAttention((2, 2), 1, backend="flex")):
        q, k, v = (x.requires_grad_() for x in _qkv(grid))
        out = op(q, k, v, grid, 1)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        ref = type(op)(**_settings(op), backend="sdpa")(q, k, v, grid, 1)
        ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
        torch.testing.assert_close(out, ref, atol=0, rtol=0)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, atol=0, rtol=0)


def _settings(op):
    if isinstance(op, TemporalUnitsAttention):
        return {"unit": op.unit}
    return {"block": op.block, "top_k": op.top_k}


def test_auto_uses_sdpa_off_cuda_and_bad_backend_is_an_error():
    q, k, v = _qkv((3, 2, 2))
    auto = TemporalUnitsAttention(2)(q, k, v, (3, 2, 2), 1)
    torch.testing.assert_close(auto, TemporalUnitsAttention(2, backend="sdpa")(q, k, v, (3, 2, 2), 1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="backend"):
        SparseLocalAttention(backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("op", [TemporalUnitsAttention(5, backend="flex"), SparseLocalAttention((9, 12), 1, backend="flex")])
def test_compiled_flex_on_cuda_matches_the_cpu_path(op):
    grid = (10, 18, 24)
    q, k, v = _qkv(grid, b=1, heads=4, d=64)
    ref = type(op)(**_settings(op), backend="sdpa")(q, k, v, grid, 1)
    out = op(*(x.cuda() for x in (q, k, v)), grid, 1).cpu()
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=2e-3)
