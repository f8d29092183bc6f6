"""Tests of gvr.models: shapes at odd sizes and non-integer scales, exact attention/RoPE math,
zero-init, gradient flow, checkpointing, bf16, batch independence and preset sizes."""

import math

import pytest
import torch
from torch import Tensor

from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.dit import SimpleGVR, patchify, unpatchify
from gvr.models.embed import ScalarEmbedder, TextProjection
from gvr.models.rope import Rope3D, apply_rope
from gvr.models.upsampler import LatentUpsampler, Res3D

C = 4  # latent channels of the small test models


def small_model(**overrides) -> SimpleGVR:
    """A 2-block model small enough for exhaustive checks (head_dim 16: RoPE bands 8/4/4)."""
    kwargs = dict(latent_channels=C, dim=32, depth=2, heads=2, upsampler_channels=8) | overrides
    return SimpleGVR(**kwargs)


def perturb_zero_init(model: SimpleGVR, seed: int = 0) -> SimpleGVR:
    """Give the zero-initialised layers random weights so that signal and gradients flow everywhere."""
    generator = torch.Generator().manual_seed(seed)
    layers = [block.modulation[-1] for block in model.blocks]
    layers += [model.final_layer.modulation[-1], model.final_layer.linear]
    with torch.no_grad():
        for layer in layers:
            for p in layer.parameters():
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    return model


def inputs(b: int = 2, t: int = 2, hr: tuple[int, int] = (20, 25), lr: tuple[int, int] = (7, 9), seed: int = 0):
    """Random (z_t, t, c, s) for a latent of `C` channels."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, C, t, *hr, generator=g)
    c = torch.randn(b, C, t, *lr, generator=g)
    return z, torch.rand(b, generator=g), c, torch.rand(b, generator=g)


# --- attention operators ---------------------------------------------------------------------------


def naive_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v


def test_full_attention_equals_naive_softmax():
    q, k, v = torch.randn(3, 2, 3, 24, 8).unbind(0)
    out = FullAttention()(q, k, v, grid=(2, 3, 4), layer_index=0)
    torch.testing.assert_close(out, naive_attention(q, k, v))


def test_frame_attention_equals_full_attention_frame_by_frame():
    grid = (3, 2, 5)
    q, k, v = torch.randn(3, 2, 2, 30, 8).unbind(0)
    out = FrameAttention()(q, k, v, grid=grid, layer_index=1)
    per_frame = [FullAttention()(*(x[:, :, 10 * i : 10 * (i + 1)] for x in (q, k, v)), (1, 2, 5), 1) for i in range(3)]
    torch.testing.assert_close(out, torch.cat(per_frame, dim=2))


@pytest.mark.parametrize("op", [FullAttention(), FrameAttention()])
def test_attention_rejects_wrong_grid(op: AttentionOp):
    q = torch.randn(1, 1, 12, 8)
    with pytest.raises(ValueError, match="grid"):
        op(q, q, q, grid=(2, 2, 2), layer_index=0)


class RecordingOp(FullAttention):
    """Full attention that records the grid and layer index each call receives."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[tuple[int, int, int], int]] = []

    def forward(self, q, k, v, grid, layer_index):
        self.calls.append((grid, layer_index))
        return super().forward(q, k, v, grid, layer_index)


def test_blocks_hand_grid_and_layer_index_to_configured_ops():
    spatial, temporal = RecordingOp(), RecordingOp()
    model = small_model(depth=3, spatial_op=spatial, temporal_op=temporal)
    model(*inputs(t=3, hr=(9, 6)))
    expected = [((3, 5, 3), i) for i in range(3)]  # 9 rows padded to 10: a 5 x 3 token grid
    assert spatial.calls == expected and temporal.calls == expected


