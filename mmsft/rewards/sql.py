"""Think2SQL execution rewards (Papicchio et al., "Think2SQL", arXiv 2504.15077; reference code spapicchio/Think2SQL
and NL2SQLEvaluator): the predicted SQL and the gold SQL run on the sample's SQLite database and their result tables
are compared.

* ``sql_execution`` (EX): 1 iff the two results are equal as sets of rows, else 0 (0 on any execution failure).
* ``sql_partial`` (QATCH ``cp_cr_tc``): the mean of cell precision |C_p ∩ C_t|/|C_p|, cell recall |C_p ∩ C_t|/|C_t| and
  tuple cardinality min(|R_p|, |R_t|)/max(|R_p|, |R_t|), cells compared as sets; both results empty → 1, exactly one
  empty → 0. The repo weights EX 0.85 / format 0.15 (``rl.reward_weights``).

Data: ``meta.db_path`` (a SQLite file, relative to the dataset file's folder) and the gold SQL as ``answer``. The
predicted SQL is the last ```sql fence, else the last <answer>…</answer>, else the whole completion. Every query runs
in :mod:`mmsft.rewards.sandbox` (separate process, time and memory limits, no network, no process creation) against a
read-only copy of the database, opened read-only with ATTACH refused; the gold result is cached. A completion that
cannot be scored (no database, too long, timeout, error) scores 0 and its reason is counted in ``sandbox.STATS``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from mmsft.rewards.registry import register_reward
from mmsft.rewards.sandbox import Limits, count_reason, run_sql

MAX_SQL_CHARS = 20_000
LIMITS = Limits(timeout_s=5.0, memory_bytes=512 * 2 ** 20)
_COPIES: dict[tuple[str, int, int], Path] = {}
_GOLD: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()
_TMP: tempfile.TemporaryDirectory | None = None


def extract_sql(text: str) -> str:
    """The SQL of a completion: last ```sql fence, else last <answer>…</answer>, else the stripped text (linear)."""
    lower = text.lower()
    start = lower.rfind("```sql")
    if start >= 0:
        body = text[start + 6:]
        end = body.find("```")
        return (body if end < 0 else body[:end]).strip()
    start = lower.rfind("<answer>")
    if start >= 0:
        body = text[start + 8:]
        end = body.lower().find("</answer>")
        return (body if end < 0 else body[:end]).strip()
    return text.strip()


def _database(sample: Any) -> Path | None:
    meta = getattr(sample, "meta", None) or {}
    ref = meta.get("db_path") if isinstance(meta, dict) else None
    if not isinstance(ref, str) or not ref:
        return None
    path = Path(ref)
    if not path.is_absolute():
        source = str(getattr(sample, "source", "")).rsplit(":", 1)[0]
        path = (Path(source).parent if source and not source.startswith("<") else Path.cwd()) / path
    return path if path.is_file() else None


def readonly_copy(path: Path) -> Path:
    """A read-only (0444) copy of a database file in a private temporary folder, made once per file version."""
    global _TMP
    info = path.stat()
    key = (str(path.resolve()), info.st_mtime_ns, info.st_size)
    with _LOCK:
        if key not in _COPIES:
            if _TMP is None:
                _TMP = tempfile.TemporaryDirectory(prefix="mmsft-sql-")
            target = Path(_TMP.name) / f"{len(_COPIES)}-{path.name}"
            shutil.copyfile(path, target)
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            _COPIES[key] = target
        return _COPIES[key]


def _rows(db: Path, sql: str) -> list[tuple] | None:
    result = run_sql(db, sql, LIMITS)
    return [tuple(r) for r in result["rows"]] if result.get("ok") else None


def _gold(db: Path, sql: str) -> list[tuple] | None:
    key = (str(db), sql)
    if key not in _GOLD:
        _GOLD[key] = _rows(db, sql)
    return _GOLD[key]


def qatch_partial(pred: list[tuple], gold: list[tuple]) -> float:
    """QATCH cell precision, cell recall and tuple cardinality, averaged (cells as sets)."""
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    cells_p = {repr(v) for row in pred for v in row}
    cells_t = {repr(v) for row in gold for v in row}
    common = len(cells_p & cells_t)
    precision = common / len(cells_p) if cells_p else 0.0
    recall = common / len(cells_t) if cells_t else 0.0
    cardinality = min(len(pred), len(gold)) / max(len(pred), len(gold))
    return (precision + recall + cardinality) / 3.0


def _score(sample: Any, completion: str, partial: bool) -> float:
    db = _database(sample)
    gold_sql = getattr(sample, "answer", None)
    if db is None or not isinstance(gold_sql, str) or not gold_sql.strip():
        count_reason("no_database_or_gold")
        return 0.0
    if len(completion) > MAX_SQL_CHARS:
        count_reason("too_long")
        return 0.0
    sql = extract_sql(completion)
    if not sql:
        count_reason("empty_sql")
        return 0.0
    copy = readonly_copy(db)
    gold = _gold(copy, gold_sql)
    if gold is None:
        count_reason("gold_failed")
        return 0.0
    pred = _rows(copy, sql)
    if pred is None:
        return 0.0
    if partial:
        return qatch_partial(pred, gold)
    return float(set(pred) == set(gold))


def _batch(samples: Sequence[Any], completions: Sequence[str], partial: bool) -> list[float]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda pair: _score(pair[0], pair[1], partial), zip(samples, completions)))


@register_reward("sql_execution")
def sql_execution(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """Think2SQL EX: 1 iff the predicted query's result equals the gold query's (as sets of rows)."""
    return _batch(samples, completions, partial=False)


@register_reward("sql_partial")
def sql_partial(samples: Sequence[Any], completions: Sequence[str], **_: Any) -> list[float]:
    """Think2SQL / QATCH partial execution reward (cell precision, cell recall, tuple cardinality)."""
    return _batch(samples, completions, partial=True)
