"""``gvr distill --config configs/distill.yaml``: distil a trained model into a one-step student (LightningCLI fit).

The same trainer, data module and VSRModule as ``gvr fit``, with ``model.distill`` set
(`gvr.lit.Distillation`: the teacher checkpoint and the loss weights). The student's checkpoint is an
ordinary VSRModule checkpoint that ``gvr upscale`` serves with one step.
"""

from gvr.data.datamodule import VideoDataModule
from gvr.lit.cli import CLI_DEFAULTS, GVRCLI, check_moved_keys, expand_configs
from gvr.lit.vsr_module import VSRModule

SUBCOMMANDS = ("fit", "validate")


class DistillCLI(GVRCLI):
    """`GVRCLI` that refuses a config without ``model.distill`` (that would be plain flow training: ``gvr fit``)."""

    def _check(self) -> None:
        if getattr(self.model, "distill", None) is None:
            raise ValueError("gvr distill needs model.distill (a gvr.lit.Distillation with the teacher checkpoint), "
                             "see configs/distill.yaml; plain flow training is `gvr fit`")

    def before_fit(self) -> None:
        self._check()

    def before_validate(self) -> None:
        self._check()


def main(argv: list[str] | None = None) -> DistillCLI:
    argv = list(argv or [])
    if not argv or argv[0] not in SUBCOMMANDS + ("-h", "--help"):
        argv = ["fit", *argv]  # `gvr distill --config X` is `gvr distill fit --config X`
    check_moved_keys(argv)
    return DistillCLI(VSRModule, VideoDataModule, **CLI_DEFAULTS, args=expand_configs(argv))
