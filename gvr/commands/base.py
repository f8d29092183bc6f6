"""``gvr base fit|validate --config configs/base.yaml``: train gvr's own base model (LightningCLI).

The same data module as the VSR stages; the model is :class:`gvr.lit.base_module.BaseModule`, which learns the
low-resolution clips (``data.degradation``, a clean bicubic downsample in ``configs/base.yaml``) in the
codec's latent space. Its checkpoint is the base model of ``gvr generate``, ``gvr degrade --kind model``
and the stage-2 pair cache.
"""

from lightning.pytorch.cli import LightningCLI

from gvr.data.datamodule import VideoDataModule
from gvr.lit.base_module import BaseModule
from gvr.lit.cli import CLI_DEFAULTS, expand_configs


def main(argv: list[str] | None = None) -> LightningCLI:
    return LightningCLI(BaseModule, VideoDataModule, **CLI_DEFAULTS, args=expand_configs(argv))
