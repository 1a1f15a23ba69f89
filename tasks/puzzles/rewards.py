"""Puzzle rewards for the trainer's reward registry (``fn(samples, completions, **columns)``).

Importing this module registers:

* ``puzzle`` - the world's verifier reward for datasets built by ``mmsft data build`` (Sokoban: 1 for an optimal
  next move / a solving plan, else 0; General Points: the reward table of arXiv 2501.17161, -3 for unparsable);
* ``puzzle_success`` - 1.0 when the verifier accepts the answer, else 0.0;
* ``puzzle_format`` - 0.0 when the answer parses, else -1.0 (weight it for a format penalty).

The verifier answer is read from ``sample.answer`` (or an ``answer`` column); it is dispatched on its ``world``.
"""

from __future__ import annotations

from typing import Any, Sequence

from mmsft.rewards import register_reward
from tasks.puzzles import gp_task, sokoban_task
from tasks.puzzles.verdict import Verdict

_VERIFY = {"sokoban": sokoban_task.verify, "general-points": gp_task.verify}


def _verdicts(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None) -> list[Verdict]:
    out = []
    for i, text in enumerate(completions):
        ans = answer[i] if answer is not None else getattr(samples[i], "answer", None)
        if not isinstance(ans, dict) or ans.get("world") not in _VERIFY:
            raise ValueError(f"sample {i}: answer must be a puzzle answer dict with 'world' in {sorted(_VERIFY)}, "
                             f"got {type(ans).__name__}")
        out.append(_VERIFY[ans["world"]](ans, text))
    return out


@register_reward("puzzle")
def puzzle_reward(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None = None,
                  **_: Any) -> list[float]:
    return [v.reward for v in _verdicts(samples, completions, answer)]


@register_reward("puzzle_success")
def puzzle_success(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None = None,
                   **_: Any) -> list[float]:
    return [float(v.success) for v in _verdicts(samples, completions, answer)]


@register_reward("puzzle_format")
def puzzle_format(samples: Sequence[Any], completions: Sequence[str], answer: Sequence[Any] | None = None,
                  **_: Any) -> list[float]:
    return [0.0 if v.parse_ok else -1.0 for v in _verdicts(samples, completions, answer)]
