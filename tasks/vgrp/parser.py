"""Tolerant parsing of VGRP-Bench answers with counted outcomes (Ren et al., arXiv 2503.23064).

The rules live in :mod:`envs.vgrp.answer` (so the gymnasium env can score text actions); this module adds a
counter of parse outcomes for evaluation reports and RL logging.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from envs.vgrp.answer import STATUSES, ParsedResponse, parse_response, perception_correct, to_grid

__all__ = ["ParseStats", "ParsedResponse", "parse_response", "perception_correct", "to_grid", "STATUSES"]


class ParseStats:
    """Counts parse outcomes (``ok``, ``answer_only``, ``perception_only``, ``no_grid``, ``no_json``, ``empty``,
    ``too_long``: see :data:`envs.vgrp.answer.STATUSES`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({s: 0 for s in STATUSES})

    def parse(self, text: Any) -> ParsedResponse:
        parsed = parse_response(text)
        self.counts[parsed.status] += 1
        return parsed

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unparsable(self) -> int:
        """Responses without a readable answer grid."""
        return self.total - self.counts["ok"] - self.counts["answer_only"]

    def as_dict(self) -> dict[str, int]:
        return {**dict(self.counts), "total": self.total, "unparsable": self.unparsable}
