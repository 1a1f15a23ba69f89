"""The Sample / Message schema every loader produces and every adapter consumes.

A JSONL row (one per line; media paths are relative to the JSONL file)::

    {"id": "ex-1",
     "messages": [{"role": "user", "content": [{"type": "image", "image": "images/1.png"},
                                                {"type": "text", "text": "What colour is the shape?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
     "answer": "red", "meta": {...}}

The last assistant message is the training target. For a VLA the target may instead be ``"actions"``: a list of
action vectors, tokenised by the model's action tokenizer. ``content`` may also be a plain string (text only).

Media paths are contained (:class:`MediaPolicy`): relative paths, absolute paths and ``file://`` URLs must resolve
(symlinks followed) under the data root — the JSONL's folder, or a saved dataset's folder — or one of
``data.media_roots``; anything else is an error naming the file, line, sample id and path, unless
``data.allow_any_media_path`` is set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlparse

PART_TYPES = ("text", "image", "video")
ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A bad input row; the message names the file, the line or sample id, and what was expected."""


@dataclass(frozen=True)
class MediaPolicy:
    """Where media files may live: under the data root or one of ``roots``; ``allow_any`` lifts the restriction."""

    roots: tuple[Path, ...] = ()
    allow_any: bool = False

    @classmethod
    def from_config(cls, media_roots: Iterable[str] = (), allow_any_media_path: bool = False) -> "MediaPolicy":
        """From ``data.media_roots`` (relative entries resolve against the working directory) and the opt-out."""
        return cls(tuple(Path(r).resolve() for r in media_roots), allow_any_media_path)

    def allowed(self, base_dir: Path | None) -> tuple[Path, ...] | None:
        """The resolved folders media may lie under for rows read from ``base_dir``; None means unchecked."""
        return _allowed(self, None if base_dir is None else Path(base_dir).absolute())


@functools.lru_cache(maxsize=64)
def _allowed(policy: MediaPolicy, base_dir: Path | None) -> tuple[Path, ...] | None:
    if policy.allow_any:
        return None
    roots = ((base_dir.resolve(),) if base_dir is not None else ()) + policy.roots
    return roots or None


@dataclass(frozen=True)
class Part:
    type: str
    text: str | None = None
    path: str | None = None  # absolute path of an image or video file
    # an in-memory image (H×W×3 uint8 array) instead of a file, e.g. a simulator frame; never written to disk
    array: Any = field(default=None, compare=False, repr=False)

    def to_hf(self) -> dict[str, Any]:
        """The part in Hugging Face chat-template form (``{"type": "image"}`` etc.)."""
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {"type": self.type, self.type: self.path}


@dataclass(frozen=True)
class Message:
    role: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p.text or "" for p in self.parts if p.type == "text")


