"""Policies for the LIBERO runners: the protocol, the built-in oracle, and loading ``module:callable`` specs.

A *policy* is a callable ``policy(obs, info) -> action`` returning 7 floats in [-1, 1] (OSC deltas + gripper,
-1 open / +1 close; see ``envs.libero.env``). If it has a ``reset()`` method, the runner calls it at the start of
every episode. The runners need one policy per worker slot, so they take a *policy factory*: a zero-argument
callable returning a fresh policy.

``--policy`` specs understood by :func:`load_policy`:

- ``oracle``: :class:`envs.libero.oracle.ScriptedOracle` (needs the privileged env info; enabled automatically).
- ``mmsft:MODEL_DIR``: a trained mmsft VLA folder (:class:`tasks.libero.vla_policy.VLAPolicy`): one *batched*
  policy for all slots (``act_batch`` / ``reset_slot``), whose env settings (image size, cameras, render) come from
  the folder's recorded interface (:attr:`LoadedPolicy.requirements`).
- ``package.module:name``: if ``name`` is a class or a callable taking no required argument, it is the factory;
  otherwise (a function of ``(obs, info)``) it is a stateless policy shared by all slots.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np


class Policy(Protocol):
    """``(obs, info) -> action (7,)``; an optional ``reset()`` starts an episode."""

    def __call__(self, obs: dict[str, Any], info: dict[str, Any]) -> Any: ...


PolicyFactory = Callable[[], Policy]


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy factory plus what the environment must provide for it."""

    name: str
    factory: PolicyFactory
    privileged: bool = False
    batched: bool = False  # factory() returns one policy with act_batch(slots, obs, infos) / reset_slot(slot)
    requirements: dict[str, Any] | None = None  # env settings the policy was trained with (image_size, cameras, ...)


def _oracle_factory() -> Policy:
    from envs.libero.oracle import ScriptedOracle

    return ScriptedOracle()


def _zero_required_args(fn: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def mmsft_policy(model_dir: str, temperature: float = 0.0, seed: int = 0) -> LoadedPolicy:
    """The batched policy of a trained VLA folder; its env requirements are read from ``action_tokenizer.json``
    without loading the weights."""
    from pathlib import Path

    from tasks.libero.vla_policy import PREFIX, folder_interface

    folder = Path(model_dir)
    if not folder.is_dir():
        raise ValueError(f"--policy {PREFIX}{model_dir}: no such model folder")
    interface, _ = folder_interface(folder)

    def factory() -> Any:
        from tasks.libero.vla_policy import VLAPolicy

        return VLAPolicy(str(folder), temperature=temperature, seed=seed)

    return LoadedPolicy(f"{PREFIX}{model_dir}", factory, batched=True, requirements=interface.env_kwargs())


def load_policy(spec: str, temperature: float = 0.0, seed: int = 0) -> LoadedPolicy:
    """Resolve a ``--policy`` spec (see the module docstring); raises ``ValueError`` with the accepted forms.
    ``temperature`` / ``seed`` apply to ``mmsft:`` policies (0: greedy)."""
    if spec == "oracle":
        return LoadedPolicy("oracle", _oracle_factory, privileged=True)
    if spec.startswith("mmsft:"):
        return mmsft_policy(spec[len("mmsft:"):], temperature, seed)
    from envs.libero.worker import resolve_entry_point

    if ":" not in spec:
        raise ValueError(f"--policy {spec!r}: expected 'oracle', 'mmsft:MODEL_DIR' or 'package.module:callable'")
    target = resolve_entry_point(spec)
    if not callable(target):
        raise ValueError(f"--policy {spec!r} names a {type(target).__name__}, not a callable")
    privileged = bool(getattr(target, "privileged", False))
    if inspect.isclass(target) or _zero_required_args(target):
        return LoadedPolicy(spec, target, privileged=privileged)
    return LoadedPolicy(spec, lambda: target, privileged=privileged)


def reset_policy(policy: Policy) -> None:
    """Call ``policy.reset()`` when the policy has one."""
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset()


def as_action(value: Any, where: str) -> np.ndarray:
    """Validate a policy output: 7 finite floats. ``where`` names the episode for the error message."""
    action = np.asarray(value, dtype=np.float32).reshape(-1)
    if action.shape != (7,) or not np.all(np.isfinite(action)):
        raise ValueError(f"policy returned {value!r} for {where}; expected 7 finite floats in [-1, 1]")
    return action
