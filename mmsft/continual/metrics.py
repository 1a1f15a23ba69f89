"""Continual-learning metrics of an accuracy matrix, and their mean ± std over seeds.

``A`` has one row per evaluated model and one column per task, in sequence order: row 0 is the starting model
(before any stage), row ``k`` (1..N) the model after stage ``k``; ``A[k][j]`` is task ``j``'s held-out accuracy
(columns 1..N below, 0-based in code). With N tasks:

* average accuracy  ``ACC = (1/N) Σ_j A[N, j]`` (after the last stage);
* backward transfer ``BWT = 1/(N−1) Σ_{k<N} (A[N, k] − A[k, k])`` — negative values are forgetting (Lopez-Paz &
  Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017, arXiv 1706.08840; the FM/BWT used by
  Lai et al., arXiv 2507.05386);
* forward transfer  ``FWT = 1/(N−1) Σ_{k≥2} (A[k−1, k] − A[0, k])`` — accuracy on task ``k`` before training on
  it, relative to the starting model (GEM's ``b̄_k`` is the starting model here);
* plasticity        ``A[k, k]`` per task and its mean (how well each task is learnt when it is trained);
* forgetting        ``F = 1/(N−1) Σ_{k<N} (max_{k≤l<N} A[l, k] − A[N, k])`` (Chaudhry et al., "Riemannian Walk",
  ECCV 2018, arXiv 1801.10112): the drop from the best accuracy a task ever had.

With one task BWT, FWT and forgetting are undefined (``None``). A matrix with only a starting row and one final row
(multi-task joint training) has ACC and the general-probe deltas only. Values of ``None`` (a cell not evaluated)
make the metrics that need them ``None``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

Matrix = Sequence[Sequence[float | None]]


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _check(a: Matrix) -> int:
    if not a or not a[0]:
        raise ValueError("accuracy matrix is empty")
    width = len(a[0])
    if any(len(row) != width for row in a):
        raise ValueError(f"accuracy matrix rows have different lengths: {[len(r) for r in a]}")
    return width


def sequence_metrics(a: Matrix) -> dict[str, Any]:
    """ACC, BWT, FWT, plasticity and forgetting of an (N+1) × N matrix (row 0: the starting model)."""
    n = _check(a)
    if len(a) != n + 1:
        raise ValueError(f"a sequence matrix needs N+1 rows for N tasks (row 0: the starting model), got "
                         f"{len(a)} rows for {n} tasks")
    last = a[n]
    diag = [a[k][k - 1] for k in range(1, n + 1)]
    out: dict[str, Any] = {"acc": _mean(last), "plasticity": diag, "plasticity_mean": _mean(diag)}
    if n == 1:
        out.update(bwt=None, fwt=None, forgetting=None)
        return out
    bwt = [None if last[k - 1] is None or diag[k - 1] is None else last[k - 1] - diag[k - 1] for k in range(1, n)]
    fwt = [None if a[k - 1][k - 1] is None or a[0][k - 1] is None else a[k - 1][k - 1] - a[0][k - 1]
           for k in range(2, n + 1)]
    forgetting: list[float | None] = []
    for k in range(1, n):
        seen = [a[row][k - 1] for row in range(k, n)]
        forgetting.append(None if last[k - 1] is None or any(v is None for v in seen)
                          else max(seen) - last[k - 1])  # type: ignore[type-var,operator]
    out.update(bwt=_mean(bwt), fwt=_mean(fwt), forgetting=_mean(forgetting))
    return out


def joint_metrics(a: Matrix) -> dict[str, Any]:
    """Metrics of a joint (multi-task) run: row 0 the starting model, the last row after joint training."""
    _check(a)
    return {"acc": _mean(a[-1]), "plasticity": None, "plasticity_mean": None, "bwt": None, "fwt": None,
            "forgetting": None}


def general_deltas(rows: Sequence[float | None]) -> dict[str, float | None]:
    """A general probe's change: ``final`` = last − first row, ``min`` = worst row − first row."""
    if not rows or rows[0] is None or any(v is None for v in rows):
        return {"final": None, "min": None}
    start = rows[0]
    return {"final": rows[-1] - start, "min": min(rows[1:], default=start) - start}  # type: ignore[operator]


def mean_std(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (n − 1 in the denominator; 0 for one value) of the non-None values."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(kept)}


def mean_matrix(matrices: Sequence[Matrix]) -> list[list[float | None]]:
    """Cell-wise mean of same-shaped matrices (a cell missing in any of them is None)."""
    if not matrices:
        return []
    rows, cols = len(matrices[0]), len(matrices[0][0])
    out: list[list[float | None]] = []
    for r in range(rows):
        out.append([_mean([m[r][c] for m in matrices]) for c in range(cols)])
    return out


__all__ = ["general_deltas", "joint_metrics", "mean_matrix", "mean_std", "sequence_metrics"]
