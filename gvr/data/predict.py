"""`gvr predict`: LR videos cut into overlapping chunks, and a writer that blends them back into files.

The dataset yields one temporal window of one video per item (in order); the writer cross-fades the
upscaled windows with :class:`gvr.upscale.ChunkBlender` and streams finished frames to an mp4 per
input video. Memory stays bounded by one window, whatever the length of the videos.
"""

from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import Dataset

from gvr.data.video import VideoError, VideoWriter, frames_to_tensor, probe_video, read_video, tensor_to_frames
from gvr.upscale import MIN_FRAMES, ChunkBlender, output_size, plan_chunks


class VideoChunkDataset(Dataset):
    """Overlapping temporal windows of each input video, in playback order."""

    def __init__(self, paths: list[str], scale: float, chunk: int = 17, overlap: int = 4, align: int = 1):
        self.items: list[dict] = []
        for v, path in enumerate(paths):
            info = probe_video(path)
            if info.frames < MIN_FRAMES:
                raise VideoError(f"{path} has {info.frames} frame(s); upscaling needs at least {MIN_FRAMES}")
            plan = plan_chunks(info.frames, chunk, overlap, align)
            size = output_size(info.height, info.width, scale)  # exact output (height, width)
            for k, (start, end) in enumerate(plan):
                nxt = plan[k + 1][0] if k + 1 < len(plan) else -1
                self.items.append({"path": path, "video": v, "start": start, "frames": end - start, "next_start": nxt,
                                   "out_h": size[0], "out_w": size[1], "fps": info.fps})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        frames, _ = read_video(item["path"], item["start"], item["frames"])
        return {**item, "lr": frames_to_tensor(frames)}


class VideoPredictionWriter(BasePredictionWriter):
    """Writes each upscaled input video to ``<output_dir>/<stem>_x<scale>.mp4`` (never overwrites).

    Args:
        output_dir: folder for the upscaled videos (created if missing).
        crf: H.264 quality of the outputs (lower is better).
    """

    def __init__(self, output_dir: str = "outputs", crf: int = 18):
        super().__init__(write_interval="batch")
        self.output_dir, self.crf = Path(output_dir), crf
        self._open: dict[str, tuple[VideoWriter, ChunkBlender]] = {}

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0) -> None:
        for i, path in enumerate(prediction["path"]):
            if path not in self._open:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                h, w = int(prediction["out_h"][i]), int(prediction["out_w"][i])
                out = self.output_dir / f"{Path(path).stem}_x{pl_module.hparams.scale:g}.mp4"
                writer = VideoWriter(out, float(prediction["fps"][i]), w, h, crf=self.crf)
                self._open[path] = (writer, ChunkBlender())
            writer, blender = self._open[path]
            nxt = int(prediction["next_start"][i])
            frames = tensor_to_frames(prediction["output"][i].cpu()).astype(np.float32)
            writer.write(blender.add(int(prediction["start"][i]), frames, nxt if nxt >= 0 else None))
            if nxt < 0:
                writer.close()
                del self._open[path]
