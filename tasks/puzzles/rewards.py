"""Puzzle rewards for the trainer's reward registry (``fn(samples, completions, **columns)``).

Importing this module registers:

* ``puzzle`` - the world's verifier reward for datasets built by ``mmsft data build`` (Sokoban: 1 for an optimal
  next move / a solving plan, else 0; General Points: the reward table of arXiv 2501.17161, -3 for unparsable);
* ``puzzle_success`` - 1.0 when the verifier accepts the answer, else 0.0;
* ``puzzle_format`` - 0.0 when the answer parses, else -1.0 (weight it for a format penalty). Each value is a dict
  with one part named by the outcome (``{"too_long": -1.0}``, ``{"ok": 0.0}``), so the trainer logs
  ``reward/puzzle_format/<outcome>`` = minus the share of completions with that outcome: the counted reasons.

Every completion gets a verdict, never an exception (see :mod:`envs.verdict`): text over
:data:`~envs.verdict.MAX_RESPONSE_CHARS` is ``too_long``, nested brackets, huge numbers and non-ASCII digits are
unparsable or illegal formulas, and the work is linear in the text's length. The verifier answer is read from
``sample.answer`` (or an ``answer`` column); it is dispatched on its ``world``; a malformed answer (a data error,
not a model error) raises naming the sample.
"""

from __future__ import annotations

from typing import Any, Sequence

from envs.verdict import Verdict
from mmsft.rewards import register_reward
from tasks.puzzles import gp_task, sokoban_task

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
                  **_: Any) -> list[dict[str, float]]:
    return [{"ok": 0.0} if v.parse_ok else {v.outcome: -1.0} for v in _verdicts(samples, completions, answer)]