def test_global_blocks_attend_over_the_whole_frame_and_load_the_same_weights():
    from gvr.models.sparse_attention import SwinAttention

    spatial = RecordingOp()
    model = small_model(depth=3, spatial_op=spatial, global_blocks=(1,))
    model(*inputs(t=2, hr=(8, 8)))
    assert [i for _, i in spatial.calls] == [0, 2]  # block 1 went to FrameAttention
    assert isinstance(model.blocks[1].spatial_attn.op, FrameAttention)

    # One windowed model, one frame-wide: same weights, the same function once every block is global.
    windowed = perturb_zero_init(small_model(spatial_op=SwinAttention((2, 2))))
    frame = small_model(spatial_op=SwinAttention((2, 2)), global_blocks=(0, 1))
    assert frame.load_state_dict(windowed.state_dict()) is not None
    reference = small_model()  # FrameAttention everywhere, the default
    reference.load_state_dict(windowed.state_dict())
    x = inputs(hr=(16, 16), lr=(6, 6))
    with torch.no_grad():
        torch.testing.assert_close(frame(*x), reference(*x))
        assert not torch.allclose(windowed(*x), reference(*x), atol=1e-5)  # the windows did differ
    with pytest.raises(ValueError, match=r"global_blocks \[2\] must be block indices in \[0, 2\)"):
        small_model(global_blocks=(2,))


# --- RoPE -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head_dim", [16, 32])
def test_rope_is_relative_and_keeps_norms(head_dim: int):
    grid = (3, 4, 5)
    rope = Rope3D(head_dim)(grid, torch.device("cpu"))
    n = 3 * 4 * 5
    q, k = (apply_rope(torch.randn(head_dim).expand(1, 1, n, head_dim), rope)[0, 0] for _ in range(2))
    scores = (q @ k.T).flatten()  # score of query token i against key token j, (i j) order
    pos = torch.stack(torch.meshgrid(*(torch.arange(size) for size in grid), indexing="ij"), -1).reshape(n, 3)
    _, offset_id = torch.unique((pos[:, None] - pos[None]).reshape(-1, 3), dim=0, return_inverse=True)
    for i in offset_id.unique():
        same = scores[offset_id == i]
        assert same.max() - same.min() < 1e-4  # the score depends on the offset only
    assert scores.std() > 0.1  # and it does depend on the offset

    x = torch.randn(2, 3, n, head_dim)
    torch.testing.assert_close(apply_rope(x, rope).norm(dim=-1), x.norm(dim=-1))


def test_rope_cache_built_in_inference_mode_trains():
    rope = Rope3D(16)
    with torch.inference_mode():
        rope((1, 2, 3), torch.device("cpu"))
    assert rope((1, 2, 3), torch.device("cpu")) is rope((1, 2, 3), torch.device("cpu"))
    x = torch.randn(1, 1, 6, 16, requires_grad=True)
    apply_rope(x, rope((1, 2, 3), torch.device("cpu"))).sum().backward()
    assert x.grad is not None


def test_rope_rejects_bad_head_dim():
    with pytest.raises(ValueError, match="head_dim"):
        Rope3D(7)


# --- embedders and upsampler ------------------------------------------------------------------------


def test_embedders_shapes():
    emb = ScalarEmbedder(32)(torch.tensor([0.0, 0.5, 1.0]))
    assert emb.shape == (3, 32) and not torch.allclose(emb[0], emb[1])
    assert TextProjection(12, 32)(torch.randn(2, 7, 12)).shape == (2, 7, 32)


@pytest.mark.parametrize("expand_time", [1, 2])
@pytest.mark.parametrize("t", [1, 2, 5])
@pytest.mark.parametrize("size", [(20, 25), (5, 6)])  # non-integer up- and downscale
def test_upsampler_shapes(expand_time: int, t: int, size: tuple[int, int]):
    up = LatentUpsampler(C, 6, channels=8, expand_time=expand_time)
    out = up(torch.randn(2, C, t, 7, 9), size)
    assert out.shape == (2, 6, t, *size) and torch.isfinite(out).all()


