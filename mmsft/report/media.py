"""Images, GIFs and videos as ``data:`` URIs under a byte budget, so a report opens without a server and stays small.

Images become thumbnails (longest side ``thumb_px``, PNG). A GIF is embedded as is when it fits the per-item cap,
else re-encoded smaller (frames sampled evenly, each thumbnailed). An MP4 / WebM is embedded as a ``<video>`` when it
fits the cap, else turned into a GIF thumbnail through PyAV (the ``[video]`` extra) when that is installed. Whatever
would exceed the budget is left out, and the report says so. Files are opened with Pillow's decompression-bomb guard
and only read from inside the folder being reported on.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm")
MAX_GIF_FRAMES = 32
MAX_SOURCE_BYTES = 200 * 2**20  # larger media files are not opened at all


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


@dataclass
class Embedded:
    """One embedded item: ``kind`` is image or video; ``uri`` a data: URI; ``note`` says what was done to it."""

    kind: str
    uri: str
    name: str
    note: str = ""


@dataclass
class MediaBudget:
    """Bytes left for media (base64 size counted) and what was left out."""

    total: int
    per_item: int
    thumb_px: int = 256
    used: int = 0
    omitted: list[str] = field(default_factory=list)

    def take(self, size: int) -> bool:
        if self.used + size > self.total:
            return False
        self.used += size
        return True


def _encoded_size(payload: bytes) -> int:
    return 4 * ((len(payload) + 2) // 3)


def _thumbnail_png(image: Image.Image, px: int) -> bytes:
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    image.thumbnail((px, px))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _gif_from_frames(frames: list[Image.Image], px: int, duration_ms: int) -> bytes:
    small = []
    for frame in frames:
        frame = frame.convert("RGB")
        frame.thumbnail((px, px))
        small.append(frame.quantize(colors=128, method=Image.Quantize.FASTOCTREE))
    buffer = io.BytesIO()
    small[0].save(buffer, format="GIF", save_all=True, append_images=small[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def _sample(frames: list, count: int) -> list:
    if len(frames) <= count:
        return frames
    return [frames[round(i * (len(frames) - 1) / (count - 1))] for i in range(count)]


def _shrink(frames: list[Image.Image], total_ms: float, budget: MediaBudget, what: str) -> tuple[bytes, str]:
    """Re-encode frames as a GIF, halving the size and frame count until it fits the per-item cap (or 32 px)."""
    px, count = max(budget.thumb_px // 2, 32), MAX_GIF_FRAMES
    while True:
        picked = _sample(frames, count)
        payload = _gif_from_frames(picked, px, max(int(total_ms / max(len(picked), 1)), 40))
        if _encoded_size(payload) <= budget.per_item or px <= 32:
            return payload, f"{what}: {len(picked)} of {len(frames)} frames at {px}px"
        px, count = px // 2, max(8, count // 2)


def _gif(path: Path, budget: MediaBudget) -> tuple[bytes, str]:
    raw = path.read_bytes()
    if _encoded_size(raw) <= budget.per_item:
        return raw, ""
    with Image.open(path) as image:
        durations, frames = [], []
        for frame in ImageSequence.Iterator(image):
            durations.append(frame.info.get("duration", 50) or 50)
            frames.append(frame.copy())
            if len(frames) >= 2000:
                break
    return _shrink(frames, float(sum(durations)), budget, "re-encoded")


def _video_gif(path: Path, budget: MediaBudget) -> tuple[bytes, str]:
    import av  # the [video] extra

    frames: list[Image.Image] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 20)
        for index, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_image())
            if index >= 2000:
                break
    return _shrink(frames, 1000.0 * len(frames) / rate, budget, "GIF preview")


def embed_file(path: Path, budget: MediaBudget, root: Path | None = None) -> Embedded | None:
    """Embed one media file (None when it is outside ``root``, unreadable, or over the budget; the reason is
    recorded in ``budget.omitted``)."""
    path = Path(path)
    name = path.name
    if budget.total - budget.used < 4096:
        budget.omitted.append(f"{name}: the report's media budget is spent")
        return None
    try:
        resolved = path.resolve()
        if root is not None and not resolved.is_relative_to(Path(root).resolve()):
            budget.omitted.append(f"{name}: outside {root}")
            return None
        if resolved.stat().st_size > MAX_SOURCE_BYTES:
            budget.omitted.append(f"{name}: larger than {MAX_SOURCE_BYTES // 2**20} MB")
            return None
        suffix = path.suffix.lower()
        note = ""
        if suffix == ".gif":
            payload, note = _gif(resolved, budget)
            kind, mime = "image", "image/gif"
        elif suffix in VIDEO_SUFFIXES:
            payload = resolved.read_bytes()
            kind, mime = "video", mimetypes.types_map.get(suffix, "video/mp4")
            if _encoded_size(payload) > budget.per_item:
                try:
                    payload, note = _video_gif(resolved, budget)
                    kind, mime = "image", "image/gif"
                except ImportError:
                    budget.omitted.append(f"{name}: {len(payload) // 1024} KB video (install the [video] extra for a "
                                          "GIF preview)")
                    return None
        elif suffix in IMAGE_SUFFIXES:
            with Image.open(resolved) as image:
                payload = _thumbnail_png(image, budget.thumb_px)
            kind, mime = "image", "image/png"
        else:
            return None
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError, EOFError) as exc:
        budget.omitted.append(f"{name}: unreadable ({type(exc).__name__})")
        return None
    except Exception as exc:  # noqa: BLE001 — a broken video container (av.error.*) must not stop the report
        budget.omitted.append(f"{name}: unreadable ({type(exc).__name__})")
        return None
    size = _encoded_size(payload)
    if size > budget.per_item or not budget.take(size):
        budget.omitted.append(f"{name}: {size // 1024} KB over the report's media budget")
        return None
    return Embedded(kind, data_uri(payload, mime), name, note)


def embed_png_bytes(payload: bytes, name: str) -> Embedded:
    """A figure made for the report (curves): always embedded, not counted against the media budget."""
    return Embedded("image", data_uri(payload, "image/png"), name)
