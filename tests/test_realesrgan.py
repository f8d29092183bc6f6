"""gvr.baselines.realesrgan: clear errors when files or ncnn are missing, seamless tiling on a tiny hand-written
ncnn network (conv + pixel shuffle, checked against torch), and the real x4plus files where present."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gvr.baselines.realesrgan import RealESRGAN
from gvr.baselines import realesrgan

REAL_DIR = Path(__file__).resolve().parents[1] / realesrgan.DEFAULT_DIR
HAVE_REAL = not realesrgan.missing_files(REAL_DIR)


def write_tiny_net(folder: Path, scale: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``tiny.param`` / ``tiny.bin``: data -> 3x3 conv (3 -> 3 scale^2, zero padding 1) -> pixel shuffle -> output.

    Returns the conv's weight and bias. The .bin holds the weight behind ncnn's 4-byte float32 tag, then the bias.
    """
    rng = np.random.default_rng(seed)
    c = 3 * scale * scale
    weight = rng.normal(0.0, 0.2, (c, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0.5, 0.1, c).astype(np.float32)
    (folder / "tiny.param").write_text(
        "7767517\n3 3\n"
        "Input data 0 1 data\n"
        f"Convolution conv 1 1 data conv 0={c} 1=3 4=1 5=1 6={weight.size}\n"
        f"PixelShuffle shuffle 1 1 conv output 0={scale}\n"
    )
    (folder / "tiny.bin").write_bytes(np.uint32(0).tobytes() + weight.tobytes() + bias.tobytes())
    return torch.from_numpy(weight), torch.from_numpy(bias)


def test_missing_files_name_the_file_and_the_make_target(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"REALESRGAN_X4PLUS_UP4X\.param.*make realesrgan"):
        RealESRGAN(str(tmp_path))
    (tmp_path / "REALESRGAN_X4PLUS_UP4X.param").write_text("7767517\n")
    with pytest.raises(FileNotFoundError, match=r"REALESRGAN_X4PLUS_UP4X\.bin.*make realesrgan") as err:
        RealESRGAN(str(tmp_path))
    assert ".param" not in str(err.value)
    assert "make realesrgan" in realesrgan.unavailable(tmp_path)


def test_missing_ncnn_is_a_clear_import_error(tmp_path, monkeypatch):
    write_tiny_net(tmp_path)
    monkeypatch.setitem(sys.modules, "ncnn", None)  # `import ncnn` now raises ImportError
    with pytest.raises(ImportError, match=r"PyPI package ncnn.*baselines"):
        RealESRGAN(str(tmp_path), "tiny", scale=2)
    assert "ncnn" in realesrgan.unavailable(tmp_path, "tiny")


@pytest.mark.parametrize("scale", [2, 4])
def test_tiny_net_matches_torch_and_tiling_is_seamless(tmp_path, scale):
    pytest.importorskip("ncnn")
    weight, bias = write_tiny_net(tmp_path, scale)
    frames = np.random.default_rng(1).integers(0, 256, (2, 29, 41, 3), dtype=np.uint8)
    whole = RealESRGAN(str(tmp_path), "tiny", threads=1, tile=0, pad=2, scale=scale)
    out = whole.upscale(frames)
    assert out.shape == (2, 29 * scale, 41 * scale, 3) and out.dtype == np.uint8
    assert realesrgan.unavailable(tmp_path, "tiny") is None

    # reference: the frame mirrored at its borders (realesrgan-ncnn-vulkan's padding) through conv + shuffle
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    ref = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, bias), scale)
    ref = torch.floor(ref * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float rounding at .5 only

    # tiles of 8 (a ragged last tile on both axes) with 2 pixels of context >= the conv's radius: no seams
    for tile in (8, 16):
        tiled = RealESRGAN(str(tmp_path), "tiny", threads=2, tile=tile, pad=2, scale=scale).upscale(frames)
        diff = np.abs(out.astype(int) - tiled)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3

    resized = whole.resize(frames, (50, 70))  # a non-integer scale: x`scale`, then Lanczos
    assert resized.shape == (2, 50, 70, 3) and resized.dtype == np.uint8
    assert np.array_equal(whole.resize(frames, (29 * scale, 41 * scale)), out)


def test_wrong_scale_and_bad_frames_are_errors(tmp_path):
    pytest.importorskip("ncnn")
    write_tiny_net(tmp_path, scale=2)
    with pytest.raises(RuntimeError, match="expected"):
        RealESRGAN(str(tmp_path), "tiny", scale=4).upscale(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        RealESRGAN(str(tmp_path), "tiny", scale=2).upscale(np.zeros((1, 8, 8, 3), np.float32))


@pytest.mark.skipif(not HAVE_REAL, reason=f"no Real-ESRGAN files in {REAL_DIR} (make realesrgan)")
def test_real_x4plus_upscales_a_smooth_frame(tmp_path):
    pytest.importorskip("ncnn")
    yy, xx = np.mgrid[0:24, 0:24]
    frame = np.stack([yy * 8, xx * 8, 255 - (yy + xx) * 4], -1).astype(np.uint8)  # smooth colour ramps
    model = RealESRGAN(str(REAL_DIR), threads=2)
    out = model.upscale(frame[None])
    assert out.shape == (1, 96, 96, 3) and out.dtype == np.uint8
    bicubic = F.interpolate(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), scale_factor=4, mode="bicubic")
    bicubic = bicubic.clamp(0, 255)[0].permute(1, 2, 0).numpy()
    assert np.abs(out[0, 8:-8, 8:-8].astype(float) - bicubic[8:-8, 8:-8]).mean() < 8  # same picture, same colours


def test_quality_method_is_x4_then_lanczos_at_other_scales(tmp_path):
    """benchmarks/quality.py's Real-ESRGAN method: a tiny x4 net under the x4plus file name, LR 16x16 -> GT 40x40."""
    pytest.importorskip("ncnn")
    from benchmarks import quality

    folder = tmp_path / "weights"
    folder.mkdir()
    write_tiny_net(folder, scale=4)
    for ext in ("param", "bin"):
        (folder / f"tiny.{ext}").rename(folder / f"{realesrgan.DEFAULT_MODEL}.{ext}")
    gt = np.random.default_rng(2).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    lr = quality.downsample(gt, (16, 16))
    clip = quality.Clip("c", "c.mkv", "0", gt, lr, tmp_path / "c.mkv", 24.0)
    out, seconds = quality.realesrgan_method(str(folder), threads=1)(clip)
    assert out.shape == gt.shape and out.dtype == np.uint8 and seconds > 0
    x4 = RealESRGAN(str(folder), threads=1).upscale(lr)
    lanczos = quality.lanczos(quality.Clip("c", "c.mkv", "0", gt, x4, tmp_path / "c.mkv", 24.0))
    assert np.array_equal(out, lanczos)


def test_quality_benchmark_adds_realesrgan_only_when_asked():
    from benchmarks import quality

    p = quality.parser()
    assert p.parse_args(["--ckpt", "x"]).realesrgan is None
    assert p.parse_args(["--ckpt", "x", "--realesrgan"]).realesrgan == realesrgan.DEFAULT_DIR
