"""Name → function registries for losses, advantage estimators and KL estimators.

A new paper's method is a new function plus a config string::

    @register_loss("my_loss", requires=("logp", "ref_logp"))
    def my_loss(batch: TokenBatch, cfg) -> tuple[torch.Tensor, dict[str, float]]: ...

``requires`` names the :class:`~mmsft.objectives.batch.TokenBatch` fields the loss reads, so the trainer computes only
those (no reference forward pass when nothing asks for ``ref_logp``, no entropy unless asked).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable)

TOKEN_BATCH_FIELDS = frozenset(
    {"logp", "old_logp", "ref_logp", "teacher_logp", "advantages", "token_weights", "expert_mask", "group_id", "entropy"}
)


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    fn: F
    requires: frozenset[str]


class Registry(Generic[F]):
    """A named table of functions with helpful errors for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, requires: tuple[str, ...] = ()) -> Callable[[F], F]:
        unknown = set(requires) - TOKEN_BATCH_FIELDS
        if unknown:
            raise ValueError(f"{self.kind} {name!r} requires unknown TokenBatch fields {sorted(unknown)}; "
                             f"valid fields: {sorted(TOKEN_BATCH_FIELDS)}")

        def decorator(fn: F) -> F:
            if name in self._entries and self._entries[name].fn is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._entries[name].fn.__module__}")
            self._entries[name] = Entry(name, fn, frozenset(requires))
            return fn

        return decorator

    def get(self, name: str) -> Entry[F]:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._entries)) or 'none'}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


LOSSES: Registry = Registry("loss")
ADVANTAGES: Registry = Registry("advantage estimator")
KL_ESTIMATORS: Registry = Registry("KL estimator")

register_loss = LOSSES.register
register_advantage = ADVANTAGES.register
register_kl = KL_ESTIMATORS.register


def get_loss(name: str) -> Entry:
    return LOSSES.get(name)


def get_advantage(name: str) -> Entry:
    return ADVANTAGES.get(name)


def get_kl(name: str) -> Entry:
    return KL_ESTIMATORS.get(name)
