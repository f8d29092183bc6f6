"""Chunk planning and seam blending of the long-video upscaler."""

import numpy as np
import pytest

from gvr.inference.upscale import ChunkBlender, plan_chunks, windows
from gvr.ops.resize import output_size


def test_output_size_rounds_half_up():
    assert output_size(144, 176, 2.5) == (360, 440)
    assert output_size(101, 33, 1.5) == (152, 50)  # 151.5 -> 152, 49.5 -> 50


@pytest.mark.parametrize("frames,chunk,overlap,align", [(5, 17, 4, 4), (17, 17, 4, 4), (40, 17, 4, 4), (250, 17, 5, 4), (23, 6, 2, 1)])
def test_plan_covers_every_frame_with_overlap(frames, chunk, overlap, align):
    plan = plan_chunks(frames, chunk, overlap, align)
    assert plan[0][0] == 0 and plan[-1][1] == frames
    assert all(0 < e - s <= chunk for s, e in plan)
    for (s0, e0), (s1, e1) in zip(plan, plan[1:]):
        assert s0 < s1 and e0 - s1 >= overlap  # consecutive windows share >= overlap frames
        assert s1 % align == 0  # every start on the codec's temporal grid, the last one too


def test_last_window_starts_on_the_grid_and_saves_work():
    """30 frames, chunk 17, overlap 4, 4x time codec: (0, 17), (12, 29), then (24, 30), not (13, 30)."""
    assert plan_chunks(30, 17, 4, 4) == [(0, 17), (12, 29), (24, 30)]
    assert plan_chunks(29, 17, 4, 4) == [(0, 17), (12, 29)]
    assert plan_chunks(9, 3, 1, 1) == [(0, 3), (2, 5), (4, 7), (6, 9)]


def test_plan_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        plan_chunks(10, 4, 4)


