"""Rectified-flow path, loss, timestep samplers and the Euler sampler."""

import json

import pytest
import torch

from gvr.flow import (
    DetailAwareTimesteps,
    LogitNormalTimesteps,
    ShiftedTimesteps,
    UniformTimesteps,
    augment_condition,
    euler_timesteps,
    flow_matching_loss,
    interpolate,
    predict_x0,
    sample_euler,
    velocity_target,
)


def test_path_endpoints_and_velocity():
    z0, eps = torch.randn(3, 4, 2, 5, 5), torch.randn(3, 4, 2, 5, 5)
    assert torch.equal(interpolate(z0, eps, torch.zeros(3)), z0)
    assert torch.equal(interpolate(z0, eps, torch.ones(3)), eps)
    t = torch.tensor([0.1, 0.5, 0.9])
    z_t = interpolate(z0, eps, t)
    # The true velocity recovers z0 exactly through predict_x0 at any t.
    torch.testing.assert_close(predict_x0(z_t, t, velocity_target(z0, eps)), z0)
    # Finite difference along the path equals the velocity.
    dt = 1e-3
    torch.testing.assert_close((interpolate(z0, eps, t + dt) - z_t) / dt, eps - z0, atol=1e-2, rtol=1e-2)


def test_loss_is_zero_for_true_velocity_and_mse_otherwise():
    z0, eps = torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4)
    assert flow_matching_loss(eps - z0, z0, eps).item() == 0.0
    assert flow_matching_loss(eps - z0 + 2.0, z0, eps).item() == pytest.approx(4.0)


def test_condition_augmentation_levels():
    c, noise = torch.randn(2, 4, 3, 6, 6), torch.randn(2, 4, 3, 6, 6)
    assert torch.equal(augment_condition(c, torch.zeros(2), noise), c)
    out = augment_condition(c, torch.tensor([0.3, 0.6]), noise)
    torch.testing.assert_close(out[1], 0.4 * c[1] + 0.6 * noise[1])


def test_euler_integrates_linear_field_exactly():
    z0, eps = torch.randn(2, 3, 2, 4, 4, dtype=torch.float64), torch.randn(2, 3, 2, 4, 4, dtype=torch.float64)
    # On the straight path the velocity is constant (eps - z0): Euler is exact for any step count.
    for steps, shift in [(1, 1.0), (7, 1.0), (50, 3.0)]:
        ts = euler_timesteps(steps, shift, device="cpu").double()
        out = sample_euler(lambda x, t: eps - z0, eps.clone(), ts)
        torch.testing.assert_close(out, z0, atol=1e-12, rtol=0)
    # A field linear in x: dx/dt = a x with a = 0.5 gives x(0) = x(1) exp(-0.5); Euler converges at O(1/n).
    x1 = torch.ones(1, 1, 1, 1, 1, dtype=torch.float64)
    errs = [abs(sample_euler(lambda x, t: 0.5 * x, x1, euler_timesteps(n).double()).item() - torch.exp(torch.tensor(-0.5)).item()) for n in (10, 20)]
    assert errs[1] < 0.55 * errs[0]


def test_euler_passes_condition_and_callback():
    seen = []
    cond = {"c": torch.full((1,), 2.0)}
    out = sample_euler(lambda x, t, c: c.view(-1, 1) * torch.ones_like(x), torch.zeros(1, 3), euler_timesteps(4), cond, seen.append)
    assert [d["i"] for d in seen] == [0, 1, 2, 3]
    torch.testing.assert_close(out, torch.full((1, 3), -2.0))  # integral of 2 dt from t=1 to 0


def test_euler_timesteps_shape_and_errors():
    ts = euler_timesteps(10, shift=3.0)
    assert ts.shape == (11,) and ts[0] == 1 and ts[-1] == 0 and (ts.diff() < 0).all()
    with pytest.raises(ValueError, match="steps"):
        euler_timesteps(0)


@pytest.mark.parametrize("sampler", [UniformTimesteps(), LogitNormalTimesteps(0.0, 1.0), ShiftedTimesteps(3.0)])
def test_samplers_range_and_reproducibility(sampler):
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = sampler.sample(1000, g1), sampler.sample(1000, g2)
    assert a.shape == (1000,) and a.dtype == torch.float32
    assert torch.equal(a, b) and (a >= 0).all() and (a <= 1).all()


def test_shifted_sampler_favours_noise_and_logit_normal_is_centred():
    g = torch.Generator().manual_seed(1)
    assert ShiftedTimesteps(3.0).sample(20000, g).mean() > 0.6
    assert LogitNormalTimesteps(0.0, 1.0).sample(20000, g).mean().item() == pytest.approx(0.5, abs=0.01)


def _write(tmp_path, t, density):
    path = tmp_path / "curve.json"
    path.write_text(json.dumps({"t": t, "density": density}))
    return str(path)


def test_detail_aware_matches_its_density(tmp_path):
    # A triangular density rising towards noise: p(t) = 2 t on [0, 1], CDF t^2, mean 2/3.
    sampler = DetailAwareTimesteps(_write(tmp_path, [0.0, 0.5, 1.0], [0.0, 1.0, 2.0]))
    t = sampler.sample(200000, torch.Generator().manual_seed(0))
    assert t.mean().item() == pytest.approx(2 / 3, abs=0.005)
    for q in (0.25, 0.5, 0.9):
        assert (t <= q).float().mean().item() == pytest.approx(q * q, abs=0.005)
    torch.testing.assert_close(sampler.pdf(torch.tensor([0.25, 1.0])), torch.tensor([0.5, 2.0], dtype=torch.float64))


def test_detail_aware_zero_regions_are_never_sampled(tmp_path):
    sampler = DetailAwareTimesteps(_write(tmp_path, [0.0, 0.2, 0.3, 1.0], [0.0, 0.0, 1.0, 1.0]))
    t = sampler.sample(50000, torch.Generator().manual_seed(0))
    assert t.min() >= 0.2 and t.max() <= 1.0


def test_detail_aware_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        DetailAwareTimesteps(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        DetailAwareTimesteps(str(bad))
    with pytest.raises(ValueError, match="increase"):
        DetailAwareTimesteps(_write(tmp_path, [0.5, 0.2], [1.0, 1.0]))
    with pytest.raises(ValueError, match="density"):
        DetailAwareTimesteps(_write(tmp_path, [0.0, 1.0], [-1.0, 1.0]))
