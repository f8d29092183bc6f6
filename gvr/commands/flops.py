"""``gvr flops --preset 1b --frames 17 --height 1080 --width 1920``: analytic FLOPs of each attention op.

Prints a markdown table with one row per operator used as the model's 3D attention sub-layer (the
per-frame spatial sub-layer keeps its configured operator): the FLOPs of the 3D attention cores over all
layers, of one whole forward pass of the model, and of the model less its per-frame attention cores, each
with its ratio to ``full``, beside the paper's figures. Multiply-add = 2 FLOPs; only matmul-class work
(linear, conv, attention matmuls, sparse routing) is counted, as torch's FlopCounterMode does. See
``gvr.models.flops`` for the conventions and for how the paper's figures compare.

With ``--config`` the backbone and the codec come from a gvr YAML config (and the clip size from its
``data`` section unless given); otherwise from ``--preset`` and the codec factors.
"""

import argparse
import json
import sys
from typing import Any

from gvr.ops.config import instantiate

# Codec of each preset when no --config is given: (spatial_factor, temporal_factor).
PRESET_CODECS = {"tiny": (2, 1), "1b": (8, 4)}  # tiny: PatchCodec x2 (stage 1); 1b: the Wan 2.1 VAE
# Clip of each preset without --config: frames, HR (H, W), LR (H, W) (1b: the paper's 384x672 -> 1080p).
PRESET_CLIPS = {"tiny": (3, (60, 60), (24, 24)), "1b": (17, (1080, 1920), (384, 672))}


def from_config(path: str) -> tuple[dict, Any, dict]:
    """(backbone init_args with ops built, codec spec, data section) of a gvr YAML config."""
    from gvr.models.attention import AttentionOp
    from gvr.ops.config import load_config

    data = load_config(path)
    backbone = (data.get("model") or {}).get("backbone")
    if not isinstance(backbone, dict) or not backbone.get("class_path", "").endswith("SimpleGVR"):
        raise ValueError(f"{path}: model.backbone is not a gvr.models.SimpleGVR (class_path / init_args)")
    args = dict(backbone.get("init_args") or {})
    for key in ("spatial_op", "temporal_op"):
        if isinstance(args.get(key), (dict, str)):
            spec = args[key] if isinstance(args[key], dict) else {"class_path": args[key]}
            args[key] = instantiate(AttentionOp, spec)
    if "patch_size" in args:
        args["patch_size"] = tuple(args["patch_size"])
    return args, data["model"].get("codec"), data.get("data") or {}


def giga(flops: int) -> str:
    """FLOPs in G, one decimal from 100G up, else three."""
    return f"{flops / 1e9:,.1f}" if flops >= 1e11 else f"{flops / 1e9:.3f}"


