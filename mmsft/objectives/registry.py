"""Name → function registries for losses, advantage estimators and KL estimators (on :class:`mmsft.registry.Registry`).

A new paper's method is a new function, its own argument dataclass and a config string::

    @dataclass
    class MyArgs:
        tau: float = 0.5  # every field documented; validated when the config loads

    @register_loss("my_loss", requires=("logp", "ref_logp"), args=MyArgs)
    def my_loss(batch: TokenBatch, args: MyArgs) -> tuple[torch.Tensor, dict[str, float]]: ...

``token_fn`` (optional) is a factory ``fn(args) -> token_fn`` for a loss that needs full-vocabulary quantities of the
policy itself: the trainer runs ``token_fn(log_probs (N, V), targets, rows, cols) -> {name: (N, ...)}`` inside each
LM-head chunk (see :func:`mmsft.models.logprobs.head_logprobs`) and hands the outputs to the loss in
``TokenBatch.extras`` (or as the TokenBatch field of that name).

``requires`` names the :class:`~mmsft.objectives.batch.TokenBatch` fields the loss reads, so the trainer computes only
those (no reference forward pass when nothing asks for ``ref_logp``, no entropy unless asked) and checks at start-up
that a configured producer provides them. ``args`` is the component's own argument dataclass: config
``objective.args`` (or ``rl.advantage_args``) is validated against it — there is no flat bag of knobs shared by every
loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mmsft.registry import Entry, Registry

TOKEN_BATCH_FIELDS = frozenset(
    {"logp", "old_logp", "ref_logp", "teacher_logp", "teacher_dist", "logp_dist", "advantages", "token_weights",
     "expert_mask", "group_id", "entropy", "support_ids", "logp_support", "ref_support_logp", "teacher_support_logp",
     "ref_score", "prefix_mask", "policy_argmax", "values", "old_values", "returns"}
)


@dataclass
class NoArgs:
    """A component without arguments of its own."""


def _validate(name: str, meta: dict[str, Any]) -> None:
    unknown = set(meta.get("requires", ())) - TOKEN_BATCH_FIELDS
    if unknown:
        raise ValueError(f"{name!r} requires unknown TokenBatch fields {sorted(unknown)}; "
                         f"valid fields: {sorted(TOKEN_BATCH_FIELDS)}")
    token_fn = meta.get("token_fn")
    if token_fn is not None and not callable(token_fn):
        raise ValueError(f"{name!r}: token_fn must be a factory fn(args) -> token function, got {token_fn!r}")
    args = meta.get("args")
    if args is not None and not dataclasses.is_dataclass(args):
        raise ValueError(f"{name!r}: args must be a dataclass type, got {args!r}")


LOSSES: Registry = Registry("loss", validate=_validate)
ADVANTAGES: Registry = Registry("advantage estimator", validate=_validate)
KL_ESTIMATORS: Registry = Registry("KL estimator", validate=_validate)

register_loss = LOSSES.register
register_advantage = ADVANTAGES.register
register_kl = KL_ESTIMATORS.register


def get_loss(name: str) -> Entry:
    return LOSSES.get(name)


def get_advantage(name: str) -> Entry:
    return ADVANTAGES.get(name)


def get_kl(name: str) -> Entry:
    return KL_ESTIMATORS.get(name)


def args_type(entry: Entry) -> type:
    return entry.meta.get("args") or getattr(entry.fn, "args", None) or NoArgs

