"""Tests of the analytic FLOP counter (gvr.models.flops) against torch's FlopCounterMode, its limits, the
paper-size picture at 17 frames of 1080p, and the `gvr flops` command.

FlopCounterMode counts matmul-class ops only (mm, bmm, addmm without bias, convolution, SDPA kernels);
the analytic counter uses the same convention. On CPU, SDPA's fused kernel has no FLOP formula in
FlopCounterMode (it reports 0), so the measured runs use the MATH backend, whose two bmm per attention
are counted.
"""

import json
import math

import pytest
import torch
from test_models import inputs, small_model
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gvr.cli import main
from gvr.commands.flops import PRESET_CLIPS
from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.flops import (
    PAPER_GFLOPS,
    attention_flops,
    full_attention_flops,
    latent_grid,
    model_flops,
    simple_gvr_args,
    sparse_local_flops,
    token_grid,
)
from gvr.models.sparse_attention import SparseLocalAttention, SwinAttention, TemporalUnitsAttention


def measured(fn, *args, **kwargs) -> int:
    """Matmul FLOPs of `fn(*args, **kwargs)` as FlopCounterMode counts them (SDPA through its math path)."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


# --- attention operators -------------------------------------------------------------------------


OPS = [
    FullAttention(),
    FrameAttention(),
    TemporalUnitsAttention(2),
    TemporalUnitsAttention(3),
    SwinAttention((2, 3)),
    SwinAttention((4, 8)),  # wider than the frame: one window of the whole axis
    SwinAttention((2, 3), across_frames=True),
    SwinAttention((2, 3), across_frames=True, frames=2),
    SparseLocalAttention((2, 3), top_k=2),
    SparseLocalAttention((3, 4), top_k=0),
]


def op_id(op: AttentionOp) -> str:
    """Test id: the class name and its settings."""
    return type(op).__name__ + "".join(f"-{getattr(op, k)}" for k in ("unit", "window", "across_frames", "frames", "block", "top_k") if hasattr(op, k))


@pytest.mark.parametrize("op", OPS, ids=op_id)
@pytest.mark.parametrize("grid", [(5, 3, 5), (4, 6, 6), (1, 5, 7)])
@pytest.mark.parametrize("layer_index", [0, 1])
def test_attention_flops_equal_flop_counter(op: AttentionOp, grid: tuple[int, int, int], layer_index: int):
    b, heads, d = 2, 3, 8
    q, k, v = torch.randn(3, b, heads, math.prod(grid), d).unbind(0)
    want = measured(op, q, k, v, grid, layer_index)
    assert want > 0
    assert attention_flops(op, grid, heads, d, layer_index, batch=b) == want


def test_sparse_local_with_all_blocks_costs_full_attention_plus_routing():
    grid, heads, d = (3, 6, 8), 2, 16  # 3 x 2 x 2 = 12 blocks of 3 x 4, no padding
    for top_k in (11, 50):  # all other blocks, and more than there are
        parts = sparse_local_flops(grid, heads, d, (3, 4), top_k)
        assert parts["attention"] == full_attention_flops(grid, heads, d)
        assert parts["routing"] == 2 * heads * 12 * 12 * d
    # Padding is computed, so it costs: 5 rows in blocks of 3 -> 6 rows.
    padded = sparse_local_flops((3, 5, 8), heads, d, (3, 4), 11)["attention"]
    assert padded == full_attention_flops((3, 6, 8), heads, d) > full_attention_flops((3, 5, 8), heads, d)


def test_attention_flops_reject_unknown_ops():
    class Mystery(AttentionOp):
        def forward(self, q, k, v, grid, layer_index):
            return q

    with pytest.raises(TypeError, match="Mystery"):
        attention_flops(Mystery(), (1, 2, 2), 1, 8)


# --- the whole model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"temporal_op": SparseLocalAttention((2, 3), top_k=1), "ffn": "swiglu"},
        {"temporal_op": TemporalUnitsAttention(2), "spatial_op": SwinAttention((2, 4)), "upsampler_expand_time": 2},
        {"text_dim": 24, "patch_size": (2, 2, 2), "cond_channels": 6},
        {"cond_skip": True, "out_refine": 5},
        {"spatial_op": SwinAttention((2, 4)), "global_blocks": (1,)},
    ],
    ids=["default", "sparse-swiglu", "units-swin-wide", "text-patch222", "skip-refiner", "swin-one-global"],
)
def test_model_flops_equal_flop_counter(overrides: dict):
    model = small_model(**overrides).eval()
    small = {"latent_channels": 4, "dim": 32, "depth": 2, "heads": 2, "upsampler_channels": 8}  # = small_model
    args = simple_gvr_args(None, **small | overrides)
    z, t, c, s = inputs(b=2, t=3, hr=(10, 14), lr=(4, 6))
    if "cond_channels" in overrides:
        c = torch.randn(2, overrides["cond_channels"], 3, 4, 6)
    text = torch.randn(2, 7, 24) if "text_dim" in overrides else None
    want = measured(model, z, t, c, s, text)
    parts = model_flops(args, (3, 10, 14), (4, 6), batch=2, text_tokens=7)
    assert sum(parts.values()) == want
    assert all(v >= 0 for v in parts.values()) and parts["temporal_attention"] > 0


def test_latent_and_token_grids_of_17_frames_at_1080p():
    latent = latent_grid(17, 1080, 1920, spatial_factor=8, temporal_factor=4)
    assert latent == (5, 135, 240)
    assert token_grid(latent, (1, 2, 2)) == (5, 68, 120)  # 135 rows padded to 136
    assert latent_grid(3, 60, 60, 2, 1) == (3, 30, 30)


def test_1b_at_17_frames_1080p_gives_the_papers_picture():
    args, latent = simple_gvr_args("1b"), (5, 135, 240)
    lr = latent_grid(17, *PRESET_CLIPS["1b"][2], 8, 4)[1:]
    totals = {}
    for name, op in {"full": FullAttention(), "sparse_local": SparseLocalAttention((9, 12), 1)}.items():
        parts = model_flops({**args, "temporal_op": op}, latent, lr)
        totals[name] = (parts["temporal_attention"], sum(parts.values()), sum(parts.values()) - parts["spatial_attention"])
    attention, model, less_frame = (s / f for s, f in zip(totals["sparse_local"], totals["full"]))
    paper = PAPER_GFLOPS["sparse_local"] / PAPER_GFLOPS["full"]  # 0.234
    # The 3D attention core alone: 216 keys a query instead of 40,800 (+ routing).
    assert attention == pytest.approx(216 / 40800, rel=0.1)
    # The whole model: roughly a quarter to a third (the per-frame attention core stays).
    assert 0.2 < model < 0.35
    # Without the per-frame attention core, the paper's ratio to 0.01 (see gvr.models.flops).
    assert less_frame == pytest.approx(paper, abs=0.01)


# --- gvr flops -----------------------------------------------------------------------------------


def table_rows(out: str) -> dict[str, list[str]]:
    """op -> cells of the markdown table printed by `gvr flops`."""
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_gvr_flops_prints_one_row_per_op(capsys):
    main(["flops", "--preset", "1b", "--frames", "17", "--height", "1080", "--width", "1920"])
    out = capsys.readouterr().out
    assert "5 x 68 x 120 = 40,800" in out
    rows = table_rows(out)
    assert list(rows) == ["full", "frame", "temporal_units", "swin", "sparse_local"]
    assert rows["full"][1] == "1.0000" and rows["full"][-2] == "1,612.5"
    assert rows["sparse_local"][-2] == "377.1" and 0.2 < float(rows["sparse_local"][3]) < 0.35
    assert rows["temporal_units"][0] == rows["full"][0]  # 5 latent frames = one unit of 5


def test_gvr_flops_json_and_config(capsys):
    main(["flops", "--config", "configs/stage1.yaml", "--json", "--unit", "2", "--block", "3", "4", "--top-k", "2"])
    rows = {r["op"]: r for r in json.loads(capsys.readouterr().out)}
    args = simple_gvr_args("tiny")
    latent = (3, 30, 30)  # 3 frames, 60 x 60 through PatchCodec x2
    parts = model_flops({**args, "temporal_op": SparseLocalAttention((3, 4), 2)}, latent, (12, 12))
    assert rows["sparse_local"]["model"] == sum(parts.values())
    assert rows["full"]["paper_gflops"] is None  # not the paper's setting
    with pytest.raises(SystemExit, match="gvr flops: error"):
        main(["flops", "--config", "configs/does_not_exist.yaml"])


def test_gvr_flops_takes_the_ops_settings_from_the_config(capsys):
    main(["flops", "--config", "configs/stage3.yaml", "--json"])
    rows = {r["op"]: r for r in json.loads(capsys.readouterr().out)}
    args = simple_gvr_args("tiny")
    latent = (12, 30, 30)  # stage 3: 12 frames of 60 x 60 through PatchCodec x2
    for name, op in {"temporal_units": TemporalUnitsAttention(3), "full": FullAttention()}.items():
        assert rows[name]["model"] == sum(model_flops({**args, "temporal_op": op}, latent, (12, 12)).values())
    assert rows["temporal_units"]["attention_ratio"] < 0.25  # units of 3 of 12 frames (+ the shifted layers)
