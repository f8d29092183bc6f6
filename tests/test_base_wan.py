"""The Wan2.1 adapter: a tiny random WanTransformer3DModel from a local folder, with the Wan VAE codec."""

import pytest
import torch
from safetensors.torch import save_file

diffusers = pytest.importorskip("diffusers")

from gvr.base import refine_latent  # noqa: E402
from gvr.base.wan import WanBaseModel  # noqa: E402
from gvr.codecs import DiffusersVAE  # noqa: E402
from gvr.data.degradations import ModelGuidedDegradation  # noqa: E402


def _tiny_transformer(channels: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=channels,
        out_channels=channels, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    _tiny_transformer().save_pretrained(root / "transformer")
    save_file({"null": torch.randn(5, 16), "prompt": torch.randn(7, 16)}, str(root / "text.safetensors"))
    return root


def test_loads_from_a_local_folder_and_matches_the_transformer(wan_folder):
    base = WanBaseModel(str(wan_folder), dtype="float32", text_embeddings=str(wan_folder / "text.safetensors"))
    assert base.latent_channels == 4 and base.text_dim == 16
    x, t = torch.randn(2, 4, 2, 6, 8), torch.tensor([0.3, 0.9])
    v = base.velocity(x, t)
    ref = _tiny_transformer()(hidden_states=x, timestep=t * 1000,
                              encoder_hidden_states=base.prompt.expand(2, -1, -1), return_dict=False)[0]
    assert v.shape == x.shape
    torch.testing.assert_close(v, ref)


def test_guidance_mixes_prompt_and_null(wan_folder):
    text = str(wan_folder / "text.safetensors")
    plain = WanBaseModel(str(wan_folder), dtype="float32", text_embeddings=text)
    guided = WanBaseModel(str(wan_folder), dtype="float32", text_embeddings=text, guidance_scale=3.0)
    x, t = torch.randn(1, 4, 1, 4, 4), torch.tensor([0.5])
    v_text, v_null = plain.velocity(x, t), plain.velocity(x, t, plain.null[None])
    torch.testing.assert_close(guided.velocity(x, t), v_null + 3.0 * (v_text - v_null))


def test_missing_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="WanTransformer3DModel at .*transformer.*hf download"):
        WanBaseModel(str(tmp_path))


def test_model_guided_degradation_with_wan_and_its_vae():
    vae = diffusers.AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                     latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    codec = DiffusersVAE.from_model(vae, "wan")
    base = WanBaseModel.from_model(_tiny_transformer())
    deg = ModelGuidedDegradation(base=base, codec=codec, steps=2)
    hr = torch.rand(3, 5, 32, 32) * 2 - 1
    out = deg(hr, (16, 16), torch.Generator().manual_seed(0))
    assert out.shape == (3, 5, 16, 16) and torch.isfinite(out).all()
    c0 = deg.encode_lr(hr, (16, 16))
    assert torch.equal(refine_latent(base, c0, torch.zeros(1), torch.randn_like(c0), 3), c0)
