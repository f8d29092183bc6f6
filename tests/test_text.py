"""Caption features, captions through the data, and text-conditioned training and upscaling."""

import json

import pytest
import torch
from conftest import tiny_cli_args

from gvr.cli import lightning_main, main
from gvr.codecs import PatchCodec
from gvr.commands import upscale as upscale_cmd
from gvr.data.manifest import read_manifest
from gvr.flow import FlowObjective
from gvr.lit.vsr_module import VSRModule
from gvr.models import SimpleGVR
from gvr.models.text import HashTextEncoder, PrecomputedTextEncoder, save_text_features


def test_hash_features_are_fixed_per_word_and_padded_with_a_mask():
    enc = HashTextEncoder(dim=8, max_tokens=4)
    feats, mask = enc(["A cat runs", "a cat", ""])
    assert feats.shape == (3, 3, 8) and mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0]]
    assert torch.equal(feats[0, :2], feats[1, :2])  # same words, same vectors (case ignored)
    assert not torch.equal(feats[0, 2], feats[0, 1]) and not feats[2].any()  # "" is one zero token
    assert torch.equal(enc(["A cat runs"])[0], HashTextEncoder(dim=8, max_tokens=4)(["a CAT runs"])[0])
    assert not torch.equal(enc(["cat"])[0], HashTextEncoder(dim=8, seed=1)(["cat"])[0])
    assert enc(["one two three four five six"])[0].shape == (1, 4, 8)  # cut at max_tokens
    with pytest.raises(TypeError, match="list of strings"):
        enc("a cat")


def test_precomputed_features_round_trip_and_unknown_captions_are_named(tmp_path):
    path = str(tmp_path / "text.safetensors")
    table = {"a cat": torch.randn(3, 6), "a dog on a bike": torch.randn(5, 6)}
    save_text_features(path, table)
    enc = PrecomputedTextEncoder(path)
    feats, mask = enc(["a dog on a bike", "a cat", ""])
    assert enc.dim == 6 and feats.shape == (3, 5, 6) and mask.sum(1).tolist() == [5, 3, 1]
    assert torch.equal(feats[1, :3], table["a cat"]) and not feats[2].any()  # no "" entry: zeros
    with pytest.raises(KeyError, match="'a bird'"):
        enc(["a bird"])
    save_text_features(path, {**table, "": torch.ones(2, 6)})
    assert torch.equal(PrecomputedTextEncoder(path)([""])[0][0], torch.ones(2, 6))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        PrecomputedTextEncoder(str(tmp_path / "missing.safetensors"))
    save_text_features(path, {"a": torch.randn(2, 6), "b": torch.randn(2, 7)})
    with pytest.raises(ValueError, match="one width"):
        PrecomputedTextEncoder(path)


def test_manifest_takes_captions_from_text_files_beside_the_videos(tiny_data):
    captions = {r["path"].rsplit("/", 1)[-1]: r.get("caption") for r in read_manifest(tiny_data["train"])}
    assert captions == {"a.mp4": "a blocky texture slides to the right", "b.mp4": None}
    assert read_manifest(tiny_data["val"])[0]["caption"] == "a held-out texture"  # whitespace collapsed


def _text_module(text_dim=8, dropout=0.1, seed=0) -> VSRModule:
    backbone = SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, upsampler_channels=8, text_dim=text_dim)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # a trained-looking network: the zero-initialised one ignores everything
        for p in backbone.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    module = VSRModule(backbone, PatchCodec(spatial_factor=2), text_encoder=HashTextEncoder(dim=text_dim),
                       caption_dropout=dropout, ema_decay=0, objective=FlowObjective(sample_steps=2))
    return module.eval()


def test_text_module_checks_widths_and_drops_captions_at_the_given_rate():
    codec = PatchCodec(spatial_factor=2)
    with pytest.raises(ValueError, match="needs model.text_encoder"):
        VSRModule(SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, text_dim=8), codec)
    with pytest.raises(ValueError, match="needs a backbone"):
        VSRModule(SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2), codec, text_encoder=HashTextEncoder(8))
    with pytest.raises(ValueError, match="text_dim is 8"):
        VSRModule(SimpleGVR(latent_channels=12, dim=32, depth=1, heads=2, text_dim=8), codec,
                  text_encoder=HashTextEncoder(16))

    captions = ["a cat runs"] * 400
    for rate, lo, hi in ((0.0, 0, 0), (1.0, 400, 400), (0.1, 20, 60)):
        module = _text_module(dropout=rate)
        feats, mask = module.text(captions, len(captions), torch.Generator().manual_seed(0))
        null = mask.sum(dim=1) == 1  # the null prompt is one token, "a cat runs" three
        assert lo <= int(null.sum()) <= hi, (rate, int(null.sum()))
        assert not feats[null].any() and (rate == 1.0 or feats[~null].any())
    feats, mask = _text_module(dropout=1.0).text(None, 2)  # no captions, no generator: the null prompt, no drop
    assert feats.shape == (2, 1, 8) and not feats.any()


