"""FlexAttention paths of the sparse operators: the same attention pattern as a block mask.

`TemporalUnitsAttention` and `SparseLocalAttention` restrict which keys each query sees. Their default
paths cut the clip into units or gather blocks and call SDPA; with FlexAttention the same pattern is a
`BlockMask` over the whole token sequence, which the compiled kernel walks block by block (no gathers,
no copies of the selected keys).

The block masks are built here from the pattern's structure (`BlockMask.from_kv_blocks`), never by
evaluating the mask function over every (query, key) pair: `create_block_mask` would materialise a
`(B, heads, N, N)` boolean tensor, 27 GB for the `1b` preset at 1080p. The mask function is still exact
token by token: the compiled kernel applies it inside partial blocks, and the eager reference (which
ignores the block lists) applies it everywhere, so a test of the eager path checks the mask function and
a test of the compiled path checks the block lists.

The kernel is compiled on CUDA and, for inference, on CPU (torch builds C++ kernels; on two cores they
are slower than the SDPA paths, so `backend="auto"` keeps SDPA off CUDA, and torch has no FlexAttention
backward on CPU). `eager_reference()` switches to the eager reference; the tests compare both against the
SDPA paths on CPU.
"""

from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK = 128  # FlexAttention's sparse block size (tokens per query/key tile of the block mask)


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


_EAGER = False  # set by `eager_reference()`


@contextmanager
def eager_reference():
    """Within this block FlexAttention runs its unfused eager reference instead of a compiled kernel.

    The reference evaluates the mask function at every (query, key) pair and ignores the block lists:
    exact and slow (it materialises the scores), for checking a mask function on small inputs.
    """
    global _EAGER
    before, _EAGER = _EAGER, True
    try:
        yield
    finally:
        _EAGER = before


def flex_attention(q: Tensor, k: Tensor, v: Tensor, block_mask) -> Tensor:
    """FlexAttention of `(B, heads, N, d)` tensors with `block_mask`: compiled, unless `eager_reference()`.

    On CPU it is forward only (torch has no FlexAttention backward there; the operators use their SDPA
    paths when gradients are needed) and compiling needs a C++ compiler.
    """
    from torch.nn.attention.flex_attention import flex_attention as eager

    return (eager if _EAGER else _compiled_flex())(q, k, v, block_mask=block_mask)


def _pack(
    candidates: Tensor, valid: Tensor, full: Tensor, tiles: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Block lists of a `BlockMask` from candidate key tiles `(..., C)` flagged valid and full.

    Returns `(partial count, partial indices, full count, full indices)`: counts `(...)` int32, indices
    `(..., tiles)` int32 (the width the kernels expect: one slot per key tile), the listed tiles first
    in their candidate order, the unused tail zero.
    """
    lists = []
    for keep in (valid & ~full, valid & full):
        order = torch.sort((~keep).to(torch.uint8), dim=-1, stable=True).indices  # kept entries first
        indices = torch.where(keep.gather(-1, order), candidates.gather(-1, order), 0).to(torch.int32)
        indices = F.pad(indices, (0, tiles - indices.shape[-1]))
        lists += [keep.sum(-1, dtype=torch.int32), indices]
    return tuple(lists)


def unit_groups(t: int, unit: int, shift: int, device: torch.device) -> Tensor:
    """Group index of every frame `(T,)`: [0, shift) first, then units of `unit` frames, the rest last."""
    f = torch.arange(t, device=device)
    return torch.where(f < shift, 0, 1 + torch.div(f - shift, unit, rounding_mode="floor"))


def segment_block_mask(group: Tensor, block: int = BLOCK):
    """`BlockMask` of "query and key in the same group" for tokens whose group ids never decrease.

    `group` `(N,)` labels each token; equal labels are contiguous. A query tile sees the key tiles that
    span its groups: full where both tiles lie in one group, partial (mask function applied) elsewhere.
    """
    from torch.nn.attention.flex_attention import BlockMask

    n, device = group.numel(), group.device
    tiles = -(-n // block)
    starts = torch.arange(tiles, device=device) * block
    ends = (starts + block).clamp(max=n)  # one past the last token of each tile
    first = torch.searchsorted(group, group, right=False)  # first token of each token's group
    last = torch.searchsorted(group, group, right=True)  # one past its last token
    lo = first[starts] // block  # (tiles,) first key tile the query tile sees
    hi = (last[ends - 1] - 1) // block  # last key tile it sees
    candidates = lo[:, None] + torch.arange(int((hi - lo).max()) + 1, device=device)  # (tiles, C)
    valid = candidates <= hi[:, None]
    candidates = candidates.clamp(max=tiles - 1)
    # Full: the query tile lies in one group and the key tile inside it, both whole tiles (a tail tile
    # past the last token must stay partial, so that the kernel masks what lies beyond the sequence).
    whole = ends - starts == block
    single = (group[starts] == group[ends - 1]) & whole
    inside = (starts[candidates] >= first[starts][:, None]) & (ends[candidates] <= last[starts][:, None])
    inside &= whole[candidates]
    counts = _pack(candidates, valid, single[:, None] & inside, tiles)

    def same_group(b, h, q_idx, kv_idx):
        return group[q_idx] == group[kv_idx]

    return BlockMask.from_kv_blocks(
        *(x[None, None] for x in counts),  # one mask for every batch element and head
        BLOCK_SIZE=block,
        mask_mod=same_group,
        seq_lengths=(n, n),
    )


def temporal_units_flex(q: Tensor, k: Tensor, v: Tensor, grid: tuple[int, int, int], unit: int, shift: int) -> Tensor:
    """Temporal-unit attention of `(B, heads, T*H*W, d)` tokens as one FlexAttention call."""
    t, h, w = grid
    group = unit_groups(t, unit, shift, q.device).repeat_interleave(h * w)  # (n,) group of each token
    return flex_attention(q, k, v, segment_block_mask(group))


def sparse_local_flex(q: Tensor, k: Tensor, v: Tensor, real: Tensor, selected: Tensor) -> Tensor:
    """Sparse local attention over blocked tokens `(B, heads, M, L, d)` as one FlexAttention call.

    `real` `(M, L)` marks real token slots (the rest is padding), `selected` `(B, heads, M, S)` the key
    blocks of each query block. Each block is padded to a whole number of FlexAttention tiles, so that
    the routing is the block mask itself: query block i lists exactly its selected key blocks (full when
    they hold no padding). Returns `(B, heads, M, L, d)`.
    """
    from torch.nn.attention.flex_attention import BlockMask

    b, n, m, l = q.shape[:4]
    size = -(-l // BLOCK) * BLOCK  # tokens per block, padded to whole tiles
    q, k, v = (F.pad(x, (0, 0, 0, size - l)).flatten(2, 3) for x in (q, k, v))
    real_slot = F.pad(real, (0, size - l)).flatten()  # (m * size,)
    allowed = torch.zeros(b, n, m, m, dtype=torch.bool, device=q.device).scatter_(-1, selected, True)

    def routed(batch, head, q_idx, kv_idx):
        return allowed[batch, head, q_idx // size, kv_idx // size] & real_slot[kv_idx]

    clean = real.all(dim=-1) & (l == size)  # (m,) blocks with no padding slot
    counts = _pack(selected, torch.ones_like(selected, dtype=torch.bool), clean[selected], m)
    mask = BlockMask.from_kv_blocks(*counts, BLOCK_SIZE=size, mask_mod=routed, seq_lengths=(m * size, m * size))
    out = flex_attention(q, k, v, mask)
    return out.unflatten(2, (m, size))[:, :, :, :l]
