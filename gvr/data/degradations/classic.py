"""One-order classic degradation (RealBasicVSR / Real-ESRGAN style): blur, resize, noise, JPEG, H.264.

Every step has its own probability and parameter range. One blur kind and one noise kind hold for the
whole clip while their strengths drift a little from frame to frame (a bounded random walk, as in
RealBasicVSR), so the artefacts flicker the way real ones do without changing character.
"""

import io
import math
from typing import Literal, NoReturn

import av
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torchvision.io import decode_jpeg, encode_jpeg

from gvr.data.degradations.degradation import Degradation, check_input
from gvr.ops.resize import ResizeMode, resize

RESIZE_MODES: tuple[ResizeMode, ...] = ("bicubic", "bilinear", "area")
CODEC_FPS = 25  # nominal frame rate of the in-memory H.264 stream (CRF rate control barely depends on it)
# BT.709 RGB -> (Y, Cb, Cr) with Y in [0, 1] and Cb, Cr in [-0.5, 0.5]; 8-bit "limited range" scaling comes on top
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])
_RGB_TO_YUV = torch.stack(
    [_LUMA, (torch.tensor([0.0, 0.0, 1.0]) - _LUMA) / 1.8556, (torch.tensor([1.0, 0.0, 0.0]) - _LUMA) / 1.5748]
)
_YUV_TO_RGB = torch.linalg.inv(_RGB_TO_YUV)


def gaussian_kernels(size: int, sigma_x: torch.Tensor, sigma_y: torch.Tensor, angle: float) -> torch.Tensor:
    """Normalised Gaussian kernels (N, size, size), axes ``sigma_x`` / ``sigma_y`` (N,) rotated by ``angle`` (rad)."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    u = math.cos(angle) * x + math.sin(angle) * y  # coordinate along the rotated x axis
    v = -math.sin(angle) * x + math.cos(angle) * y  # coordinate along the rotated y axis
    sx, sy = sigma_x.double()[:, None, None], sigma_y.double()[:, None, None]
    k = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return (k / k.sum((1, 2), keepdim=True)).float()


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix to frames (T, 3, H, W); an elementwise sum, so the same bits on any thread count."""
    return (matrix[None, :, :, None, None] * x[:, None]).sum(2)


