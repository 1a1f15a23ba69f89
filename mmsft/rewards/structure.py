"""Structured-output rewards.

RL-Struct (Hu & Wu, arXiv 2512.00319): a hierarchical reward R = w₁·R_struct + w₂·R_format + w₃·R_valid + w₄·R_correct
for JSON outputs. The paper's sub-score definitions and weights could not be recovered; this implements the
documented intent with equal weights ¼ (each part is returned, scaled, so the total lies in [0, 1]):

* ``format`` — the whole completion (stripped) is one JSON value: no markdown fence, no extra text;
* ``valid`` — the extracted JSON (whole text, else the last ```json fence, else the outermost {...}) parses and, when
  ``meta.json_schema`` is given, validates against it (``jsonschema``);
* ``struct`` — key F1 between the object's keys (recursively, as dotted paths) and the expected keys (the gold object
  in ``answer``, else the schema's ``properties``/``required``): required keys present, no hallucinated keys;
* ``correct`` — the parsed object equals the gold object in ``answer`` (a dict or a JSON string).

Parsing is bounded: outputs over 100,000 characters score 0; json's own recursion limit stops deeply nested input.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from mmsft.rewards.registry import register_reward

MAX_CHARS = 100_000
WEIGHT = 0.25
_MISSING = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return _MISSING


def extract_json(text: str) -> Any:
    """The JSON value of a completion (whole text, last ```json fence, or outermost braces), or a sentinel."""
    whole = _loads(text.strip())
    if whole is not _MISSING:
        return whole
    lower = text.lower()
    fence = lower.rfind("```json")
    if fence >= 0:
        body = text[fence + 7:]
        end = body.find("```")
        value = _loads((body if end < 0 else body[:end]).strip())
        if value is not _MISSING:
            return value
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        return _loads(text[first:last + 1])
    return _MISSING


def key_paths(value: Any, prefix: str = "", depth: int = 0) -> set[str]:
    """Dotted key paths of nested objects (lists are looked through; bounded depth)."""
    if depth > 32:
        return set()
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            out |= key_paths(item, path, depth + 1)
    elif isinstance(value, list):
        for item in value[:64]:
            out |= key_paths(item, prefix, depth + 1)
    return out


def _schema_keys(schema: Any, prefix: str = "", depth: int = 0) -> set[str]:
    if not isinstance(schema, dict) or depth > 32:
        return set()
    out: set[str] = set()
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.add(path)
        out |= _schema_keys(sub, path, depth + 1)
    items = schema.get("items")
    if isinstance(items, dict):
        out |= _schema_keys(items, prefix, depth + 1)
    return out


def _gold(sample: Any) -> Any:
    answer = getattr(sample, "answer", None)
    if isinstance(answer, str):
        parsed = _loads(answer)
        return parsed if isinstance(parsed, (dict, list)) else _MISSING
    return answer if isinstance(answer, (dict, list)) else _MISSING


def _schema_valid(value: Any, schema: Any) -> float:
    if not isinstance(schema, dict):
        return 1.0
    import jsonschema

    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        return 0.0 if next(validator.iter_errors(value), None) is not None else 1.0
    except (jsonschema.exceptions.SchemaError, RecursionError, ValueError, TypeError):
        return 0.0


def structure_parts(sample: Any, completion: str) -> dict[str, float]:
    """The four RL-Struct parts, each in [0, 1] (unweighted)."""
    parts = {"struct": 0.0, "format": 0.0, "valid": 0.0, "correct": 0.0}
    if len(completion) > MAX_CHARS:
        return parts
    meta = getattr(sample, "meta", None) or {}
    schema = meta.get("json_schema") if isinstance(meta, dict) else None
    parts["format"] = float(_loads(completion.strip()) is not _MISSING)
    value = extract_json(completion)
    if value is _MISSING:
        parts["format"] = 0.0
        return parts
    parts["valid"] = _schema_valid(value, schema)
    gold = _gold(sample)
    expected = key_paths(gold) if gold is not _MISSING else _schema_keys(schema)
    got = key_paths(value)
    if expected or got:
        common = len(expected & got)
        precision = common / len(got) if got else 0.0
        recall = common / len(expected) if expected else 0.0
        parts["struct"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if gold is not _MISSING:
        parts["correct"] = float(value == gold)
    return parts


@register_reward("json_structure")
def json_structure(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[dict[str, float]]:
    """RL-Struct hierarchical JSON reward: ¼·(struct + format + valid + correct), parts logged separately."""
    return [{k: WEIGHT * v for k, v in structure_parts(s, c).items()} for s, c in zip(samples, completions)]
