"""VideoRFT's semantic-consistency reward (Wang et al., arXiv 2505.12434; code QiWang98/VideoRFT ``grpo.py``).

For a completion, the text is the content of ``<think>...</think>`` (the whole completion when it has none) with
everything up to and including the first ``.`` dropped (the question restatement). A SigLIP-style dual encoder
embeds the text (its text tower truncates at its maximum length — 64 tokens for SigLIP, so only the start of the
reasoning counts) and every frame of the prompt's video (or its single image); with normalised embeddings
``s_f = <e_img(f), e_txt>`` and ``R = mean_f min(1, w · max(s_f, 0))``, ``w = 2``. R is 0 when the completion's
accuracy (:func:`tasks.video.rewards.accuracy_values`) is ≤ 0.

Frames come from :func:`mmsft.data.media.read_video` as **uint8** (16 frames at 2 fps and 128·28² pixels, the
papers' training budget) and reach the encoder's image processor as uint8. The reference code re-decodes them as
float32 0..255 tensors and ``ToPILImage`` multiplies floats by 255 and wraps to uint8, so its video reward reads
colour-scrambled frames; ``replicate_frame_bug=True`` reproduces that (``(x · 255) mod 256``). Frame embeddings are
cached per (file, settings): the first completion of a group computes them, the other G−1 are cache hits (the
reference code re-encodes the frames G × 16 times per prompt).

The encoder is any SigLIP folder (``google/siglip-so400m-patch14-384`` on a user's machine: ``AutoModel``,
``AutoTokenizer``, ``AutoImageProcessor``), or the embedded tiny SigLIP (:mod:`tasks.video.siglip_tiny`, built
offline on the video world and shipped under ``assets/video_siglip_tiny``). Configure it with :func:`configure` (or
the ``semantic_*`` arguments of stage ``video_rl``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from envs.verdict import too_long
from mmsft.data.media import MediaBudget, load_image, read_video
from mmsft.rewards import register_reward
from tasks.video.answers import extract_think
from tasks.video.rewards import accuracy_values

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENCODER = REPO_ROOT / "assets" / "video_siglip_tiny"
"""The embedded tiny SigLIP (built by ``scripts/build_video_siglip.py``)."""


class FrameTextEncoder(Protocol):
    """A dual encoder: L2-normalised embeddings of texts and of uint8 RGB frames."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray: ...  # (N, D)

    def embed_frames(self, frames: np.ndarray) -> np.ndarray: ...  # (T, H, W, 3) uint8 -> (T, D)


@dataclass(frozen=True)
class SemanticSettings:
    encoder: str = ""  # SigLIP folder; "" = the embedded tiny SigLIP
    w_scale: float = 2.0
    replicate_frame_bug: bool = False
    frames: int = 16
    video_max_pixels: int = 128 * 28 * 28
    video_fps: float = 2.0
    image_max_pixels: int = 256 * 28 * 28
    device: str = "cpu"
    cache_size: int = 256

    def budget(self) -> MediaBudget:
        """The frame budget (VideoRFT's qwen-vl-utils: FPS_MIN_FRAMES = FPS_MAX_FRAMES = 16, i.e. always 16 frames,
        fewer only when the video has fewer)."""
        return MediaBudget(image_max_pixels=self.image_max_pixels, video_max_pixels=self.video_max_pixels,
                           video_fps=self.video_fps, video_min_frames=self.frames, video_max_frames=self.frames)


def reasoning_text(completion: str) -> str:
    """The text VideoRFT embeds: ``<think>`` content (else the completion) after its first ``.``, left-stripped."""
    think = extract_think(completion)
    text = completion if think is None else think
    cut = text.find(".")
    return text[cut + 1:].lstrip() if cut >= 0 else text


def wrap_like_reference(frames: np.ndarray) -> np.ndarray:
    """The reference code's frames: float 0..255 through ``ToPILImage`` (× 255, cast to uint8, wrapping)."""
    return ((frames.astype(np.int64) * 255) % 256).astype(np.uint8)


def similarity_reward(frame_embeds: np.ndarray, text_embed: np.ndarray, w_scale: float = 2.0) -> float:
    """``mean_f min(1, w · max(<e_f, e_t>, 0))`` over the frames (rows of ``frame_embeds``)."""
    sims = frame_embeds.astype(np.float64) @ text_embed.astype(np.float64)
    return float(np.mean(np.minimum(1.0, w_scale * np.maximum(sims, 0.0))))


