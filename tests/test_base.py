"""The base-model side: LatentDiT, sampling, SDEdit-like refinement, BaseModule training and checkpoints."""

import pytest
import torch

from gvr.base import BaseModel, LatentDiT, generate_latent, refine_latent
from gvr.lit.checkpoints import load_gvr_module


class StraightLine(BaseModel):
    """A base model that knows the answer: the velocity of the straight path from ``c0`` to ``eps``."""

    latent_channels = 4

    def __init__(self, c0: torch.Tensor, eps: torch.Tensor):
        super().__init__()
        self.c0, self.eps = c0, eps

    def velocity(self, c_t, t, text=None):
        return self.eps - self.c0


def _tiny(**kw) -> LatentDiT:
    return LatentDiT(latent_channels=4, dim=32, depth=1, heads=2, **kw)


def test_latent_dit_shapes_odd_sizes_and_zero_init():
    net = _tiny()
    x = torch.randn(2, 4, 3, 7, 5)
    v = net(x, torch.rand(2))
    assert v.shape == x.shape
    assert torch.count_nonzero(v) == 0  # adaLN-Zero + zero output layer: the fresh model is v = 0


def test_latent_dit_text_conditioning_and_errors():
    net = _tiny(text_dim=8)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    x = torch.randn(1, 4, 2, 4, 4)
    a = net(x, torch.rand(1), torch.randn(1, 3, 8))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert net.null_text(2).shape == (2, 1, 8)
    with pytest.raises(ValueError, match="text"):
        net(x, torch.rand(1))
    with pytest.raises(ValueError, match="latent"):
        net(torch.randn(1, 5, 2, 4, 4), torch.rand(1), torch.randn(1, 3, 8))


def test_refine_with_alpha_zero_returns_c0_exactly():
    net = _tiny()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    c0, eps = torch.randn(3, 4, 2, 6, 6), torch.randn(3, 4, 2, 6, 6)
    out = refine_latent(net, c0, torch.zeros(3), eps, steps=5)
    assert torch.equal(out, c0)


def test_refine_follows_the_base_model():
    c0, eps = torch.randn(2, 4, 2, 4, 4), torch.randn(2, 4, 2, 4, 4)
    # A model that knows the straight path integrates back to c0 exactly (Euler is exact on straight lines).
    out = refine_latent(StraightLine(c0, eps), c0, torch.tensor([0.3, 0.4]), eps, steps=3)
    torch.testing.assert_close(out, c0)
    # The fresh LatentDiT predicts v = 0, so the noised latent stays where it was put: (1 - a) c0 + a eps.
    alpha = torch.tensor([0.3, 0.35])
    out = refine_latent(_tiny(), c0, alpha, eps, steps=4)
    torch.testing.assert_close(out, (1 - alpha.view(2, 1, 1, 1, 1)) * c0 + alpha.view(2, 1, 1, 1, 1) * eps)


def test_refine_rejects_bad_arguments():
    c0 = torch.randn(1, 4, 1, 4, 4)
    with pytest.raises(ValueError, match="alpha"):
        refine_latent(_tiny(), c0, torch.tensor([1.5]), torch.randn_like(c0), steps=2)
    with pytest.raises(ValueError, match="latent"):
        refine_latent(_tiny(), torch.randn(1, 3, 1, 4, 4), torch.tensor([0.3]), torch.randn(1, 3, 1, 4, 4), steps=2)


def test_generate_latent_integrates_from_noise():
    noise = torch.randn(1, 4, 2, 4, 4)
    c0 = torch.randn_like(noise)
    torch.testing.assert_close(generate_latent(StraightLine(c0, noise), noise, steps=7), c0)
    assert torch.equal(generate_latent(_tiny(), noise, steps=3), noise)  # v = 0


def test_base_fit_checkpoint_rebuilds_module_and_samples(tiny_base_ckpt, tiny_vsr_ckpt):
    from gvr.lit.base_module import BaseModule

    module = load_gvr_module(tiny_base_ckpt, "BaseModule")
    assert isinstance(module, BaseModule) and module.codec.spatial_factor == 2
    a = module.sample((1, 12, 3, 6, 8), steps=2, seed=5)
    b = module.sample((1, 12, 3, 6, 8), steps=2, seed=5)
    assert a.shape == (1, 12, 3, 6, 8) and torch.equal(a, b)
    assert not any(k.startswith("codec.") for k in torch.load(tiny_base_ckpt, weights_only=False)["state_dict"])
    with pytest.raises(ValueError, match="not a gvr BaseModule checkpoint"):
        load_gvr_module(tiny_vsr_ckpt, "BaseModule")
    with pytest.raises(ValueError, match="not a gvr VSRModule checkpoint"):
        load_gvr_module(tiny_base_ckpt, "VSRModule")


def test_base_module_learns(tiny_data, tmp_path):
    """A short base fit lowers the flow-matching loss on its own training clips."""
    from conftest import tiny_base_args

    from gvr.commands import base

    cli = base.main(["fit", *tiny_base_args(tiny_data, tmp_path, "--trainer.max_steps", "1")])
    module, data = cli.model, cli.datamodule
    batch = next(iter(data.train_dataloader()))
    c0 = module.encode(batch["lr"])
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    opt = torch.optim.AdamW(module.network.parameters(), lr=3e-3)
    first = module.flow_loss(c0, g()).item()
    for _ in range(60):
        loss = module.flow_loss(c0, g())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert module.flow_loss(c0, g()).item() < 0.5 * first
