"""What a training stage is made of: a producer (registered by name; the stage name *is* the producer name) and the
context the trainer hands it.

A producer declares the :class:`~mmsft.objectives.TokenBatch` fields it provides (``provides``); the trainer checks at
start-up that every field the objective requires is provided (the policy's own ``logp``, ``entropy`` and
``logp_dist`` are always computed by the trainer) and passes every provided field through. The producer protocol::

    provides: frozenset[str]
    next_step() -> list[ModelBatch]          # this process's micro-batches of one optimizer step
    pop_metrics() -> dict[str, float]
    state_dict() / load_state_dict(state)    # JSON-serialisable; part of every checkpoint
    at_rollout_boundary() -> bool            # checkpoints are taken only where this is True
    steps_per_epoch() -> int
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from mmsft.models.adapters import ModalityAdapter, ModelBatch
from mmsft.registry import Registry

PRODUCERS: Registry = Registry("producer (stage)")
TRAINER_FIELDS = frozenset({"logp", "entropy", "logp_dist", "logp_support", "values"})  # computed by the trainer's policy pass


class Producer(Protocol):
    provides: frozenset[str]

    def next_step(self) -> list[ModelBatch]: ...

    def pop_metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def at_rollout_boundary(self) -> bool: ...

    def steps_per_epoch(self) -> int: ...


@dataclass
class Scorers:
    """Frozen scorers built from what the objective and advantage declare: ModelBatch → (B, T) log-probs at the
    loss-mask positions (``*_dist``: (B, T, V_sub) over the restricted vocabulary). ``None`` when nothing needs one."""

    old: Callable[[ModelBatch], torch.Tensor] | None = None
    ref: Callable[[ModelBatch], torch.Tensor] | None = None
    teacher: Callable[[ModelBatch], torch.Tensor] | None = None
    teacher_dist: Callable[[ModelBatch], torch.Tensor] | None = None
    value: Callable[[ModelBatch], torch.Tensor] | None = None  # the critic's no-grad V_old (actor-critic objectives)


@dataclass
class StageContext:
    """Everything a producer factory may use."""

    cfg: Any  # RunConfig
    adapter: ModalityAdapter
    policy: Any  # mmsft.models.policy.Policy (unwrapped)
    scorers: Scorers
    needed: set[str]
    run_dir: Path
    rank: int = 0
    world_size: int = 1
    device: torch.device | str = "cpu"
    samples: list = field(default_factory=list)
    vocab_subset: torch.Tensor | None = None
    loaded: Any = None  # mmsft.models.loading.LoadedModel (processor, action tokenizer)


def register_producer(name: str, provides: tuple[str, ...], needs_dataset: bool = True, records: tuple[str, ...] = (),
                      args: type | None = None
                      ) -> Callable[[Callable[[StageContext], Producer]], Callable[[StageContext], Producer]]:
    """``@register_producer("rl", provides=(...))`` on a factory ``fn(ctx) -> producer``.

    ``records``: fields the producer can record during its rollouts without a scorer (e.g. a weight-free teacher's
    log-probs written by an environment bridge); the trainer builds no scorer for them unless one is configured.
    ``args``: the stage's own argument dataclass (config ``stage_args`` is validated against it; build it with
    ``mmsft.config.build_args(entry, cfg.stage_args, "stage_args")``)."""
    meta = {"args": args} if args is not None else {}
    return PRODUCERS.register(name, requires=tuple(provides), needs_dataset=needs_dataset, records=tuple(records),
                              **meta)


def _builtin() -> None:
    from mmsft.train import env_producer, mix_producer, producers, rl_producer  # noqa: F401  (sft, rl, distill, mix, env)


_builtin_loaded = False


def producer_entry(name: str):
    """The registered producer entry of a stage name (built-ins loaded on first use)."""
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        _builtin()
    return PRODUCERS.get(name)


def stage_names() -> list[str]:
    producer_entry("sft")
    return PRODUCERS.names()