def test_blender_is_exact_on_consistent_chunks_and_releases_in_order():
    rng = np.random.default_rng(0)
    video = rng.uniform(0, 255, size=(23, 4, 5, 3)).astype(np.float32)
    plan = plan_chunks(23, 6, 2)
    blender, out = ChunkBlender(), []
    for k, (s, e) in enumerate(plan):
        nxt = plan[k + 1][0] if k + 1 < len(plan) else None
        done = blender.add(s, video[s:e], nxt)
        assert len(done) == (nxt if nxt is not None else 23) - sum(len(o) for o in out)
        out.append(done)
    result = np.concatenate(out)
    np.testing.assert_array_equal(result, np.clip(np.rint(video), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("chunk,overlap", [(6, 2), (6, 4), (5, 1), (4, 3)])  # (6, 4), (4, 3): frames in 3 windows
def test_blender_equals_the_weighted_mean_of_the_windows_and_holds_only_shared_frames(chunk, overlap):
    from gvr.ops.tiling import ramp_weights

    rng = np.random.default_rng(1)
    plan = plan_chunks(23, chunk, overlap)
    outputs = [rng.integers(0, 256, size=(e - s, 2, 3, 3), dtype=np.uint8) for s, e in plan]  # windows disagree
    total, weight = np.zeros((23, 2, 3, 3), np.float64), np.zeros(23)
    for k, ((s, e), frames) in enumerate(zip(plan, outputs)):
        before = plan[k - 1][1] - s if k else 0
        after = e - plan[k + 1][0] if k + 1 < len(plan) else 0
        w = ramp_weights(e - s, max(0, before), max(0, after)).double().numpy()
        total[s:e] += frames * w[:, None, None, None]
        weight[s:e] += w
    reference = np.clip(np.rint(total / weight[:, None, None, None]), 0, 255).astype(np.uint8)
    for dtype in (np.uint8, np.float32):
        blender, out = ChunkBlender(), []
        for k, ((s, e), frames) in enumerate(zip(plan, outputs)):
            nxt = plan[k + 1][0] if k + 1 < len(plan) else None
            out.append(blender.add(s, frames.astype(dtype), nxt))
            assert out[-1].dtype == np.uint8
            assert blender.sum is None or len(blender.sum) <= (e - nxt if nxt is not None else 0)  # only shared frames
        result = np.concatenate(out).astype(int)
        assert result.shape == reference.shape and np.abs(result - reference).max() <= 1  # float32 vs float64 sums


def test_blender_passes_a_single_window_through_untouched():
    frames = np.random.default_rng(2).integers(0, 256, size=(7, 4, 4, 3), dtype=np.uint8)
    blender = ChunkBlender()
    out = blender.add(0, frames, None)
    assert np.shares_memory(out, frames) and np.array_equal(out, frames) and blender.sum is None  # no copy at all


def test_blender_crossfades_linearly_across_a_seam():
    blender = ChunkBlender()
    first = blender.add(0, np.zeros((6, 1, 1, 3), np.float32), next_start=3)
    second = blender.add(3, np.full((6, 1, 1, 3), 200, np.float32), next_start=None)
    values = np.concatenate([first, second])[:, 0, 0, 0]
    assert values[:3].tolist() == [0, 0, 0] and values[6:].tolist() == [200, 200, 200]
    assert np.all(np.diff(values[2:7].astype(int)) > 0)  # a monotone ramp over the 3 shared frames, no jump


def test_windows_decode_lazily_and_report_short_videos():
    frames = (np.full((2, 2, 3), i, np.uint8) for i in range(10))
    got = [(s, w[:, 0, 0, 0].tolist()) for s, w in windows(frames, plan_chunks(10, 4, 1))]
    assert got[0] == (0, [0, 1, 2, 3]) and got[-1][1] == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="ended after 3 frames"):
        list(windows((np.zeros((2, 2, 3), np.uint8) for _ in range(3)), [(0, 4)]))


def _vsr(temporal_op=None):
    from gvr.codecs import PatchCodec
    from gvr.lit.vsr_module import VSRModule
    from gvr.models import SimpleGVR

    backbone = SimpleGVR(latent_channels=12, dim=32, depth=2, heads=2, upsampler_channels=8, temporal_op=temporal_op)
    return VSRModule(backbone, PatchCodec(spatial_factor=2), scale=2.0, ema_decay=0)


def test_temporal_unit_models_take_the_whole_clip_in_one_window(tmp_path):
    # Temporal units, or 3D Swin windows of a fixed number of frames: both extend to any clip length.
    from conftest import moving_frames

    from gvr.data.video import probe_video, write_video
    from gvr.inference.upscale import auto_chunk, upscale_video
    from gvr.models import SwinAttention, TemporalUnitsAttention

    units, full = _vsr(TemporalUnitsAttention(unit=2)), _vsr()
    assert units.inference_net.extends_in_time and not full.inference_net.extends_in_time  # the model says so
    assert _vsr(SwinAttention((4, 4), across_frames=True, frames=3)).backbone.extends_in_time
    assert not _vsr(SwinAttention((4, 4), across_frames=True)).backbone.extends_in_time
    assert auto_chunk(units, 40, 121) == 40 and auto_chunk(units, 400, 121) == 121 and auto_chunk(full, 40, 121) == 17
    full.hparams.train_frames = 3  # linked from data.num_frames by the CLI
    assert auto_chunk(full, 40, 121) == 3 and auto_chunk(full, 2, 121) == 2
    full.hparams.train_frames = None
    # Bounded by WINDOW_TOKENS HR tokens a window: 1024x1024 pixels are 256x256 = 65,536 tokens -> 4 frames.
    assert auto_chunk(units, 40, 121, (1024, 1024)) == 4 and auto_chunk(units, 3, 121, (1024, 1024)) == 3
    units.hparams.train_frames = 5  # never less than the training clip
    assert auto_chunk(units, 40, 121, (4096, 4096)) == 5 and auto_chunk(units, 40, 121, (64, 64)) == 40
    units.hparams.train_frames = None
    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(23, 16, 16), fps=24, crf=0)
    summary = upscale_video(units, str(src), str(tmp_path / "u.mp4"), steps=1, progress=False)
    assert summary["chunks"] == 1 and summary["chunk"] == 23 and probe_video(tmp_path / "u.mp4").frames == 23
    summary = upscale_video(full, str(src), str(tmp_path / "f.mp4"), steps=1, progress=False)
    assert summary["chunks"] == 2 and summary["chunk"] == 17


