"""`gvr predict` inputs: LR videos cut into overlapping temporal windows, one window of one video per item, in
order. The writer that blends the upscaled windows back into files is `gvr.inference.VideoPredictionWriter`.
"""

from torch.utils.data import Dataset

from gvr.data.video import VideoError, frames_to_tensor, probe_video, read_video
from gvr.ops.chunks import MIN_FRAMES, plan_chunks
from gvr.ops.resize import output_size


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
