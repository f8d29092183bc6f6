"""LatentDiT: gvr's own small base model, a latent video generator built from SimpleGVR's DiT blocks.

Same blocks as the VSR model (spatial attention -> 3D attention -> [text cross-attention] -> FFN, adaLN-Zero,
qk-RMSNorm, 3D RoPE) without the condition branch: tokens are patches of the noisy latent alone and adaLN
reads ``emb(t)`` only. Trained with flow matching on low-resolution clips (``configs/base.yaml``, `gvr base
fit`), it is the default base model of the embedded setup: the generator of ``gvr generate`` and the
model behind the model-guided degradation.
"""

from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from gvr.base.model import BaseModel
from gvr.models.attention import AttentionOp, FrameAttention, FullAttention
from gvr.models.dit import DiTBlock, FinalLayer, init_dit_weights, patchify, run_blocks, unpatchify
from gvr.models.embed import ScalarEmbedder, TextProjection
from gvr.models.rope import Rope3D

PRESETS: dict[str, dict[str, Any]] = {
    # CPU-sized unconditional generator of PatchCodec(spatial_factor=2) latents (configs/base.yaml).
    "tiny": dict(latent_channels=12, dim=128, depth=4, heads=4, patch_size=(1, 2, 2)),
}


class LatentDiT(BaseModel):
    """Unconditional (or caption-conditioned) latent video DiT predicting the flow velocity ``eps - c0``.

    Args:
        latent_channels: channels of the latent it generates (the codec's).
        dim: transformer width.
        depth: number of DiT blocks.
        heads: attention heads; the head dim must be even and >= 6 (3D RoPE).
        mlp_ratio: FFN hidden width as a multiple of `dim`.
        ffn: FFN type, "gelu" or "swiglu".
        patch_size: token patch `(pt, ph, pw)` in latent frames, rows and columns.
        text_dim: width of caption embeddings; None builds an unconditional model.
        rope_theta: base of the 3D RoPE frequency ladder.
        spatial_op: attention operator of the per-frame sub-layer; None means `FrameAttention`.
        temporal_op: attention operator of the 3D sub-layer; None means `FullAttention`.
        gradient_checkpointing: recompute each block in backward instead of storing its activations.
    """

    _no_split_modules: ClassVar[list[str]] = ["DiTBlock"]
    _keep_in_fp32_modules: ClassVar[list[str]] = ["t_embedder", "norm_q", "norm_k"]

    def __init__(
        self,
        latent_channels: int = 12,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        ffn: Literal["gelu", "swiglu"] = "gelu",
        patch_size: tuple[int, int, int] = (1, 2, 2),
        text_dim: int | None = None,
        rope_theta: float = 10000.0,
        spatial_op: AttentionOp | None = None,
        temporal_op: AttentionOp | None = None,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"LatentDiT: dim ({dim}) must be a multiple of heads ({heads})")
        self.latent_channels, self.text_dim = latent_channels, text_dim
        self.patch_size = tuple(patch_size)
        self.gradient_checkpointing = gradient_checkpointing
        spatial_op, temporal_op = spatial_op or FrameAttention(), temporal_op or FullAttention()
        volume = self.patch_size[0] * self.patch_size[1] * self.patch_size[2]
        self.patch_embed = nn.Linear(latent_channels * volume, dim)
        self.t_embedder = ScalarEmbedder(dim)
        self.text_proj = TextProjection(text_dim, dim) if text_dim is not None else None
        self.rope = Rope3D(dim // heads, rope_theta)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, heads, mlp_ratio, ffn, text_dim is not None, spatial_op, temporal_op, i) for i in range(depth)
        )
        self.final_layer = FinalLayer(dim, latent_channels * volume)
        self.init_weights()

    def init_weights(self) -> None:
        """DiT initialisation (see `init_dit_weights`): the fresh model is the zero velocity field."""
        init_dit_weights(self, [self.t_embedder], self.blocks, self.final_layer)

    @classmethod
    def preset(cls, name: Literal["tiny"], **overrides: Any) -> "LatentDiT":
        """Build a named size from `PRESETS`, with any constructor argument overridden."""
        if name not in PRESETS:
            raise ValueError(f"LatentDiT.preset: unknown preset {name!r}, choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def null_text(self, batch: int) -> Tensor | None:
        """A single all-zero caption token: the null prompt of a caption-conditioned LatentDiT."""
        if self.text_dim is None:
            return None
        return self.patch_embed.weight.new_zeros(batch, 1, self.text_dim)

    def velocity(self, c_t: Tensor, t: Tensor, text: Tensor | None = None) -> Tensor:
        return self(c_t, t, text)

    def forward(self, c_t: Tensor, t: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None) -> Tensor:
        """Velocity `(B, C, T, h, w)` at the noisy latent `c_t` and times `t` `(B,)` (1 = noise)."""
        self.check_latent(c_t)
        if t.shape != c_t.shape[:1]:
            raise ValueError(f"LatentDiT: t must have shape (B,) = ({c_t.shape[0]},), got {tuple(t.shape)}")
        if (text is None) != (self.text_dim is None):
            raise ValueError("LatentDiT: pass `text` exactly when the model has a text_dim")
        T, H, W = c_t.shape[2:]

        # 1. Pad to whole patches (replicating the border) and cut into tokens.
        x, grid = patchify(c_t, self.patch_size)
        x = self.patch_embed(x)  # (b, n, dim)

        # 2. Conditioning: emb(t), caption tokens, rotary angles.
        emb = self.t_embedder(t).to(x.dtype)  # (b, dim)
        text = self.text_proj(text) if self.text_proj is not None else None
        rope = self.rope(grid, x.device)

        # 3. DiT blocks.
        x = run_blocks(self.blocks, x, emb, grid, rope, text, text_mask, self.gradient_checkpointing)

        # 4. Back to the latent grid, padding cropped.
        return unpatchify(self.final_layer(x, emb), grid, self.patch_size, (T, H, W))