def test_upsampler_bf16_downscale():
    up = LatentUpsampler(C, C, channels=8, expand_time=2)
    c = torch.randn(1, C, 3, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert up(c, (5, 6)).dtype == torch.bfloat16
    assert up.bfloat16()(c.bfloat16(), (5, 6)).dtype == torch.bfloat16


def test_res3d_is_causal_in_time():
    block = Res3D(C, 8)
    x = torch.randn(1, C, 5, 6, 7)
    y = x.clone()
    y[:, :, 3:] = torch.randn_like(y[:, :, 3:])
    torch.testing.assert_close(block(x)[:, :, :3], block(y)[:, :, :3])


# --- SimpleGVR --------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 5])
def test_shapes_odd_sizes_non_integer_scale(t: int):
    model = perturb_zero_init(small_model())
    out = model(*inputs(t=t))
    assert out.shape == (2, C, t, 20, 25) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_time_patch_pads_and_crops():
    model = perturb_zero_init(small_model(patch_size=(2, 2, 2), cond_channels=3))
    z, t, _, s = inputs(t=5)
    out = model(z, t, torch.randn(2, 3, 5, 7, 9), s)
    assert out.shape == (2, C, 5, 20, 25)


@pytest.mark.parametrize("patch", [(1, 2, 2), (1, 1, 1), (2, 2, 2)])
@pytest.mark.parametrize("size", [(4, 8, 8), (3, 7, 8), (4, 8, 5)])
def test_unpatchify_inverts_patchify_and_returns_no_view(patch, size):
    # A view as the network's output would let an in-place op skip FSDP2's pre-backward all-gather.
    z = torch.randn(2, 3, *size)
    tokens, grid = patchify(z, patch)
    out = unpatchify(tokens, grid, patch, size)
    assert torch.equal(out, z) and out._base is None and out.is_contiguous()


def test_fresh_model_outputs_exact_zero():
    model = small_model(text_dim=12)
    out = model(*inputs(), text=torch.randn(2, 3, 12))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("ffn", ["gelu", "swiglu"])
def test_gradients_reach_every_parameter(ffn: str):
    model = perturb_zero_init(small_model(text_dim=12, ffn=ffn, upsampler_expand_time=2))
    model(*inputs(), text=torch.randn(2, 3, 12)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_gradient_checkpointing_matches():
    model = perturb_zero_init(small_model())
    checkpointed = perturb_zero_init(small_model(gradient_checkpointing=True))
    checkpointed.load_state_dict(model.state_dict())
    outs = []
    for m in (model, checkpointed):
        out = m(*inputs())
        out.square().mean().backward()
        outs.append(out)
    torch.testing.assert_close(outs[0], outs[1])
    for (name, p), q in zip(model.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_bf16_autocast_forward_backward():
    model, text = perturb_zero_init(small_model(text_dim=12)), torch.randn(2, 3, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*inputs(), text=text)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    out.float().square().mean().backward()
    reference = model(*inputs(), text=text)
    assert (out.float() - reference).abs().mean() < 0.05 * reference.abs().mean()


def test_bf16_weights_with_fp32_kept_modules():
    model = perturb_zero_init(small_model())
    reference = model(*inputs())
    model.to(torch.bfloat16)
    for name, module in model.named_modules():
        if any(key in name.split(".") for key in SimpleGVR._keep_in_fp32_modules):
            module.float()
    assert model.t_embedder.mlp[0].weight.dtype == torch.float32
    z, t, c, s = inputs()
    out = model(z.bfloat16(), t.bfloat16(), c.bfloat16(), s.bfloat16())
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().mean() < 0.05 * reference.abs().mean()


def test_batch_independence():
    model = perturb_zero_init(small_model(text_dim=12)).eval()
    z, t, c, s = inputs(b=3)
    text, mask = torch.randn(3, 4, 12), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).bool()
    batch = model(z, t, c, s, text, mask)
    for i in range(3):
        one = model(z[i : i + 1], t[i : i + 1], c[i : i + 1], s[i : i + 1], text[i : i + 1], mask[i : i + 1])
        torch.testing.assert_close(batch[i : i + 1], one, atol=1e-5, rtol=1e-4)


def test_masked_text_tokens_are_ignored():
    model = perturb_zero_init(small_model(text_dim=12))
    text, mask = torch.randn(2, 4, 12), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]]).bool()
    other = torch.where(mask[..., None], text, torch.randn_like(text))
    torch.testing.assert_close(model(*inputs(), text, mask), model(*inputs(), other, mask))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(z=torch.randn(2, C + 1, 2, 8, 8)), "z_t"),
        (dict(c=torch.randn(2, C, 3, 4, 4)), "c must"),
        (dict(t=torch.rand(3)), "t must"),
        (dict(text=torch.randn(2, 3, 12)), "text"),
    ],
)
def test_bad_inputs_raise(change: dict, match: str):
    z, t, c, s = inputs(hr=(8, 8), lr=(4, 4))
    args = dict(z=z, t=t, c=c, s=s, text=None) | change
    with pytest.raises(ValueError, match=match):
        small_model()(args["z"], args["t"], args["c"], args["s"], args["text"])


