"""The flow objective stands apart from the network: draws, loss and solve against hand computations."""

import pytest
import torch

from gvr.flow import FlowObjective, FlowSource, ShiftedTimesteps, interpolate, path_loss


def test_draw_order_is_t_s_eps_then_the_condition_noise():
    flow = FlowObjective(ShiftedTimesteps(3.0), s_range=(0.2, 0.4))
    z0, c = torch.zeros(2, 4, 1, 6, 6), torch.zeros(2, 4, 1, 3, 3)
    draw = flow.draw(z0, c, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t = ShiftedTimesteps(3.0).sample(2, g, z0.device)
    s = 0.2 + 0.2 * torch.rand(2, generator=g)
    eps, noise = torch.randn(z0.shape, generator=g), torch.randn(c.shape, generator=g)
    for got, want in ((draw.t, t), (draw.s, s), (draw.eps, eps), (draw.cond_noise, noise)):
        assert torch.equal(got, want)


def test_loss_is_zero_for_the_true_velocity_and_the_mse_of_a_wrong_one():
    flow = FlowObjective(s_range=(0.0, 0.0))  # pure noise: x1 = eps
    z0, c = torch.randn(3, 4, 2, 5, 5), torch.randn(3, 4, 2, 5, 5)
    draw = flow.draw(z0, c, torch.Generator().manual_seed(0))
    true = lambda x, t, c_s, s: draw.eps - z0  # noqa: E731
    assert flow.loss(true, z0, c, None, draw).item() == 0.0
    zero = lambda x, t, c_s, s: torch.zeros_like(x)  # noqa: E731
    assert flow.loss(zero, z0, c, None, draw).item() == pytest.approx((draw.eps - z0).square().mean().item(), rel=1e-6)


def test_the_temporal_term_is_the_mean_square_of_the_frame_to_frame_change_of_the_error():
    z0, c = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 4, 3, 5, 5)
    plain, temporal = FlowObjective(s_range=(0.0, 0.0)), FlowObjective(s_range=(0.0, 0.0), temporal_weight=0.5)
    draw = plain.draw(z0, c, torch.Generator().manual_seed(0))
    offsets = torch.tensor([0.0, 1.0, 3.0]).view(1, 1, 3, 1, 1)  # the error grows 1 then 2 between frames
    net = lambda x, t, c_s, s: draw.eps - z0 + offsets  # noqa: E731
    assert plain.loss(net, z0, c, None, draw).item() == pytest.approx((offsets**2).mean().item())
    by_hand = (offsets**2).mean().item() + 0.5 * (1.0**2 + 2.0**2) / 2
    assert temporal.loss(net, z0, c, None, draw).item() == pytest.approx(by_hand, rel=1e-6)
    steady = lambda x, t, c_s, s: draw.eps - z0 + 2.0  # noqa: E731 - one error in every frame: no temporal cost
    assert temporal.loss(steady, z0, c, None, draw).item() == pytest.approx(plain.loss(steady, z0, c, None, draw).item())
    single = FlowObjective(s_range=(0.0, 0.0), temporal_weight=1.0)  # one frame: nothing to compare
    z1, c1 = z0[:, :, :1], c[:, :, :1]
    d1 = single.draw(z1, c1, torch.Generator().manual_seed(0))
    assert single.loss(lambda x, t, c_s, s: torch.zeros_like(x), z1, c1, None, d1).item() == pytest.approx(
        (d1.eps - z1).square().mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="temporal_weight"):
        FlowObjective(temporal_weight=-1.0)


def test_path_loss_sees_the_straight_path_point():
    z0, x1, t = torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4), torch.tensor([0.25, 0.75])
    seen = {}

    def v(x, tt):
        seen["x"] = x
        return x1 - z0

    assert path_loss(v, z0, x1, t).item() == 0.0
    assert torch.equal(seen["x"], interpolate(z0, x1, t))


def test_solve_with_the_data_parametrisation_lands_on_the_prediction():
    """prediction="data": a network that returns the data (here the residual z0 - U(c) it sees with the source's
    residual input) gives the straight path's velocity, so any step count lands on z0."""
    flow = FlowObjective(source=FlowSource(anchor="latent", sigma=0.5), prediction="data", s_inference=0.0)
    z0, c = torch.randn(1, 4, 2, 6, 6), torch.randn(1, 4, 2, 6, 6)
    anchor = c.clone()
    x1 = flow.source.start(anchor, torch.randn(z0.shape, generator=torch.Generator().manual_seed(1)))
    net = lambda x, t, c_s, s, ratio=None: z0 - anchor  # noqa: E731
    for steps in (1, 3):
        torch.testing.assert_close(flow.solve(net, x1, anchor, c, torch.zeros_like(c), steps=steps), z0, atol=1e-5, rtol=0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="prediction"):
        FlowObjective(prediction="noise")
    with pytest.raises(ValueError, match="s_range"):
        FlowObjective(s_range=(0.6, 0.3))


def test_the_motion_compensated_term_is_zero_for_an_error_that_moves_with_a_pan():
    """A pan of 2 HR pixels a frame (1 latent cell at factor 2): an error that moves with the content costs
    nothing along the flow and a lot at one screen position; one that stays put is the other way round."""
    import cv2
    import numpy as np

    from gvr.flow.objective import temporal_change
    from gvr.lit.motion import latent_motion

    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.random((40, 80, 3)).astype(np.float32), (0, 0), 2)
    scene = (scene - scene.min()) / (scene.max() - scene.min()) * 1.6 - 0.8
    hr = torch.from_numpy(np.stack([scene[:, 2 * k : 2 * k + 48] for k in range(3)])).permute(3, 0, 1, 2)[None]
    grid, mask = latent_motion(hr.float(), spatial_factor=2)  # latent grid 20 x 24
    assert grid.shape == (2, 20, 24, 2) and mask.shape == (1, 1, 2, 20, 24)
    assert mask[..., 2:-2, 4:-2].all() and not mask[..., :1].any()  # what left the view at the left edge is masked
    wide = torch.randn(1, 4, 1, 20, 40, generator=torch.Generator().manual_seed(0))
    moving = torch.cat([wide[..., k : k + 24] for k in range(3)], dim=2)  # (1, 4, 3, 20, 24): moves with the pan
    steady = wide[..., :24].expand(-1, -1, 3, -1, -1)
    assert temporal_change(moving, (grid, mask)).item() < 0.05 * temporal_change(moving).item()
    assert temporal_change(steady).item() == 0.0 and temporal_change(steady, (grid, mask)).item() > 0.5


def test_vsr_module_refuses_an_unknown_temporal_motion():
    from gvr.codecs import PatchCodec
    from gvr.lit.vsr_module import VSRModule
    from gvr.models import SimpleGVR

    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8)
    with pytest.raises(ValueError, match="temporal_motion"):
        VSRModule(backbone, PatchCodec(spatial_factor=2), temporal_motion="warp")
