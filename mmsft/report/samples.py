"""Samples a report shows: rollouts as chat transcripts (the prompt — text and its images, e.g. a puzzle board — looked
up by sample id in the run's training data, then the model's completion and its reward), training rows for runs
without rollouts, and the first rows of each evaluation's predictions.

Rollout rows are read from ``<run>/rollouts/*.jsonl`` (first and last files, a few rows each). A row with
``messages`` (multi-turn agent episodes) is shown turn by turn; a string field naming a GIF / MP4 / image inside the
run folder (an episode recording) is embedded. Model text is hostile input: it is cut to a fixed length here and
escaped by the template; every read is bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mmsft.report.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Embedded, MediaBudget, embed_file

MAX_TEXT = 1500
MAX_ROWS_SCANNED = 500_000
MAX_FIELD = 200


def clip(text: Any, limit: int = MAX_TEXT) -> str:
    text = text if isinstance(text, str) else json.dumps(text, default=str, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def short(value: Any, limit: int = MAX_FIELD) -> str:
    """A field value for a chip: numbers to 4 significant digits, text clipped."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return clip(value, limit)


@dataclass
class Turn:
    role: str
    text: str
    media: list[Embedded] = field(default_factory=list)


@dataclass
class Transcript:
    title: str
    turns: list[Turn] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    media: list[Embedded] = field(default_factory=list)


