"""The verifier result shared by every puzzle world (reward, success, parse outcome, details)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """``reward`` for RL, ``success`` for accuracy, ``parse_ok``/``outcome`` for the counted parse result."""

    reward: float
    success: bool
    parse_ok: bool
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "success": self.success, "parse_ok": self.parse_ok, "outcome": self.outcome,
                **({"details": self.details} if self.details else {})}
