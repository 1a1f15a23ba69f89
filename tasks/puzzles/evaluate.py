"""Scoring a policy's outputs on puzzle worlds with the tolerant parser and the strict verifier.

Predictions are JSONL rows with an ``id`` and the model's text under one of :data:`RESPONSE_KEYS` (or as the last
assistant message). The verifier answer comes from the prediction row itself (``answer``) or from the dataset
built by ``mmsft data build`` (``--data``), joined by ``id``; dataset rows without a prediction count as failures
(``missing``). The report gives success rate, parse-ok rate, mean reward and outcome counts, overall and grouped
by suite / format / prompt-variant family, which is how "Debunk the Myth of SFT Generalization" (arXiv 2510.00237)
separates in-distribution, larger-room and instruction-variant (including fake) generalisation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

from envs.verdict import Verdict
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.rows import read_jsonl

RESPONSE_KEYS = ("response", "prediction", "output", "completion", "text")
VERIFIERS: dict[str, Callable[[dict, str], Verdict]] = {"sokoban": sokoban_task.verify,
                                                        "general-points": gp_task.verify}
GROUP_KEYS = ("suite", "format", "modality", "families", "action_family", "symbol_family", "card_family", "fake")
_IRRELEVANT = {"sokoban": {"card_family"}, "general-points": {"action_family", "symbol_family"}}


def response_text(row: dict[str, Any]) -> str:
    """The model text of a prediction row."""
    for key in RESPONSE_KEYS:
        if key in row:
            value = row[key]
            if isinstance(value, list):  # e.g. several samples: score the first
                value = value[0] if value else ""
            if not isinstance(value, str):
                raise TypeError(f"prediction {row.get('id')!r}: key {key!r} must hold text, got "
                                f"{type(value).__name__}")
            return value
    messages = row.get("messages")
    if isinstance(messages, list) and messages and messages[-1].get("role") == "assistant":
        content = messages[-1].get("content")
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    raise KeyError(f"prediction {row.get('id')!r} has none of the keys {RESPONSE_KEYS} nor an assistant message")


def _group_values(meta: dict[str, Any], world: str) -> dict[str, str]:
    variant = meta.get("variant", {}) if isinstance(meta.get("variant"), dict) else {}
    flat = {**{k: meta.get(k) for k in GROUP_KEYS if k in meta}, **{k: variant.get(k) for k in GROUP_KEYS
                                                                   if k in variant}}
    skip = _IRRELEVANT.get(world, set())
    return {k: str(v) for k, v in flat.items() if v is not None and k not in skip}


class _Tally:
    def __init__(self) -> None:
        self.n = self.success = self.parse_ok = 0
        self.reward = 0.0
        self.outcomes: Counter = Counter()

    def add(self, verdict: Verdict) -> None:
        self.n += 1
        self.success += verdict.success
        self.parse_ok += verdict.parse_ok
        self.reward += verdict.reward
        self.outcomes[verdict.outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        n = max(self.n, 1)
        return {"n": self.n, "success_rate": self.success / n, "parse_ok_rate": self.parse_ok / n,
                "mean_reward": self.reward / n, "outcomes": dict(sorted(self.outcomes.items()))}


def evaluate_rows(world: str, predictions: list[dict[str, Any]],
                  dataset: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Score prediction rows; returns the report dict (overall, by group, per-example verdicts)."""
    if world not in VERIFIERS:
        raise ValueError(f"world={world!r}; expected one of {sorted(VERIFIERS)} (VGRP worlds go to tasks.vgrp)")
    verify = VERIFIERS[world]
    by_id = {}
    if dataset is not None:
        for row in dataset:
            if "id" not in row:
                raise KeyError("dataset row without 'id'")
            by_id[row["id"]] = row
    overall = _Tally()
    groups: dict[str, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    per_example = []
    seen = set()
    for pred in predictions:
        if "id" not in pred:
            raise KeyError(f"prediction row without 'id': keys {sorted(pred)}")
        ref = by_id.get(pred["id"], {})
        answer = pred.get("answer", ref.get("answer"))
        if answer is None:
            raise KeyError(f"prediction {pred['id']!r} has no 'answer' and no dataset row with that id")
        meta = {**ref.get("meta", {}), **pred.get("meta", {})}
        verdict = verify(answer, response_text(pred))
        seen.add(pred["id"])
        overall.add(verdict)
        for key, value in _group_values(meta, world).items():
            groups[key][value].add(verdict)
        per_example.append({"id": pred["id"], **verdict.as_dict()})
    missing = [rid for rid in by_id if rid not in seen]
    for rid in missing:
        verdict = Verdict(outcome="missing", reward=0.0, success=False, parse_ok=False)
        overall.add(verdict)
        for key, value in _group_values(by_id[rid].get("meta", {}), world).items():
            groups[key][value].add(verdict)
    return {"world": world, "overall": overall.as_dict(), "missing": len(missing),
            "groups": {k: {v: t.as_dict() for v, t in sorted(d.items())} for k, d in sorted(groups.items())},
            "examples": per_example}


def evaluate_files(world: str, predictions: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """:func:`evaluate_rows` over JSONL files."""
    return evaluate_rows(world, read_jsonl(predictions), read_jsonl(data) if data is not None else None)


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the report (overall and per group)."""
    lines = [f"world: {report['world']}   missing predictions: {report['missing']}",
             f"{'group':<28}{'value':<22}{'n':>6}{'success':>10}{'parse_ok':>10}{'reward':>9}"]

    def line(group: str, value: str, t: dict[str, Any]) -> str:
        return (f"{group:<28}{value[:21]:<22}{t['n']:>6}{t['success_rate']:>10.3f}{t['parse_ok_rate']:>10.3f}"
                f"{t['mean_reward']:>9.3f}")

    lines.append(line("overall", "-", report["overall"]))
    for group, values in report["groups"].items():
        for value, t in values.items():
            lines.append(line(group, value, t))
    outcomes = ", ".join(f"{k}={v}" for k, v in report["overall"]["outcomes"].items())
    lines.append(f"outcomes: {outcomes}")
    return "\n".join(lines)