def test_token_budget_turns_on_tiling():
    from gvr.inference.upscale import auto_tile

    module = _vsr()  # PatchCodec x2, 1x2x2 patches: an HR frame of 64x64 pixels is 16x16 = 256 tokens
    assert auto_tile(module, (64, 64), (32, 32), None) is None
    assert auto_tile(module, (64, 64), (32, 32), 256) is None
    tile = auto_tile(module, (64, 64), (32, 32), 64)  # 8x8 HR tokens = 16x16 HR latent = 8x8 LR latent pixels
    assert tile == 8


def test_auto_overlap_is_a_quarter_of_the_chunk():
    from gvr.inference.upscale import auto_overlap

    assert [auto_overlap(n) for n in (1, 2, 3, 5, 17, 33)] == [0, 1, 1, 1, 4, 8]


def test_checkpoint_records_the_training_clip_length(tmp_path):
    """A checkpoint written before train_frames was a hyper-parameter takes it from its data.num_frames."""
    import warnings

    import torch

    from gvr.lit.checkpoints import load_gvr_module

    module = _vsr()
    hparams = {k: v for k, v in module.hparams.items() if k != "train_frames"}  # the old module path, no train_frames
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(hparams, _class_path="gvr.module.VSRModule"),
            "datamodule_hyper_parameters": {"num_frames": 5}, "pytorch-lightning_version": "2.5.0"}
    torch.save(ckpt, tmp_path / "m.ckpt")
    with warnings.catch_warnings(record=True) as caught:  # no advice to the user about save_hyperparameters
        warnings.simplefilter("always")
        assert load_gvr_module(str(tmp_path / "m.ckpt")).hparams.train_frames == 5
    assert not [w for w in caught if "nn.Module" in str(w.message)]


def test_bf16_precision_stays_close_to_float32_and_unknown_precision_is_refused(tmp_path):
    import numpy as np
    import torch
    from conftest import moving_frames

    from gvr.data.video import read_video, write_video
    from gvr.inference.upscale import upscale_video

    torch.manual_seed(0)
    module = _vsr()
    with torch.no_grad():  # a fresh DiT outputs v = 0 exactly; perturb it so that the network's precision shows
        for p in module.inference_net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(5, 16, 16), fps=24, crf=0)
    runs = {}
    for precision in ("32", "bf16"):
        out = tmp_path / f"{precision}.mkv"  # FFV1: lossless, so only the network's precision differs
        summary = upscale_video(module, str(src), str(out), steps=1, progress=False, precision=precision)
        assert summary["precision"] == precision
        runs[precision] = read_video(out)[0].astype(np.float64)
    assert runs["bf16"].shape == runs["32"].shape == (5, 32, 32, 3)  # x2
    diff = np.abs(runs["bf16"] - runs["32"])
    assert 0 < diff.mean() < 2.0, diff.mean()  # bfloat16 rounding changes some levels, by little
    with pytest.raises(ValueError, match="precision"):
        upscale_video(module, str(src), str(tmp_path / "x.mkv"), precision="fp16", progress=False)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown on machines without a GPU")
