"""Loaders for the released video-reasoning training files into mmsft :class:`~mmsft.data.schema.Sample`s.

Formats (JSON list or JSONL, one object per row)::

    {"problem_id": 2, "problem": "What appears on the screen ...?", "data_type": "video",
     "problem_type": "multiple choice", "options": ["A. Missile", "B. Rocket", ...],
     "process": "<think>...</think>", "solution": "<answer>C</answer>",
     "path": "./LLaVA-Video-178K/.../ytb_7nRmsEw7nsE.mp4", "data_source": "LLaVA-Video-178K/..."}

* ``video-r1`` (Video-R1-260k, RL prompts) and ``video-r1-cot`` (Video-R1-COT-165k, SFT), arXiv 2503.21776;
* ``videorft-rl`` (VideoRFT-RL-310K) and ``videorft-cot`` (VideoRFT-CoT-102K), arXiv 2505.12434.

The ``*-cot`` formats give SFT rows (system turn, user turn, assistant target ``process + "\\n" + solution``); the
others give prompt rows (user turn only) whose ``answer`` is the text inside ``<answer>``. The prompt is built as
the papers' scripts build it (:mod:`tasks.video.prompts`). Every field of a row is kept in ``Sample.meta`` (the
rewards read ``problem_type``, ``solution``, ``options`` and ``data_type`` from there; extra fields such as
``data_source`` ride along).

Media paths resolve relative to ``media_root`` (default: the file's folder) as the released scripts do
(``root + path[1:]`` for ``"./..."`` paths) and must lie under it or one of ``media_roots`` (mmsft's media
containment, see docs/reliability.md). **Unreadable rows** (not an object, a missing or mistyped field, an unknown
``problem_type`` / ``data_type``, a ``solution`` without ``<answer>`` tags, a CoT row whose ``process`` has no
``<think>`` tags, a multiple-choice row without options) are skipped and counted: :attr:`LoadReport.skipped` maps
each row id to its reason, ``strict=True`` raises on the first instead. A **missing media file** is always an error
naming the file, the row and the path.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from mmsft.data.schema import DataError, MediaPolicy, Message, Part, Sample, media_path
from tasks.video.answers import extract_answer, extract_think
from tasks.video.prompts import DATA_TYPES, PROBLEM_TYPES, SFT_SYSTEM_PROMPT, sft_target, user_prompt

FORMATS: dict[str, tuple[str, bool]] = {
    "video-r1": ("video-r1", False),
    "video-r1-cot": ("video-r1", True),
    "videorft-rl": ("videorft", False),
    "videorft-cot": ("videorft", True),
}
"""Format name → (prompt style, CoT SFT rows)."""

CORE_FIELDS = ("problem", "problem_type", "data_type", "path", "solution")


@dataclass
class LoadReport:
    """What a load read, kept and skipped (row id → reason)."""

    path: str
    format: str
    rows: int = 0
    loaded: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    renamed_duplicates: int = 0
    by_problem_type: dict[str, int] = field(default_factory=dict)
    by_data_type: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts, and the first few skipped rows with their reasons."""
        head = f"{self.path} ({self.format}): {self.loaded} of {self.rows} rows loaded"
        if self.skipped:
            shown = "; ".join(f"{k}: {v}" for k, v in list(self.skipped.items())[:3])
            more = f" (+{len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
            head += f", {len(self.skipped)} unreadable rows skipped — {shown}{more}"
        return head

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "rows": self.rows, "loaded": self.loaded,
                "skipped": dict(self.skipped), "renamed_duplicates": self.renamed_duplicates,
                "by_problem_type": dict(self.by_problem_type), "by_data_type": dict(self.by_data_type)}


@dataclass
class ReleasedDataset:
    samples: list[Sample]
    report: LoadReport


class _Unreadable(ValueError):
    """One row cannot be read (counted and skipped, or raised under ``strict``)."""