@dataclass
class Sample:
    id: str
    messages: list[Message]
    answer: Any = None
    actions: list[list[float]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"  # "file.jsonl:LINE" for error messages
    weight: float | None = None  # per-sample loss weight (every target token), e.g. data-quality weights
    token_weights: list[float] | None = None  # one weight per supervised target token (FAIT, TL-Training)

    @property
    def prompt_messages(self) -> list[Message]:
        """Messages before the target (all but a trailing assistant message)."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[:-1]
        return list(self.messages)

    @property
    def target(self) -> Message | None:
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[-1]
        return None

    def media(self, kind: str) -> list[str]:
        """File paths of the prompt's ``kind`` parts (in-memory images are not files: see :meth:`image_parts`)."""
        return [p.path for m in self.prompt_messages for p in m.parts if p.type == kind and p.path is not None]

    def image_parts(self) -> list[Part]:
        """The prompt's image parts in order, file-backed or in-memory (``Part.array``)."""
        return [p for m in self.prompt_messages for p in m.parts if p.type == "image"]

    def where(self) -> str:
        return f"{self.source} (sample id {self.id!r})"


def _parse_part(raw: Any, where: str, base_dir: Path | None, allowed: tuple[Path, ...] | None) -> Part:
    if not isinstance(raw, dict) or "type" not in raw:
        raise DataError(f"{where}: content part must be an object with a 'type' key, got {raw!r}")
    kind = raw["type"]
    if kind not in PART_TYPES:
        raise DataError(f"{where}: content part type {kind!r} is not one of {PART_TYPES}")
    if kind == "text":
        text = raw.get("text")
        if not isinstance(text, str):
            raise DataError(f"{where}: text part needs a string 'text', got {text!r}")
        return Part("text", text=text)
    ref = raw.get(kind)
    if not isinstance(ref, str) or not ref:
        raise DataError(f"{where}: {kind} part needs a file path under key {kind!r}, got {ref!r}")
    return Part(kind, path=str(media_path(ref, f"{where}: {kind} path {ref!r}", base_dir, allowed)))


def media_path(ref: str, where: str, base_dir: Path | None, allowed: tuple[Path, ...] | None) -> Path:
    """The file a media reference names: relative to ``base_dir``, absolute, or a ``file://`` URL; with ``allowed``
    (resolved roots) the resolved path must lie under one of them."""
    if "\x00" in ref:
        raise DataError(f"{where}: contains a NUL character")
    if "://" in ref or ref.startswith("file:"):
        url = urlparse(ref)
        if url.scheme != "file":
            raise DataError(f"{where}: only local files and file:// URLs are supported, not {url.scheme}:// URLs")
        if url.netloc not in ("", "localhost"):
            raise DataError(f"{where}: file:// URL names a remote host {url.netloc!r}")
        path = Path(unquote(url.path))
    else:
        path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if allowed is None:
        return path
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root) for root in allowed):
        folders = ", ".join(map(str, allowed))
        raise DataError(f"{where} resolves to {resolved}, outside the data root and data.media_roots ({folders}); "
                        "move the file there, list its folder in data.media_roots, or set "
                        "data.allow_any_media_path=true")
    return resolved


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _weights(row: dict, where: str) -> tuple[float | None, list[float] | None]:
    """Optional ``weight`` (a number) and ``token_weights`` (a list of numbers, one per target token)."""
    weight, token_weights = row.get("weight"), row.get("token_weights")
    if weight is not None and not _finite_number(weight):
        raise DataError(f"{where}: 'weight' must be a finite number, got {weight!r}")
    if token_weights is not None:
        if not isinstance(token_weights, list) or not token_weights or not all(map(_finite_number, token_weights)):
            raise DataError(f"{where}: 'token_weights' must be a non-empty list of finite numbers "
                            "(one per target token)")
        token_weights = [float(w) for w in token_weights]
    return (float(weight) if weight is not None else None), token_weights


def sample_from_dict(row: Any, source: str, base_dir: Path | None = None, index: int = 0,
                     media: MediaPolicy | None = None) -> Sample:
    """Validate one raw row and turn it into a :class:`Sample`; errors name ``source`` and what was expected.

    Media paths resolve against ``base_dir`` and must lie under it or ``media.roots`` (see :class:`MediaPolicy`).
    Without a ``base_dir`` or roots (rows built in code) paths are not checked.
    """
    if not isinstance(row, dict):
        raise DataError(f"{source}: each row must be a JSON object, got {type(row).__name__}")
    allowed = (media or MediaPolicy()).allowed(base_dir)
    raw_id = row.get("id", index)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise DataError(f"{source}: 'id' must be a string or an integer, got {raw_id!r}")
    sample_id = str(raw_id)
    where = f"{source} (sample id {sample_id!r})"
    raw_messages = row.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise DataError(f"{where}: expected a non-empty list under 'messages'")
    messages = []
    for m_index, raw_message in enumerate(raw_messages):
        m_where = f"{where} message {m_index}"
        if not isinstance(raw_message, dict):
            raise DataError(f"{m_where}: expected an object with 'role' and 'content'")
        role = raw_message.get("role")
        if role not in ROLES:
            raise DataError(f"{m_where}: role {role!r} is not one of {ROLES}")
        content = raw_message.get("content")
        if isinstance(content, str):
            parts = (Part("text", text=content),)
        elif isinstance(content, list) and content:
            parts = tuple(_parse_part(p, f"{m_where} part {i}", base_dir, allowed) for i, p in enumerate(content))
        else:
            raise DataError(f"{m_where}: 'content' must be a string or a non-empty list of parts")
        messages.append(Message(role, parts))
    actions = row.get("actions")
    weight, token_weights = _weights(row, where)
    sample = Sample(id=sample_id, messages=messages, answer=row.get("answer"), actions=actions,
                    meta=dict(row.get("meta") or {}), source=source, weight=weight, token_weights=token_weights)
    if not sample.prompt_messages or not any(m.role == "user" for m in sample.prompt_messages):
        raise DataError(f"{where}: expected at least one 'user' message before the target")
    if actions is not None:
        if not isinstance(actions, list) or not actions or not all(isinstance(a, list) and a for a in actions):
            raise DataError(f"{where}: 'actions' must be a non-empty list of action vectors")
    return sample