def test_preset_tiny_size():
    model = SimpleGVR.preset("tiny")
    assert 0.5e6 < model.num_parameters() < 3e6
    assert SimpleGVR.preset("tiny", depth=1).num_parameters() < model.num_parameters()
    with pytest.raises(ValueError, match="preset"):
        SimpleGVR.preset("huge")


def test_preset_1b_size_on_meta():
    with torch.device("meta"):
        sizes = [SimpleGVR.preset("1b", text_dim=text_dim).num_parameters() for text_dim in (None, 4096)]
    assert all(0.8e9 < size < 1.5e9 for size in sizes)


@pytest.mark.slow
def test_preset_1b_forward_small_input():
    model = perturb_zero_init(SimpleGVR.preset("1b"))
    z = torch.randn(1, 16, 2, 8, 12)
    with torch.no_grad():
        out = model(z, torch.rand(1), torch.randn(1, 16, 2, 3, 5), torch.rand(1))
    assert out.shape == z.shape and torch.isfinite(out).all()


def test_condition_skip_starts_at_zero_and_learns():
    """cond_skip adds a zero-initialised projection of the upsampled condition: the fresh model is still v = 0."""
    model = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8, cond_skip=True)
    z, c = torch.randn(1, 12, 2, 8, 8), torch.randn(1, 12, 2, 4, 4)
    v = model(z, torch.rand(1), c, torch.rand(1))
    assert torch.equal(v, torch.zeros_like(v))
    v.sum().backward()
    assert model.skip.weight.grad.abs().sum() > 0


def test_seam_refiner_starts_as_the_model_without_it_and_reaches_across_token_borders():
    from gvr.models.refiner import SeamRefiner

    plain = perturb_zero_init(small_model())
    refined = small_model(out_refine=6)
    missing, unexpected = refined.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("refiner.") for k in missing)
    z, t, c, s = inputs()
    torch.testing.assert_close(refined(z, t, c, s), plain(z, t, c, s), rtol=0, atol=0)  # zero-initialised: no change

    # Two 3x3 convolutions: a change at one latent pixel reaches 2 pixels around it, within its frame only, so a
    # token's edge (2x2 patches: latent row/column 1 ends the first token) moves its neighbour's pixels.
    refiner = SeamRefiner(C, 3, hidden=5)
    torch.nn.init.normal_(refiner.out.weight)
    v, up = torch.zeros(1, C, 2, 8, 8), torch.zeros(1, 3, 2, 8, 8)
    poked = v.clone()
    poked[0, 0, 0, 1, 1] = 1.0
    diff = (refiner(poked, up) - refiner(v, up)).abs().sum(dim=1)[0]
    changed = (diff > 1e-6).nonzero().tolist()
    assert [0, 3, 3] in changed  # the next token (rows/columns 2-3)
    assert all(f == 0 and abs(y - 1) <= 2 and abs(x - 1) <= 2 for f, y, x in changed)
    with pytest.raises(ValueError, match="hidden"):
        SeamRefiner(C, 3, hidden=0)


@pytest.mark.parametrize("kernel,padding", [((3, 3, 3), (0, 1, 1)), ((2, 1, 3), (0, 0, 1)), ((1, 1, 1), (0, 0, 0))])
def test_temporal_conv_equals_conv3d_forward_and_backward(kernel, padding):
    from gvr.models.upsampler import temporal_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 6, kernel, padding=padding).double()
    x = torch.randn(2, 4, 5, 7, 9, dtype=torch.float64, requires_grad=True)
    want = conv(x)
    got = temporal_conv(conv, x)
    torch.testing.assert_close(got, want)
    gx, gw = torch.autograd.grad(got.square().sum(), (x, conv.weight))
    wx, ww = torch.autograd.grad(want.square().sum(), (x, conv.weight))
    torch.testing.assert_close(gx, wx)
    torch.testing.assert_close(gw, ww)
