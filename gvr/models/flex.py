"""FlexAttention paths of the sparse operators: the same attention pattern as a block mask.

`TemporalUnitsAttention` and `SparseLocalAttention` restrict which keys each query sees. Their default
paths cut the clip into units or gather blocks and call SDPA; on CUDA the same pattern can instead be
expressed as a FlexAttention `BlockMask` over the whole token sequence, which a compiled kernel skips
block by block (no gathers, no padding copies beyond the blocks themselves). Off CUDA, FlexAttention runs
its eager reference implementation: slow and memory-hungry, but exact, which is how the tests on CPU
check that the mask reproduces the default path.
"""

from functools import lru_cache

import torch
from torch import Tensor


def flex_available() -> bool:
    """True when this torch has FlexAttention (``torch.nn.attention.flex_attention``)."""
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex_attention(q: Tensor, k: Tensor, v: Tensor, block_mask) -> Tensor:
    """FlexAttention: compiled on CUDA, the eager reference elsewhere (tests on CPU)."""
    from torch.nn.attention.flex_attention import flex_attention as eager

    fn = _compiled_flex() if q.is_cuda else eager
    return fn(q, k, v, block_mask=block_mask)


def unit_groups(t: int, unit: int, shift: int, device: torch.device) -> Tensor:
    """Group index of every frame `(T,)`: [0, shift) first, then units of `unit` frames, the rest last."""
    f = torch.arange(t, device=device)
    return torch.where(f < shift, 0, 1 + torch.div(f - shift, unit, rounding_mode="floor"))


def temporal_units_flex(q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], unit: int, shift: int) -> Tensor:
    """Temporal-unit attention of `(B, heads, T*H*W, d)` tokens as one FlexAttention call."""
    from torch.nn.attention.flex_attention import create_block_mask

    t, h, w = grid
    group = unit_groups(t, unit, shift, q.device).repeat_interleave(h * w)  # (n,) group of each token

    def same_unit(b, head, q_idx, kv_idx):
        return group[q_idx] == group[kv_idx]

    n = q.shape[2]
    mask = create_block_mask(same_unit, None, None, n, n, device=q.device)
    return flex_attention(q, k, v, mask)


def sparse_local_flex(q: Tensor, k: Tensor, v: Tensor, real: Tensor, selected: Tensor) -> Tensor:
    """Sparse local attention over blocked tokens `(B, heads, M, L, d)` as one FlexAttention call.

    `real` `(M, L)` marks real token slots (the rest is padding), `selected` `(B, heads, M, S)` the key
    blocks of each query block. Returns `(B, heads, M, L, d)`.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    b, n, m, l, d = q.shape
    allowed = torch.zeros(b, n, m, m, dtype=torch.bool, device=q.device).scatter_(-1, selected, True)
    real_slot = real.flatten()  # (m * l,)

    def routed(batch, head, q_idx, kv_idx):
        return allowed[batch, head, q_idx // l, kv_idx // l] & real_slot[kv_idx]

    mask = create_block_mask(routed, b, n, m * l, m * l, device=q.device)
    out = flex_attention(*(x.flatten(2, 3) for x in (q, k, v)), mask)
    return out.unflatten(2, (m, l))
