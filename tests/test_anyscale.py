"""One model for every scale: the ratio embedding, the per-step factors of training, the factor checks and the
output frame of `gvr upscale --scale / --size`."""

import json
import logging

import numpy as np
import pytest
import torch

from gvr.data.scales import ScaleDraw, exact_lr_size, exact_sizes, reachable_factors
from gvr.flow import FlowObjective
from gvr.inference.sizing import OutputPlan, parse_size, plan_output
from gvr.models import SimpleGVR
from gvr.models.embed import RatioEmbedder


def _net(ratio_embedding: bool, seed: int = 0) -> SimpleGVR:
    torch.manual_seed(seed)
    return SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8, ratio_embedding=ratio_embedding)


def _inputs(b=2, t=2, hw=(10, 14), lr=(4, 6)):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(b, 12, t, *hw, generator=g), torch.rand(b, generator=g), torch.randn(b, 12, t, *lr, generator=g),
            torch.rand(b, generator=g))


def _randomise_output_layers(net: SimpleGVR) -> None:
    """Give the zero-initialised output layers (final layer, gates, ratio MLP) weights, so that outputs move."""
    g = torch.Generator().manual_seed(5)
    for name, p in net.named_parameters():
        if p.abs().sum() == 0:
            p.data = 0.05 * torch.randn(p.shape, generator=g)


def test_ratio_embedder_shapes_axes_and_bad_input():
    emb = RatioEmbedder(16, freq_dim=8)
    torch.nn.init.normal_(emb.mlp[2].weight)
    out = emb(torch.tensor([[2.0, 3.0], [3.0, 2.0], [2.0, 3.0]]))
    assert out.shape == (3, 16)
    assert torch.allclose(out[0], out[2], atol=1e-6) and not torch.allclose(out[0], out[1])  # per axis: a transpose is another ratio
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        emb(torch.tensor([2.0, 3.0]))
    with pytest.raises(ValueError, match="multiple of 4"):
        RatioEmbedder(16, freq_dim=6)


def test_a_fresh_ratio_embedding_leaves_a_trained_network_unchanged_and_then_reads_the_ratio(tmp_path):
    from gvr.lit.flow_module import load_network_weights

    plain = _net(False)
    _randomise_output_layers(plain)  # a "trained" single-scale network
    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in plain.state_dict().items()}}, ckpt)
    anyscale = _net(True, seed=3)
    load_network_weights(str(ckpt), "backbone", [anyscale])  # the ratio embedder is optional: it starts at zero
    assert all(torch.equal(p, torch.zeros_like(p)) for p in anyscale.ratio_embedder.mlp[2].parameters())
    z, t, c, s = _inputs()
    with torch.no_grad():
        for ratio in (None, (2.5, 2.5), (4.0, 3.0)):
            assert torch.equal(anyscale(z, t, c, s, ratio=ratio), plain(z, t, c, s, ratio=ratio))
        torch.nn.init.normal_(anyscale.ratio_embedder.mlp[2].weight, std=0.1)  # training moves it
        by_shape = anyscale(z, t, c, s)
        # None: the grids' own ratio (the upsampler's exact-map resize equals its stretch to float rounding)
        assert torch.allclose(by_shape, anyscale(z, t, c, s, ratio=(10 / 4, 14 / 6)), atol=1e-5)
        assert not torch.allclose(by_shape, anyscale(z, t, c, s, ratio=(4.0, 4.0)))


def test_only_the_optional_weights_may_be_missing(tmp_path):
    from gvr.lit.flow_module import load_network_weights

    state = _net(False).state_dict()
    state.pop("final_layer.linear.bias")
    ckpt = tmp_path / "broken.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in state.items()}}, ckpt)
    with pytest.raises(ValueError, match="does not fit this network"):
        load_network_weights(str(ckpt), "backbone", [_net(True)])
    with pytest.raises(ValueError, match="does not fit this network"):
        load_network_weights(str(ckpt), "backbone", [_net(False)])


def test_base_model_start_leaves_the_ratio_embedding_at_zero():
    from gvr.models.from_base import NEW_IN_VSR

    assert "ratio_embedder." in NEW_IN_VSR


