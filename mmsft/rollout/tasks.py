"""Environment tasks: the registry ``ENV_TASKS`` and the bridge protocol :class:`EnvTask`.

A task bridge connects one environment to a policy: it builds the batched env (:mod:`mmsft.rollout.envs`), maps a
(split, index) to a level seed (train and held-out ranges are disjoint), renders each observation into the prompt
of a turn (:class:`TurnPrompt`: text plus optional images) and turns the model's output into an env action
(:class:`TurnAction`) with a counted outcome — ``"ok"`` or the reason the output could not be parsed. An unparsable
output is never silently dropped: the bridge chooses the documented consequence (usually a no-op move plus
``penalty``) and the agent loop counts it under ``rollout/parse_failures``.

Tasks register a factory ``factory(cfg: EnvConfig, adapter: ModalityAdapter) -> EnvTask`` by name::

    @ENV_TASKS.register("sokoban")
    def make_sokoban(cfg, adapter):
        return SokobanTask(cfg, adapter)

Task packages are imported through the ``mmsft.plugins`` entry points (a lookup of an unknown name loads them), or
by a ``plugins:`` config entry; ``mmsft`` itself never imports ``tasks``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsft.registry import Registry
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.envs import BatchedEnv

ENV_TASKS: Registry = Registry("environment task")

#: Seed bases of the splits (train below 2**31; val and test above), the layout ``mmsft data build`` uses.
SPLIT_BASES = {"train": 0, "val": 2**31, "test": 2**31 + 2**30}


@dataclass
class TurnPrompt:
    """What the policy is shown this turn: the user message text and optional images (H×W×3 uint8)."""

    text: str
    images: list[np.ndarray] = field(default_factory=list)


@dataclass
class GeneratedTurn:
    """The policy's output for one turn: the exact sampled token ids and their decoded text."""

    token_ids: Any  # LongTensor (L,)
    text: str
    truncated: bool  # hit the token cap without a stop token


@dataclass
class TurnAction:
    """The env action(s) of a turn and the parse outcome.

    ``actions`` is a chunk of primitive env actions applied in order (``[]``: the slot does not move this turn).
    ``outcome`` is ``"ok"`` or a short reason (counted); ``penalty`` is added to the turn's reward.
    """

    actions: list[Any]
    outcome: str = "ok"
    penalty: float = 0.0
    end_episode: bool = False  # the bridge ends the episode after this turn (e.g. single-turn tasks)
    summary: Any = None  # JSON-able description of the action for transcripts

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class GenerationSpec:
    """How a turn is generated: token cap, optional constrained vocabulary, whether a stop token may end it."""

    max_new_tokens: int
    vocab_subset: tuple[int, ...] | None = None
    allow_stop: bool = True


class EnvTask(ABC):
    """The bridge between one environment and a policy (see the module docstring)."""

    name: str = "task"

    def __init__(self, cfg: EnvConfig, adapter: Any) -> None:
        self.cfg, self.adapter = cfg, adapter
        if not isinstance(cfg.task_args, dict):
            raise ValueError(f"env.task_args must be a mapping of keyword arguments, got {cfg.task_args!r}")

    # ---- episodes ---------------------------------------------------------------------------------------------
    @abstractmethod
    def make_env(self, num_envs: int) -> BatchedEnv:
        """A batched env with ``num_envs`` slots."""

    def level_seed(self, split: str, index: int) -> int:
        """Level seed of example ``index`` of ``split`` (disjoint ranges per split)."""
        if split not in SPLIT_BASES:
            raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_BASES)}")
        return SPLIT_BASES[split] + self.cfg.seed * 1_000_003 + index

    def begin_episodes(self, env: BatchedEnv, observations: list[dict[str, Any]], infos: list[dict[str, Any]]) -> None:
        """Called after every ``reset`` (stateful helpers such as an oracle teacher start here)."""

    # ---- turns ------------------------------------------------------------------------------------------------
    def generation(self) -> GenerationSpec:
        """Generation settings of a turn: ``env.max_new_tokens_per_turn`` tokens, constrained as the adapter declares
        (:meth:`ModalityAdapter.sampling_constraints`; a VLA task overrides the token count)."""
        subset, allow_stop = self.adapter.sampling_constraints()
        return GenerationSpec(self.cfg.max_new_tokens_per_turn or 64, subset, allow_stop)

    @abstractmethod
    def observe(self, env: BatchedEnv, slot: int, observation: dict[str, Any], info: dict[str, Any],
                turn: int) -> TurnPrompt:
        """The prompt of ``turn`` for one slot."""

    @abstractmethod
    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        """Parse one slot's output into env actions (total: any output gets a counted outcome)."""

    def teacher_logprobs(self, slot: int, output: GeneratedTurn) -> Any:
        """Optional per-token teacher log-probabilities over the adapter's ``vocab_subset`` for this turn's tokens,
        a (L, V_sub) tensor (weight-free teachers such as a scripted oracle); None when the task has none."""
        return None

    def frames(self, env: BatchedEnv, observations: list[dict[str, Any] | None]) -> list[np.ndarray | None]:
        """Per-slot RGB frames for GIF logs (default: the observation's ``image``, or its first camera)."""
        out: list[np.ndarray | None] = []
        for obs in observations:
            frame = None
            if obs is not None:
                frame = obs.get("image")
                if frame is None and isinstance(obs.get("images"), dict) and obs["images"]:
                    frame = next(iter(obs["images"].values()))
            out.append(frame)
        return out

    def success(self, info: dict[str, Any]) -> bool:
        """Whether an episode ended in success (default: ``info["success"]``)."""
        return bool(info.get("success", False))


def make_task(name: str, cfg: EnvConfig, adapter: Any) -> EnvTask:
    """Build the registered task ``name`` (loading plugins on a miss; ``module:function`` paths work too)."""
    task = ENV_TASKS.get(name).fn(cfg, adapter)
    if not isinstance(task, EnvTask):
        raise TypeError(f"environment task {name!r} returned {type(task).__name__}; expected an EnvTask")
    return task
