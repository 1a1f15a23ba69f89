"""Tool-call reward ("When Actions Teach You to Think", Rawat et al., arXiv 2512.11277): GRPO rewards on the predicted
function call versus the gold call, plus format. The paper's exact scoring and weights could not be recovered; this
implements the reference notes' suggestion:

    R_tool = 1[name matches] · (gold arguments matched / gold arguments)     (a call with no gold arguments: 1[name])
    R_format = 1 if a call could be parsed

returned as parts ``tool`` and ``format`` (weights: ``rl.reward_weights`` across rewards; within this reward 0.8/0.2).
The call is the JSON object inside the last <tool_call>…</tool_call>, else the last ```json fence, else the outermost
braces, with keys ``name`` and ``arguments`` (or ``parameters``; a JSON string of arguments is decoded). The gold call is
``meta.tool_call`` or ``answer`` in the same form. Argument values are compared after JSON canonicalisation
(``1`` = ``1.0``, key order ignored).
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from mmsft.rewards.registry import register_reward
from mmsft.rewards.structure import _MISSING, MAX_CHARS, _loads, extract_json

TOOL_WEIGHT, FORMAT_WEIGHT = 0.8, 0.2


def parse_call(value: Any) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) of a call object, or None."""
    if isinstance(value, str):
        value = _loads(value)
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        args = _loads(args)
    if not isinstance(name, str) or not isinstance(args, dict):
        return None
    return name, args


def extract_call(text: str) -> tuple[str, dict[str, Any]] | None:
    lower = text.lower()
    start = lower.rfind("<tool_call>")
    if start >= 0:
        body = text[start + 11:]
        end = body.lower().find("</tool_call>")
        call = parse_call(_loads((body if end < 0 else body[:end]).strip()))
        if call is not None:
            return call
    value = extract_json(text)
    return None if value is _MISSING else parse_call(value)


def _normal(value: Any, depth: int = 0) -> Any:
    """Integral floats become ints (JSON 2.0 = 2), recursively (bounded depth)."""
    if depth > 32:
        return repr(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normal(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v, depth + 1) for v in value]
    return value


def _canonical(value: Any) -> str:
    try:
        return json.dumps(_normal(value), sort_keys=True, ensure_ascii=False, default=str)
    except (ValueError, RecursionError, TypeError):
        return repr(value)


def tool_parts(sample: Any, completion: str) -> dict[str, float]:
    if len(completion) > MAX_CHARS:
        return {"tool": 0.0, "format": 0.0}
    meta = getattr(sample, "meta", None) or {}
    gold = parse_call(meta.get("tool_call") if isinstance(meta, dict) and "tool_call" in meta
                      else getattr(sample, "answer", None))
    pred = extract_call(completion)
    if pred is None:
        return {"tool": 0.0, "format": 0.0}
    if gold is None or pred[0] != gold[0]:
        return {"tool": 0.0, "format": FORMAT_WEIGHT}
    gold_args, pred_args = gold[1], pred[1]
    if not gold_args:
        score = 1.0
    else:
        matched = sum(1 for k, v in gold_args.items() if k in pred_args and _canonical(pred_args[k]) == _canonical(v))
        score = matched / len(gold_args)
    return {"tool": TOOL_WEIGHT * score, "format": FORMAT_WEIGHT}


@register_reward("tool_call")
def tool_call(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[dict[str, float]]:
    """0.8·1[name]·(matched gold args / gold args) + 0.2·1[a call parses]."""
    return [tool_parts(s, c) for s, c in zip(samples, completions)]