def test_exact_lr_sizes_and_reachable_factors():
    assert exact_lr_size((64, 64), 2.5, 2) == (26, 26)  # 64 / 2.5 = 25.6 -> 26: the model sees x2.46, exactly
    assert exact_lr_size((64, 80), 4.0, 2) == (16, 20)
    assert exact_lr_size((64, 64), 4.2, 2, within=(1.5, 4.0)) == (16, 16)  # 64/15.2 -> 16 stays inside
    assert exact_lr_size((60, 60), 3.9, 4, within=(1.5, 3.8)) == (16, 16)  # 60/16 = 3.75 <= 3.8
    assert exact_lr_size((64, 64), 10.0, 2) == (6, 6)
    factors = reachable_factors(64, 1.5, 4.0, 2)
    assert factors[0] == pytest.approx(64 / 42) and factors[-1] == 4.0 and 2.0 in factors and len(factors) == 14


def test_a_shrinking_hr_crop_makes_the_test_factors_exactly():
    # 64x64 crops alone: x2.8 is not a factor training can show (2.67 and 2.91 are its neighbours)
    assert not any(abs(f - 2.8) < 1e-9 for f in reachable_factors(64, 1.5, 4.0, 2))
    dense = reachable_factors(64, 1.5, 4.0, 2, hr_min=56)
    assert len(dense) == 61 and set(reachable_factors(64, 1.5, 4.0, 2)) <= set(dense)
    for factor, (hr, lr) in {2.0: (64, 32), 2.5: (60, 24), 2.8: (56, 20), 3.0: (60, 20), 4.0: (64, 16)}.items():
        assert any(abs(f - factor) < 1e-9 for f in dense)
        assert exact_sizes((64, 64), (56, 56), factor, 2, (1.5, 4.0)) == ((hr, hr), (lr, lr))
    # per axis, the largest HR side on a tie (x2: 64/32, 62 would need an odd LR side, 60/30, 58 and 56 too)
    assert exact_sizes((64, 80), (56, 56), 2.0, 2) == ((64, 80), (32, 40))
    assert exact_sizes((64, 64), (64, 64), 2.5, 2) == ((64, 64), exact_lr_size((64, 64), 2.5, 2))  # no room: as before
    assert exact_sizes((64, 64), (200, 1), 2.5, 2)[0][0] == 64  # hr_min above hr_size: clamped to it
    # every draw's grids within 1.7 % of it, inside the range, HR sides in [56, 64], all multiples of 2
    for i in range(200):
        factor = 1.5 * (4.0 / 1.5) ** (i / 199)
        (hh, hw), (lh, lw) = exact_sizes((64, 64), (56, 56), factor, 2, (1.5, 4.0))
        assert 56 <= hh <= 64 and hh == hw and lh == lw and hh % 2 == 0 and lh % 2 == 0
        assert abs(hh / lh / factor - 1) < 0.017 and 1.5 <= hh / lh <= 4.0


