"""The base-model-like test set (`gvr.data.testset`, `gvr testset`) and `benchmarks/quality.py --testset`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import video_and_photo

from gvr.cli import main
from gvr.data.degradations import BicubicDownsample
from gvr.data.heldout import read_source
from gvr.data.testset import build_testset, degrade_clip, load_spec, read_testset, variant_generator
from gvr.data.video import frames_to_tensor, read_video, tensor_to_frames

NAMES = ["clip_1", "clip_6", "still_cam0", "still_cam1"]


@pytest.fixture
def sources(tmp_path):
    """A 10-frame synthetic video (lossless) and a one-photo manifest."""
    return video_and_photo(tmp_path, 10, (40, 48), (40, 40))


def _config(tmp_path, sources, base_ckpt, variants=("bicubic", "model"), name="testset.yaml", **over) -> str:
    table = {
        "bicubic": {"class_path": "gvr.data.degradations.BicubicDownsample"},
        "model": {"class_path": "gvr.data.degradations.ModelGuidedDegradation",
                  "init_args": {"base": {"class_path": "gvr.lit.BaseCheckpoint", "init_args": {"path": base_ckpt}},
                                "alpha_range": [0.35, 0.35], "steps": 2}},
    }
    recipe = {"sources": sources, "scale": 2.0, "clips": 2, "frames": 3, "crop": [32, 32], "seed": 0,
              "variants": {v: table[v] for v in variants}, **over}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"testset": recipe}))
    return str(path)


def test_clips_are_the_held_out_frames_degraded_by_each_variant(tmp_path, sources, tiny_base_ckpt, capsys):
    config = _config(tmp_path, sources, tiny_base_ckpt)
    main(["testset", "--config", config, "--out", str(tmp_path / "set")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clips"] == 4 and summary["variants"] == ["bicubic", "model"]
    manifest, clips = read_testset(tmp_path / "set")
    assert [c.name for c in clips] == NAMES  # 2 windows of the video, 2 camera paths over the photo
    spec = load_spec(config)
    expected = [gt for s in spec.recipe.sources[:1] for _, gt, _ in read_source(s, 2, 3, (32, 32), 2.0)]
    for clip, gt in zip(clips, expected):
        np.testing.assert_array_equal(clip.gt, gt)  # the ground truth is the source's own frames, lossless
    for i, clip in enumerate(clips):
        assert clip.gt.shape == (3, 32, 32, 3) and clip.lr["bicubic"].shape == (3, 16, 16, 3)
        plain = tensor_to_frames(BicubicDownsample()(frames_to_tensor(clip.gt), (16, 16), torch.Generator()))
        np.testing.assert_array_equal(clip.lr["bicubic"], plain)
        # the model variant is the base model's SDEdit at alpha 0.35, one fixed draw per clip
        again = degrade_clip(clip.gt, spec.recipe.variants["model"], 2.0, variant_generator(0, i, "model"))
        np.testing.assert_array_equal(clip.lr["model"], again)
        assert np.abs(clip.lr["model"].astype(int) - plain).mean() > 0.5
        assert np.array_equal(read_video(clip.lr_paths["model"])[0], clip.lr["model"])
    assert manifest["fingerprint"]["base_ckpt_sha256"]["model"]  # the base weights are part of the recipe


def test_a_rerun_reuses_the_set_and_another_recipe_is_refused(tmp_path, sources, tiny_base_ckpt, capsys):
    out = tmp_path / "set"
    config = _config(tmp_path, sources, tiny_base_ckpt, variants=("bicubic",))
    main(["testset", "--config", config, "--out", str(out)])
    stamp = (out / "testset.json").stat().st_mtime_ns
    main(["testset", "--config", config, "--out", str(out)])
    assert (out / "testset.json").stat().st_mtime_ns == stamp
    other = _config(tmp_path, sources, tiny_base_ckpt, variants=("bicubic",), name="other.yaml", crop=[24, 24])
    with pytest.raises(SystemExit) as exit_info:
        main(["testset", "--config", other, "--out", str(out)])
    assert exit_info.value.code == 1
    assert "another recipe" in capsys.readouterr().err
    assert (out / "testset.json").stat().st_mtime_ns == stamp  # nothing of the finished set was touched


def test_adding_a_variant_leaves_the_others_unchanged(tmp_path, sources, tiny_base_ckpt):
    both = build_testset(load_spec(_config(tmp_path, sources, tiny_base_ckpt)), tmp_path / "both", progress=False)
    alone = build_testset(load_spec(_config(tmp_path, sources, tiny_base_ckpt, variants=("model",), name="m.yaml")),
                          tmp_path / "alone", progress=False)
    assert len(both["clips"]) == len(alone["clips"])
    _, a = read_testset(tmp_path / "both", ["model"])
    _, b = read_testset(tmp_path / "alone")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.lr["model"], y.lr["model"])


def test_bad_sets_and_recipes_are_clear_errors(tmp_path, sources, tiny_base_ckpt):
    with pytest.raises(FileNotFoundError, match="make testset"):
        read_testset(tmp_path / "none")
    build_testset(load_spec(_config(tmp_path, sources, tiny_base_ckpt, variants=("bicubic",))), tmp_path / "s",
                  progress=False)
    with pytest.raises(ValueError, match="no variant model"):
        read_testset(tmp_path / "s", ["model"])
    manifest = json.loads((tmp_path / "s" / "testset.json").read_text())
    (tmp_path / "s" / "testset.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(ValueError, match="unfinished"):
        read_testset(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="not found"):
        build_testset(load_spec(_config(tmp_path, [str(tmp_path / "gone.mp4")], tiny_base_ckpt,
                                        variants=("bicubic",), name="g.yaml")), tmp_path / "g", progress=False)
    bad = tmp_path / "badname.yaml"
    bad.write_text(yaml.safe_dump({"testset": {"sources": sources, "variants": {
        "gt": {"class_path": "gvr.data.degradations.BicubicDownsample"}}}}))
    with pytest.raises(ValueError, match="folders"):
        load_spec(bad)


def test_quality_scores_every_variant_of_a_testset(tmp_path, sources, tiny_base_ckpt, tiny_vsr_ckpt):
    from benchmarks import quality

    build_testset(load_spec(_config(tmp_path, sources, tiny_base_ckpt)), tmp_path / "set", progress=False)
    out = tmp_path / "q"
    run = Path(tiny_vsr_ckpt).parent.parent.name  # a bare PATH is named after its run folder
    summary = quality.main(["--ckpt", f"tiny={tiny_vsr_ckpt}", tiny_vsr_ckpt, "--testset", str(tmp_path / "set"),
                            "--metrics", "psnr,ssim", "--warmup", "0", "--out", str(out)])
    assert set(summary["variants"]) == {"bicubic", "model"}
    for variant in summary["variants"].values():
        names = list(variant["methods"])
        assert names[:3] == ["bicubic", "lanczos", "U: bicubic a=-0.75"]
        assert [n for n in names if n.startswith("gvr ")] == ["gvr tiny (2 steps)", f"gvr {run} (2 steps)"]
    # the two checkpoints are one file: the same scores, and bicubic on the model variant is worse than on bicubic
    rows = summary["variants"]["model"]["methods"]
    gvr_rows = [r for n, r in rows.items() if n.startswith("gvr ")]
    assert gvr_rows[0]["mean"]["psnr"] == pytest.approx(gvr_rows[1]["mean"]["psnr"])
    assert rows["bicubic"]["mean"]["psnr"] < summary["variants"]["bicubic"]["methods"]["bicubic"]["mean"]["psnr"]
    assert (out / "results.json").is_file() and "### LR: model" in (out / "table.md").read_text()
    assert sorted(p.name for p in out.glob("*.png")) == ["clip_bicubic.png", "clip_model.png", "still_bicubic.png",
                                                         "still_model.png"]


def test_quality_refuses_a_testset_of_another_scale(tmp_path, sources, tiny_base_ckpt, tiny_vsr_ckpt):
    from benchmarks import quality

    config = _config(tmp_path, sources, tiny_base_ckpt, variants=("bicubic",), scale=4.0)
    build_testset(load_spec(config), tmp_path / "x4", progress=False)
    with pytest.raises(SystemExit, match="x4"):
        quality.main(["--ckpt", tiny_vsr_ckpt, "--testset", str(tmp_path / "x4"), "--metrics", "psnr"])
