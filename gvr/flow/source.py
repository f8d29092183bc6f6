"""Where the flow starts: pure noise (the paper) or the upsampled input plus noise (an anchored flow).

The path runs from data ``z0`` at ``t = 0`` to its source ``x1`` at ``t = 1``:
``z_t = (1 - t) z0 + t x1`` with ``x1 = U(c) + sigma * eps``, and the network predicts ``v = x1 - z0``.
``U`` is a fixed, parameter-free upsampling of the LR latent ``c`` to the HR grid. The paper's flow from
pure noise is the special case ``U = 0, sigma = 1``. Starting from the input is what DOVE (one step from the
upsampled LR latent), ResShift, InDI / I2SB-style bridges and FlashVideo's second stage do: most of the
answer is already in the input, so few steps suffice and fidelity is kept. With ``sigma = 0`` one Euler
step is a plain regression of the residual ``U(c) - z0``.

The condition's noise augmentation ``s`` acts on the network's condition branch only (``c_s``); ``U`` reads
the clean ``c`` in training and at inference alike, since the input is known exactly at both.
"""

from typing import Literal

from torch import Tensor

from gvr.ops.resize import resize_frames

AnchorKind = Literal["none", "latent", "pixel"]


class FlowSource:
    """The source ``x1 = U(c) + sigma * eps`` of the rectified-flow path.

    Args:
        anchor: ``U``: "none" (zero, the paper's pure-noise flow), "latent" (resize of the LR latent itself:
            cheap, approximate for a real VAE) or "pixel" (decode the LR latent, or take the LR pixels when
            known, resize them in pixel space and encode: exact, one extra encode per clip).
        sigma: standard deviation of the noise added to ``U(c)`` (1 with anchor "none" is the paper).
        resize: interpolation of ``U``: "bicubic" or "bilinear" (exact LR->HR map at the given ratio).
        residual_input: feed the network ``z_t - U(c)`` instead of ``z_t`` (the same information, but a small
            network need not learn to reproduce ``U``); no effect with anchor "none".
    """

    def __init__(
        self,
        anchor: AnchorKind = "none",
        sigma: float = 1.0,
        resize: Literal["bicubic", "bilinear"] = "bicubic",
        residual_input: bool = True,
    ):
        if anchor not in ("none", "latent", "pixel"):
            raise ValueError(f"FlowSource: anchor must be 'none', 'latent' or 'pixel', got {anchor!r}")
        if sigma < 0 or (anchor == "none" and sigma <= 0):
            raise ValueError(f"FlowSource: sigma must be >= 0 (> 0 without an anchor), got {sigma}")
        if resize not in ("bicubic", "bilinear"):
            raise ValueError(f"FlowSource: resize must be 'bicubic' or 'bilinear', got {resize!r}")
        self.anchor, self.sigma, self.resize, self.residual_input = anchor, float(sigma), resize, residual_input

    @property
    def anchored(self) -> bool:
        return self.anchor != "none"

    def upsample(
        self,
        c: Tensor,
        size: tuple[int, int],
        ratio: tuple[float, float] | None = None,
        codec=None,
        lr_pixels: Tensor | None = None,
    ) -> Tensor | None:
        """``U(c)`` on the HR latent grid ``size`` (None without an anchor).

        ``ratio`` is HR / LR per axis (None: ``size`` over ``c``'s grid, i.e. edge to edge). The "pixel" anchor
        needs ``codec`` and uses ``lr_pixels`` (``(B, 3, T, h, w)`` in [-1, 1], aligned with ``c``) when given,
        else decodes ``c``.
        """
        if not self.anchored:
            return None
        if self.anchor == "latent":
            return resize_frames(c.float(), size, ratio, mode=self.resize)
        if codec is None:
            raise ValueError("FlowSource: the 'pixel' anchor needs the codec")
        f = codec.spatial_factor
        pixels = lr_pixels.float() if lr_pixels is not None else codec.decode(c.float())
        hr = resize_frames(pixels, (size[0] * f, size[1] * f), ratio, mode=self.resize).clamp(-1, 1)
        return codec.encode(hr)

    def start(self, anchor: Tensor | None, eps: Tensor) -> Tensor:
        """The source ``x1 = U(c) + sigma * eps`` (``eps`` alone without an anchor)."""
        return eps if anchor is None else anchor + self.sigma * eps

    def network_input(self, z_t: Tensor, anchor: Tensor | None) -> Tensor:
        """What the network sees of the state: ``z_t - U(c)`` with ``residual_input``, else ``z_t``."""
        return z_t - anchor if anchor is not None and self.residual_input else z_t
