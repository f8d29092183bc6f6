"""SimpleGVR: the latent video super-resolution DiT.

The LR latent `c` is resized to the HR latent grid by a `LatentUpsampler`, stacked onto the noisy HR
latent `z_t` along channels and cut into patch tokens. `depth` DiT blocks follow, each made of
spatial self-attention (within frames) -> 3D self-attention (across the clip) -> optional text
cross-attention -> FFN, every sub-layer modulated by adaLN-Zero from `emb(t) + emb(s)` (+ `emb(ratio)`, the LR->HR
ratio per axis, for a model that serves every scale factor). A final adaLN
layer projects the tokens back to patches: the predicted velocity `v = eps - z0`, shaped like `z_t`.
"""

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.embed import RatioEmbedder, ScalarEmbedder, TextProjection
from gvr.models.refiner import SeamRefiner
from gvr.models.rope import Rope, Rope3D, apply_rope
from gvr.models.upsampler import LatentUpsampler

PRESETS: dict[str, dict[str, Any]] = {
    # Trains on a CPU in minutes (1.8M parameters; configs/stage1.yaml): ~0.4 s a step on 2 cores for 4 clips
    # of 3 x 30 x 30 latents. latent_channels 12 matches PatchCodec(spatial_factor=2) (3 x 2 x 2); with 1 x 2 x 2
    # patches a token carries 96 input and 48 output values, well inside dim 128. (Wider tokens, e.g. 4 x 4
    # patches of 48 channels = 768 outputs, bottleneck the width and the loss stalls near 1.)
    "tiny": dict(latent_channels=12, dim=128, depth=4, heads=4, patch_size=(1, 2, 2), upsampler_channels=16),
    # Paper-like ~1B model on the 16-channel Wan 2.1 VAE latent (head_dim 96: RoPE bands 32/32/32):
    # 1.08B parameters, 1.39B with text_dim=4096 (umT5). Also the constructor defaults.
    "1b": dict(latent_channels=16, dim=1536, depth=18, heads=16, upsampler_channels=256),
}


def patchify(x: Tensor, patch_size: tuple[int, int, int]) -> tuple[Tensor, tuple[int, int, int]]:
    """Pad `x` `(B, C, T, H, W)` to whole patches (replicating the border) and cut it into patch tokens.

    Returns the tokens `(B, N, C * pt * ph * pw)` and the token grid `(T', H', W')`.
    """
    pt, ph, pw = patch_size
    T, H, W = x.shape[2:]
    x = F.pad(x, (0, -W % pw, 0, -H % ph, 0, -T % pt), mode="replicate")
    grid = (x.shape[2] // pt, x.shape[3] // ph, x.shape[4] // pw)
    return rearrange(x, "b c (t p) (h q) (w r) -> b (t h w) (c p q r)", p=pt, q=ph, r=pw), grid


def unpatchify(x: Tensor, grid: tuple[int, int, int], patch_size: tuple[int, int, int], size: tuple[int, int, int]) -> Tensor:
    """Inverse of `patchify`: tokens `(B, N, C * pt * ph * pw)` -> `(B, C, T, H, W)` cropped to `size`.

    The result is a tensor of its own, never a view (a network returning a view would let an in-place op on
    its output skip FSDP2's pre-backward all-gather; `fully_shard` warns of it).
    """
    pt, ph, pw = patch_size
    x = rearrange(x, "b (t h w) (c p q r) -> b c (t p) (h q) (w r)", t=grid[0], h=grid[1], w=grid[2], p=pt, q=ph, r=pw)
    if tuple(x.shape[2:]) != tuple(size):
        x = x[:, :, : size[0], : size[1], : size[2]]
    return x.clone(memory_format=torch.contiguous_format) if x._base is not None else x


def block_spatial_ops(spatial_op: AttentionOp, depth: int, global_blocks: tuple[int, ...] = ()) -> list[AttentionOp]:
    """The spatial operator of each of ``depth`` blocks: ``spatial_op``, except `FrameAttention` (one shared
    instance) in the ``global_blocks`` (see `SimpleGVR`); SimpleGVR and `gvr.models.flops` both read it here."""
    if any(not 0 <= i < depth for i in global_blocks):
        raise ValueError(f"SimpleGVR: global_blocks {list(global_blocks)} must be block indices in [0, {depth})")
    frame_op = FrameAttention()
    return [frame_op if i in global_blocks else spatial_op for i in range(depth)]


def run_blocks(
    blocks: nn.ModuleList,
    x: Tensor,
    emb: Tensor,
    grid: tuple[int, int, int],
    rope: Rope,
    text: Tensor | None,
    text_mask: Tensor | None,
    gradient_checkpointing: bool,
) -> Tensor:
    """Apply the DiT blocks in order, recomputing each in backward when `gradient_checkpointing` (and grad is on)."""
    for block in blocks:
        if gradient_checkpointing and torch.is_grad_enabled():
            x = checkpoint(block, x, emb, grid, rope, text, text_mask, use_reentrant=False)
        else:
            x = block(x, emb, grid, rope, text, text_mask)
    return x


def init_dit_weights(model: nn.Module, embedders: list[nn.Module], blocks: nn.ModuleList, final_layer: "FinalLayer") -> None:
    """DiT initialisation (`initialize_weights`): the fresh model is the zero velocity field.

    Transformer linears get Xavier-uniform weights and zero biases (convolutions keep PyTorch's default),
    the scalar embedders' MLPs small normal weights as DiT's timestep MLP, every block's adaLN modulation
    zeros (each gate is 0, so each block starts as the identity), and the output layer zeros (v = 0).
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    for embedder in embedders:
        nn.init.normal_(embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(embedder.mlp[2].weight, std=0.02)
    for block in blocks:
        nn.init.zeros_(block.modulation[-1].weight)
        nn.init.zeros_(block.modulation[-1].bias)
    for layer in (final_layer.modulation[-1], final_layer.linear):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


def lr_to_hr_ratio(c: Tensor, size: tuple[int, int], ratio: tuple[float, float] | None) -> Tensor:
    """The LR->HR ratio per axis as a `(B, 2)` tensor: `ratio` where given (inference: the exact map of a padded
    clip or a tile), else the HR grid `size` over `c`'s (training: the two match edge to edge)."""
    ry, rx = ratio if ratio is not None else (size[0] / c.shape[-2], size[1] / c.shape[-1])
    return torch.tensor([[ry, rx]], device=c.device, dtype=torch.float32).expand(c.shape[0], 2)


class FP32RMSNorm(nn.RMSNorm):
    """RMSNorm computed in float32 (also under bf16 autocast or bf16 weights); returns the input dtype."""

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), self.normalized_shape, self.weight.float(), self.eps).type_as(x)


