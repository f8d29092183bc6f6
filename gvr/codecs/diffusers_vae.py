"""DiffusersVAE: a pretrained diffusers video VAE (Wan2.1, CogVideoX, HunyuanVideo) from a local folder."""

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from gvr.codecs.codec import LatentCodec

VAEKind = Literal["wan", "cogvideox", "hunyuan"]

_CLASSES = {"wan": "AutoencoderKLWan", "cogvideox": "AutoencoderKLCogVideoX", "hunyuan": "AutoencoderKLHunyuanVideo"}
_SOURCES = {
    "wan": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "cogvideox": "THUDM/CogVideoX-2b",
    "hunyuan": "hunyuanvideo-community/HunyuanVideo",
}


class DiffusersVAE(LatentCodec):
    """A frozen diffusers video VAE loaded from a local folder, normalised exactly like its pipeline.

    Latents are `(z - shift) * scale` with the raw posterior mode (or sample) `z`:
    Wan uses the per-channel `latents_mean` / `1 / latents_std` of its config, CogVideoX and HunyuanVideo
    shift 0 and their config's `scaling_factor`. Encoding and decoding run in `dtype`; the normalisation
    runs in float32 and results come back in the caller's dtype. Nothing is ever downloaded.

    Args:
        path: local diffusers checkpoint folder (a pipeline root, or the VAE folder with `subfolder: null`).
        kind: "wan" (AutoencoderKLWan), "cogvideox" (AutoencoderKLCogVideoX) or "hunyuan" (AutoencoderKLHunyuanVideo).
        subfolder: folder of the VAE inside `path`; null when `path` is the VAE folder itself.
        dtype: dtype of the VAE weights and of its computation.
        tiling: encode and decode large frames in overlapping spatial tiles (diffusers `enable_tiling`).
        tile_size: tile side in pixels when tiling; null keeps the diffusers default (256; CogVideoX 240x360).
        tile_stride: pixels between tile starts, at most tile_size; null keeps the diffusers default.
        sample: encode to a sample of the posterior (global torch RNG) instead of its mode (the mean).
    """

    def __init__(
        self,
        path: str,
        kind: VAEKind = "wan",
        subfolder: str | None = "vae",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        tiling: bool = False,
        tile_size: int | None = None,
        tile_stride: int | None = None,
        sample: bool = False,
    ) -> None:
        super().__init__()
        self._setup(_load_vae(path, kind, subfolder, dtype), kind, tiling, tile_size, tile_stride, sample)
        # Tiling changes latents only by seam rounding; the weights, their dtype and sampling change them.
        self._identity = dict(path=str(Path(path).resolve()), kind=kind, subfolder=subfolder, dtype=dtype, sample=sample)

    @classmethod
    def from_model(
        cls,
        vae: nn.Module,
        kind: VAEKind,
        tiling: bool = False,
        tile_size: int | None = None,
        tile_stride: int | None = None,
        sample: bool = False,
    ) -> "DiffusersVAE":
        """Wrap an in-memory diffusers VAE (frozen, and tiled if asked, in place); arguments as in __init__."""
        codec = cls.__new__(cls)
        LatentCodec.__init__(codec)
        codec._setup(vae, kind, tiling, tile_size, tile_stride, sample)
        codec._identity = dict(path=None, kind=kind, model_id=id(vae), sample=sample)
        return codec

    def _setup(
        self, vae: nn.Module, kind: VAEKind, tiling: bool, tile_size: int | None, tile_stride: int | None, sample: bool
    ) -> None:
        _check_kind(kind)
        self.kind = kind
        self.sample = sample
        self.vae = vae.requires_grad_(False).eval()
        cfg = vae.config
        # Compression factors and normalisation exactly as the diffusers pipelines read them:
        if kind == "wan":
            # pipelines/wan/pipeline_wan.py (WanPipeline.__init__: config.scale_factor_*; __call__: decode with
            # `latents / (1 / latents_std) + latents_mean`) and pipeline_wan_video2video.py (prepare_latents:
            # `(init_latents - latents_mean) * (1 / latents_std)`), per channel.
            channels, spatial, temporal = cfg.z_dim, cfg.scale_factor_spatial, cfg.scale_factor_temporal
            shift, scale = torch.tensor(cfg.latents_mean), 1.0 / torch.tensor(cfg.latents_std)
            if shift.numel() != channels or scale.numel() != channels:
                raise ValueError(f"DiffusersVAE: the Wan config needs {channels} latents_mean and latents_std values")
        else:
            if kind == "cogvideox":
                # pipelines/cogvideo/pipeline_cogvideox_video2video.py (__init__: spatial factor 2 **
                # (len(block_out_channels) - 1); prepare_latents: `scaling_factor * init_latents`; decode_latents:
                # `1 / scaling_factor * latents`). `invert_scale_latents` only concerns the image-to-video
                # pipeline's image condition, `shift_factor` is unused by the pipelines.
                spatial = 2 ** (len(cfg.block_out_channels) - 1)
                channels, temporal = cfg.latent_channels, int(cfg.temporal_compression_ratio)
            else:
                # pipelines/hunyuan_video/pipeline_hunyuan_video_image2video.py (prepare_latents: `latents *
                # scaling_factor`) and pipeline_hunyuan_video.py (__call__: `latents / scaling_factor`); no shift.
                channels, spatial = cfg.latent_channels, cfg.spatial_compression_ratio
                temporal = cfg.temporal_compression_ratio
            shift, scale = torch.zeros(1), torch.tensor([cfg.scaling_factor])
        self._factors = (channels, spatial, temporal)
        self.register_buffer("shift", shift.float().view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("scale", scale.float().view(1, -1, 1, 1, 1), persistent=False)
        if tiling:
            vae.enable_tiling(**self._tile_kwargs(tile_size, tile_stride))

    def _tile_kwargs(self, tile_size: int | None, tile_stride: int | None) -> dict[str, float | None]:
        """`enable_tiling` arguments (None keeps a default): CogVideoX takes an overlap fraction, not a stride."""
        f = self.spatial_factor
        for name, value in (("tile_size", tile_size), ("tile_stride", tile_stride)):
            if value is not None and (value <= 0 or value % f):
                raise ValueError(f"DiffusersVAE: {name} must be a positive multiple of {f}, got {value}")
        if tile_size is not None and tile_stride is not None and tile_stride > tile_size:
            raise ValueError(f"DiffusersVAE: tile_stride {tile_stride} must not exceed tile_size {tile_size}")
        kwargs = {"tile_sample_min_height": tile_size, "tile_sample_min_width": tile_size}
        if self.kind != "cogvideox":
            return kwargs | {"tile_sample_stride_height": tile_stride, "tile_sample_stride_width": tile_stride}
        if tile_stride is not None:
            height = tile_size or self.vae.tile_sample_min_height
            width = tile_size or self.vae.tile_sample_min_width
            kwargs |= {
                "tile_overlap_factor_height": 1 - tile_stride / height,
                "tile_overlap_factor_width": 1 - tile_stride / width,
            }
        return kwargs

    @property
    def latent_channels(self) -> int:
        return self._factors[0]

    @property
    def spatial_factor(self) -> int:
        return self._factors[1]

    @property
    def temporal_factor(self) -> int:
        return self._factors[2]

    def _encode(self, x: Tensor) -> Tensor:
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        z = posterior.sample() if self.sample else posterior.mode()
        return ((z.float() - self.shift) * self.scale).to(x.dtype)

    def _decode(self, z: Tensor) -> Tensor:
        raw = z.float() / self.scale + self.shift
        return self.vae.decode(raw.to(self.vae.dtype)).sample.to(z.dtype)


def _load_vae(path: str, kind: VAEKind, subfolder: str | None, dtype: str) -> nn.Module:
    """Load the diffusers VAE class of `kind` from a local folder, with clear errors for the usual mistakes."""
    try:
        import diffusers
    except ImportError as e:
        raise ImportError("DiffusersVAE needs diffusers: pip install 'gvr[diffusers]'") from e
    _check_kind(kind)
    folder = Path(path, subfolder) if subfolder else Path(path)
    if not (folder / "config.json").is_file() or not any(folder.glob("diffusion_pytorch_model*")):
        raise FileNotFoundError(
            f"DiffusersVAE: no {_CLASSES[kind]} at '{folder}' (needs config.json and diffusion_pytorch_model "
            f"weights). Download it once, e.g. `hf download {_SOURCES[kind]} --include 'vae/*' --local-dir DIR`, "
            f"then set path: DIR (subfolder: vae)."
        )
    return getattr(diffusers, _CLASSES[kind]).from_pretrained(
        path, subfolder=subfolder, torch_dtype=getattr(torch, dtype), local_files_only=True
    )


def _check_kind(kind: str) -> None:
    if kind not in _CLASSES:
        raise ValueError(f"DiffusersVAE: kind must be one of {sorted(_CLASSES)}, got {kind!r}")
