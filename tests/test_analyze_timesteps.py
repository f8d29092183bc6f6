"""Detail-aware timestep analysis: DCT against scipy, high-frequency measure, density file, the command."""

import json
import math

import pytest
import torch
from PIL import Image

from gvr.analysis.timesteps import (
    change_rate,
    dct2,
    dct_matrix,
    high_frequency_change,
    high_frequency_mask,
    mass_between,
    to_density,
)
from gvr.flow.euler import euler_timesteps
from gvr.flow.timesteps import DetailAwareTimesteps

scipy_fft = pytest.importorskip("scipy.fft")


def test_dct2_matches_scipy_orthonormal_dct():
    x = torch.randn(2, 3, 4, 12, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = scipy_fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert torch.allclose(dct2(x), torch.from_numpy(ref), atol=1e-12)
    m = dct_matrix(9, torch.float64)
    assert torch.allclose(m @ m.T, torch.eye(9, dtype=torch.float64), atol=1e-12)  # orthonormal


def test_high_frequency_mask_is_radial_in_fractions_of_nyquist():
    mask = high_frequency_mask(8, 8, 0.5)
    assert not mask[0, 0] and not mask[3, 0] and mask[4, 0] and mask[0, 4] and mask[3, 3] and not mask[2, 3]
    assert high_frequency_mask(6, 10, 0.0).all()
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_mask(8, 8, 1.5)


def test_high_frequency_change_against_scipy():
    g = torch.Generator().manual_seed(0)
    h, w = 16, 20
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    low = torch.cos(math.pi * (2 * yy + 1) * 1 / (2 * h))  # DCT basis (1, 0): a pure low frequency
    high = torch.cos(math.pi * (2 * yy + 1) * 13 / (2 * h)) * torch.cos(math.pi * (2 * xx + 1) * 15 / (2 * w))
    base = torch.randn(2, 3, 4, h, w, dtype=torch.float64, generator=g)
    # Changing only a low frequency is no high-frequency change; changing a high one is measured exactly.
    assert high_frequency_change(base, base + 5 * low, 0.5).abs().max() < 1e-9
    changed = base + torch.tensor([1.0, 3.0], dtype=torch.float64).view(2, 1, 1, 1, 1) * high
    other = torch.randn(2, 3, 4, h, w, dtype=torch.float64, generator=g)
    for norm in ("l2", "l1"):
        for after in (changed, other):
            coeffs = torch.from_numpy(scipy_fft.dctn((after - base).numpy(), type=2, norm="ortho", axes=(-2, -1)))
            u = torch.arange(h, dtype=torch.float64)[:, None] / h
            v = torch.arange(w, dtype=torch.float64)[None, :] / w
            kept = coeffs[..., torch.sqrt(u**2 + v**2) >= 0.5].flatten(1)
            ref = kept.pow(2).mean(1).sqrt() if norm == "l2" else kept.abs().mean(1)
            assert torch.allclose(high_frequency_change(base, after, 0.5, norm), ref, rtol=1e-10)
    ratio = high_frequency_change(base, changed, 0.5, "l1")
    assert ratio[1] / ratio[0] == pytest.approx(3.0)  # linear in the size of the change
    with pytest.raises(ValueError, match="norm"):
        high_frequency_change(base, changed, 0.5, "linf")


def test_rate_divides_by_the_step_length_and_density_integrates_to_one():
    ts = euler_timesteps(4, shift=3.0)  # non-uniform steps
    changes = (ts[:-2] - ts[1:-1]).abs()[:, None].double().repeat(1, 2)  # change proportional to step length
    mids, rate = change_rate(changes, ts)
    assert mids.shape == (3,) and rate.shape == (3, 2) and torch.allclose(rate, torch.ones(3, 2, dtype=torch.float64))
    t, density = to_density(mids, rate.mean(1))
    assert t[0] == 0 and t[-1] == 1 and torch.allclose(density, torch.ones_like(density))  # uniform
    assert mass_between(t, density, 0.2, 0.5) == pytest.approx(0.3)


def test_density_file_is_read_by_the_detail_aware_sampler(tmp_path):
    mids = torch.linspace(0.01, 0.99, 49, dtype=torch.float64)
    t, density = to_density(mids, torch.exp(-((mids - 0.8) ** 2) / 0.01))  # detail made at high noise
    path = tmp_path / "timesteps.json"
    path.write_text(json.dumps({"t": t.tolist(), "density": density.tolist()}))
    sampler = DetailAwareTimesteps(str(path))
    draws = sampler.sample(20000, torch.Generator().manual_seed(0))
    assert 0.0 <= float(draws.min()) and float(draws.max()) <= 1.0
    assert float(draws.mean()) == pytest.approx(0.8, abs=0.01)
    assert mass_between(t, density, 0, 1) == pytest.approx(1.0)
    assert mass_between(t, density, 2 / 3, 1) > 0.9


def test_analyze_timesteps_command_end_to_end(tiny_vsr_ckpt, tiny_data, tmp_path, capsys):
    from gvr.cli import main

    out = tmp_path / "analysis"
    main(["analyze-timesteps", "--ckpt", tiny_vsr_ckpt, "--manifest", tiny_data["train"], "--clips", "3",
          "--batch", "2", "--steps", "4", "--cutoff", "0.25", "--norm", "l1", "--seed", "1", "--degradation", "bicubic",
          "--out", str(out)])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads((out / "timesteps.json").read_text())
    assert len(record["t_mid"]) == 3 and record["config"]["steps"] == 4 and record["config"]["norm"] == "l1"
    sampler = DetailAwareTimesteps(str(out / "timesteps.json"))
    assert float(sampler.pdf(torch.tensor(record["t_mid"])).min()) >= 0
    assert sum(summary["mass"].values()) == pytest.approx(1.0)
    assert Image.open(out / "timesteps.png").size == (720, 440)
    with pytest.raises(SystemExit, match="steps >= 2"):
        main(["analyze-timesteps", "--ckpt", tiny_vsr_ckpt, "--manifest", tiny_data["train"], "--steps", "1", "--out", str(out)])
    with pytest.raises(SystemExit, match="not found"):
        main(["analyze-timesteps", "--ckpt", str(tmp_path / "none.ckpt"), "--manifest", tiny_data["train"], "--out", str(out)])
