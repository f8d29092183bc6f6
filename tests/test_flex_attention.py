"""FlexAttention paths of temporal units and sparse local attention equal their SDPA paths.

On CPU FlexAttention runs its eager reference implementation, so the block masks are checked here exactly;
the compiled CUDA kernel is checked by the GPU-only test at the end.
"""

import pytest
import torch

from gvr.models import SparseLocalAttention, TemporalUnitsAttention
from gvr.models.flex import flex_available, unit_groups

pytestmark = [
    pytest.mark.skipif(not flex_available(), reason="this torch has no FlexAttention"),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # eager FlexAttention warns that it is not compiled
]


def _qkv(grid, b=2, heads=2, d=8, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    n = grid[0] * grid[1] * grid[2]
    return [torch.randn(b, heads, n, d, generator=g).to(device) for _ in range(3)]


@pytest.mark.parametrize("grid,unit", [((7, 3, 4), 3), ((8, 2, 3), 3), ((5, 3, 3), 2), ((3, 4, 4), 5)])
@pytest.mark.parametrize("layer", [0, 1])
def test_temporal_units_flex_equals_sdpa(grid, unit, layer):
    q, k, v = _qkv(grid)
    sdpa = TemporalUnitsAttention(unit, backend="sdpa")(q, k, v, grid, layer)
    flex = TemporalUnitsAttention(unit, backend="flex")(q, k, v, grid, layer)
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)


def test_unit_groups_follow_the_shifted_partition():
    assert unit_groups(8, 3, 1, torch.device("cpu")).tolist() == [0, 1, 1, 1, 2, 2, 2, 3]
    assert unit_groups(7, 3, 0, torch.device("cpu")).tolist() == [1, 1, 1, 2, 2, 2, 3]


@pytest.mark.parametrize("grid,block", [((3, 6, 8), (3, 4)), ((2, 7, 9), (3, 4)), ((2, 5, 5), (5, 5))])
@pytest.mark.parametrize("top_k", [0, 1, 3])
def test_sparse_local_flex_equals_sdpa(grid, block, top_k):
    q, k, v = _qkv(grid, seed=top_k)
    sdpa = SparseLocalAttention(block, top_k, backend="sdpa")(q, k, v, grid, 0)
    flex = SparseLocalAttention(block, top_k, backend="flex")(q, k, v, grid, 0)
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)


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
    ref = type(op)(**({"unit": 5} if isinstance(op, TemporalUnitsAttention) else {"block": (9, 12), "top_k": 1}),
                   backend="sdpa")(q, k, v, grid, 1)
    out = op(*(x.cuda() for x in (q, k, v)), grid, 1).cpu()
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=2e-3)
