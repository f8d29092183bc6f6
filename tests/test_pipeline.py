"""gvr.pipeline: a checkpoint at inference without Lightning gives exactly the frames of the Lightning module."""

import subprocess
import sys

import pytest
import torch

from gvr.pipeline import VSRPipeline, load_pipeline


def test_the_pipeline_of_a_checkpoint_upscales_exactly_as_its_lightning_module(tiny_vsr_ckpt):
    from gvr.inference.upscale import load_module

    module, pipe = load_module(tiny_vsr_ckpt), load_pipeline(tiny_vsr_ckpt)
    assert isinstance(pipe, VSRPipeline) and not pipe.training
    assert (pipe.scale, pipe.scale_range, pipe.train_frames) == (2.0, None, 3)
    assert not any(p.requires_grad for p in pipe.parameters())
    lr = torch.rand(1, 3, 5, 14, 18, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for kw in ({}, {"steps": 2, "seed": 3, "frame_offset": 4}, {"tile": 4, "tile_overlap": 2}, {"color_fix": "adain"}):
        want = module.upscale_clip(lr, (28, 36), **kw)
        got = pipe.upscale_clip(lr, (28, 36), **kw)
        assert got.shape == (1, 3, 5, 28, 36)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # the EMA weights, not the live ones
    state = torch.load(tiny_vsr_ckpt, weights_only=False)["state_dict"]
    for name, value in pipe.net.state_dict().items():
        torch.testing.assert_close(value, state[f"ema.{name}"], rtol=0, atol=0)


def test_the_module_and_its_pipeline_share_weights_and_checks(tiny_vsr_ckpt):
    from gvr.inference.upscale import load_module

    module = load_module(tiny_vsr_ckpt)
    pipe = module.pipeline()
    assert pipe.net is module.ema and pipe.codec is module.codec and pipe.objective is module.objective
    assert set(module.state_dict()) == set(load_module(tiny_vsr_ckpt).state_dict())  # nothing new is saved
    pipe.check_scale(2.0)
    with pytest.raises(ValueError, match="trained at x2 only; x3 lies outside"):
        pipe.check_scale(3.0)
    with pytest.raises(ValueError, match="trained at x2 only"):
        module.check_scale(3.0)


def test_gvr_upscale_starts_without_lightning(tiny_vsr_ckpt, tmp_path):
    """`gvr upscale` loads the checkpoint and upscales without importing Lightning (its import is about half of
    a process's start-up on a CPU), and still writes the video."""
    from conftest import moving_frames

    from gvr.data.video import probe_video, write_video

    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(4, 16, 20), fps=24, crf=0)
    code = ("import sys; from gvr.cli import main; main(sys.argv[1:]); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'torchmetrics')]; "
            "assert not heavy, heavy[:5]")
    out = tmp_path / "out.mp4"
    done = subprocess.run([sys.executable, "-c", code, "upscale", str(src), "--ckpt", tiny_vsr_ckpt, "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    info = probe_video(out)
    assert (info.frames, info.height, info.width) == (4, 32, 40)


def test_load_pipeline_refuses_what_is_not_a_vsr_checkpoint(tiny_base_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pipeline(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
        load_pipeline(bad)
    with pytest.raises(ValueError, match="is not a gvr VSRModule checkpoint .*gvr fit"):
        load_pipeline(tiny_base_ckpt)
    sharded = tmp_path / "sharded.ckpt"
    sharded.mkdir()
    (sharded / "meta.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="sharded checkpoint folder.*gvr consolidate"):
        load_pipeline(sharded)


def test_load_pipeline_refuses_weights_of_another_architecture(tiny_vsr_ckpt, tmp_path):
    meta = torch.load(tiny_vsr_ckpt, weights_only=False)
    meta["hyper_parameters"]["backbone"]["init_args"]["dim"] = 48
    other = tmp_path / "other.ckpt"
    torch.save(meta, other)
    with pytest.raises(ValueError, match="do not fit the network its config builds"):
        load_pipeline(other)


def test_the_pipeline_reads_the_objective_of_its_checkpoint_and_not_its_training_sampler(tiny_vsr_ckpt, tmp_path):
    """`model.objective` sets the served steps and condition noise; its `t` sampler is training-only, so a
    detail-aware density file that is gone where the model is served does not stop it loading."""
    meta = torch.load(tiny_vsr_ckpt, weights_only=False)
    flow = meta["hyper_parameters"]["objective"]["init_args"]
    assert flow["sample_steps"] == 2  # tiny_cli_args: --model.objective.sample_steps 2
    flow.update(sample_steps=3, s_inference=0.2,
                timesteps={"class_path": "gvr.flow.DetailAwareTimesteps", "init_args": {"path": str(tmp_path / "gone.json")}})
    torch.save(meta, tmp_path / "detail.ckpt")
    pipe = load_pipeline(tmp_path / "detail.ckpt")
    assert (pipe.objective.sample_steps, pipe.objective.s_inference) == (3, 0.2)
    assert type(pipe.objective.timesteps).__name__ == "UniformTimesteps"  # the unused default, not the gone file
    base = load_pipeline(tiny_vsr_ckpt)
    lr = torch.rand(1, 3, 3, 12, 12, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(pipe.upscale_clip(lr, (24, 24), seed=0), base.upscale_clip(lr, (24, 24), steps=3, s=0.2, seed=0))
