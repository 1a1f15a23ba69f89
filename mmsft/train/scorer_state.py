"""Checkpointed training state outside the model weights, pickle-free (:mod:`mmsft.train.state_files`):

* stateful scorers (CurioSFT's lagged self-teacher, arXiv 2602.02244): a scorer that defines ``state_dict()`` /
  ``load_state_dict(state)`` has its state written with every checkpoint as ``scorers.json`` + ``.safetensors``;
* trainable modules a loss attaches to the policy (registry meta ``policy_modules``, e.g. SRPPO's value head):
  ``policy_modules.json`` + ``.safetensors`` (their optimizer state is in the optimizer's own file).

Both are restored on resume, so a resumed run is bit-identical to an uninterrupted one.
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


# ---- trainable modules a loss attaches to the policy (a critic's value head) ---------------------------------------
MODULES_NAME = "policy_modules"


def attach_policy_modules(policy: Any, objective: Any) -> list[str]:
    """Attach the modules the loss declares (registry meta ``policy_modules``: ``fn(args, policy) -> {name:
    module}``) to ``policy`` before the optimizer is built, so they train with it; returns their names."""
    factory = objective.entry.meta.get("policy_modules")
    names: list[str] = []
    if factory is None:
        return names
    device = next(policy.model.parameters()).device
    for name, module in factory(objective.args, policy).items():
        if hasattr(policy, name):
            raise ValueError(f"loss {objective.entry.name!r} attaches a module named {name!r}, which the policy has")
        policy.add_module(name, module.to(device))
        names.append(name)
    policy._mmsft_modules = names
    return names


def policy_module_states(policy: Any) -> dict[str, Any]:
    """``{"policy_modules": {name: state_dict}}`` for ``save_checkpoint(extra_states=...)`` (empty: none attached)."""
    names = getattr(policy, "_mmsft_modules", [])
    if not names:
        return {}
    return {MODULES_NAME: {n: {k: v.detach().cpu() for k, v in getattr(policy, n).state_dict().items()}
                           for n in names}}


def restore_policy_modules(policy: Any, checkpoint: Path) -> None:
    """Load the attached modules' weights from ``checkpoint``; a checkpoint without them is refused naming the file."""
    from mmsft.train.checkpoint import CheckpointError, load_extra_state

    names = getattr(policy, "_mmsft_modules", [])
    if not names:
        return
    where = Path(checkpoint) / f"{MODULES_NAME}.json"
    states = load_extra_state(checkpoint, MODULES_NAME)
    for name in names:
        if not isinstance(states, dict) or name not in states:
            raise CheckpointError(f"{where}: holds no weights for the policy's {name!r} (written by a run without "
                                  "it); resume with the same objective or start over (train.resume=never)")
        try:
            getattr(policy, name).load_state_dict(states[name])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{where}: {name}: {exc}") from None
