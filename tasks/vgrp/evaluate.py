"""Evaluation report for VGRP-Bench predictions (Ren et al., arXiv 2503.23064).

Per VGRP: perception accuracy (the perceived initial board is right in every cell), answer accuracy (dimensions
right, givens kept, every rule holds; no partial credit) and answer accuracy given correct perception, overall,
by puzzle and by puzzle/size. ``success`` is VGRP's vision-mode answer score: answer correct AND perception
correct when the item showed an image (text-mode items need only the answer).

Partial credit, reported next to VGRP's all-or-nothing scores (ours, not VGRP's): ``perception_cells``, the mean
share of board cells read right (cells beyond a wrong-shaped grid, and every cell of an unparsed reply, count as
wrong), and ``answer_keeps_givens``, the share of replies whose answer grid has the board's shape and repeats every
non-empty cell of the initial board. They show partial learning where the exact scores are all 0.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from envs.verdict import too_long
from envs.vgrp.core import Instance, verify
from envs.vgrp.registry import get_puzzle
from envs.vgrp.answer import normalize_board
from tasks.vgrp.parser import ParseStats, perception_correct

PREDICTION_KEYS = ("prediction", "response", "completion", "output", "generated", "text", "model_output")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    rows = []
    with path.open(encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{k}: not valid JSON ({e})") from e
    return rows


def _prediction_text(row: dict[str, Any]) -> Any:
    for key in PREDICTION_KEYS:
        if key in row:
            return row[key]
    msgs = row.get("messages")
    if isinstance(msgs, list) and msgs and msgs[-1].get("role") == "assistant":
        content = msgs[-1].get("content")
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        return content
    return None


def perception_cells(puzzle: Any, perceived: list[list[str]] | None, inst: Instance) -> float:
    """Share of the ``size x size`` board cells that ``perceived`` reads right (0/*/e = empty, as in VGRP's
    perception score); missing or extra rows and cells count as wrong (extra ones are ignored)."""
    if not perceived:
        return 0.0
    n = inst.size
    truth = normalize_board(puzzle, inst.board)
    seen = normalize_board(puzzle, [row[:n] for row in perceived[:n]])
    hits = sum(a == b for row_t, row_s in zip(truth, seen) for a, b in zip(row_t, row_s))
    return hits / (n * n)


def keeps_givens(answer: list[list[str]], inst: Instance) -> bool:
    """``answer`` has the board's shape and repeats every non-empty cell of the initial board unchanged."""
    n = inst.size
    if len(answer) != n or any(len(row) != n for row in answer):
        return False
    return all(str(answer[r][c]).strip().lower() == str(x).strip().lower()
               for r, row in enumerate(inst.board) for c, x in enumerate(row) if x != "*")


class _Bucket:
    def __init__(self) -> None:
        self.n = self.perc = self.ans = self.success = self.ans_and_perc = self.givens = 0
        self.cells = 0.0

    def add(self, perc: bool, ans: bool, success: bool, cells: float = 0.0, givens: bool = False) -> None:
        self.n += 1
        self.perc += perc
        self.ans += ans
        self.success += success
        self.ans_and_perc += perc and ans
        self.cells += cells
        self.givens += givens

    def as_dict(self) -> dict[str, Any]:
        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {"n": self.n, "success": rate(self.success, self.n), "perception_acc": rate(self.perc, self.n),
                "answer_acc": rate(self.ans, self.n), "answer_acc_given_perception": rate(self.ans_and_perc, self.perc),
                "perception_cells": round(self.cells / self.n, 4) if self.n else None,
                "answer_keeps_givens": rate(self.givens, self.n)}


def evaluate_predictions(predictions_path: str | Path, dataset_path: str | Path | None = None) -> dict[str, Any]:
    """Score a predictions JSONL (``id`` + one of ``PREDICTION_KEYS``; or ``answer`` rows inline) against the
    dataset JSONL written by ``build_dataset``; returns the report as a dict."""
    preds = _read_jsonl(Path(predictions_path))
    by_id: dict[str, dict[str, Any]] = {}
    if dataset_path is not None:
        by_id = {str(r["id"]): r for r in _read_jsonl(Path(dataset_path)) if "id" in r}
    stats = ParseStats()
    overall = _Bucket()
    by_puzzle: dict[str, _Bucket] = {}
    by_size: dict[str, _Bucket] = {}
    violations: Counter[str] = Counter()
    probes: dict[str, list[int]] = {}
    unmatched = 0
    for k, row in enumerate(preds):
        ref = row if isinstance(row.get("answer"), dict) and "board" in row["answer"] else by_id.get(str(row.get("id")))
        if ref is None:
            unmatched += 1
            continue
        spec = ref["answer"]
        if "probe" in spec:
            hit = probe_correct(_prediction_text(row), spec)
            probes.setdefault(f"{spec['probe']}/{spec['puzzle']}", [0, 0])[0] += hit
            probes[f"{spec['probe']}/{spec['puzzle']}"][1] += 1
            continue
        inst = Instance.from_dict(spec)
        puzzle = get_puzzle(inst.puzzle)
        parsed = stats.parse(_prediction_text(row))
        perc = perception_correct(puzzle, parsed.perception, inst)
        cells = perception_cells(puzzle, parsed.perception, inst)
        givens = False
        if parsed.answer is None:
            ans = False
            violations["unparsed"] += 1
        else:
            verdict = verify(puzzle, parsed.answer, inst)
            ans = verdict.ok
            givens = keeps_givens(parsed.answer, inst)
            violations.update(verdict.violations)
        with_image = bool(spec.get("with_image", ref.get("meta", {}).get("with_image", True)))
        success = ans and (perc or not with_image)
        for bucket in (overall, by_puzzle.setdefault(inst.puzzle, _Bucket()),
                       by_size.setdefault(f"{inst.puzzle}/{inst.size}x{inst.size}", _Bucket())):
            bucket.add(perc, ans, success, cells, givens)
    return {
        "n_predictions": len(preds), "n_scored": overall.n, "unmatched": unmatched,
        "overall": overall.as_dict(),
        "by_puzzle": {k: v.as_dict() for k, v in sorted(by_puzzle.items())},
        "by_puzzle_size": {k: v.as_dict() for k, v in sorted(by_size.items())},
        "parse": stats.as_dict(),
        "violations": dict(sorted(violations.items())),
        "probes": {k: {"n": t, "accuracy": round(h / t, 4)} for k, (h, t) in sorted(probes.items())},
    }


def probe_correct(text: Any, spec: dict[str, Any]) -> bool:
    """A probe answer is right when the last answer-like token of the reply equals the expected one (a reply over
    :data:`~envs.verdict.MAX_RESPONSE_CHARS` is wrong; linear in the reply's length)."""
    if not isinstance(text, str) or too_long(text):
        return False
    choices = spec.get("choices") or ["yes", "no"]
    tokens = re.findall(r"[A-Za-z0-9*]+", text.lower())
    picked = [t for t in tokens if t in {str(c).lower() for c in choices}]
    return bool(picked) and picked[-1] == str(spec["answer"]).lower()
