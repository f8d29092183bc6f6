"""Start the VSR DiT from the base model's weights, as the paper does.

SimpleGVR is initialised from the 1B base model and all of it is fine-tuned. gvr's base model `LatentDiT`
(`gvr.base`) has the same DiT trunk as `SimpleGVR`: `blocks`, `t_embedder`, `final_layer`, `text_proj`
and the rotary angles, with the same state-dict keys. Those weights copy over one for one. The parts the
base model lacks are set so that the new VSR model computes exactly the base model's velocity on `z_t`,
whatever the condition:

- `patch_embed`: the base model's weights on the `z_t` channels, zeros on the condition's channels;
- `s_embedder`: its output layer zero, so that emb(t) + emb(s) = emb(t);
- `upsampler`: its own initialisation (its output only meets the zeroed `patch_embed` columns).

Fine-tuning then learns to read the condition. The architectures must agree (same latent channels,
width, depth, heads, patch size, text width); anything else is a clear error, never a partial copy.
"""

import torch
from torch import Tensor, nn

NEW_IN_VSR = ("upsampler.", "s_embedder.", "ratio_embedder.", "patch_embed.")  # VSR parts with no counterpart in the base model


def vsr_weights_from_base(vsr: nn.Module, base: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict of `vsr` (a `SimpleGVR`) started from a `LatentDiT` state dict `base` (unprefixed keys).

    Raises ValueError naming the first weight that does not fit.
    """
    state = {k: v.detach().clone() for k, v in vsr.state_dict().items()}
    # patch_embed sees patchified [z_t, upsampled c] with features ordered (channel, pt, ph, pw): the
    # first latent_channels * patch-volume columns are z_t's, which is all the base model sees.
    weight, bias = base["patch_embed.weight"], base["patch_embed.bias"]
    width = vsr.latent_channels * vsr.patch_size[0] * vsr.patch_size[1] * vsr.patch_size[2]
    if weight.shape != (state["patch_embed.weight"].shape[0], width):
        raise ValueError(f"init_from_base: the base model's patch_embed is {tuple(weight.shape)}, expected "
                         f"({state['patch_embed.weight'].shape[0]}, {width}): different latent channels, width "
                         "or patch size")
    for key, value in base.items():
        if key.startswith("patch_embed."):
            continue
        if key not in state:
            raise ValueError(f"init_from_base: the base model's {key} has no place in {type(vsr).__name__} "
                             "(the base model must be a LatentDiT with the same width, depth and text input)")
        if state[key].shape != value.shape:
            raise ValueError(f"init_from_base: {key} is {tuple(value.shape)} in the base model but "
                             f"{tuple(state[key].shape)} here (different width, heads or patch size?)")
        state[key] = value.to(state[key].dtype)
    missing = [k for k in state if k not in base and not k.startswith(NEW_IN_VSR)]
    if missing:
        raise ValueError(f"init_from_base: the base model has no {missing[0]} (and {len(missing) - 1} more): "
                         "a different depth, or a text input on one side only?")

    state["patch_embed.weight"] = torch.zeros_like(state["patch_embed.weight"])
    state["patch_embed.weight"][:, :width] = weight
    state["patch_embed.bias"] = bias.to(state["patch_embed.bias"].dtype).clone()
    last = max(i for i, layer in enumerate(vsr.s_embedder.mlp) if isinstance(layer, nn.Linear))
    for name in ("weight", "bias"):
        key = f"s_embedder.mlp.{last}.{name}"
        state[key] = torch.zeros_like(state[key])
    return state