def test_scale_draws_with_hr_min_keep_the_step_shared_and_the_default_unchanged():
    plain = ScaleDraw(1.5, 4.0, group=4, length=40, seed=3)
    shrink = ScaleDraw(1.5, 4.0, group=4, length=40, seed=3, hr_min=(56, 56))
    for i in range(0, 80):
        assert plain.sizes((64, 64), i, 2) == ((64, 64), plain.lr_size((64, 64), i, 2))
        hr, lr = shrink.sizes((64, 64), i, 2)
        assert shrink.sizes((64, 64), 4 * (i // 4), 2) == (hr, lr)  # a step's clips share their sizes
        assert abs(hr[0] / lr[0] / shrink.factor(i) - 1) <= abs(64 / plain.lr_size((64, 64), i, 2)[0] / plain.factor(i) - 1) + 1e-12
    with pytest.raises(ValueError, match="hr_min"):
        ScaleDraw(1.5, 4.0, group=1, length=1, hr_min=(0, 56))


def test_scale_draws_share_a_factor_per_step_on_every_rank_and_cover_the_range():
    from gvr.data.sampler import StreamSampler

    draw = ScaleDraw(1.5, 4.0, group=3 * 2, length=60, seed=7)  # batch 3, world 2
    factors = [draw.factor(i) for i in range(180)]
    assert all(1.5 <= f <= 4.0 for f in factors)
    assert factors == [ScaleDraw(1.5, 4.0, group=6, length=60, seed=7).factor(i) for i in range(180)]  # reproducible
    # The sampler's batches: rank r of 2 takes every other index; batch k of both ranks shares one factor.
    sampler = StreamSampler(60)
    batches = {}
    for rank in (0, 1):
        sampler._world = lambda rank=rank: (rank, 2)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            own = list(iter(sampler))
            for k in range(len(own) // 3):
                batches.setdefault((epoch, k), set()).update(draw.factor(i) for i in own[3 * k : 3 * k + 3])
    assert all(len(f) == 1 for f in batches.values())
    steps = [f.pop() for f in batches.values()]
    assert len(set(steps)) == len(steps) and min(steps) < 2.0 and max(steps) > 3.0
    hr = (64, 48)
    for i in range(0, 180, 7):
        h, w = draw.lr_size(hr, i, 2)
        assert h % 2 == 0 and w % 2 == 0 and 1.5 <= hr[0] / h <= 4.0 and 1.5 <= hr[1] / w <= 4.0
    with pytest.raises(ValueError, match="0 < low <= high"):
        ScaleDraw(3.0, 2.0, group=1, length=1)


def test_training_batches_draw_their_factor_and_collate(tiny_data):
    from gvr.data.datamodule import VideoDataModule
    from gvr.data.degradations import BicubicDownsample

    dm = VideoDataModule(tiny_data["train"], tiny_data["val"], scale=2.0, scale_range=(1.5, 3.0), num_frames=3,
                         hr_size=(24, 24), size_multiple=2, batch_size=2, num_workers=0, samples_per_epoch=40,
                         degradation=BicubicDownsample())
    sizes = set()
    for batch in dm.train_dataloader():
        assert batch["hr"].shape[-2:] == (24, 24)
        h, w = batch["lr"].shape[-2:]
        assert h == w and 1.5 <= 24 / h <= 3.0
        sizes.add(h)
    assert len(sizes) >= 3  # 8, 10, 12, 14 or 16 pixels: x3 to x1.5
    val = next(iter(dm.val_dataloader()))
    assert val["lr"].shape[-2:] == (12, 12)  # evaluation stays at data.scale
    with pytest.raises(ValueError, match="0 < low <= high"):
        VideoDataModule(scale_range=(2.0, 1.0))
    cached = VideoDataModule(tiny_data["train"], tiny_data["val"], scale_range=(1.5, 3.0), train_cache="somewhere")
    with pytest.raises(ValueError, match="live-degraded"):
        cached.train_dataloader()


def test_training_batches_shrink_their_hr_crop_to_the_factor_with_hr_size_min(tiny_data, tmp_path):
    from conftest import moving_frames
    from PIL import Image

    from gvr.data.datamodule import VideoDataModule
    from gvr.data.degradations import BicubicDownsample
    from gvr.data.image_clips import PhotoClips
    from gvr.data.manifest import write_manifest

    Image.fromarray(moving_frames(1, 96, 128, seed=4)[0]).save(tmp_path / "still.png")
    photos = str(tmp_path / "images.jsonl")
    write_manifest([{"path": str(tmp_path / "still.png")}], photos)
    for photo_ratio in (0.0, 1.0):
        dm = VideoDataModule(tiny_data["train"], tiny_data["val"], scale=2.0, scale_range=(1.5, 3.0), num_frames=3,
                             hr_size=(32, 32), hr_size_min=(24, 24), size_multiple=2, batch_size=2, num_workers=0,
                             samples_per_epoch=40, degradation=BicubicDownsample(),
                             photos=PhotoClips(train=photos, val=photos, ratio=photo_ratio))
        crops = set()
        for batch in dm.train_dataloader():
            (hh, hw), (lh, lw) = batch["hr"].shape[-2:], batch["lr"].shape[-2:]
            assert 24 <= hh <= 32 and hh == hw and lh == lw and 1.5 <= hh / lh <= 3.0
            crops.add(hh)
        assert len(crops) >= 2  # the HR crop moves with the factor, for video and photo clips alike
        assert next(iter(dm.val_dataloader()))["hr"].shape[-2:] == (32, 32)  # evaluation keeps hr_size
    with pytest.raises(ValueError, match="needs data.scale_range"):
        VideoDataModule(hr_size=(32, 32), hr_size_min=(24, 24), size_multiple=2)
    for bad in ((25, 24), (40, 24), (24,)):
        with pytest.raises(ValueError, match="hr_size_min"):
            VideoDataModule(scale_range=(1.5, 3.0), hr_size=(32, 32), hr_size_min=bad, size_multiple=2)


def _module(scale=2.0, scale_range=None):
    from gvr.codecs import PatchCodec
    from gvr.lit.vsr_module import VSRModule

    return VSRModule(_net(scale_range is not None), PatchCodec(spatial_factor=2), scale=scale, scale_range=scale_range,
                     ema_decay=0, objective=FlowObjective(sample_steps=1))


def test_a_checkpoint_refuses_factors_it_was_not_trained_for(caplog):
    single = _module(2.5)
    single.check_scale(2.5)
    single.check_scale(2.53)  # within 2 %: a size rounded to whole pixels
    with pytest.raises(ValueError, match=r"trained at x2.5 only; x4 lies outside.*any-scale.*--force-scale"):
        single.check_scale(4.0)
    with caplog.at_level(logging.WARNING):
        single.check_scale(4.0, force=True)
    assert "running it anyway" in caplog.text
    anyscale = _module(2.5, (1.5, 4.0))
    for f in (1.5, 2.0, 2.8, 3.3, 4.0):
        anyscale.check_scale(f)
    with pytest.raises(ValueError, match=r"factors x1.5 to x4; x6 lies outside"):
        anyscale.check_scale(6.0)


def test_output_plans_scale_pad_and_crop():
    assert plan_output(60, 100, default_scale=2.5) == OutputPlan(2.5, (150, 250), (150, 250))
    assert plan_output(60, 100, scale=2.8).picture == (168, 280)
    pad = plan_output(60, 100, size=(1080, 1920), fit="pad")
    assert (pad.scale, pad.picture, pad.frame, pad.offset, pad.fit) == (18.0, (1080, 1800), (1080, 1920), (0, 60), "pad")
    crop = plan_output(60, 100, size=(1080, 1920), fit="crop")
    assert (crop.scale, crop.picture, crop.frame, crop.offset) == (19.2, (1152, 1920), (1080, 1920), (36, 0))
    exact = plan_output(432, 768, size=(1080, 1920))
    assert (exact.scale, exact.picture, exact.fit) == (2.5, (1080, 1920), "scale")
    frames = np.full((2, 1080, 1800, 3), 200, np.uint8)
    placed = pad.place(frames)
    assert placed.shape == (2, 1080, 1920, 3) and placed[:, :, :60].max() == 0 and placed[:, :, 1860:].max() == 0
    assert (placed[:, :, 60:1860] == 200).all()
    big = np.arange(2 * 1152 * 1920 * 3, dtype=np.int64).reshape(2, 1152, 1920, 3).astype(np.uint16)
    assert np.array_equal(crop.place(big), big[:, 36:1116])
    assert pad.describe()["picture"] == [1800, 1080] and pad.describe()["offset"] == [60, 0]
    with pytest.raises(ValueError, match="not both"):
        plan_output(60, 100, scale=2, size=(100, 100))
    with pytest.raises(ValueError, match="picture is"):
        pad.place(frames[:, :100])
    assert parse_size("1920x1080") == (1080, 1920)
    for bad in ("1920", "axb", "0x10", "1920x1080x3"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_upscale_to_a_frame_size_pads_and_a_foreign_factor_is_refused(tmp_path):
    from conftest import moving_frames

    from gvr.data.video import read_video, write_video
    from gvr.inference.upscale import upscale_image, upscale_video

    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(3, 16, 24), fps=24, crf=0)
    module = _module(2.0, (1.5, 3.0))
    out = tmp_path / "boxed.mkv"
    summary = upscale_video(module, str(src), str(out), size=(40, 64), progress=False)  # x2.5 fits 16x24 -> 40x60
    frames = read_video(out)[0]
    assert frames.shape == (3, 40, 64, 3) and summary["output_size"] == [64, 40]
    assert summary["fit"] == {"scale": 2.5, "picture": [60, 40], "frame": [64, 40], "offset": [2, 0], "fit": "pad"}
    assert frames[:, :, :2].max() <= 1 and frames[:, :, 62:].max() <= 1  # black bars (lossless FFV1)
    summary = upscale_video(module, str(src), str(tmp_path / "x28.mkv"), scale=2.8, progress=False)
    assert summary["output_size"] == [round(24 * 2.8), round(16 * 2.8)]
    with pytest.raises(ValueError, match="x4 lies outside"):
        upscale_video(module, str(src), str(tmp_path / "x4.mkv"), scale=4.0, progress=False)
    assert not (tmp_path / "x4.mkv").exists()
    single = _module(2.0)
    with pytest.raises(ValueError, match="trained at x2 only"):
        upscale_video(single, str(src), str(tmp_path / "y.mkv"), scale=3.0, progress=False)
    from PIL import Image

    Image.fromarray(moving_frames(1, 16, 24)[0]).save(tmp_path / "p.png")
    summary = upscale_image(single, str(tmp_path / "p.png"), str(tmp_path / "q.png"), size=(40, 40), fit="crop",
                            force_scale=True)
    assert Image.open(tmp_path / "q.png").size == (40, 40) and summary["fit"]["scale"] == 2.5


def test_gvr_upscale_scale_and_size_flags(tmp_path, capsys):
    from conftest import moving_frames

    from gvr.commands import upscale
    from gvr.data.video import write_video

    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(3, 16, 16), fps=24, crf=0)
    with pytest.raises(SystemExit, match="--scale or --size, not both"):
        upscale.main([str(src), "--ckpt", "none.ckpt", "-o", str(tmp_path / "o.mp4"), "--scale", "2", "--size", "64x64"])
    with pytest.raises(SystemExit, match="WIDTHxHEIGHT"):
        upscale.main([str(src), "--ckpt", "none.ckpt", "-o", str(tmp_path / "o.mp4"), "--size", "64"])


def test_an_any_scale_run_starts_from_a_single_scale_checkpoint(tiny_data, tiny_vsr_ckpt, tmp_path):
    from conftest import tiny_cli_args

    from gvr.cli import lightning_main
    from gvr.inference.upscale import load_module

    lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
        "--model.backbone.ratio_embedding", "true", "--model.init_from", tiny_vsr_ckpt,
        "--data.scale_range", "[1.5, 3.0]", "--data.size_multiple", "2",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(tmp_path / "checkpoints"), "--trainer.callbacks.save_last", "true")])
    module = load_module(str(tmp_path / "checkpoints" / "last.ckpt"))
    assert tuple(module.hparams.scale_range) == (1.5, 3.0) and module.backbone.ratio_embedder is not None
    module.check_scale(2.8)
    with pytest.raises(ValueError, match="x4 lies outside"):
        module.check_scale(4.0)
    assert json.loads(json.dumps(list(module.hparams.scale_range))) == [1.5, 3.0]


