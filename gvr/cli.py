"""The ``gvr`` command: LightningCLI's fit | validate | test | predict, plus user verbs (``gvr upscale``)."""

import contextlib
import os
import sys
from collections.abc import Iterator


def lightning_main(args: list[str] | None = None):
    """Run a Lightning subcommand (fit, validate, test, predict): `gvr.lit.cli.lightning_main`, imported here on
    first use so that the user verbs (``gvr upscale``) start without Lightning."""
    from gvr.lit.cli import lightning_main as run

    return run(args)


def __getattr__(name: str):
    if name in ("GVRCLI", "CLI_DEFAULTS"):  # public here as before, imported on first use
        import gvr.lit.cli

        return getattr(gvr.lit.cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Every user verb: its module (with a ``main(argv)``) and the line ``gvr --help`` shows for it.
VERBS = {
    "upscale": ("gvr.commands.upscale", "upscale a video or a photo with a trained checkpoint"),
    "degrade": ("gvr.commands.degrade", "apply a training degradation to a video"),
    "score": ("gvr.commands.score", "score a video against a reference (PSNR, SSIM, LPIPS, VMAF, ...) or alone "
              "(MUSIQ, CLIP-IQA, MANIQA, DOVER); prints JSON"),
    "distill": ("gvr.commands.distill", "distil a trained checkpoint into a one-step student "
                "(gvr distill --config configs/distill.yaml)"),
    "average": ("gvr.commands.average", "the uniform weight average of one run's checkpoints"),
    "prep": ("gvr.commands.prep", "prepare a training corpus: scan, measure, filter, shard (make prep)"),
    "pairs": ("gvr.commands.pairs", "build the stage-2 pair cache, flow + model-guided (make pairs)"),
    "testset": ("gvr.commands.testset", "build the base-model-like test set: held-out clips, bicubic/flow/model LR (make testset)"),
    "consolidate": ("gvr.commands.consolidate", "gather a sharded (FSDP2) checkpoint folder into one file"),
    "base": ("gvr.commands.base", "train gvr's own base model (gvr base fit --config configs/base.yaml)"),
    "generate": ("gvr.commands.generate", "run the whole cascade, base model -> SimpleGVR -> mp4"),
    "flops": ("gvr.commands.flops", "analytic FLOPs of each attention op and of the whole model"),
    "analyze-timesteps": ("gvr.commands.analyze_timesteps", "measure where a checkpoint creates detail, write the "
                          "detail-aware timestep distribution"),
}


def usage() -> str:
    """The head of ``gvr --help``: the user verbs of `VERBS`, then LightningCLI's own help follows."""
    width = max(map(len, VERBS)) + 2
    lines = [f"  {verb:<{width}} {summary}" for verb, (_, summary) in VERBS.items()]
    return ("gvr: latent video super-resolution (SimpleGVR)\n\nuser verbs (gvr VERB --help):\n" + "\n".join(lines)
            + "\n\nLightning subcommands (gvr fit --help, ...); gvr test --config configs/benchmark.yaml --ckpt_path CKPT\n"
              "scores a checkpoint and the baselines into metrics.json / metrics.md:")


@contextlib.contextmanager
def user_errors(verb: str) -> Iterator[None]:
    """Turn what a user gave wrong (a missing or empty manifest, a file where a folder is expected, a folder that
    cannot be written) into one line, ``gvr VERB: error: ...``, naming the file; ``GVR_TRACEBACK=1`` keeps the
    traceback. Other exceptions (bugs) keep theirs."""
    from gvr.data.errors import DataError

    try:
        yield
    except (DataError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        if os.environ.get("GVR_TRACEBACK"):
            raise
        sys.exit(f"gvr {verb}: error: {err}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gvr`` console script."""
    from_shell = argv is None
    argv = list(sys.argv[1:] if from_shell else argv)
    verb = argv[0] if argv and not argv[0].startswith("-") else "fit"
    if argv and argv[0] in VERBS:
        import importlib

        with user_errors(verb):
            importlib.import_module(VERBS[argv[0]][0]).main(argv[1:])
        return
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), flush=True)
    with user_errors(verb):
        lightning_main(None if from_shell else argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
