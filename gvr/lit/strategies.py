"""Sharded training: FSDP2 (`torch.distributed.fsdp.fully_shard`) through Lightning's `ModelParallelStrategy`.

`FSDP2Strategy` shards the trained network and its EMA copy alike over all ranks (ZeRO-3: parameters, gradients
and AdamW states), one FSDP unit per block the network declares in `_no_split_modules` (`DiTBlock`), plus the
network itself. Sharded checkpoints are folders of `torch.distributed.checkpoint` files, one per rank, that
resume on the same number of ranks or, gathered by `consolidate_checkpoint`, load anywhere as one file.

Why FSDP2 and not the alternatives (measured on this project's torch 2.14 / Lightning 2.6):

- **FSDP2** runs on CPU with gloo (the tests: two processes, same losses and weights as DDP) and on GPUs with
  NCCL from the same code, and is what PyTorch develops (FSDP1 is in maintenance). Its parameters are
  `DTensor` shards with the module's own names and shapes, so the EMA copy, sharded by the same plan, lines
  up shard for shard with the live network: the EMA update stays the elementwise `lerp_` of `gvr.lit.flow_module`,
  with no gather, and no rank ever holds a full EMA.
- **FSDP1** (`lightning.pytorch.strategies.FSDPStrategy`) also runs on CPU, but it flattens each wrap unit
  into one flat parameter; the root unit mixes the network's loose parameters with the EMA's, so the EMA's
  shards would not line up with the network's without wrapping tricks.
- **DeepSpeed ZeRO-2/3** is a separate package with compiled CUDA ops and its own checkpoint layout; it is
  not installed here and cannot be tested on CPU with gloo, and its engine owns the optimizer step that the
  EMA hooks into.

Mixed precision is Lightning's `precision: bf16-mixed` (autocast, as under DDP). With ``param_dtype:
bfloat16`` the all-gathers move bf16 copies of the fp32 shards (half the traffic), the modules the network
declares in `_keep_in_fp32_modules` get fp32 units of their own, gradients reduce in fp32, and the residual
stream keeps the dtype autocast gives it. Activation checkpointing is the network's own
``gradient_checkpointing`` flag (each `DiTBlock` recomputed in backward), which composes with the block units.
"""

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from lightning.fabric.strategies.model_parallel import _is_sharded_checkpoint
from lightning.fabric.utilities.load import _METADATA_FILENAME
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from gvr.ops.files import require_single_file  # noqa: F401  (also public here)


def shard_network(
    net: nn.Module,
    mesh,
    param_dtype: torch.dtype = torch.float32,
    reshard_after_forward: bool = True,
) -> nn.Module:
    """Apply `fully_shard` to ``net`` in place: each `_no_split_modules` block, then the network itself.

    With a ``param_dtype`` other than float32, the submodules named in `_keep_in_fp32_modules` (by their last
    name) become fp32 units of their own. Units are made bottom-up, so nested units (an fp32 norm inside a
    block) own their parameters. A root left unsharded after a no-grad forward (FSDP keeps the root's
    parameters gathered for the backward that inference never runs) is resharded at once, so that between
    steps every parameter is a shard.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    blocks = set(getattr(net, "_no_split_modules", ()))
    keep_fp32 = set(getattr(net, "_keep_in_fp32_modules", ())) if param_dtype != torch.float32 else set()
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)
    fp32 = MixedPrecisionPolicy(param_dtype=torch.float32, reduce_dtype=torch.float32, cast_forward_inputs=False)
    for name, module in reversed(list(net.named_modules())):  # children before their parents
        if not name:
            continue
        if name.rsplit(".", 1)[-1] in keep_fp32:
            fully_shard(module, mesh=mesh, mp_policy=fp32, reshard_after_forward=reshard_after_forward)
        elif type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    fully_shard(net, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    net.register_forward_hook(_reshard_after_inference)
    return net


def _reshard_after_inference(module, args, output) -> None:
    if not torch.is_grad_enabled():
        module.reshard()


@torch.no_grad()
def broadcast_from_rank0(net: nn.Module, group=None) -> None:
    """Make every rank's parameters and buffers those of rank 0 of ``group``, as DDP does at its start."""
    for tensor in itertools.chain(net.parameters(), net.buffers()):
        dist.broadcast(tensor.data, group=group, group_src=0)


