"""`gvr test`: the model and the baselines scored on the test clips, metrics.json / metrics.md written."""

import json
from pathlib import Path

import pytest
import torch

from gvr.cli import lightning_main
from gvr.data.manifest import read_manifest, write_manifest
from gvr.lit.scoring import markdown_table

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "benchmark.yaml")


def _test_args(tiny_data, ckpt, out, manifest, *extra):
    return ["test", "--config", CONFIG, "--ckpt_path", ckpt,
            "--trainer.accelerator", "cpu", "--trainer.logger.init_args.save_dir", str(out),
            "--trainer.callbacks.init_args.metrics", "[psnr, ssim_y, lpips, vmaf, fvd]",
            "--trainer.callbacks.init_args.steps", "1", "--trainer.callbacks.init_args.output_dir", str(out),
            "--data.test_manifest", manifest, "--data.val_manifest", tiny_data["val"],
            "--data.num_frames", "3", "--data.hr_size", "[24, 32]", "--data.scale", "2", "--data.size_multiple", "4",
            "--data.num_workers", "0", "--data.val_clips_per_video", "2", *extra]


def test_gvr_test_scores_model_and_baselines(tiny_data, tiny_vsr_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))  # no LPIPS trunk weights: unavailable
    # A test set with one video that is listed but no longer decodes: skipped, counted, not fatal.
    records = read_manifest(tiny_data["val"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(Path(records[0]["path"]).read_bytes()[:300])
    manifest = tmp_path / "test.jsonl"
    write_manifest(records + [{**records[0], "path": str(broken)}], manifest)
    lightning_main(_test_args(tiny_data, tiny_vsr_ckpt, tmp_path, str(manifest)))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert set(summary["methods"]) == {"model", "bicubic", "bilinear", "nearest"}
    assert summary["clips"] == 2 and len(summary["skipped"]) == 2 and "broken.mp4" in summary["skipped"][0]["path"]
    for method in summary["methods"].values():
        assert len(method["clips"]) == 2 and {"psnr", "ssim_y", "vmaf"} <= set(method["mean"])
        assert method["mean"]["psnr"] == pytest.approx(sum(c["psnr"] for c in method["clips"]) / 2)
    assert "lpips" in summary["unavailable"] and "alexnet" in summary["unavailable"]["lpips"].lower()
    assert "fvd" in summary["unavailable"]  # 3-frame clips: no 16-frame window
    table = (tmp_path / "metrics.md").read_text()
    assert table.startswith("| method | psnr | ssim_y | vmaf |") and "| bicubic |" in table and "2 skipped" in table
    assert (tmp_path / "side_by_side_0.mp4").is_file()


def test_gvr_test_upscales_the_model_as_it_upscales_a_listed_checkpoint(tiny_data, tiny_vsr_ckpt, tmp_path):
    # The writer runs the model under test and every listed checkpoint through one call (its steps and seed):
    # the same checkpoint listed again scores exactly as the model.
    lightning_main(_test_args(tiny_data, tiny_vsr_ckpt, tmp_path, tiny_data["val"],
                              "--trainer.callbacks.init_args.metrics", "[psnr, ssim_y]",
                              "--trainer.callbacks.init_args.checkpoints", f"{{again: {tiny_vsr_ckpt}}}"))
    methods = json.loads((tmp_path / "metrics.json").read_text())["methods"]
    assert methods["again"]["clips"] == methods["model"]["clips"]
    assert methods["model"]["mean"]["psnr"] != methods["bicubic"]["mean"]["psnr"]


def test_gvr_test_without_reference_scores_only_no_reference_metrics(tiny_data, tiny_vsr_ckpt, tmp_path):
    lightning_main(_test_args(tiny_data, tiny_vsr_ckpt, tmp_path, tiny_data["val"], "--data.no_reference", "true"))
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["clips"] == 2
    for name in ("psnr", "ssim_y", "lpips", "vmaf", "fvd"):
        assert name in summary["unavailable"]
    assert all(method["mean"] == {} for method in summary["methods"].values())


def test_markdown_table_expands_dict_metrics_and_marks_missing():
    summary = {"methods": {"model": {"mean": {"psnr": 30.0, "dover": {"technical": 0.5, "overall": 0.6}}},
                           "bicubic": {"mean": {"psnr": 28.0}}},
               "unavailable": {"vmaf": "no"}, "skipped": [], "clips": 3}
    table = markdown_table(summary)
    assert "| method | psnr | dover technical | dover overall |" in table
    assert "| bicubic | 28 | n/a | n/a |" in table and "vmaf: unavailable (no)" in table
    torch.manual_seed(0)