def test_a_distilled_student_needs_a_teacher_that_knows_its_factors():
    from gvr.lit.distillation import check_teacher_scales

    check_teacher_scales({"scale": 4.0}, {"scale": 4.0}, "t.ckpt")
    check_teacher_scales({"scale": 2.5, "scale_range": [1.5, 4.0]}, {"scale": 2.5, "scale_range": [2.0, 4.0]}, "t.ckpt")
    check_teacher_scales({"scale": 2.5, "scale_range": [1.5, 4.0]}, {"scale": 2.8}, "t.ckpt")  # one factor inside
    with pytest.raises(ValueError, match="the teacher is a x4.0 model, the student x2.5"):
        check_teacher_scales({"scale": 4.0}, {"scale": 2.5}, "t.ckpt")
    with pytest.raises(ValueError, match="knows x4 to x4 only"):
        check_teacher_scales({"scale": 4.0}, {"scale": 2.5, "scale_range": [1.5, 4.0]}, "t.ckpt")
    with pytest.raises(ValueError, match="knows x2 to x3 only"):
        check_teacher_scales({"scale": 2.5, "scale_range": [2.0, 3.0]}, {"scale": 2.5, "scale_range": [1.5, 4.0]}, "t")


def test_a_stream_upscales_into_a_frame_size_too(tmp_path):
    from conftest import moving_frames

    from gvr.data.video import read_video, write_video
    from gvr.inference.stream import upscale_stream

    src, out = tmp_path / "in.mp4", tmp_path / "out.nut"
    write_video(src, moving_frames(3, 16, 24), fps=24, crf=0)
    summary = upscale_stream(_module(2.0, (1.5, 3.0)), str(src), str(out), fmt="nut", progress=False,
                             scene_detect=False, size=(48, 48), fit="crop")
    assert summary["output_size"] == [48, 48] and summary["fit"]["picture"] == [72, 48] and summary["fit"]["scale"] == 3.0
    assert read_video(out)[0].shape == (3, 48, 48, 3)
    with pytest.raises(ValueError, match="x4 lies outside"):
        upscale_stream(_module(2.0, (1.5, 3.0)), str(src), str(tmp_path / "o2.nut"), fmt="nut", progress=False, scale=4.0)
