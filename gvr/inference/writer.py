"""`gvr predict`'s output: a prediction writer that cross-fades the upscaled windows of each input video
(:class:`gvr.ops.chunks.ChunkBlender`) and streams finished frames to one mp4 per input. Memory stays bounded
by one window, whatever the length of the videos.
"""

from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from gvr.data.video import VideoWriter, tensor_to_frames
from gvr.ops.chunks import ChunkBlender


class VideoPredictionWriter(BasePredictionWriter):
    """Writes each upscaled input video to ``<output_dir>/<stem>_x<scale>.mp4`` (never overwrites), with the
    input's audio, subtitle and data streams copied (`gvr.data.streams`; frames at the input's average rate).

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
                writer = VideoWriter(out, float(prediction["fps"][i]), w, h, crf=self.crf, streams_from=path)
                self._open[path] = (writer, ChunkBlender())
            writer, blender = self._open[path]
            nxt = int(prediction["next_start"][i])
            frames = tensor_to_frames(prediction["output"][i].cpu()).astype(np.float32)
            writer.write(blender.add(int(prediction["start"][i]), frames, nxt if nxt >= 0 else None))
            if nxt < 0:
                writer.close()
                del self._open[path]