def _jsonl_rows(path: Path, limit: int | None = None) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) for each readable object line; bounded by ``limit`` objects and MAX_ROWS_SCANNED lines."""
    count = 0
    try:
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if line_no > MAX_ROWS_SCANNED or (limit is not None and count >= limit):
                    return
                try:
                    row = json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError, RecursionError):
                    continue
                if isinstance(row, dict):
                    count += 1
                    yield line_no, row
    except OSError:
        return


def _media_policy(config: dict[str, Any] | None) -> Any:
    from mmsft.data.schema import MediaPolicy

    data = (config or {}).get("data") or {}
    roots = data.get("media_roots") or []
    return MediaPolicy.from_config(roots if isinstance(roots, list) else [], bool(data.get("allow_any_media_path")))


def lookup_samples(config: dict[str, Any] | None, ids: set[str] | None, limit: int) -> dict[str, Any]:
    """Samples of the run's training JSONL by id (``ids`` None: the first ``limit`` rows), validated with the run's
    media policy; rows that fail validation are skipped. Saved-dataset folders are not scanned."""
    from mmsft.data.schema import DataError, sample_from_dict

    path_text = ((config or {}).get("data") or {}).get("train_path") or ""
    path = Path(str(path_text))
    if not path_text or not path.is_file():
        return {}
    policy = _media_policy(config)
    found: dict[str, Any] = {}
    for line_no, row in _jsonl_rows(path):
        sample_id = str(row.get("id", line_no - 1))
        if ids is not None and sample_id not in ids:
            continue
        try:
            found[sample_id] = sample_from_dict(row, f"{path}:{line_no}", path.parent, media=policy)
        except (DataError, TypeError, ValueError):
            continue
        if len(found) >= limit or (ids is not None and len(found) >= len(ids)):
            break
    return found


def _sample_turns(sample: Any, budget: MediaBudget, with_target: bool) -> list[Turn]:
    turns = []
    for message in sample.messages if with_target else sample.prompt_messages:
        media = []
        for part in message.parts:
            if part.type in ("image", "video") and part.path:
                item = embed_file(Path(part.path), budget)
                if item is not None:
                    media.append(item)
        turns.append(Turn(message.role, clip(message.text), media))
    return turns


def _message_turns(messages: list[Any], base: Path, budget: MediaBudget, root: Path) -> list[Turn]:
    turns = []
    for message in messages[:50]:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        texts, media = [], []
        for part in content if isinstance(content, list) else [content]:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                for key in ("image", "video"):
                    if isinstance(part.get(key), str):
                        item = embed_file(base / part[key], budget, root)
                        if item is not None:
                            media.append(item)
        turns.append(Turn(str(message.get("role", "?"))[:20], clip("".join(texts)), media))
    return turns


def _episode_turns(turns: list[Any]) -> list[Turn]:
    """Turns of an episode log row (``{"prompt", "output", "outcome", "reward", ...}`` each)."""
    out = []
    for turn in turns[:50]:
        if not isinstance(turn, dict):
            continue
        if turn.get("prompt") is not None:
            out.append(Turn("user", clip(turn["prompt"])))
        notes = ", ".join(f"{k}: {short(turn[k], 80)}" for k in ("outcome", "reward") if turn.get(k) is not None)
        out.append(Turn("assistant", clip(turn.get("output", "")) + (f"\n[{notes}]" if notes else "")))
    return out


def _media_fields(row: dict[str, Any], base: Path, budget: MediaBudget, root: Path) -> list[Embedded]:
    out = []
    for value in row.values():
        if isinstance(value, str) and len(value) < 512 and value.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES
                                                                                   + (".gif",)):
            path = base / value
            if path.is_file():
                item = embed_file(path, budget, root)
                if item is not None:
                    out.append(item)
    return out


def pick_rollout_rows(files: list[Path], per_file: int) -> list[tuple[Path, int, dict[str, Any]]]:
    """A few rows of the first and the last rollout file (training progress shows between them)."""
    chosen = [files[0], files[-1]] if len(files) > 1 else list(files)
    return [(path, line_no, row) for path in chosen for line_no, row in _jsonl_rows(path, per_file)]


def rollout_transcripts(run_path: Path, files: list[Path], config: dict[str, Any] | None, budget: MediaBudget,
                        max_rows: int) -> list[Transcript]:
    """Chat transcripts of sampled rollouts, prompts looked up in the training data."""
    if not files or max_rows <= 0:
        return []
    rows = pick_rollout_rows(files, max(1, max_rows // (2 if len(files) > 1 else 1)))[:max_rows]
    ids = {str(r["sample_id"]) for _, _, r in rows if "sample_id" in r and "messages" not in r}
    samples = lookup_samples(config, ids, len(ids)) if ids else {}
    out = []
    for path, line_no, row in rows:
        title = f"{path.stem} · line {line_no}" + (f" · sample {clip(row['sample_id'], 80)}" if "sample_id" in row else "")
        transcript = Transcript(title)
        if isinstance(row.get("messages"), list):
            transcript.turns = _message_turns(row["messages"], path.parent, budget, run_path)
        elif isinstance(row.get("turns"), list):  # an agent-loop episode: prompt / output per turn
            transcript.turns = _episode_turns(row["turns"])
        else:
            sample = samples.get(str(row.get("sample_id")))
            if sample is not None:
                transcript.turns = _sample_turns(sample, budget, with_target=False)
            completion = row.get("completion", row.get("response", row.get("text")))
            if completion is not None:
                transcript.turns.append(Turn("assistant", clip(completion)))
        for key, value in row.items():
            if key in ("messages", "turns", "completion", "response", "text", "sample_id"):
                continue
            if isinstance(value, (str, int, float, bool)) or value is None:
                transcript.fields[key[:40]] = short(value)
        transcript.media = _media_fields(row, path.parent, budget, run_path)
        out.append(transcript)
    return out


def data_transcripts(config: dict[str, Any] | None, budget: MediaBudget, count: int) -> list[Transcript]:
    """The first training rows (prompt and target) of a run without rollouts."""
    if count <= 0:
        return []
    out = []
    for sample_id, sample in lookup_samples(config, None, count).items():
        fields = {"answer": short(sample.answer)} if sample.answer is not None else {}
        out.append(Transcript(f"training sample {clip(sample_id, 80)}", _sample_turns(sample, budget, True), fields))
    return out


def table_rows(path: Path, count: int) -> tuple[list[str], list[list[str]]]:
    """Columns and the first ``count`` rows of a JSONL file, every cell cut short."""
    rows = [row for _, row in _jsonl_rows(path, count)]
    columns = list(dict.fromkeys(k for row in rows for k in row))[:12]
    return columns, [[clip(row.get(c, ""), 300) for c in columns] for row in rows]