def test_the_caption_steers_the_upscaled_latent():
    module = _text_module()
    c = torch.randn(1, 12, 2, 5, 6, generator=torch.Generator().manual_seed(3))
    a = module.upscale_latent(c, (10, 12), captions=["a cat runs"])
    assert torch.equal(a, module.upscale_latent(c, (10, 12), captions=["a cat runs"]))
    assert not torch.allclose(a, module.upscale_latent(c, (10, 12), captions=["a dog sleeps"]))
    assert not torch.allclose(a, module.upscale_latent(c, (10, 12)))  # None: the null prompt
    tiled = module.upscale_latent(c, (10, 12), captions=["a cat runs"], tile=3, tile_overlap=1)
    assert tiled.shape == a.shape and not torch.allclose(tiled, module.upscale_latent(c, (10, 12), tile=3, tile_overlap=1))


def test_gvr_fit_with_captions_then_upscale_and_generate_with_a_prompt(tiny_data, tiny_base_ckpt, tmp_path, capsys):
    text_args = ["--model.backbone.text_dim", "8", "--model.text_encoder", "gvr.models.text.HashTextEncoder",
                 "--model.text_encoder.dim", "8"]
    cli = lightning_main(["fit", *tiny_cli_args(
        tiny_data, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", *text_args,
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath", str(tmp_path / "ckpt"), "--trainer.callbacks.save_last", "true")])
    assert cli.trainer.global_step == 2
    (metrics,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)  # captions in val too
    assert torch.isfinite(torch.tensor(metrics["val/psnr"]))
    ckpt = str(tmp_path / "ckpt" / "last.ckpt")

    def upscale(*extra):
        upscale_cmd.main([tiny_data["val_video"], "--ckpt", ckpt, "--steps", "2", "--output", str(tmp_path / "up.mp4"),
                          "--overwrite", *extra])
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert upscale("--prompt", "a held-out texture")["prompt"] == "a held-out texture"
    assert upscale()["prompt"] is None  # no prompt: the null prompt
    main(["generate", "--base", tiny_base_ckpt, "--vsr", ckpt, "--output", str(tmp_path / "gen.mp4"), "--frames", "3",
          "--height", "8", "--width", "8", "--base-steps", "2", "--steps", "2", "--prompt", "a blocky texture"])
    assert (tmp_path / "gen.mp4").is_file()


def test_a_model_without_text_refuses_a_prompt(tiny_data, tiny_base_ckpt, tiny_vsr_ckpt, tmp_path):
    with pytest.raises(SystemExit, match="takes no text"):
        upscale_cmd.main([tiny_data["val_video"], "--ckpt", tiny_vsr_ckpt, "--output", str(tmp_path / "x.mp4"),
                          "--prompt", "a cat"])
    with pytest.raises(SystemExit, match="takes no text"):
        main(["generate", "--base", tiny_base_ckpt, "--vsr", tiny_vsr_ckpt, "--output", str(tmp_path / "x.mp4"),
              "--prompt", "a cat"])
    assert not (tmp_path / "x.mp4").exists()


def test_timestep_analysis_runs_a_text_model_with_its_captions():
    from gvr.analysis.measure import measure_changes

    module = _text_module()
    g = torch.Generator().manual_seed(0)
    hr, lr = torch.rand(2, 3, 2, 12, 16, generator=g) * 2 - 1, torch.rand(2, 3, 2, 6, 8, generator=g) * 2 - 1
    t, with_text = measure_changes(module, hr, lr, steps=4, captions=["a cat runs", "a dog"])
    _, null = measure_changes(module, hr, lr, steps=4)
    assert t.shape == (5,) and with_text.shape == (3, 2) and not torch.allclose(with_text, null)


def test_captions_are_dropped_in_training_only():
    module = _text_module(dropout=1.0)
    g = torch.Generator().manual_seed(4)
    z0, c = torch.randn(2, 12, 2, 8, 8, generator=g), torch.randn(2, 12, 2, 4, 4, generator=g)
    captions = ["a cat runs", "a dog"]
    with torch.no_grad():
        kept = module.eval().flow_loss(z0, c, torch.Generator().manual_seed(0), captions)
        null = module.eval().flow_loss(z0, c, torch.Generator().manual_seed(0), ["", ""])
        dropped = module.train().flow_loss(z0, c, torch.Generator().manual_seed(0), captions)
    assert torch.equal(dropped, null) and not torch.equal(kept, null)