def rgb_to_yuv420(x: torch.Tensor) -> np.ndarray:
    """Frames (T, 3, H, W) in [0, 1], H and W even -> uint8 BT.709 limited-range yuv420p, PyAV layout (T, 3H/2, W).

    Done here, not by swscale, whose default rgb24 <-> yuv420p round trip darkens by about one 8-bit level.
    """
    t, _, h, w = x.shape
    yuv = _mix(_RGB_TO_YUV, x)
    y = (16 + 219 * yuv[:, 0]).round().clamp(0, 255).to(torch.uint8)  # (T, H, W)
    uv = (128 + 224 * F.avg_pool2d(yuv[:, 1:], 2)).round().clamp(0, 255).to(torch.uint8)  # (T, 2, H/2, W/2)
    return torch.cat([y.flatten(1), uv.flatten(1)], 1).view(t, h * 3 // 2, w).numpy()


def yuv420_to_rgb(planes: np.ndarray) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yuv420`, chroma upsampled bilinearly: (T, 3H/2, W) uint8 -> (T, 3, H, W) ~[0, 1]."""
    t, rows, w = planes.shape
    h = rows * 2 // 3
    p = torch.from_numpy(planes).flatten(1).float()
    y = (p[:, : h * w].view(t, 1, h, w) - 16) / 219
    uv = (p[:, h * w :].view(t, 2, h // 2, w // 2) - 128) / 224
    uv = F.interpolate(uv, size=(h, w), mode="bilinear", align_corners=False)
    return _mix(_YUV_TO_RGB, torch.cat([y, uv], 1))


def h264_roundtrip(planes: np.ndarray, crf: int, preset: str) -> np.ndarray:
    """Encode yuv420p frames (T, 3H/2, W) to H.264 (libx264) in memory at ``crf`` and decode them back."""
    _, rows, w = planes.shape
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=CODEC_FPS)
        stream.width, stream.height, stream.pix_fmt = w, rows * 2 // 3, "yuv420p"
        # Reproducibility: the bitstream depends on the thread count (workers are parallel already), and with
        # macroblock-tree rate control x264's SIMD code gives different bits for the same input now and then.
        stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "x264-params": "mbtree=0"}
        for frame in planes:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="yuv420p")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = np.stack([f.to_ndarray(format="yuv420p") for f in container.decode(video=0)])
    if decoded.shape != planes.shape:
        raise RuntimeError(f"H.264 round trip returned {decoded.shape}, expected {planes.shape}")
    return decoded


def _uniform(bounds: tuple[float, float], g: torch.Generator) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * float(torch.rand((), generator=g))


def _happens(prob: float, g: torch.Generator) -> bool:
    return float(torch.rand((), generator=g)) < prob


def _drift(bounds: tuple[float, float], step: float, frames: int, g: torch.Generator) -> torch.Tensor:
    """A per-frame parameter (frames,): uniform start in ``bounds``, then a random walk of ``step``, kept in bounds."""
    values = [_uniform(bounds, g)]
    for delta in ((torch.rand(frames - 1, generator=g) * 2 - 1) * step).tolist():
        values.append(min(max(values[-1] + delta, bounds[0]), bounds[1]))
    return torch.tensor(values)


class ClassicDegradation(Degradation):
    """Blur -> resize -> noise -> JPEG -> H.264, each step with its own probability (stage-1 training pairs).

    Strengths are on the usual scales: blur sigma in HR pixels, noise sigma on 0..255, JPEG quality 1..100,
    x264 CRF 0..51. Runs on the CPU (dataloader workers), one thread: about 6 ms for (3, 5, 128, 128) ->
    48x48 and 0.3 s for (3, 17, 384, 672) -> 136x240, two thirds of it the HR blur. The result is a
    function of the input and the generator's state alone (bit-identical on any thread count).

    Args:
        blur_prob: probability of blurring the HR clip.
        blur_kernel_size: range of odd kernel sizes (cut to 4 sigma when smaller: a pure speed-up).
        blur_sigma: range of the Gaussian's standard deviation along each axis, in HR pixels.
        blur_sigma_step: largest frame-to-frame change of the blur sigmas.
        blur_aniso_prob: probability that the kernel is anisotropic (two sigmas, random rotation) not isotropic.
        resize_mode_probs: probabilities of bicubic, bilinear and area resizing (normalised to sum to 1).
        resize_antialias: low-pass bicubic / bilinear downsampling (False: aliasing as in Real-ESRGAN).
        noise_prob: probability of adding noise after resizing.
        noise_poisson_prob: probability that the noise is Poisson (shot) noise rather than Gaussian.
        noise_gray_prob: probability that the noise is the same in all channels (luma noise).
        noise_gaussian_sigma: range of the Gaussian noise standard deviation on the 0..255 scale.
        noise_gaussian_step: largest frame-to-frame change of the Gaussian sigma.
        noise_poisson_scale: range of the Poisson noise scale (1: photon count = 8-bit level).
        noise_poisson_step: largest frame-to-frame change of the Poisson scale.
        jpeg_prob: probability of JPEG-compressing every frame (libjpeg through torchvision).
        jpeg_quality: range of the JPEG quality.
        jpeg_quality_step: largest frame-to-frame change of the JPEG quality.
        codec_prob: probability of an H.264 round trip of the whole clip (libx264 through PyAV).
        codec_crf: range of the x264 constant rate factor (higher: stronger compression).
        codec_preset: x264 speed preset (faster presets compress worse at the same CRF).
    """

    def __init__(
        self,
        blur_prob: float = 1.0,
        blur_kernel_size: tuple[int, int] = (7, 21),
        blur_sigma: tuple[float, float] = (0.2, 3.0),
        blur_sigma_step: float = 0.02,
        blur_aniso_prob: float = 0.5,
        resize_mode_probs: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3),
        resize_antialias: bool = False,
        noise_prob: float = 1.0,
        noise_poisson_prob: float = 0.5,
        noise_gray_prob: float = 0.4,
        noise_gaussian_sigma: tuple[float, float] = (1.0, 15.0),
        noise_gaussian_step: float = 0.1,
        noise_poisson_scale: tuple[float, float] = (0.05, 2.0),
        noise_poisson_step: float = 0.005,
        jpeg_prob: float = 1.0,
        jpeg_quality: tuple[int, int] = (40, 95),
        jpeg_quality_step: float = 3.0,
        codec_prob: float = 0.5,
        codec_crf: tuple[int, int] = (18, 35),
        codec_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = "veryfast",
    ):
        def fail(name: str, value: object, must: str) -> NoReturn:
            raise ValueError(f"ClassicDegradation: {name} must be {must}, got {value!r}")

        probs = dict(blur_prob=blur_prob, blur_aniso_prob=blur_aniso_prob, noise_prob=noise_prob,
                     noise_poisson_prob=noise_poisson_prob, noise_gray_prob=noise_gray_prob,
                     jpeg_prob=jpeg_prob, codec_prob=codec_prob)
        for name, p in probs.items():
            if not 0 <= p <= 1:
                fail(name, p, "a probability in [0, 1]")
        ranges = dict(blur_kernel_size=(blur_kernel_size, 1, math.inf), blur_sigma=(blur_sigma, 1e-3, math.inf),
                      noise_gaussian_sigma=(noise_gaussian_sigma, 0, math.inf),
                      noise_poisson_scale=(noise_poisson_scale, 0, math.inf), jpeg_quality=(jpeg_quality, 1, 100),
                      codec_crf=(codec_crf, 0, 51))
        for name, (bounds, lo, hi) in ranges.items():
            if len(bounds) != 2 or not lo <= bounds[0] <= bounds[1] <= hi:
                fail(name, bounds, f"an ordered range (low, high) within [{lo}, {hi}]")
        if blur_kernel_size[0] % 2 == 0 or blur_kernel_size[1] % 2 == 0:
            fail("blur_kernel_size", blur_kernel_size, "a range of odd sizes")
        steps = dict(blur_sigma_step=blur_sigma_step, noise_gaussian_step=noise_gaussian_step,
                     noise_poisson_step=noise_poisson_step, jpeg_quality_step=jpeg_quality_step)
        for name, step in steps.items():
            if step < 0:
                fail(name, step, ">= 0")
        if len(resize_mode_probs) != 3 or min(resize_mode_probs) < 0 or sum(resize_mode_probs) <= 0:
            fail("resize_mode_probs", resize_mode_probs, "three weights >= 0 (bicubic, bilinear, area), sum > 0")

        self.blur_prob, self.blur_kernel_size, self.blur_sigma = blur_prob, tuple(blur_kernel_size), tuple(blur_sigma)
        self.blur_sigma_step, self.blur_aniso_prob = blur_sigma_step, blur_aniso_prob
        self.resize_mode_probs = torch.tensor(resize_mode_probs, dtype=torch.float64)
        self.resize_antialias = resize_antialias
        self.noise_prob, self.noise_poisson_prob, self.noise_gray_prob = noise_prob, noise_poisson_prob, noise_gray_prob
        self.noise_gaussian_sigma, self.noise_gaussian_step = tuple(noise_gaussian_sigma), noise_gaussian_step
        self.noise_poisson_scale, self.noise_poisson_step = tuple(noise_poisson_scale), noise_poisson_step
        self.jpeg_prob, self.jpeg_quality, self.jpeg_quality_step = jpeg_prob, tuple(jpeg_quality), jpeg_quality_step
        self.codec_prob, self.codec_crf, self.codec_preset = codec_prob, tuple(codec_crf), codec_preset

    def __call__(self, hr: torch.Tensor, lr_size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        size = check_input(hr, lr_size, type(self).__name__)
        g = generator
        # blur and resize act on each frame alone: keep the (3, T, H, W) layout, no HR copy
        x = hr.detach().cpu().float()
        # 1. blur (HR)
        if _happens(self.blur_prob, g):
            x = self.blur(x, g)
        # 2. resize to the LR size
        mode = RESIZE_MODES[int(torch.multinomial(self.resize_mode_probs, 1, generator=g))]
        x = rearrange(resize(x, size, mode, self.resize_antialias), "c t h w -> t c h w").add(1).div(2)  # [0, 1]
        # 3. noise
        if _happens(self.noise_prob, g):
            x = self.noise(x, g)
        # 4. JPEG, frame by frame
        if _happens(self.jpeg_prob, g):
            x = self.jpeg(x, g)
        # 5. H.264, the whole clip
        if _happens(self.codec_prob, g):
            x = self.codec(x, g)
        lr = x.clamp(0, 1).mul(2).sub(1).to(device=hr.device, dtype=hr.dtype)
        return rearrange(lr, "t c h w -> c t h w").contiguous()

    def blur(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Blur a clip ``x`` (3, T, H, W) with one kernel per frame, drifting around a random clip kernel."""
        c, t, h, w = x.shape
        sigma_x = _drift(self.blur_sigma, self.blur_sigma_step, t, g)
        if _happens(self.blur_aniso_prob, g):
            sigma_y = _drift(self.blur_sigma, self.blur_sigma_step, t, g)
            angle = _uniform((-math.pi, math.pi), g)
        else:
            sigma_y, angle = sigma_x, 0.0
        lo, hi = self.blur_kernel_size
        size = lo + 2 * int(torch.randint((hi - lo) // 2 + 1, (), generator=g))
        size = min(size, 2 * math.ceil(4 * max(sigma_x.max().item(), sigma_y.max().item())) + 1)
        weight = repeat(gaussian_kernels(size, sigma_x, sigma_y, angle), "t p q -> (c t) 1 p q", c=c)
        padded = F.pad(rearrange(x, "c t h w -> 1 (c t) h w"), [size // 2] * 4, mode="replicate")
        return rearrange(F.conv2d(padded, weight, groups=c * t), "1 (c t) h w -> c t h w", c=c)

    def noise(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Add Gaussian or Poisson noise to frames ``x`` (T, 3, h, w) in [0, 1], strength drifting per frame."""
        t = x.shape[0]
        gray = _happens(self.noise_gray_prob, g)
        if _happens(self.noise_poisson_prob, g):
            scale = _drift(self.noise_poisson_scale, self.noise_poisson_step, t, g)
            clean = x.clamp(0, 1)
            if gray:
                clean = kornia.color.rgb_to_grayscale(clean)
            noise = torch.poisson(clean * 255, generator=g) / 255 - clean
            return x + noise * scale[:, None, None, None]
        sigma = _drift(self.noise_gaussian_sigma, self.noise_gaussian_step, t, g) / 255
        noise = torch.randn(t, 1 if gray else 3, *x.shape[-2:], generator=g)
        return x + noise * sigma[:, None, None, None]

    def jpeg(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """JPEG-compress frames ``x`` (T, 3, h, w) in [0, 1], quality drifting per frame."""
        quality = _drift(self.jpeg_quality, self.jpeg_quality_step, x.shape[0], g).round().int().tolist()
        frames = x.mul(255).round().clamp(0, 255).to(torch.uint8)
        return torch.stack([decode_jpeg(encode_jpeg(f, quality=q)) for f, q in zip(frames, quality)]).float() / 255

    def codec(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """H.264 round trip of frames ``x`` (T, 3, h, w) in [0, 1] at a random CRF (odd sizes padded, cropped back)."""
        h, w = x.shape[-2:]
        crf = int(torch.randint(self.codec_crf[0], self.codec_crf[1] + 1, (), generator=g))
        even = F.pad(x.clamp(0, 1), (0, w % 2, 0, h % 2), mode="replicate")
        return yuv420_to_rgb(h264_roundtrip(rgb_to_yuv420(even), crf, self.codec_preset))[:, :, :h, :w]
