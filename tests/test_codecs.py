"""Latent codecs: PatchCodec exactness and DiffusersVAE (tiny random diffusers VAEs) shapes and normalisation."""

import copy
import sys

import pytest
import torch
import torch.nn.functional as F
from jsonargparse import ArgumentParser

from gvr.codecs.codec import LatentCodec
from gvr.codecs.diffusers_vae import DiffusersVAE
from gvr.codecs.patch import PatchCodec


def _pixels(t: int, h: int, w: int, b: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# 1. PatchCodec


@pytest.mark.parametrize("f", [4, 8])
@pytest.mark.parametrize("tf", [1, 4])
@pytest.mark.parametrize("t", [1, 5, 17])
def test_patch_shapes_and_exact_round_trip(f: int, tf: int, t: int) -> None:
    codec = PatchCodec(spatial_factor=f, temporal_factor=tf)
    x = _pixels(t, 2 * f, 3 * f)
    z = codec.encode(x)
    t_lat = t if tf == 1 else (t - 1) // 4 + 1
    assert z.shape == (2, 3 * f * f * tf, t_lat, 2, 3) and codec.latent_channels == z.shape[1]
    assert codec.latent_frames(t) == t_lat and codec.pixel_frames(t_lat) == t
    torch.testing.assert_close(codec.decode(z), x, atol=1e-6, rtol=0)


def test_patch_normalisation_gives_about_unit_std() -> None:
    z = PatchCodec(spatial_factor=8, temporal_factor=4).encode(_pixels(17, 64, 64))
    assert abs(z.mean().item()) < 0.02
    assert z.std().item() == pytest.approx(2 / 3**0.5, rel=0.02)  # uniform [-1, 1]: std 1/sqrt(3), scale 2
    shifted = PatchCodec(spatial_factor=2, shift=0.5, scale=4.0).encode(torch.full((1, 3, 1, 2, 2), 0.75))
    torch.testing.assert_close(shifted, torch.ones_like(shifted))


def test_patch_first_frame_is_replicated_and_decoded_as_the_mean() -> None:
    codec = PatchCodec(spatial_factor=1, temporal_factor=4)
    x = _pixels(5, 1, 1, b=1)
    z = codec.encode(x)  # (1, 12, 2, 1, 1): channels (c k)
    first = z[0, :, 0, 0, 0].view(3, 4)
    assert torch.equal(first, first[:, :1].expand(3, 4))
    z[0, :, 0] += torch.tensor([1.0, -1.0, 0.0, 0.0]).repeat(3).view(12, 1, 1)  # zero-mean perturbation
    torch.testing.assert_close(codec.decode(z), x, atol=1e-6, rtol=0)


def test_check_input_errors() -> None:
    codec = PatchCodec(spatial_factor=8, temporal_factor=4)
    with pytest.raises(ValueError, match="multiples of spatial_factor=8"):
        codec.encode(_pixels(5, 60, 64))
    with pytest.raises(ValueError, match="1 \\+ k \\* temporal_factor=4"):
        codec.encode(_pixels(6, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        codec.encode(torch.zeros(3, 5, 64, 64))
    with pytest.raises(ValueError, match="expected a latent"):
        codec.decode(torch.zeros(1, 7, 2, 8, 8))
    with pytest.raises(ValueError, match="temporal_factor must be 1 or 4"):
        PatchCodec(temporal_factor=2)  # type: ignore[arg-type]
    PatchCodec(spatial_factor=8, temporal_factor=1).check_input(_pixels(6, 64, 64))  # any T without time packing


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_pad_to_valid_then_crop_recovers_the_input(mode: str) -> None:
    codec = PatchCodec(spatial_factor=8, temporal_factor=4)
    x = _pixels(7, 19, 30)
    padded, (t, h, w) = codec.pad_to_valid(x, mode=mode)
    assert padded.shape == (2, 3, 9, 24, 32) and (t, h, w) == (7, 19, 30)
    assert torch.equal(padded[:, :, 7:, :19, :30], x[:, :, -1:].expand(-1, -1, 2, -1, -1))  # last frame repeated
    assert torch.equal(padded[:, :, :7, 19, :30], x[..., 17 if mode == "reflect" else 18, :])
    recovered = codec.decode(codec.encode(padded))[..., :t, :h, :w]
    torch.testing.assert_close(recovered, x, atol=1e-6, rtol=0)
    unbatched, _ = codec.pad_to_valid(x[0], mode=mode)
    assert torch.equal(unbatched, padded[0])
    assert codec.pad_to_valid(padded)[0].shape == padded.shape  # valid input is left alone
    with pytest.raises(ValueError, match="too small to reflect-pad"):
        codec.pad_to_valid(_pixels(1, 3, 8), mode="reflect")


def test_codec_is_frozen_and_stays_in_eval_mode() -> None:
    parent = torch.nn.ModuleDict({"codec": PatchCodec(), "net": torch.nn.Linear(2, 2)}).train()
    assert parent["net"].training and not parent["codec"].training
    x = _pixels(1, 8, 8).requires_grad_()
    assert not parent["codec"].encode(x).requires_grad


@pytest.mark.parametrize("cls", [PatchCodec, DiffusersVAE])
def test_constructor_is_a_config_schema(cls: type[LatentCodec]) -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "codec")
    assert all(action.help for action in parser._actions if action.dest.startswith("codec."))


# 2. DiffusersVAE with tiny randomly initialised diffusers models


def _tiny_vae(kind: str) -> torch.nn.Module:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    if kind == "wan":
        return diffusers.AutoencoderKLWan(
            base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
            latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.5, 2.0, 1.0],
        )  # fmt: skip
    blocks = {"block_out_channels": (8, 8, 8, 8), "latent_channels": 4, "layers_per_block": 1}
    if kind == "cogvideox":
        down, up = ("CogVideoXDownBlock3D",) * 4, ("CogVideoXUpBlock3D",) * 4
        return diffusers.AutoencoderKLCogVideoX(**blocks, norm_num_groups=2, down_block_types=down, up_block_types=up)
    down, up = ("HunyuanVideoDownBlock3D",) * 4, ("HunyuanVideoUpBlock3D",) * 4
    return diffusers.AutoencoderKLHunyuanVideo(**blocks, norm_num_groups=4, down_block_types=down, up_block_types=up)


@pytest.mark.parametrize("kind", ["wan", "cogvideox", "hunyuan"])
def test_diffusers_vae_from_path_shapes_and_normalisation(kind: str, tmp_path) -> None:
    vae = _tiny_vae(kind)
    vae.save_pretrained(tmp_path / "vae")
    codec = DiffusersVAE(str(tmp_path), kind=kind)
    assert (codec.latent_channels, codec.spatial_factor, codec.temporal_factor) == (4, 8, 4)
    assert not any(p.requires_grad for p in codec.parameters())
    x = _pixels(9, 32, 48)
    z = codec.encode(x)
    assert z.shape == (2, 4, 3, 4, 6) and z.dtype == x.dtype
    with torch.no_grad():
        raw = vae.encode(x).latent_dist.mode()
    cfg = vae.config
    if kind == "wan":
        mean, std = (torch.tensor(v).view(4, 1, 1, 1) for v in (cfg.latents_mean, cfg.latents_std))
        expected = (raw - mean) / std
    else:
        expected = raw * cfg.scaling_factor
    torch.testing.assert_close(z, expected, atol=1e-5, rtol=1e-5)
    y = codec.decode(z)
    assert y.shape == x.shape
    with torch.no_grad():
        torch.testing.assert_close(y, vae.decode(raw).sample, atol=1e-5, rtol=1e-5)


def test_diffusers_vae_sampling_and_dtype() -> None:
    vae = _tiny_vae("wan")
    x = _pixels(1, 16, 16, b=1)
    assert torch.equal(DiffusersVAE.from_model(vae, "wan").encode(x), DiffusersVAE.from_model(vae, "wan").encode(x))
    sampled = DiffusersVAE.from_model(vae, "wan", sample=True)
    assert not torch.equal(sampled.encode(x), sampled.encode(x))
    half = DiffusersVAE.from_model(copy.deepcopy(vae).to(torch.bfloat16), "wan")
    assert half.encode(x).dtype == torch.float32 and half.decode(half.encode(x)).dtype == torch.float32


def test_diffusers_vae_tiled_encode_agrees_with_untiled() -> None:
    vae = _tiny_vae("wan")
    plain = DiffusersVAE.from_model(vae, "wan")
    tiled = DiffusersVAE.from_model(copy.deepcopy(vae), "wan", tiling=True, tile_size=32, tile_stride=16)
    x = _pixels(5, 64, 64, b=1)
    z, z_tiled = plain.encode(x), tiled.encode(x)
    assert z.shape == z_tiled.shape == (1, 4, 2, 8, 8)
    rel = ((z - z_tiled).norm() / z.norm()).item()
    assert 0 < rel < 0.35  # tiles really ran; random weights make seams larger than in a trained VAE
    assert F.cosine_similarity(z.flatten(), z_tiled.flatten(), dim=0) > 0.95
    assert tiled.decode(z).shape == x.shape
    with pytest.raises(ValueError, match="multiple of 8"):
        DiffusersVAE.from_model(copy.deepcopy(vae), "wan", tiling=True, tile_size=30)


def test_diffusers_vae_errors(tmp_path) -> None:
    pytest.importorskip("diffusers")
    with pytest.raises(FileNotFoundError, match="Wan-AI/Wan2.1-T2V-1.3B-Diffusers") as info:
        DiffusersVAE(str(tmp_path / "missing"), kind="wan")
    assert str(tmp_path / "missing" / "vae") in str(info.value)
    with pytest.raises(FileNotFoundError, match="THUDM/CogVideoX-2b"):
        DiffusersVAE(str(tmp_path), kind="cogvideox", subfolder=None)
    with pytest.raises(ValueError, match="kind must be one of"):
        DiffusersVAE(str(tmp_path), kind="sdxl")  # type: ignore[arg-type]
    codec = DiffusersVAE.from_model(_tiny_vae("wan"), "wan")
    with pytest.raises(ValueError, match="1 \\+ k \\* temporal_factor=4"):
        codec.encode(_pixels(4, 16, 16))


def test_diffusers_missing_is_a_clear_import_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match=r"pip install 'gvr\[diffusers\]'"):
        DiffusersVAE(str(tmp_path))
