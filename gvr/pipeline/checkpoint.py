"""Read a gvr checkpoint without Lightning: its file, its config (``class_path``s of older layouts moved), and the
`VSRPipeline` it holds (`load_pipeline`, what ``gvr upscale`` loads: Python, torch and the checkpoint only)."""

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gvr.codecs.codec import LatentCodec
from gvr.flow.objective import FlowObjective
from gvr.models.text import TextEncoder
from gvr.ops.config import instantiate
from gvr.ops.files import require_single_file
from gvr.pipeline.vsr import VSRPipeline

log = logging.getLogger(__name__)

# Module paths of the layout before the house plan (issue 20) -> today's. A checkpoint stores its config as
# `class_path` strings; `load_pipeline` and `gvr.lit.checkpoints.load_gvr_module` rewrite the old ones, so checkpoints written before the move load.
MOVED_MODULES = {
    "gvr.module": "gvr.lit.vsr_module",
    "gvr.training": "gvr.lit.flow_module",
    "gvr.base.module": "gvr.lit.base_module",
    "gvr.checkpoints": "gvr.lit.checkpoints",
    "gvr.averaging": "gvr.lit.averaging",
    "gvr.strategies": "gvr.lit.strategies",
    "gvr.distill.recipe": "gvr.lit.distillation",
    "gvr.distill.losses": "gvr.lit.distill_losses",
    "gvr.distill.discriminator": "gvr.models.discriminator",
    "gvr.metrics.benchmark": "gvr.lit.scoring",
    "gvr.upscale": "gvr.inference.upscale",
    "gvr.colorfix": "gvr.ops.colorfix",
    "gvr.flow.tiled": "gvr.ops.tiling",
    "gvr.metrics.baselines": "gvr.ops.resize",
    "gvr.text": "gvr.models.text",
    "gvr.metrics.realesrgan": "gvr.baselines.realesrgan",
    "gvr.codecs.base": "gvr.codecs.codec",
    "gvr.data.degradations.base": "gvr.data.degradations.degradation",
    "gvr.base.dit": "gvr.base.latent_dit",
}
# Names the old `gvr.distill` package exported, and where each lives now.
MOVED_NAMES = {"gvr.distill.Distillation": "gvr.lit.Distillation",
               "gvr.distill.VideoDiscriminator": "gvr.models.VideoDiscriminator",
               "gvr.data.predict.VideoPredictionWriter": "gvr.inference.VideoPredictionWriter"}


def moved_path(name: str) -> str:
    """Today's dotted path of ``name`` (a ``class_path`` of a checkpoint written before the move), or ``name``."""
    if name in MOVED_NAMES:
        return MOVED_NAMES[name]
    module, _, attr = name.rpartition(".")
    return f"{MOVED_MODULES[module]}.{attr}" if module in MOVED_MODULES else name


