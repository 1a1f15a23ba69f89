"""Episode videos: MP4 (imageio + imageio-ffmpeg, part of the ``[libero]`` extra) or GIF (Pillow only)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

VIDEO_FORMATS = ("mp4", "gif")


def write_video(frames: Sequence[np.ndarray], path: Path, fps: int = 20) -> Path:
    """Write uint8 (H, W, 3) frames to ``path``; the suffix (.mp4 or .gif) picks the format."""
    if not frames:
        raise ValueError(f"write_video({path}): no frames to write")
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"video path {path}: suffix {fmt!r}; expected one of {list(VIDEO_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "gif":
        from PIL import Image

        images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return path
    import imageio.v2 as imageio

    # macro_block_size=1 keeps odd sizes as they are; yuv420p makes the file play everywhere.
    with imageio.get_writer(
        str(path), fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p", ffmpeg_log_level="error"
    ) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    return path
