"""Checkpointed state of stateful scorers (a scorer that changes during training, such as CurioSFT's lagged
self-teacher, arXiv 2602.02244): a scorer that defines ``state_dict()`` / ``load_state_dict(state)`` has its state
written with every checkpoint as ``scorers.json`` + ``scorers.safetensors`` (pickle-free,
:mod:`mmsft.train.state_files`) and restored on resume, so the resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCORER_NAMES = ("old", "ref", "teacher")
STATE_NAME = "scorers"


def _stateful(scorers: Any) -> dict[str, Any]:
    out = {}
    for name in SCORER_NAMES:
        scorer = getattr(scorers, name, None)
        if scorer is not None and callable(getattr(scorer, "state_dict", None)):
            out[name] = scorer
    return out


def scorer_states(scorers: Any) -> dict[str, Any]:
    """``{"scorers": {name: state}}`` for ``save_checkpoint(extra_states=...)``; empty when no scorer has state."""
    states = {name: scorer.state_dict() for name, scorer in _stateful(scorers).items()}
    return {STATE_NAME: states} if states else {}


def restore_scorer_states(scorers: Any, checkpoint: Path) -> None:
    """Load every stateful scorer's state from ``checkpoint``; a checkpoint without it (written before the scorer
    kept state, or by another configuration) is refused with a message naming the file."""
    from mmsft.train.checkpoint import CheckpointError, load_extra_state

    stateful = _stateful(scorers)
    if not stateful:
        return
    states = load_extra_state(checkpoint, STATE_NAME)
    for name, scorer in stateful.items():
        if not isinstance(states, dict) or name not in states:
            raise CheckpointError(f"{Path(checkpoint) / (STATE_NAME + '.json')}: holds no state for the {name} scorer "
                                  f"({type(scorer).__name__}); the checkpoint was written by a run without it — "
                                  "resume with the same objective, or start over (train.resume=never)")
        try:
            scorer.load_state_dict(states[name])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{Path(checkpoint) / (STATE_NAME + '.json')}: {name} scorer: {exc}") from None
