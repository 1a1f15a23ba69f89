"""Expected calibration error and reliability diagrams (Guo et al. 2017, "On Calibration of Modern Neural
Networks", arXiv 1706.04599; the metric used by self-ensembled SFT, Li et al., arXiv 2312.13772).

ECE = Σ_m (|B_m| / n) · |acc(B_m) − conf(B_m)| over ``n_bins`` equal-width confidence bins. Bin m holds the
confidences in (m/M, (m+1)/M]; a confidence of exactly 0 falls into the first bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    accuracy: float  # 0 when empty
    confidence: float  # mean confidence of the bin; 0 when empty


def _validate(confidences: Sequence[float], correct: Sequence[bool | int | float], n_bins: int) -> None:
    if len(confidences) != len(correct):
        raise ValueError(f"ece: {len(confidences)} confidences but {len(correct)} correctness values")
    if n_bins < 1:
        raise ValueError(f"ece: n_bins must be >= 1, got {n_bins}")
    for i, c in enumerate(confidences):
        if not (isinstance(c, (int, float)) and math.isfinite(c) and 0.0 <= c <= 1.0):
            raise ValueError(f"ece: confidence #{i} is {c!r}; expected a number in [0, 1]")


def bin_index(confidence: float, n_bins: int) -> int:
    """The bin of a confidence: (m/M, (m+1)/M] → m; 0 → 0."""
    return min(max(math.ceil(confidence * n_bins) - 1, 0), n_bins - 1)


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool | int | float],
                     n_bins: int = 10) -> list[ReliabilityBin]:
    """Per-bin counts, accuracy and mean confidence."""
    _validate(confidences, correct, n_bins)
    counts, hits, conf = [0] * n_bins, [0.0] * n_bins, [0.0] * n_bins
    for c, ok in zip(confidences, correct):
        m = bin_index(float(c), n_bins)
        counts[m] += 1
        hits[m] += float(bool(ok))
        conf[m] += float(c)
    return [ReliabilityBin(m / n_bins, (m + 1) / n_bins, counts[m], hits[m] / counts[m] if counts[m] else 0.0,
                           conf[m] / counts[m] if counts[m] else 0.0) for m in range(n_bins)]


def ece(confidences: Sequence[float], correct: Sequence[bool | int | float], n_bins: int = 10) -> float:
    """Expected calibration error (0 for an empty set)."""
    bins = reliability_bins(confidences, correct, n_bins)
    n = sum(b.count for b in bins)
    return sum(b.count / n * abs(b.accuracy - b.confidence) for b in bins) if n else 0.0


def reliability_diagram(confidences: Sequence[float], correct: Sequence[bool | int | float], path: str | Path,
                        n_bins: int = 10, title: str = "") -> Path:
    """Write a reliability diagram PNG (accuracy per confidence bin against the diagonal, counts below)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability_bins(confidences, correct, n_bins)
    centres = [(b.lower + b.upper) / 2 for b in bins]
    width = 1.0 / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.2, 5.0), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.bar(centres, [b.accuracy for b in bins], width=width * 0.95, color="#4c72b0", label="accuracy")
    top.bar(centres, [b.confidence - b.accuracy if b.count else 0.0 for b in bins], bottom=[b.accuracy for b in bins],
            width=width * 0.95, color="#dd8452", alpha=0.5, label="gap to confidence")
    top.plot([0, 1], [0, 1], "k--", linewidth=1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(title or f"ECE = {ece(confidences, correct, n_bins):.4f}  (n = {len(confidences)})", fontsize=9)
    top.legend(fontsize=7, loc="upper left")
    bottom.bar(centres, [b.count for b in bins], width=width * 0.95, color="#55a868")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
