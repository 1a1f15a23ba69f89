"""The one verdict type of every verifier, reward and parser over model text, and the response length cap.

Model outputs are hostile input (DESIGN.md, "Reward"): every parser and verifier maps *any* string to a
:class:`Verdict` whose ``outcome`` names the counted reason (``ok``, ``correct``, ``too_long``, ``illegal_formula``,
``unknown_action``, a VGRP rule id, ...), in time linear in the string's length and never by raising. Used by the
General Points reward table (arXiv 2501.17161), the Sokoban verifier (arXiv 2510.00237) and the VGRP-Bench checker
(arXiv 2503.23064); the puzzle rewards and evaluation reports count the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_RESPONSE_CHARS = 65_536
"""Longest model response (in characters, about 16k tokens) a parser reads; longer ones get outcome ``too_long``.
Far above every prompt's answer (a Sokoban plan, a General Points JSON, a VGRP answer with a 200-step trace), and
it bounds the work done on an adversarial response."""

TOO_LONG = "too_long"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Result of checking one answer.

    ``outcome``: the counted reason (``ok``/``correct`` on success); ``success``: accepted by the verifier;
    ``reward``: the reward the world gives this outcome; ``parse_ok``: the text could be read as an answer at all;
    ``violations``: the rule ids a well-formed but wrong answer breaks (VGRP); ``details``: free-form context.
    """

    outcome: str
    success: bool = False
    reward: float = 0.0
    parse_ok: bool = True
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Alias of ``success`` (the VGRP checker's name)."""
        return self.success

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reward": self.reward, "success": self.success, "parse_ok": self.parse_ok,
                               "outcome": self.outcome}
        if self.violations:
            out["violations"] = list(self.violations)
        if self.details:
            out["details"] = self.details
        return out


def too_long(text: str, max_chars: int = MAX_RESPONSE_CHARS) -> bool:
    """Whether ``text`` exceeds the response cap (checked before any parsing)."""
    return len(text) > max_chars


__all__ = ["MAX_RESPONSE_CHARS", "TOO_LONG", "Verdict", "too_long"]
