"""The Sample / Message schema every loader produces and every adapter consumes.

A JSONL row (one per line; media paths are relative to the JSONL file)::

    {"id": "ex-1",
     "messages": [{"role": "user", "content": [{"type": "image", "image": "images/1.png"},
                                                {"type": "text", "text": "What colour is the shape?"}]},
                  {"role": "assistant", "content": [{"type": "text", "text": "red"}]}],
     "answer": "red", "meta": {...}}

The last assistant message is the training target. For a VLA the target may instead be ``"actions"``: a list of
action vectors, tokenised by the model's action tokenizer. ``content`` may also be a plain string (text only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PART_TYPES = ("text", "image", "video")
ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A bad input row; the message names the file, the line or sample id, and what was expected."""


@dataclass(frozen=True)
class Part:
    type: str
    text: str | None = None
    path: str | None = None  # absolute path of an image or video file

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
        return [p.path for m in self.prompt_messages for p in m.parts if p.type == kind and p.path is not None]

    def where(self) -> str:
        return f"{self.source} (sample id {self.id!r})"


def _parse_part(raw: Any, where: str, base_dir: Path | None) -> Part:
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
    path = Path(ref.removeprefix("file://"))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return Part(kind, path=str(path))


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


def sample_from_dict(row: Any, source: str, base_dir: Path | None = None, index: int = 0) -> Sample:
    """Validate one raw row and turn it into a :class:`Sample`; errors name ``source`` and what was expected."""
    if not isinstance(row, dict):
        raise DataError(f"{source}: each row must be a JSON object, got {type(row).__name__}")
    sample_id = str(row.get("id", index))
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
            parts = tuple(_parse_part(p, f"{m_where} part {i}", base_dir) for i, p in enumerate(content))
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