def renamed_hparams(value):
    """``value`` (hyper-parameters: dicts, lists, strings) with every old ``class_path`` moved."""
    if isinstance(value, dict):
        return {k: moved_path(v) if k in ("class_path", "_class_path") and isinstance(v, str) else renamed_hparams(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(renamed_hparams(v) for v in value)
    return value


# VSRModule's arguments that became `gvr.flow.FlowObjective`'s (``model.objective``): a checkpoint written before
# holds them flat among the module's hyper-parameters.
OBJECTIVE_ARGS = ("timesteps", "source", "prediction", "s_range", "s_inference", "sample_steps", "sample_shift",
                  "temporal_weight")


def upgraded_hparams(hp: dict, kind: str | None = None) -> dict:
    """A checkpoint's hyper-parameters brought to today's: ``class_path``s moved (`renamed_hparams`) and, for a
    ``VSRModule`` (the stored ``_class_path``, else ``kind``) written before ``model.objective``, its flat objective
    arguments gathered into it (a config spec under the CLI, a `FlowObjective` where the module was built in
    Python), with the defaults the module then had, which are FlowObjective's."""
    hp = renamed_hparams(dict(hp))
    kind = str(hp.get("_class_path", "")).split(".")[-1] or kind
    if kind == "VSRModule" and "objective" not in hp:
        args = {k: hp.pop(k) for k in OBJECTIVE_ARGS if k in hp}
        if "_class_path" in hp or "_instantiator" in hp:  # written by the CLI: a config, built by jsonargparse
            hp["objective"] = {"class_path": "gvr.flow.objective.FlowObjective", "init_args": args}
        else:
            hp["objective"] = FlowObjective(**args)
    return hp


def inference_objective(spec) -> FlowObjective:
    """The `FlowObjective` of a checkpoint's ``objective`` hyper-parameter (a config spec, an instance or None) for
    sampling: its training sampler of ``t`` is not built (a detail-aware sampler reads a density file that need
    not be where the model is served)."""
    if isinstance(spec, dict):
        spec = {**spec, "init_args": {k: v for k, v in (spec.get("init_args") or {}).items() if k != "timesteps"}}
    return instantiate(FlowObjective, spec) or FlowObjective()


def read_checkpoint(path: str | Path, mmap: bool = False):
    """The object saved in the single-file checkpoint ``path`` (on the CPU); a missing file, a sharded folder or a
    file that is not a PyTorch checkpoint is a clear error."""
    path = Path(path)
    require_single_file(path, "checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # any unpickling/zip failure means "not a checkpoint"
        raise ValueError(f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {err})") from err


def check_kind(meta: Any, kind: str, key: str, command: str, ckpt: str | Path) -> dict:
    """The hyper-parameters of ``meta`` (a loaded checkpoint) if it is a gvr ``kind`` checkpoint (class ``kind``, with
    a ``key`` network), brought to today's: ``class_path``s moved, and a VSR checkpoint written before
    ``train_frames`` was a hyper-parameter given its datamodule's ``num_frames``; else a clear error naming
    ``command``, which writes one (`upgraded_hparams`)."""
    hp = meta.get("hyper_parameters", {}) if isinstance(meta, dict) else {}
    if not isinstance(meta, dict) or "state_dict" not in meta or hp.get("_class_path", kind).split(".")[-1] != kind or key not in hp:
        raise ValueError(f"{ckpt} is not a gvr {kind} checkpoint (written by `{command}`)")
    hp = upgraded_hparams(hp, kind)
    if kind == "VSRModule" and hp.get("train_frames") is None:  # written before train_frames was a hyper-parameter
        hp["train_frames"] = (meta.get("datamodule_hyper_parameters") or {}).get("num_frames")
    return hp


def network_weights(state: dict[str, torch.Tensor], prefix: str) -> tuple[dict[str, torch.Tensor], str]:
    """A network's weights in a checkpoint's ``state`` dict, unprefixed, and where they came from: the EMA
    weights (``ema.*``) where the run kept them, else ``{prefix}.*``."""
    source = "ema" if any(k.startswith("ema.") for k in state) else prefix
    return {k[len(source) + 1:]: v for k, v in state.items() if k.startswith(source + ".")}, source


def load_pipeline(ckpt: str | Path, device: str | torch.device = "cpu") -> VSRPipeline:
    """The `VSRPipeline` of a ``gvr fit`` / ``gvr distill`` checkpoint on ``device``, in eval mode, without Lightning.

    The stored config rebuilds the backbone, the codec (its weights come from its own config: a VAE from its
    path), the flow source and the text encoder; the network takes the checkpoint's EMA weights where it kept
    them, else the live ones, exactly (a checkpoint of another architecture is a clear error). The same
    checks as `gvr.lit.checkpoints.load_gvr_module`: a missing file, a sharded folder, a file that is not a
    checkpoint or a checkpoint of another kind (a base model) each end in a clear error.
    """
    meta = read_checkpoint(ckpt, mmap=True)
    hp = check_kind(meta, "VSRModule", "backbone", "gvr fit", ckpt)
    state = meta["state_dict"]
    net = instantiate(nn.Module, hp["backbone"])
    weights, source = network_weights(state, "backbone")
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"{ckpt}: its weights do not fit the network its config builds: "
                         f"{str(err).splitlines()[0]} ...") from err
    codec = instantiate(LatentCodec, hp["codec"])
    text_encoder = instantiate(TextEncoder, hp.get("text_encoder"))
    if text_encoder is not None:
        text_state = {k[len("text_encoder."):]: v for k, v in state.items() if k.startswith("text_encoder.")}
        if text_state:
            text_encoder.load_state_dict(text_state)
    objective = inference_objective(hp.get("objective"))
    pipe = VSRPipeline(net, codec, objective, text_encoder, scale=hp.get("scale", 2.5), scale_range=hp.get("scale_range"),
                       train_frames=hp.get("train_frames"), color_fix=hp.get("color_fix", "none"), seed=hp.get("seed", 0))
    log.debug("loaded %s (%s weights)", ckpt, source)
    return pipe.eval().requires_grad_(False).to(device)
