"""Every zoo entry added for issue 14's remaining methods is registered under the name its docs row gives and has a
row in docs/objectives.md (name → paper → formula → keys → fields → cost)."""

from __future__ import annotations

from pathlib import Path

from mmsft.algorithms import ALGORITHMS
from mmsft.eval.evaluators import EVALUATORS
from mmsft.objectives import ADVANTAGES, LOSSES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "objectives.md").read_text()


def _row(cell: str) -> str:
    line = next((x for x in DOC.splitlines() if x.startswith(f"| {cell} |")), "")
    assert line, f"docs/objectives.md has no table row for {cell}"
    return line


def test_new_entries_are_registered_and_documented():
    for loss, paper in (("lfu", "2511.13052"), ("srppo", "2510.21090")):
        assert loss in LOSSES.names() and loss in ALGORITHMS.names()
        assert paper in _row(f"`{loss}`") and "× " in _row(f"`{loss}`")  # paper and cost columns filled
    assert "srppo_gae" in ADVANTAGES.names() and "srppo_gae" in _row("`srppo`")
    assert "transfer_q" in EVALUATORS.names() and "2405.20495" in _row("evaluator `transfer_q`")
    assert "2505.07961" in _row("`rl.stop_temperature` (+ `rl.stop_temperature_tokens`)")
    assert "| lfu | 0." in DOC  # the study row carries numbers