def _read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(source, raw row) pairs of a JSON list or a JSONL file; invalid JSON is an error naming the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    if text.lstrip().startswith("["):
        data = _loads(text, str(path))
        for index, row in enumerate(data):
            yield f"{path}[{index}]", row
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"{path}:{line_no}", _loads(line, f"{path}:{line_no}")


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (RecursionError, ValueError) as exc:
        raise DataError(f"{where}: invalid JSON ({type(exc).__name__})") from None


def _row_id(row: Any, index: int) -> str:
    if isinstance(row, dict):
        for key in ("problem_id", "id"):
            value = row.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value)
    return f"row{index}"


def _string(row: dict, key: str, required: bool = True) -> str:
    value = row.get(key)
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Unreadable(f"field {key!r} must be a non-empty string, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_row(row: Any, cot: bool) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _Unreadable(f"expected a JSON object, got {type(row).__name__}")
    for key in ("problem", "path", "solution"):
        _string(row, key)
    if row.get("problem_type") not in PROBLEM_TYPES:
        raise _Unreadable(f"problem_type {_show(row.get('problem_type'))} is not one of {list(PROBLEM_TYPES)}")
    if row.get("data_type") not in DATA_TYPES:
        raise _Unreadable(f"data_type {_show(row.get('data_type'))} is not one of {list(DATA_TYPES)}")
    solution = row["solution"]
    if "<answer>" not in solution or "</answer>" not in solution:
        raise _Unreadable(f"solution {_show(solution)} has no <answer>...</answer>")
    options = row.get("options")
    if options is not None and (not isinstance(options, list) or not all(isinstance(o, str) for o in options)):
        raise _Unreadable(f"options must be a list of strings, got {_show(options)}")
    if row["problem_type"] == "multiple choice" and not options:
        raise _Unreadable("a multiple-choice row needs a non-empty 'options' list")
    if cot:
        process = _string(row, "process")
        if extract_think(process) is None:
            raise _Unreadable(f"process {_show(process)} has no <think>...</think>")
    return row


def _unique_ids(rows: list[tuple[str, Any]]) -> tuple[list[str], int]:
    ids = [_row_id(row, index) for index, (_, row) in enumerate(rows)]
    counts = Counter(ids)
    renamed = 0
    out = []
    for index, row_id in enumerate(ids):
        if counts[row_id] > 1:
            out.append(f"{row_id}@{index}")
            renamed += 1
        else:
            out.append(row_id)
    return out, renamed


def _resolve_media(ref: str, where: str, root: Path, policy: MediaPolicy) -> Path:
    """``root + ref[1:]`` for ``"./..."`` references (the released scripts' rule), else ``root / ref``; contained."""
    relative = ref[2:] if ref.startswith("./") else ref
    return media_path(relative, f"{where}: path {ref!r}", root, policy.allowed(root))


def load_released(path: str | Path, media_root: str | Path | None = None, format: str = "video-r1", *,
                  media_roots: Iterable[str] = (), allow_any_media_path: bool = False, strict: bool = False,
                  check_media: bool = True, max_rows: int = 0) -> ReleasedDataset:
    """Read a released VideoRFT / Video-R1 file into samples (see the module docstring).

    Args:
        path: the ``.json`` (a list) or ``.jsonl`` file.
        media_root: folder the rows' ``path`` values are relative to (default: the file's folder).
        format: one of :data:`FORMATS`.
        media_roots, allow_any_media_path: mmsft's media containment (``data.media_roots`` and its opt-out).
        strict: raise on the first unreadable row instead of skipping and counting it.
        check_media: require every media file to exist (a missing one is an error naming row and path).
        max_rows: read at most this many rows (0: all).
    """
    if format not in FORMATS:
        raise DataError(f"unknown released format {format!r}; expected one of {sorted(FORMATS)}")
    style, cot = FORMATS[format]
    path = Path(path)
    if not path.is_file():
        raise DataError(f"released dataset file {path} does not exist (expected a .json or .jsonl file)")
    root = Path(media_root) if media_root is not None else path.parent
    if not root.is_dir():
        raise DataError(f"media root {root} of {path} is not a folder")
    policy = MediaPolicy.from_config([str(root), *media_roots], allow_any_media_path)
    rows = list(_read_rows(path))
    if max_rows > 0:
        rows = rows[:max_rows]
    ids, renamed = _unique_ids(rows)
    report = LoadReport(str(path), format, rows=len(rows), renamed_duplicates=renamed)
    samples: list[Sample] = []
    for (source, raw), sample_id in zip(rows, ids):
        try:
            row = _check_row(raw, cot)
        except _Unreadable as exc:
            if strict:
                raise DataError(f"{source} (row id {sample_id!r}): {exc}") from None
            report.skipped[sample_id] = str(exc)
            continue
        sample = _to_sample(row, sample_id, source, root, policy, style, cot)
        if check_media:
            media = Path(sample.media(row["data_type"])[0])
            if not media.is_file():
                raise DataError(f"{source} (row id {sample_id!r}): {row['data_type']} file {media} does not exist "
                                f"(path {row['path']!r} under media root {root})")
        samples.append(sample)
    report.loaded = len(samples)
    report.by_problem_type = dict(sorted(Counter(s.meta["problem_type"] for s in samples).items()))
    report.by_data_type = dict(sorted(Counter(s.meta["data_type"] for s in samples).items()))
    if not samples:
        raise DataError(f"{path}: no readable rows ({report.summary()})")
    return ReleasedDataset(samples, report)


def _to_sample(row: dict[str, Any], sample_id: str, source: str, root: Path, policy: MediaPolicy, style: str,
               cot: bool) -> Sample:
    where = f"{source} (row id {sample_id!r})"
    kind = row["data_type"]
    media = _resolve_media(row["path"], where, root, policy)
    prompt = user_prompt(row["problem"], row["problem_type"], row.get("options"), style)
    messages = []
    if cot:
        messages.append(Message("system", (Part("text", text=SFT_SYSTEM_PROMPT[style]),)))
    messages.append(Message("user", (Part(kind, path=str(media)), Part("text", text=prompt))))
    if cot:
        messages.append(Message("assistant", (Part("text", text=sft_target(row["process"], row["solution"])),)))
    meta = {k: v for k, v in row.items() if k not in ("path",)}
    meta.update({"format": f"{'cot' if cot else 'rl'}", "style": style, "media_path": row["path"]})
    return Sample(id=sample_id, messages=messages, answer=extract_answer(row["solution"]), meta=meta, source=source)


def sample_to_row(sample: Sample) -> dict[str, Any]:
    """The mmsft JSONL row of a sample (media paths absolute; train with ``data.media_roots`` naming their root)."""
    messages = []
    for message in sample.messages:
        content = [{"type": "text", "text": p.text} if p.type == "text" else {"type": p.type, p.type: p.path}
                   for p in message.parts]
        messages.append({"role": message.role, "content": content})
    row: dict[str, Any] = {"id": sample.id, "messages": messages, "answer": sample.answer, "meta": sample.meta}
    if sample.weight is not None:
        row["weight"] = sample.weight
    return row


def write_jsonl(samples: Iterable[Sample], out: str | Path) -> Path:
    """Write samples as an mmsft JSONL file (the format ``data.train_path`` reads)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(sample_to_row(sample), ensure_ascii=False) + "\n")
    return out


def convert_released(path: str | Path, out: str | Path, media_root: str | Path | None = None,
                     format: str = "video-r1", **kwargs: Any) -> LoadReport:
    """:func:`load_released` then :func:`write_jsonl`; returns the load report (also written as ``<out>.report.json``).

    Train on the result with ``data.train_path=<out>`` and ``data.media_roots=[<media_root>]``.
    """
    loaded = load_released(path, media_root, format, **kwargs)
    write_jsonl(loaded.samples, out)
    Path(str(out) + ".report.json").write_text(json.dumps(loaded.report.as_dict(), indent=2))
    return loaded.report


__all__ = ["FORMATS", "LoadReport", "ReleasedDataset", "convert_released", "load_released", "sample_to_row",
           "write_jsonl"]