def test_gpu_benchmark_says_it_needs_a_gpu():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    run = subprocess.run([sys.executable, str(script), "--rows", "student"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "needs a CUDA GPU" in run.stderr


def test_the_input_video_is_never_the_output(tmp_path):
    # Not even with --overwrite: the same path, another spelling of it, a hard link or a symlink to the input.
    from conftest import moving_frames

    from gvr.data.video import write_video
    from gvr.inference.upscale import upscale_video

    src = tmp_path / "in.mp4"
    write_video(src, moving_frames(3, 16, 16), fps=24, crf=0)
    before = src.read_bytes()
    (tmp_path / "hard.mp4").hardlink_to(src)
    (tmp_path / "soft.mp4").symlink_to(src)
    module = _vsr()
    for output in (src, tmp_path / "sub" / ".." / "in.mp4", tmp_path / "hard.mp4", tmp_path / "soft.mp4"):
        with pytest.raises(FileExistsError, match="is the input file"):
            upscale_video(module, str(src), str(output), steps=1, overwrite=True, progress=False)
    assert src.read_bytes() == before
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        upscale_video(module, str(src), str(mine), steps=1, progress=False)
    assert mine.read_bytes() == b"user data"


def _photo(path, h=15, w=22, mode="RGB"):
    from conftest import moving_frames
    from PIL import Image

    image = Image.fromarray(moving_frames(1, h, w, seed=3)[0])
    image.convert(mode).save(path)
    return np.asarray(image)


def test_a_photo_upscales_as_a_still_clip_to_an_image(tmp_path):
    import torch
    from PIL import Image

    from gvr.data.video import frames_to_tensor, tensor_to_frames
    from gvr.inference.upscale import upscale_image

    module = _vsr().eval()
    src = tmp_path / "photo.png"
    image = _photo(src)
    summary = upscale_image(module, str(src), str(tmp_path / "up.png"), steps=1)
    assert summary["output_size"] == [44, 30] and summary["frames"] == 2 and not summary["alpha_dropped"]
    got = np.asarray(Image.open(tmp_path / "up.png"))
    # The middle frame of the model's output on a clip of copies, written losslessly.
    with torch.no_grad():
        clip = frames_to_tensor(np.repeat(image[None], 2, axis=0)).unsqueeze(0)
        want = tensor_to_frames(module.upscale_clip(clip, (30, 44), steps=1)[0])[1]
    assert got.shape == (30, 44, 3) and np.array_equal(got, want)
    summary = upscale_image(module, str(src), str(tmp_path / "up3.jpg"), frames=3, steps=1)
    assert summary["frames"] == 3 and Image.open(tmp_path / "up3.jpg").size == (44, 30)
    assert not list(tmp_path.glob(".*.part"))


def test_photo_orientation_alpha_and_bad_files(tmp_path):
    from PIL import Image

    from gvr.data.video import VideoError
    from gvr.inference.upscale import read_image, upscale_image

    rotated = tmp_path / "rotated.jpg"  # stored 22 wide and 15 high, displayed turned a quarter: 15 x 22
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((15, 22, 3), np.uint8)).save(rotated, exif=exif)
    assert read_image(rotated)[0].shape == (22, 15, 3)
    _photo(tmp_path / "rgba.png", mode="RGBA")
    image, alpha = read_image(tmp_path / "rgba.png")
    assert alpha and image.shape == (15, 22, 3)

    module = _vsr()
    src = tmp_path / "photo.png"
    _photo(src)
    (tmp_path / "cut.png").write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])
    (tmp_path / "text.png").write_text("not an image")
    for bad in ("cut.png", "text.png", "missing.png"):
        with pytest.raises(VideoError):
            upscale_image(module, str(tmp_path / bad), str(tmp_path / "o.png"), steps=1)
    with pytest.raises(ValueError, match="must end in one of"):
        upscale_image(module, str(src), str(tmp_path / "o.mp4"), steps=1)
    with pytest.raises(ValueError, match="frames must be at least"):
        upscale_image(module, str(src), str(tmp_path / "o.png"), frames=0, steps=1)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        upscale_image(module, str(src), str(mine), steps=1)
    with pytest.raises(FileExistsError, match="is the input file"):
        upscale_image(module, str(src), str(src), steps=1, overwrite=True)
    assert mine.read_bytes() == b"user data" and read_image(src)[0].shape == (15, 22, 3)
    assert not (tmp_path / "o.png").exists()


def test_gvr_upscale_takes_a_photo_from_the_command_line(tmp_path, capsys):
    import json

    import torch
    from PIL import Image

    from gvr.cli import main

    module = _vsr()
    hparams = {k: v for k, v in module.hparams.items() if k != "train_frames"}  # the old module path, no train_frames
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(hparams, _class_path="gvr.lit.vsr_module.VSRModule"),
            "pytorch-lightning_version": "2.5.0"}
    torch.save(ckpt, tmp_path / "m.ckpt")
    _photo(tmp_path / "photo.webp")
    main(["upscale", str(tmp_path / "photo.webp"), "--ckpt", str(tmp_path / "m.ckpt"), "--output", str(tmp_path / "up.png"),
          "--steps", "1"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["output_size"] == [44, 30]
    assert Image.open(tmp_path / "up.png").size == (44, 30)
    with pytest.raises(SystemExit, match="is an image but"):
        main(["upscale", str(tmp_path / "m.ckpt"), "--ckpt", str(tmp_path / "m.ckpt"), "--output", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["upscale", str(tmp_path / "none.png"), "--ckpt", str(tmp_path / "m.ckpt"), "--output", str(tmp_path / "x.png")])