def table(rows: list[dict]) -> str:
    """Markdown table of the rows made by `count`."""
    head = ("| op | 3D attention (G) | vs full | model (G) | vs full | model - frame attn (G) | vs full "
            "| paper (G) | paper vs full |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        paper = "" if r["paper_gflops"] is None else f"{r['paper_gflops']:,.1f} | {r['paper_ratio']:.3f}"
        lines.append(
            f"| {r['op']} | {giga(r['attention'])} | {r['attention_ratio']:.4f} | {giga(r['model'])} "
            f"| {r['model_ratio']:.3f} | {giga(r['model_less_frame'])} | {r['model_less_frame_ratio']:.3f} "
            f"| {paper or ' | '} |"
        )
    return "\n".join(lines)


def count(args: dict, latent: tuple, lr_hw: tuple, ops: dict, batch: int, text_tokens: int, paper: bool) -> list[dict]:
    """One row per op in `ops` (name -> AttentionOp used as the 3D sub-layer), ratios against `ops['full']`.

    `paper`: add the paper's figures (meaningful only for its setting, 17 frames at 1080p).
    """
    from gvr.models.flops import PAPER_GFLOPS, model_flops

    rows = []
    for name, op in ops.items():
        parts = model_flops({**args, "temporal_op": op}, latent, lr_hw, batch, text_tokens)
        total = sum(parts.values())
        rows.append({"op": name, "attention": parts["temporal_attention"], "model": total,
                     "model_less_frame": total - parts["spatial_attention"], "parts": parts,
                     "paper_gflops": PAPER_GFLOPS.get(name) if paper else None})
    full = rows[0]
    for r in rows:
        for key in ("attention", "model", "model_less_frame"):
            r[f"{key}_ratio"] = r[key] / full[key]
        paper = r["paper_gflops"]
        r["paper_ratio"] = None if paper is None else paper / PAPER_GFLOPS["full"]
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvr flops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="1b", choices=sorted(PRESET_CODECS), help="SimpleGVR size (without --config)")
    p.add_argument("--config", default=None, help="gvr YAML config: backbone, codec and clip size from it")
    p.add_argument("--frames", type=int, default=None, help="output frames (default: 17 for 1b, the config's)")
    p.add_argument("--height", type=int, default=None, help="output height in pixels (default: 1080 for 1b)")
    p.add_argument("--width", type=int, default=None, help="output width in pixels (default: 1920 for 1b)")
    p.add_argument("--lr-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="LR input in pixels (default: 384 672 for 1b, HR / scale otherwise)")
    p.add_argument("--scale", type=float, default=None, help="SR factor, LR = HR / scale (default: the config's)")
    p.add_argument("--spatial-factor", type=int, default=None, help="pixels per latent cell (default: codec's)")
    p.add_argument("--temporal-factor", type=int, default=None, help="frames per latent frame, first kept (codec's)")
    p.add_argument("--latent-channels", type=int, default=None, help="latent channels (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="clips per batch")
    p.add_argument("--text-tokens", type=int, default=512, help="text length for the cross-attention (text_dim set)")
    p.add_argument("--unit", type=int, default=None, help="temporal_units: latent frames a unit (default: config's, 5)")
    p.add_argument("--block", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="sparse_local block in tokens (default: the config's, 9 12)")
    p.add_argument("--top-k", type=int, default=None, help="sparse_local: other blocks a block attends to (config's, 1)")
    p.add_argument("--window", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="swin window in tokens (default: the config's, 8 8)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    a = p.parse_args(argv)

    from gvr.codecs.codec import LatentCodec
    from gvr.models.attention import FrameAttention, FullAttention
    from gvr.models.flops import latent_grid, simple_gvr_args, token_grid
    from gvr.models.sparse_attention import SparseLocalAttention, SwinAttention, TemporalUnitsAttention

    try:
        if a.config:
            overrides, codec_spec, data = from_config(a.config)
            args = simple_gvr_args(None, **overrides)
            factors = (a.spatial_factor, a.temporal_factor)
            if None in factors and codec_spec is not None:
                codec = instantiate(LatentCodec, codec_spec)
                factors = (a.spatial_factor or codec.spatial_factor, a.temporal_factor or codec.temporal_factor)
            hr = data.get("hr_size") or [None, None]
            frames, height, width = a.frames or data.get("num_frames"), a.height or hr[0], a.width or hr[1]
            lr = None
        else:
            args = simple_gvr_args(a.preset)
            factors = (a.spatial_factor or PRESET_CODECS[a.preset][0], a.temporal_factor or PRESET_CODECS[a.preset][1])
            frames, (height, width), lr = PRESET_CLIPS[a.preset]
            frames, height, width = a.frames or frames, a.height or height, a.width or width
            data = {}
        if None in factors or None in (frames, height, width):
            raise ValueError("give --spatial-factor, --temporal-factor, --frames, --height and --width")
        if a.latent_channels:
            args["latent_channels"] = a.latent_channels
        if a.lr_size:
            lr = tuple(a.lr_size)
        elif a.scale or lr is None or (a.height or a.width):
            scale = a.scale or data.get("scale", 2.5)
            lr = (round(height / scale), round(width / scale))
        latent = latent_grid(frames, height, width, *factors)
        lr_hw = latent_grid(frames, *lr, *factors)[1:]
        configured = [args["temporal_op"], args["spatial_op"]]

        def setting(flag, cls: type, attr: str, fallback):
            """The flag if given, else the configured op's own setting, else the paper's."""
            found = next((getattr(op, attr) for op in configured if isinstance(op, cls)), fallback)
            return tuple(flag) if isinstance(flag, list) else found if flag is None else flag

        a.unit = setting(a.unit, TemporalUnitsAttention, "unit", 5)
        a.window = setting(a.window, SwinAttention, "window", (8, 8))
        a.block = setting(a.block, SparseLocalAttention, "block", (9, 12))
        a.top_k = setting(a.top_k, SparseLocalAttention, "top_k", 1)
        ops = {"full": FullAttention(), "frame": FrameAttention(), "temporal_units": TemporalUnitsAttention(a.unit),
               "swin": SwinAttention(a.window), "sparse_local": SparseLocalAttention(a.block, a.top_k)}
        rows = count(args, latent, lr_hw, ops, a.batch, a.text_tokens, (frames, height, width) == (17, 1080, 1920))
    except (ValueError, TypeError, FileNotFoundError) as err:
        sys.exit(f"gvr flops: error: {err}")

    if a.json:
        print(json.dumps(rows))
        return
    grid = token_grid(latent, tuple(args["patch_size"]))
    spatial = type(args["spatial_op"] or FrameAttention()).__name__
    print(f"SimpleGVR {a.config or a.preset}: dim {args['dim']}, depth {args['depth']}, heads {args['heads']}, "
          f"patch {tuple(args['patch_size'])}, spatial sub-layer {spatial}\n"
          f"{frames} x {height} x {width} output (LR {lr[0]} x {lr[1]}) -> latent "
          f"{latent[0]} x {latent[1]} x {latent[2]} (codec x{factors[0]} space, x{factors[1]} time) -> tokens "
          f"{grid[0]} x {grid[1]} x {grid[2]} = {grid[0] * grid[1] * grid[2]:,} (padded to whole patches), batch {a.batch}\n"
          f"FLOPs of one forward pass, multiply-add = 2, matmul-class work only. Rows: the op of the 3D sub-layer "
          f"(temporal_units unit {a.unit}, swin window {tuple(a.window)}, sparse_local block {tuple(a.block)} "
          f"top-k {a.top_k}). Paper: SimpleGVR, 17 frames at 1080p, scope not stated (see gvr.models.flops).\n")
    print(table(rows))


if __name__ == "__main__":
    main()