def modulated_norm(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """Affine-free LayerNorm of `x` `(B, N, D)`, then adaLN `x * (1 + scale) + shift`, in float32."""
    x32 = F.layer_norm(x.float(), x.shape[-1:], eps=1e-6)
    return (x32 * (1 + scale.float()) + shift.float()).type_as(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the token grid: qkv, qk RMSNorm, 3D RoPE, then an `AttentionOp`."""

    def __init__(self, dim: int, heads: int, op: AttentionOp, layer_index: int):
        super().__init__()
        self.heads, self.layer_index = heads, layer_index
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm_q = FP32RMSNorm(dim // heads, eps=1e-6)
        self.norm_k = FP32RMSNorm(dim // heads, eps=1e-6)
        self.op = op
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, grid: tuple[int, int, int], rope: Rope) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = apply_rope(self.norm_q(q), rope), apply_rope(self.norm_k(k), rope)
        out = self.op(q, k, v, grid, self.layer_index)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Multi-head cross-attention from the video tokens to text tokens, with qk RMSNorm."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.norm_q = FP32RMSNorm(dim // heads, eps=1e-6)
        self.norm_k = FP32RMSNorm(dim // heads, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, text: Tensor, text_mask: Tensor | None) -> Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(text), "b l (two h d) -> two b h l d", two=2, h=self.heads)
        mask = None if text_mask is None else rearrange(text_mask.bool(), "b l -> b 1 1 l")
        out = F.scaled_dot_product_attention(self.norm_q(q), self.norm_k(k), v, attn_mask=mask)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    """Position-wise MLP: GELU(tanh) MLP, or SwiGLU with a 2/3 hidden width (same parameter count)."""

    def __init__(self, dim: int, mlp_ratio: float, kind: Literal["gelu", "swiglu"]):
        super().__init__()
        self.gated = kind == "swiglu"
        hidden = int(2 * mlp_ratio * dim / 3) if self.gated else int(mlp_ratio * dim)
        self.fc1 = nn.Linear(dim, 2 * hidden if self.gated else hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        if self.gated:
            a, gate = h.chunk(2, dim=-1)
            return self.fc2(a * F.silu(gate))
        return self.fc2(F.gelu(h, approximate="tanh"))


class DiTBlock(nn.Module):
    """Spatial attention -> 3D attention -> [text cross-attention] -> FFN, each with adaLN-Zero.

    Every sub-layer `f` computes `x + gate * f(LayerNorm(x) * (1 + scale) + shift)`, with its own
    (shift, scale, gate) regressed from the conditioning vector by `modulation`.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float,
        ffn: Literal["gelu", "swiglu"],
        cross_attention: bool,
        spatial_op: AttentionOp,
        temporal_op: AttentionOp,
        layer_index: int,
    ):
        super().__init__()
        self.spatial_attn = SelfAttention(dim, heads, spatial_op, layer_index)
        self.temporal_attn = SelfAttention(dim, heads, temporal_op, layer_index)
        self.cross_attn = CrossAttention(dim, heads) if cross_attention else None
        self.ffn = FeedForward(dim, mlp_ratio, ffn)
        self.num_sublayers = 4 if cross_attention else 3
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * self.num_sublayers * dim))

    def forward(
        self,
        x: Tensor,
        emb: Tensor,
        grid: tuple[int, int, int],
        rope: Rope,
        text: Tensor | None = None,
        text_mask: Tensor | None = None,
    ) -> Tensor:
        """Update the tokens `x` `(B, N, D)` given the conditioning vector `emb` `(B, D)`."""
        mods = self.modulation(emb)  # (b, 3 * k * d), k sub-layers
        shift, scale, gate = rearrange(mods, "b (three k d) -> three k b 1 d", three=3, k=self.num_sublayers)
        x = x + gate[0] * self.spatial_attn(modulated_norm(x, shift[0], scale[0]), grid, rope)
        x = x + gate[1] * self.temporal_attn(modulated_norm(x, shift[1], scale[1]), grid, rope)
        if self.cross_attn is not None:
            x = x + gate[2] * self.cross_attn(modulated_norm(x, shift[2], scale[2]), text, text_mask)
        return x + gate[-1] * self.ffn(modulated_norm(x, shift[-1], scale[-1]))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) + linear projection of each token to its patch of output channels."""

    def __init__(self, dim: int, out_features: int):
        super().__init__()
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_features)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        shift, scale = rearrange(self.modulation(emb), "b (two d) -> two b 1 d", two=2)
        return self.linear(modulated_norm(x, shift, scale))


class SimpleGVR(nn.Module):
    """Latent video super-resolution DiT (SimpleGVR): predicts the flow velocity of the HR latent.

    Args:
        latent_channels: channels of the HR latent `z_t` and of the predicted velocity.
        cond_channels: channels of the LR latent `c`; None means `latent_channels` (same VAE).
        dim: transformer width.
        depth: number of DiT blocks.
        heads: attention heads; the head dim `dim // heads` must be even and >= 6 (3D RoPE).
        mlp_ratio: FFN hidden width as a multiple of `dim`.
        ffn: FFN type: "gelu" (GELU-tanh MLP, DiT) or "swiglu" (2/3 the hidden width, same parameters).
        patch_size: token patch `(pt, ph, pw)` in latent frames, rows and columns.
        upsampler_channels: width of the latent upsampler's Res3D blocks.
        upsampler_expand_time: sub-frames per latent frame inside the upsampler ("wide" variant); 1 disables.
        text_dim: width of the text-encoder features; None builds no text cross-attention.
        rope_theta: base of the 3D RoPE frequency ladder.
        spatial_op: attention operator of the spatial (per-frame) sub-layer; None means `FrameAttention`.
        temporal_op: attention operator of the 3D sub-layer; None means `FullAttention`.
        gradient_checkpointing: recompute each DiT block in backward instead of storing its activations.
        cond_skip: add a zero-initialised 1x1x1 projection of the upsampled condition to the output, so the
            latent upsampler's convolutions act as a CNN upscaler beside the transformer (fast to learn on CPU;
            not in the paper).
        out_refine: hidden width of a `SeamRefiner` on the reassembled velocity (convolutions that cross token
            borders, zero-initialised); 0 builds none (the paper's model).
        ratio_embedding: add an embedding of the LR->HR ratio per axis to the conditioning vector (`RatioEmbedder`,
            its output layer zero-initialised), so that one model learns every scale factor it is trained on
            (`data.scale_range`); a checkpoint without it starts such a model unchanged. Not in the paper.
        global_blocks: indices of the DiT blocks whose spatial sub-layer attends over the whole frame
            (`FrameAttention`) whatever `spatial_op` is: a windowed student with one block of the teacher's
            frame-wide context. The operators hold no weights, so checkpoints load either way. Not in the paper.
    """

    _no_split_modules: ClassVar[list[str]] = ["DiTBlock"]  # FSDP wrap / checkpoint units
    _keep_in_fp32_modules: ClassVar[list[str]] = ["t_embedder", "s_embedder", "ratio_embedder", "norm_q", "norm_k"]

    def __init__(
        self,
        latent_channels: int = 16,
        cond_channels: int | None = None,
        dim: int = 1536,
        depth: int = 18,
        heads: int = 16,
        mlp_ratio: float = 4.0,
        ffn: Literal["gelu", "swiglu"] = "gelu",
        patch_size: tuple[int, int, int] = (1, 2, 2),
        upsampler_channels: int = 256,
        upsampler_expand_time: int = 1,
        text_dim: int | None = None,
        rope_theta: float = 10000.0,
        spatial_op: AttentionOp | None = None,
        temporal_op: AttentionOp | None = None,
        gradient_checkpointing: bool = False,
        cond_skip: bool = False,
        out_refine: int = 0,
        ratio_embedding: bool = False,
        global_blocks: tuple[int, ...] = (),
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"SimpleGVR: dim ({dim}) must be a multiple of heads ({heads})")
        self.global_blocks = tuple(sorted(set(global_blocks)))
        self.latent_channels = latent_channels
        self.text_dim = text_dim
        self.cond_channels = cond_channels or latent_channels
        self.patch_size = tuple(patch_size)
        self.gradient_checkpointing = gradient_checkpointing
        spatial_op = spatial_op or FrameAttention()
        temporal_op = temporal_op or FullAttention()
        patch_volume = self.patch_size[0] * self.patch_size[1] * self.patch_size[2]

        self.upsampler = LatentUpsampler(
            self.cond_channels, self.cond_channels, upsampler_channels, expand_time=upsampler_expand_time
        )
        self.patch_embed = nn.Linear((latent_channels + self.cond_channels) * patch_volume, dim)
        self.t_embedder = ScalarEmbedder(dim)
        self.s_embedder = ScalarEmbedder(dim)
        self.ratio_embedding = ratio_embedding
        self.ratio_embedder = RatioEmbedder(dim) if ratio_embedding else None
        self.text_proj = TextProjection(text_dim, dim) if text_dim is not None else None
        self.rope = Rope3D(dim // heads, rope_theta)
        spatial_ops = block_spatial_ops(spatial_op, depth, self.global_blocks)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, heads, mlp_ratio, ffn, text_dim is not None, spatial_ops[i], temporal_op, i) for i in range(depth)
        )
        self.final_layer = FinalLayer(dim, latent_channels * patch_volume)
        self.skip = nn.Conv3d(self.cond_channels, latent_channels, 1) if cond_skip else None
        self.refiner = SeamRefiner(latent_channels, self.cond_channels, out_refine) if out_refine else None
        self.init_weights()

    def init_weights(self) -> None:
        """DiT initialisation (see `init_dit_weights`): the fresh model is the zero velocity field."""
        embedders = [m for m in (self.t_embedder, self.s_embedder, self.ratio_embedder) if m is not None]
        init_dit_weights(self, embedders, self.blocks, self.final_layer)
        if self.ratio_embedder is not None:  # zero: emb(ratio) = 0, the model is what it was without it
            nn.init.zeros_(self.ratio_embedder.mlp[2].weight)
            nn.init.zeros_(self.ratio_embedder.mlp[2].bias)
        if self.skip is not None:  # zero too: the fresh model stays the zero velocity field
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)

    @classmethod
    def preset(cls, name: Literal["tiny", "1b"], **overrides: Any) -> "SimpleGVR":
        """Build a named size from `PRESETS`, with any constructor argument overridden."""
        if name not in PRESETS:
            raise ValueError(f"SimpleGVR.preset: unknown preset {name!r}, choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def optional_weights(self) -> tuple[str, ...]:
        """State-dict prefixes a checkpoint may lack: parts that start at zero output (the ratio embedding), so
        that loading the rest leaves the network as it was (`gvr.lit.flow_module.load_network_weights`)."""
        return ("ratio_embedder.",) if self.ratio_embedder is not None else ()

    @property
    def extends_in_time(self) -> bool:
        """True when the 3D attention works in temporal units (`AttentionOp.extends_in_time`): the model then
        runs on a clip of any length at a flat cost per frame, and `gvr upscale` gives it whole windows."""
        return any(m.extends_in_time for m in self.modules() if isinstance(m, AttentionOp))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those requiring grad when `trainable_only`)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward(
        self,
        z_t: Tensor,
        t: Tensor,
        c: Tensor,
        s: Tensor,
        text: Tensor | None = None,
        text_mask: Tensor | None = None,
        ratio: tuple[float, float] | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> Tensor:
        """Predict the velocity `eps - z0` at `z_t`.

        Args:
            z_t: noisy HR latent `(B, latent_channels, T, H, W)`.
            t: flow time `(B,)` in [0, 1], 1 = pure noise.
            c: (noise-augmented) LR latent `(B, cond_channels, T, h, w)`, any `(h, w)`.
            s: noise-augmentation level of `c`, `(B,)` in [0, 1].
            text: text-encoder features `(B, L, text_dim)`; required iff the model has `text_dim`.
            text_mask: `(B, L)`, True for tokens to attend to (each row needs at least one True).
            ratio: HR / LR latent pixels per axis of the condition's resize; None stretches `c` onto the
                whole HR grid (training, where the two match exactly). Set at inference, where the HR grid
                covers a padded clip or a tile (`gvr.ops.resize.resize_frames`).
            offset: LR position (pixels) that the HR grid's top-left corner maps to.

        Returns:
            The velocity, `(B, latent_channels, T, H, W)`, in the dtype of the computation.
        """
        self._check_inputs(z_t, t, c, s, text)
        T, H, W = z_t.shape[2:]

        # 1. Upsample the condition to the HR latent grid and stack it onto z_t.
        up = self.upsampler(c, (H, W), ratio, offset).type_as(z_t)
        x = torch.cat([z_t, up], dim=1)

        # 2. Pad to whole patches (replicating the border) and cut into tokens.
        x, grid = patchify(x, self.patch_size)
        x = self.patch_embed(x)  # (b, n, dim)

        # 3. Conditioning shared by all blocks: emb(t) + emb(s) [+ emb(ratio)], text tokens, rotary angles.
        emb = self.t_embedder(t) + self.s_embedder(s)
        if self.ratio_embedder is not None:
            emb = emb + self.ratio_embedder(lr_to_hr_ratio(c, (H, W), ratio))
        emb = emb.to(x.dtype)  # (b, dim)
        if self.text_proj is not None:
            text = self.text_proj(text)  # (b, l, dim)
        rope = self.rope(grid, x.device)

        # 4. DiT blocks.
        x = run_blocks(self.blocks, x, emb, grid, rope, text, text_mask, self.gradient_checkpointing)

        # 5. Project to patches, reassemble the latent and crop the padding.
        v = unpatchify(self.final_layer(x, emb), grid, self.patch_size, (T, H, W))
        if self.skip is not None:
            v = v + self.skip(up)
        return v if self.refiner is None else self.refiner(v, up)

    def _check_inputs(self, z_t: Tensor, t: Tensor, c: Tensor, s: Tensor, text: Tensor | None) -> None:
        """Raise ValueError naming the argument whose shape does not fit the model."""
        if z_t.ndim != 5 or z_t.shape[1] != self.latent_channels:
            raise ValueError(f"SimpleGVR: z_t must be (B, {self.latent_channels}, T, H, W), got {tuple(z_t.shape)}")
        b, _, T = z_t.shape[:3]
        if c.ndim != 5 or c.shape[:3] != (b, self.cond_channels, T):
            raise ValueError(f"SimpleGVR: c must be (B={b}, {self.cond_channels}, T={T}, h, w), got {tuple(c.shape)}")
        for name, x in (("t", t), ("s", s)):
            if x.shape != (b,):
                raise ValueError(f"SimpleGVR: {name} must have shape (B,) = ({b},), got {tuple(x.shape)}")
        if (text is None) != (self.text_dim is None):
            need = "requires `text` (built with text_dim)" if text is None else "has no text_dim: pass text=None"
            raise ValueError(f"SimpleGVR: the model {need}")
        if text is not None and (text.ndim != 3 or text.shape[0] != b or text.shape[2] != self.text_dim):
            raise ValueError(f"SimpleGVR: text must be (B={b}, L, {self.text_dim}), got {tuple(text.shape)}")