class FSDP2Strategy(ModelParallelStrategy):
    """Fully sharded data parallel training (FSDP2) of the trained network and its EMA over every rank.

    Every rank is one data-parallel replica (the batch size is per rank, as under DDP) and holds a
    ``1 / world_size`` shard of the network, its gradients, its AdamW states and its EMA. The LightningModule
    asks for its networks to be sharded in `configure_model` (`gvr.lit.flow_module.CodecFlowModule`).

    Args:
        param_dtype: dtype of the gathered parameters in forward and backward: "float32", or "bfloat16" to
            halve the all-gather traffic (with ``precision: bf16-mixed``; fp32 shards, fp32 gradient reduction).
        reshard_after_forward: free the gathered parameters after each block's forward and gather them again
            in backward (ZeRO-3); false keeps them until backward (ZeRO-2-like: faster, more memory).
        save_distributed_checkpoint: save checkpoints as folders of per-rank shards (fast, no rank gathers the
            model); false gathers one full file on rank 0.
        process_group_backend: "nccl" or "gloo"; null picks the device's default (gloo on CPU).
    """

    def __init__(
        self,
        param_dtype: Literal["float32", "bfloat16"] = "float32",
        reshard_after_forward: bool = True,
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
    ) -> None:
        if param_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"param_dtype must be 'float32' or 'bfloat16', got {param_dtype!r}")
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint,
                         process_group_backend=process_group_backend)
        self.param_dtype = getattr(torch, param_dtype)
        self.reshard_after_forward = reshard_after_forward

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes  # pure data parallel: one 1-D mesh
        super().setup_environment()

    def shard(self, networks: Sequence[nn.Module]) -> None:
        """Broadcast each network from rank 0 and shard it (a network sharded already is left alone)."""
        from torch.distributed.fsdp import FSDPModule

        mesh = self.device_mesh["data_parallel"]
        for net in networks:
            if isinstance(net, FSDPModule):  # configure_model runs once per trainer stage
                continue
            net.to(self.root_device)
            broadcast_from_rank0(net, mesh.get_group())
            shard_network(net, mesh, self.param_dtype, self.reshard_after_forward)

    def load_checkpoint(self, checkpoint_path, weights_only: bool | None = None) -> dict[str, Any]:
        """Resume from a sharded folder, or a full file, skipping what the module keeps out of checkpoints.

        `gvr.lit.flow_module.CodecFlowModule` drops the frozen codec from every checkpoint (`checkpoint_excludes`); the
        sharded load must not ask for it. Anything else missing is an error.
        """
        path = Path(self.broadcast(checkpoint_path))
        if not _is_sharded_checkpoint(path):
            return super().load_checkpoint(path, weights_only)
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        excludes = tuple(getattr(self.lightning_module, "checkpoint_excludes", ()))
        state = {k: v for k, v in get_model_state_dict(self.model).items() if not k.startswith(excludes)}
        dcp.load({"state_dict": state}, checkpoint_id=path)
        set_model_state_dict(self.model, state, options=StateDictOptions(strict=False))  # all but the excludes
        for idx, optimizer in enumerate(self.optimizers):
            optim_state = {f"optimizer_{idx}": get_optimizer_state_dict(self.model, optimizer)}
            dcp.load(optim_state, checkpoint_id=path)
            set_optimizer_state_dict(self.model, optimizer, optim_state[f"optimizer_{idx}"])
        return torch.load(path / _METADATA_FILENAME, weights_only=weights_only)


def consolidate_checkpoint(folder: str | Path, output: str | Path) -> Path:
    """Gather a sharded checkpoint folder into one Lightning checkpoint file (run on one process, CPU).

    The file holds the weights, the EMA, the hyper-parameters and the loop state, not the optimizer states
    (resume from the folder); it loads like any gvr checkpoint: ``gvr upscale --ckpt``, ``model.init_from``,
    `gvr.lit.checkpoints.load_gvr_module`.
    """
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    folder, output = Path(folder), Path(output)
    if not _is_sharded_checkpoint(folder):
        raise ValueError(f"{folder} is not a sharded checkpoint folder (no {_METADATA_FILENAME} inside)")
    state: dict[str, Any] = {}
    _load_state_dict(state, storage_reader=FileSystemReader(folder), planner=_EmptyStateDictLoadPlanner(), no_dist=True)
    checkpoint = torch.load(folder / _METADATA_FILENAME, map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = state.pop("state_dict")  # the optimizer shards stay behind: resume from the folder
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output)
    return output
