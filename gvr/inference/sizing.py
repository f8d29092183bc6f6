"""The output frame of ``gvr upscale``: the factor the model applies and how the result fills the frame written.

``--scale F`` upscales by ``F`` (`gvr.ops.resize.output_size`: each side rounded). ``--size WxH`` asks for a
frame of exactly ``W x H`` and keeps the aspect ratio: with ``fit="pad"`` the factor is the largest that fits
the picture inside the frame and the rest is black bars (letterbox or pillarbox, centred); with ``fit="crop"``
it is the smallest that covers the frame and the overflow is cut off (centred). Either way the summary states
the factor, the picture's size and where it sits, so nothing is stretched or cropped unsaid.
"""

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from gvr.ops.resize import output_size

Fit = Literal["pad", "crop"]


@dataclass(frozen=True)
class OutputPlan:
    """What ``gvr upscale`` writes for an input of ``(h, w)`` pixels.

    Attributes:
        scale: the factor the model applies (the same on both axes).
        picture: ``(height, width)`` the model upscales to.
        frame: ``(height, width)`` of the frames written.
        offset: ``(top, left)`` of the picture in the frame (pad, >= 0) or of the frame in the picture (crop).
        fit: "scale" (frame = picture), "pad" or "crop".
    """

    scale: float
    picture: tuple[int, int]
    frame: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    fit: Literal["scale", "pad", "crop"] = "scale"

    def describe(self) -> dict:
        """The plan as the summary's ``"fit"`` entry (sizes as ``[width, height]``, as the summary's others)."""
        d = asdict(self)
        d["picture"], d["frame"], d["offset"] = (list(v[::-1]) for v in (self.picture, self.frame, self.offset))
        return d

    def place(self, frames: np.ndarray) -> np.ndarray:
        """Put upscaled ``frames`` ``(T, *picture, C)`` into the frame: unchanged, padded with black, or cropped."""
        if frames.shape[1:3] != self.picture:
            raise ValueError(f"OutputPlan.place: frames of {frames.shape[1:3]} but the picture is {self.picture}")
        if self.fit == "scale":
            return frames
        (top, left), (fh, fw) = self.offset, self.frame
        if self.fit == "crop":
            return np.ascontiguousarray(frames[:, top : top + fh, left : left + fw])
        out = np.zeros((len(frames), fh, fw, frames.shape[3]), frames.dtype)
        out[:, top : top + self.picture[0], left : left + self.picture[1]] = frames
        return out


def parse_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (width x height, as ffmpeg writes it) -> ``(height, width)``; a clear error otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a size is WIDTHxHEIGHT, e.g. 1920x1080; got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"a size needs a positive width and height, got {text!r}")
    return h, w


def plan_output(height: int, width: int, scale: float | None = None, size: tuple[int, int] | None = None,
                fit: Fit = "pad", default_scale: float = 1.0) -> OutputPlan:
    """The `OutputPlan` of an input of ``height x width`` pixels for ``scale`` or a frame ``size`` ``(h, w)``
    (exclusive; neither: ``default_scale``, the checkpoint's)."""
    if scale is not None and size is not None:
        raise ValueError("give a scale factor or an output size, not both")
    if fit not in ("pad", "crop"):
        raise ValueError(f"fit must be 'pad' or 'crop', got {fit!r}")
    if size is None:
        factor = float(default_scale if scale is None else scale)
        if factor <= 0:
            raise ValueError(f"the scale factor must be positive, got {factor}")
        picture = output_size(height, width, factor)
        return OutputPlan(factor, picture, picture)
    fh, fw = size
    ry, rx = fh / height, fw / width
    factor = min(ry, rx) if fit == "pad" else max(ry, rx)
    # The binding axis gets the frame's side exactly; the other one is rounded (output_size) and placed.
    picture = (fh if factor == ry else round(height * factor), fw if factor == rx else round(width * factor))
    if fit == "pad":
        picture = (min(picture[0], fh), min(picture[1], fw))
        offset = ((fh - picture[0]) // 2, (fw - picture[1]) // 2)
    else:
        picture = (max(picture[0], fh), max(picture[1], fw))
        offset = ((picture[0] - fh) // 2, (picture[1] - fw) // 2)
    return OutputPlan(factor, picture, (fh, fw), offset, "scale" if picture == (fh, fw) else fit)
