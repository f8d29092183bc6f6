"""SimpleGVR started from a LatentDiT base model is exactly that base model on `z_t`, then learns the condition."""

import pytest
import torch
from conftest import tiny_cli_args

from gvr.base import LatentDiT
from gvr.cli import lightning_main
from gvr.models import SimpleGVR
from gvr.models.from_base import vsr_weights_from_base


def _randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """`model` with every parameter redrawn (a trained-looking network, not the zero velocity field)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _inputs(b=2, t=3, hr=(8, 10), lr=(4, 5), text=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    z_t, c = torch.randn(b, 12, t, *hr, generator=g), torch.randn(b, 12, t, *lr, generator=g)
    args = (torch.rand(b, generator=g), torch.rand(b, generator=g))
    return z_t, c, args, None if text is None else torch.randn(b, 4, text, generator=g)


@pytest.mark.parametrize("text_dim", [None, 16])
def test_the_started_vsr_model_is_the_base_model_whatever_the_condition(text_dim):
    base = _randomised(LatentDiT(latent_channels=12, dim=32, depth=2, heads=2, text_dim=text_dim)).eval()
    vsr = SimpleGVR(latent_channels=12, dim=32, depth=2, heads=2, upsampler_channels=8, text_dim=text_dim).eval()
    upsampler_before = {k: v.clone() for k, v in vsr.upsampler.state_dict().items()}
    vsr.load_state_dict(vsr_weights_from_base(vsr, base.state_dict()))

    z_t, c, (t, s), text = _inputs(text=text_dim)
    with torch.no_grad():
        want = base(z_t, t, text)
        got = vsr(z_t, t, c, s, text)
        other = vsr(z_t, t, torch.randn_like(c), torch.rand_like(s), text)
    assert want.abs().mean() > 0.01  # a real velocity field, not the zero-initialised one
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(other, want, atol=1e-5, rtol=1e-5)
    for key, value in base.state_dict().items():  # the trunk is the base model's; the upsampler is untouched
        if not key.startswith("patch_embed."):
            assert torch.equal(vsr.state_dict()[key], value), key
    for key, value in vsr.upsampler.state_dict().items():
        assert torch.equal(value, upsampler_before[key])


def test_architectures_that_do_not_agree_are_refused():
    vsr = SimpleGVR(latent_channels=12, dim=32, depth=2, heads=2, upsampler_channels=8)
    with pytest.raises(ValueError, match="has no blocks.1"):
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=12, dim=32, depth=1, heads=2).state_dict())
    with pytest.raises(ValueError, match="no place"):
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=12, dim=32, depth=3, heads=2).state_dict())
    with pytest.raises(ValueError, match="width"):
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=12, dim=64, depth=2, heads=2).state_dict())
    with pytest.raises(ValueError, match="in the base model but"):  # same width, another FFN
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=12, dim=32, depth=2, heads=2, mlp_ratio=2.0).state_dict())
    with pytest.raises(ValueError, match="latent channels"):
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=16, dim=32, depth=2, heads=2).state_dict())
    with pytest.raises(ValueError, match="text_proj"):
        vsr_weights_from_base(vsr, LatentDiT(latent_channels=12, dim=32, depth=2, heads=2, text_dim=8).state_dict())


def test_vsr_module_starts_from_the_base_checkpoints_ema_weights(tiny_base_ckpt):
    from gvr.codecs import PatchCodec
    from gvr.lit.vsr_module import VSRModule

    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8)
    module = VSRModule(backbone, PatchCodec(spatial_factor=2), init_from_base=tiny_base_ckpt)
    module.setup("fit")
    base = torch.load(tiny_base_ckpt, weights_only=False)["state_dict"]
    for net in (module.backbone, module.ema):
        for key, value in net.state_dict().items():
            if not key.startswith(("patch_embed.", "upsampler.", "s_embedder.")):
                assert torch.equal(value, base["ema." + key]), key
        assert torch.equal(net.patch_embed.weight[:, :48], base["ema.patch_embed.weight"])  # 12 channels x 2 x 2
        assert not net.patch_embed.weight[:, 48:].any()


def test_gvr_fit_from_a_base_checkpoint_learns_to_read_the_condition(tiny_data, tiny_base_ckpt, tmp_path):
    cli = lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
        "--model.init_from_base", tiny_base_ckpt)])
    assert cli.trainer.global_step == 2
    # The condition's patch_embed columns started at zero; two steps already read the condition.
    assert cli.model.backbone.patch_embed.weight[:, 48:].abs().sum() > 0

    with pytest.raises(ValueError, match="not both"):
        lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path, "--trainer.max_steps", "1",
                                              "--model.init_from_base", tiny_base_ckpt,
                                              "--model.init_from", tiny_base_ckpt)])
    with pytest.raises(FileNotFoundError, match="init_from_base: checkpoint .*missing.ckpt"):
        lightning_main(["fit", *tiny_cli_args(tiny_data, tmp_path, "--trainer.max_steps", "1",
                                              "--model.init_from_base", str(tmp_path / "missing.ckpt"))])