class SiglipEncoder:
    """A Hugging Face SigLIP folder as a :class:`FrameTextEncoder` (normalised ``get_*_features`` outputs)."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"semantic reward encoder {path} is not a model folder (no config.json); build "
                                    "the embedded one with `python scripts/build_video_siglip.py` or pass a SigLIP "
                                    "folder")
        self.torch = torch
        self.model = AutoModel.from_pretrained(str(path)).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.image_processor = AutoImageProcessor.from_pretrained(str(path))
        self.device = device
        text_config = self.model.config.text_config
        self.max_length = int(getattr(text_config, "max_position_embeddings", 64))
        self.name = str(path)

    @staticmethod
    def _tensor(out: Any) -> Any:
        return out if hasattr(out, "norm") else out.pooler_output

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised text embeddings; lone surrogates (not encodable text) become ``?`` first."""
        torch = self.torch
        clean = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
        batch = self.tokenizer(clean, padding="max_length", truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        with torch.no_grad():
            out = self._tensor(self.model.get_text_features(input_ids=batch["input_ids"].to(self.device)))
        return torch.nn.functional.normalize(out.float(), dim=-1).cpu().numpy()

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        torch = self.torch
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        pixels = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            out = self._tensor(self.model.get_image_features(pixel_values=pixels.to(self.device)))
        return torch.nn.functional.normalize(out.float(), dim=-1).cpu().numpy()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


@dataclass
class SemanticScorer:
    """Scores completions against their prompt's media with a :class:`FrameTextEncoder`; caches frame embeddings."""

    settings: SemanticSettings = field(default_factory=SemanticSettings)
    encoder: FrameTextEncoder | None = None
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _encoder(self) -> FrameTextEncoder:
        if self.encoder is None:
            self.encoder = SiglipEncoder(self.settings.encoder or DEFAULT_ENCODER, self.settings.device)
        return self.encoder

    def frames_of(self, sample: Any) -> np.ndarray:
        """The uint8 frames the reward compares with: the video's sampled frames, or the one image."""
        where = getattr(sample, "where", lambda: str(getattr(sample, "id", "?")))()
        budget = self.settings.budget()
        videos, images = _media(sample, "video"), _media(sample, "image")
        if videos:
            frames = read_video(videos[0], where, budget).frames
        else:
            frames = np.asarray(load_image(images[0], where, budget), dtype=np.uint8)[None]
        if self.settings.replicate_frame_bug and videos:
            frames = wrap_like_reference(frames)
        return frames

    def frame_embeddings(self, sample: Any) -> np.ndarray | None:
        """Cached (T, D) frame embeddings of a sample's media; None when it has no image or video."""
        media = _media(sample, "video") or _media(sample, "image")
        if not media:
            return None
        key = (media[0], self.settings)
        with self._lock:
            if key in self._cache:
                self.stats.hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
            self.stats.misses += 1
        embeds = self._encoder().embed_frames(self.frames_of(sample))
        with self._lock:
            self._cache[key] = embeds
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        return embeds

    def score(self, samples: Sequence[Any], completions: Sequence[str], accuracies: Sequence[float]) -> list[float]:
        """The gated semantic reward of each completion (see the module docstring)."""
        out = [0.0] * len(completions)
        todo = [i for i, text in enumerate(completions) if accuracies[i] > 0 and not too_long(text)]
        if not todo:
            return out
        frames = {i: self.frame_embeddings(samples[i]) for i in todo}
        todo = [i for i in todo if frames[i] is not None]
        if not todo:
            return out
        texts = self._encoder().embed_text([reasoning_text(completions[i]) for i in todo])
        for row, i in enumerate(todo):
            out[i] = similarity_reward(frames[i], texts[row], self.settings.w_scale)
        return out


def _media(sample: Any, kind: str) -> list[str]:
    getter = getattr(sample, "media", None)
    return list(getter(kind)) if callable(getter) else []


_SCORER = SemanticScorer()


def configure(encoder: FrameTextEncoder | str | Path | None = None, **settings: Any) -> SemanticScorer:
    """Set the encoder (a SigLIP folder, an encoder object, or None for the embedded one) and settings of the
    ``videorft_semantic`` reward; returns the new scorer (its cache starts empty)."""
    global _SCORER
    base = replace(SemanticSettings(), **settings)
    if isinstance(encoder, (str, Path)):
        base = replace(base, encoder=str(encoder))
        encoder = None
    _SCORER = SemanticScorer(base, encoder)
    return _SCORER


def current_scorer() -> SemanticScorer:
    return _SCORER


@register_reward("videorft_semantic")
def videorft_semantic(samples: Sequence[Any], completions: Sequence[str], **columns: Any) -> list[float]:
    """VideoRFT's semantic-consistency reward, gated on accuracy > 0 (see the module docstring)."""
    return _SCORER.score(samples, completions, accuracy_values(samples, completions, columns))


__all__ = ["DEFAULT_ENCODER", "FrameTextEncoder", "SemanticScorer", "SemanticSettings", "SiglipEncoder", "configure",
           "current_scorer", "reasoning_text", "similarity_reward", "videorft_semantic", "wrap_like_reference"]
