"""benchmarks/quality.py: GT / lossless LR clips, the three methods scored, table, JSON and previews written."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import video_and_photo
from PIL import Image, ImageDraw

from benchmarks import quality
from gvr.data.video import read_video


@pytest.fixture
def sources(tmp_path):
    """A 12-frame synthetic video (lossless) and a one-image manifest."""
    return video_and_photo(tmp_path, 12, (48, 64), (36, 44))


def test_fit_crop_gives_whole_lr_pixels():
    assert quality.fit_crop((240, 240), (272, 640), 2.5) == (240, 240)
    assert quality.fit_crop((241, 239), (272, 640), 2.5) == (240, 235)
    assert quality.fit_crop((240, 240), (272, 640), 4) == (240, 240)
    assert quality.fit_crop((500, 500), (272, 640), 2.5) == (270, 500)  # clamped to the source
    h, w = quality.fit_crop((100, 100), (100, 100), 2.8)
    assert (h / 2.8, w / 2.8) == (35, 35)


def test_clips_are_spread_and_lr_is_lossless(sources, tmp_path):
    assert quality.clip_starts(250, 9, 3) == [37, 121, 204]
    clips = quality.make_clips(sources, 2.0, tmp_path / "work", clips=2, frames=4, crop=(40, 40), image_motion="static")
    assert [c.name for c in clips] == ["clip_1", "clip_7", "still_still"]
    assert [c.gt.shape for c in clips] == [(4, 40, 40, 3), (4, 40, 40, 3), (4, 36, 40, 3)]  # the image is 36 high
    for clip in clips:
        assert clip.lr.shape == (4, clip.gt.shape[1] // 2, clip.gt.shape[2] // 2, 3)
        np.testing.assert_array_equal(read_video(clip.lr_path)[0], clip.lr)  # FFV1 gives back the exact uint8 frames
    assert (clips[2].gt == clips[2].gt[:1]).all()  # a still image makes a static clip


def test_photos_move_along_a_camera_path(sources, tmp_path):
    pytest.importorskip("gvr.data.image_clips")
    clips = quality.make_clips(sources[1:], 2.0, tmp_path, clips=2, frames=4, crop=(40, 40), seed=1)
    assert [c.name for c in clips] == ["still_cam0", "still_cam1"]
    for clip in clips:
        assert clip.gt.shape == (4, 36, 40, 3) and clip.lr.shape == (4, 18, 20, 3)
        np.testing.assert_array_equal(read_video(clip.lr_path)[0], clip.lr)


def test_identity_beats_bicubic_and_lanczos(sources, tmp_path):
    clips = quality.make_clips(sources[:1], 2.0, tmp_path, clips=1, frames=4, crop=(40, 40))
    metrics = ("psnr", "ssim")
    results = [quality.score_method(name, method, clips, metrics)
               for name, method in (("identity", lambda c: c.gt), ("bicubic", quality.bicubic),
                                    ("lanczos", quality.lanczos))]
    ident, bic, lan = (r.mean for r in results)
    assert math.isinf(ident["psnr"]) and ident["ssim"] == pytest.approx(1.0)
    assert 10 < bic["psnr"] < 60 and 10 < lan["psnr"] < 60 and bic["ssim"] < 1 and lan["ssim"] < 1


def test_parse_kw_types():
    assert quality.parse_kw(["a=1", "b=0.5", "c=wavelet", "d=true", "e=none", "tile-overlap=4"]) == {
        "a": 1, "b": 0.5, "c": "wavelet", "d": True, "e": None, "tile_overlap": 4}


def test_benchmark_end_to_end(sources, tiny_vsr_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    summary = quality.main(["--ckpt", tiny_vsr_ckpt, "--steps", "1", "--sources", *sources, "--clips", "2",
                            "--frames", "4", "--crop", "40", "--out", str(out), "--warmup", "0",
                            "--upscale-kw", "overlap=1", "--image-motion", "static"])
    printed = capsys.readouterr().out
    assert "| method | PSNR (dB) | SSIM | VMAF | 4-px grid | E*warp x1e-3 | flicker | s/frame |" in printed
    assert "- 4-px grid of the ground truth itself: " in printed
    assert "- E*warp x1e-3 of the ground truth itself: " in printed
    for row in ("| bicubic |", "| lanczos |", "| gvr (1 steps, overlap=1) |",
                "- gvr (1 steps, overlap=1) - bicubic: PSNR"):
        assert row in printed
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["methods"]) == {"bicubic", "lanczos", "U: bicubic a=-0.75", "gvr (1 steps, overlap=1)"}
    gvr = saved["methods"]["gvr (1 steps, overlap=1)"]
    assert len(gvr["clips"]) == 3 and gvr["mean"]["s_per_frame"] > 0 and len(gvr["by_source"]) == 2
    assert {"psnr", "ssim", "vmaf", "grid", "ewarp", "flicker"} <= set(gvr["mean"]) and summary["scale"] == 2.0
    assert gvr["mean"]["ewarp"] >= 0 and gvr["mean"]["flicker"] >= 0
    assert saved["deltas_vs_bicubic"]["gvr (1 steps, overlap=1)"]["psnr"] == pytest.approx(
        gvr["mean"]["psnr"] - saved["methods"]["bicubic"]["mean"]["psnr"])
    # LR | bicubic | lanczos | U | gvr | GT under a label band: the longest label, "gvr (1 steps, overlap=1)", wraps
    # to the 40-px panel in as many lines of 12 px as it takes.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    band = 4 + 12 * max(len(quality.wrap_label(m, 34, measure)) for m in ["LR (nearest)", *saved["methods"], "GT"])
    assert band > 16
    assert Image.open(out / "clip.png").size == (40 * 6, 40 + band)
    assert Image.open(out / "still.png").size == (40 * 6, 36 + band)
    assert (out / "table.md").read_text().count("|---|" + "---|" * 7) == 1


def test_unknown_upscale_keyword_is_refused(tmp_path):
    with pytest.raises(TypeError, match="no colour_fix"):
        quality.gvr_method(object(), tmp_path, colour_fix="wavelet")


def test_scales_benchmark_runs_each_factor_and_refuses_a_foreign_one(sources, tiny_vsr_ckpt, tmp_path, capsys):
    from benchmarks import scales

    with pytest.raises(SystemExit, match="trained at x2 only; x3 lies outside"):
        quality.main(["--ckpt", tiny_vsr_ckpt, "--scale", "3", "--sources", *sources, "--out", str(tmp_path / "q")])
    out = tmp_path / "scales"
    ckpt = tmp_path / "tiny.ckpt"  # a copy, so that it can be changed below
    ckpt.write_bytes(Path(tiny_vsr_ckpt).read_bytes())
    same = ["--ckpt", f"tiny={ckpt}", "--force-scale", "--out", str(out), "--quality-args", "--steps", "1",
            "--sources", *sources, "--clips", "1", "--frames", "3", "--crop", "36", "--warmup", "0",
            "--metrics", "psnr,vmaf", "--image-motion", "static"]
    results = scales.main(["--factors", "2", "3", *same])
    assert set(results) == {2.0, 3.0}  # a named checkpoint keeps its name alone, so runs can be merged
    assert set(results[3.0]) == {"bicubic", "lanczos", "U: bicubic a=-0.75", "gvr tiny"}
    at3 = json.loads((out / "x3" / "results.json").read_text())
    assert at3["scale"] == 3.0 and at3["force_scale"] and at3["gt_sizes"] == ["36x36"] and at3["lr_sizes"] == ["12x12"]
    assert results[3.0]["bicubic"]["psnr"] == at3["methods"]["bicubic"]["mean"]["psnr"]
    text = (out / "table.md").read_text()
    assert text.startswith("| method | x2 PSNR | x2 VMAF | x2 s/frame | x3 PSNR |") and "| gvr tiny |" in text
    assert Image.open(out / "vmaf.png").size == (720, 440) and (out / "psnr.png").is_file()
    assert at3["ckpt_sha256"] == {"tiny": hashlib.sha256(ckpt.read_bytes()).hexdigest()}
    (out / "x3" / "results.json").write_text(json.dumps({**at3, "methods": {"bicubic": {"mean": {"psnr": 1.0}}}}))
    capsys.readouterr()
    again = scales.main(["--factors", "2", "3", "--reuse", *same])
    assert again[3.0] == {"bicubic": {"psnr": 1.0}} and again[2.0] == results[2.0]  # read back, not rerun
    assert "not reusing" not in capsys.readouterr().out
    one = scales.main(["--factors", "3", "--reuse", *same])
    assert one == {3.0: again[3.0]} and (out / "table.md").read_text().startswith("| method | x3 PSNR |")
    assert "one factor (x3): vmaf.png and psnr.png not drawn" in capsys.readouterr().out


def test_scales_benchmark_scores_again_what_another_checkpoint_or_other_arguments_left(sources, tiny_vsr_ckpt,
                                                                                       tmp_path, capsys):
    from benchmarks import scales

    out, ckpt = tmp_path / "scales", tmp_path / "tiny.ckpt"
    ckpt.write_bytes(Path(tiny_vsr_ckpt).read_bytes())
    args = ["--ckpt", f"tiny={ckpt}", "--factors", "3", "--force-scale", "--out", str(out), "--reuse", "--quality-args",
            "--steps", "1", "--sources", *sources, "--clips", "1", "--frames", "3", "--crop", "36", "--warmup", "0",
            "--metrics", "psnr", "--image-motion", "static"]
    def psnr(results):
        return {method: scores["psnr"] for method, scores in results[3.0].items()}

    first = psnr(scales.main(args))
    done = out / "x3" / "results.json"
    fake = {**json.loads(done.read_text()), "methods": {"bicubic": {"mean": {"psnr": 1.0}}}}
    done.write_text(json.dumps(fake))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["retrained"] = True  # other bytes at the same path: another model as far as the scores go
    torch.save(state, ckpt)
    assert psnr(scales.main(args)) == first  # scored again, not read back
    assert f"x3: not reusing {done}: checkpoint tiny changed since; scoring again" in capsys.readouterr().out
    done.write_text(json.dumps({**json.loads(done.read_text()), "methods": fake["methods"]}))
    assert scales.main([*args[:-2], "--image-motion", "camera"])[3.0] != {"bicubic": {"psnr": 1.0}}
    assert "it was run with other arguments; scoring again" in capsys.readouterr().out
    del fake["argv"]
    done.write_text(json.dumps(fake))
    assert psnr(scales.main(args)) == first
    assert "it does not record its arguments" in capsys.readouterr().out


def test_scales_table_marks_missing_rows():
    from benchmarks import scales

    text = scales.table({2.0: {"a": {"psnr": 30.0, "vmaf": 80.0, "s_per_frame": 0.5}}, 4.0: {}})
    assert "| a | 30.00 | 80.00 | 0.5 | - | - | - |" in text
    assert scales.method_key("gvr any (1 steps, tile=8)") == "gvr any"
    assert scales.method_key("gvr x4 (single scale) (1 steps)") == "gvr x4 (single scale)"
    assert scales.method_key("Real-ESRGAN x4plus + Lanczos") == scales.method_key("Real-ESRGAN x4plus")


def test_stabilize_benchmark_scores_each_strength_beside_the_baselines(sources, tiny_vsr_ckpt, tmp_path, capsys):
    from benchmarks import stabilize

    out = tmp_path / "stab"
    results = stabilize.main(["--ckpt", f"tiny={tiny_vsr_ckpt}", "--strengths", "0", "0.85", "--sources", *sources,
                              "--clips", "1", "--frames", "4", "--crop", "36", "--metrics", "psnr,ewarp,flicker",
                              "--out", str(out)])
    rows = results["held-out"]
    assert list(rows) == ["bicubic", "lanczos", "gvr tiny", "gvr tiny, stabilize 0.85"]
    assert rows["gvr tiny"] != rows["gvr tiny, stabilize 0.85"]  # the stabiliser acts on a moving clip
    assert {"psnr", "ewarp", "flicker", "s_per_frame"} <= set(rows["gvr tiny"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["strengths"] == [0.0, 0.85] and saved["scale"] == 2.0
    assert "- E*warp x1e-3 of the ground truth itself: " in (out / "table.md").read_text()
    with pytest.raises(SystemExit, match="strengths"):
        stabilize.main(["--ckpt", tiny_vsr_ckpt, "--strengths", "1.0"])


def test_side_by_side_labels_wrap_to_their_panel():
    length = len  # one pixel per character
    assert quality.wrap_label("gvr anyscale student, GAN budget (seed 0)", 14, length) == [
        "gvr anyscale", "student, GAN", "budget (seed", "0)"]
    assert quality.wrap_label("bicubic", 14, length) == ["bicubic"]
    assert quality.wrap_label("a-very-long-checkpoint-name", 10, length) == ["a-very-lon", "g-checkpoi", "nt-name"]
    assert quality.wrap_label("", 10, length) == [""]
    assert all(len(line) <= 14 for line in quality.wrap_label("x " * 40 + "y" * 30, 14, length))
