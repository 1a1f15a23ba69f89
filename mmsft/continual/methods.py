"""Continual post-training methods. A method expands, for one seed, into a pipeline (one stage per task, or one
joint stage) plus stage hooks (data selection before a stage, weight arithmetic after it).

Registered methods (YAML ``methods:`` entries; arguments next to ``method``):

* ``sft`` — sequential SFT on each task's data.
* ``sft_lora`` — sequential SFT with a fresh LoRA adapter per stage, merged into the weights after the stage
  (``r``, ``alpha``, ``dropout``, ``target_modules``).
* ``rft`` — sequential RL fine-tuning on each task's verifiable reward (``algorithm``: any preset, GRPO by
  default; an environment task trains in its environment). Lai et al., arXiv 2507.05386.
* ``rif_rft`` — RFT with rollout-based instance filtering (RIF-RFT, Lai et al., arXiv 2507.05386): before each stage,
  ``k`` rollouts per training instance with the current model; instances with fewer than ``min_successes``
  successful rollouts (and, with ``max_successes`` ≥ 0, more than that many) are dropped
  (:mod:`mmsft.data.selection`). An environment task has no instance set to filter: its stage trains unfiltered
  and the log says so.
* ``multitask`` — one joint stage on the union of every task's data (the upper bound; ``mode: sft`` or ``rft``).
* ``past`` — PaST skill injection (Tang et al., "Knowledge is Not Enough", arXiv 2601.11258): sequential SFT;
  on the ``source`` task an extra RL run gives the skill vector v = θ_RL − θ_SFT, and ``scale``·v is added to the
  model after SFT on the next task (``targets: next``) or on every later task (``targets: all``).

A plugin adds a method with :func:`register_method`; the function gets a :class:`PlanContext` and returns a
:class:`MethodPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mmsft.config import ConfigError, load_config_dict
from mmsft.config_base import _f
from mmsft.pipeline.spec import deep_merge
from mmsft.registry import Registry

METHODS: Registry = Registry("continual method")


def register_method(name: str, args: type | None = None) -> Callable:
    """``@register_method("name", args=ArgsDataclass)`` on ``fn(ctx: PlanContext) -> MethodPlan``."""
    return METHODS.register(name, args=args)


def method_args(method: str, raw: dict[str, Any], where: str) -> Any:
    """The method's arguments parsed into its dataclass (unknown keys fail with "did you mean")."""
    cls = METHODS.get(method).meta.get("args")
    if cls is None:
        if raw:
            raise ConfigError(f"{where}: method {method!r} takes no arguments, got {sorted(raw)}")
        return None
    raw = dict(raw)
    # the config loader would apply an `algorithm` key as a preset to the dataclass: check it as a preset name here
    algorithm = raw.pop("algorithm", None)
    args = load_config_dict(raw, cls=cls, where=where)
    if algorithm is not None:
        if not hasattr(args, "algorithm"):
            raise ConfigError(f"{where}: method {method!r} takes no 'algorithm' argument")
        from mmsft.algorithms import ALGORITHMS
        from mmsft.registry import RegistryError

        try:
            ALGORITHMS.get(str(algorithm))
        except RegistryError as exc:
            raise ConfigError(f"{where}: key 'algorithm': {exc}") from None
        args.algorithm = str(algorithm)
    return args


@dataclass
class MethodPlan:
    """Pipeline stages (``{name, recipe}``), hooks run around each stage, and whether it is one joint stage."""

    stages: list[dict[str, Any]]
    hooks: list[Any] = field(default_factory=list)
    joint: bool = False


@dataclass
class PlanContext:
    spec: Any  # ExperimentSpec
    method: Any  # MethodSpec
    seed: int
    run_dir: Path
    start_model: str

    @property
    def args(self) -> Any:
        return self.method.args

    def recipe(self, task: Any, kind: str, forced: dict[str, Any]) -> dict[str, Any]:
        """task.recipe ⊕ task.<kind> ⊕ method.recipe ⊕ ``forced`` (the experiment's defaults lie under all of it)."""
        out: dict[str, Any] = {}
        for layer in (task.recipe, task.sft if kind == "sft" else task.rft, self.method.recipe, forced):
            out = deep_merge(out, layer)
        return out

    def sft_stage(self, task: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        if not task.data:
            raise ConfigError(f"{self.method.source}: task {task.name!r} has no training data ('data') for SFT")
        forced = deep_merge({"stage": "sft", "data": {"train_path": task.data}}, extra or {})
        return {"name": task.name, "recipe": self.recipe(task, "sft", forced)}

    def rft_recipe(self, task: Any, algorithm: str, need_data: bool = False) -> dict[str, Any]:
        if task.env and not need_data:
            return self.recipe(task, "rft", deep_merge({"algorithm": algorithm}, task.env))
        if not task.data or not task.reward:
            what = "training data ('data') and a verifiable reward ('reward')"
            raise ConfigError(f"{self.method.source}: task {task.name!r} needs {what} for RL"
                              + (" (RIF-RFT filters a dataset, not an environment)" if need_data else ""))
        forced = {"algorithm": algorithm, "data": {"train_path": task.data}, "rl": {"rewards": task.reward}}
        return self.recipe(task, "rft", forced)


def expand(spec: Any, method: Any, seed: int, run_dir: Path, start_model: str) -> MethodPlan:
    """The plan of ``method`` for one seed."""
    ctx = PlanContext(spec, method, seed, Path(run_dir), start_model)
    plan = METHODS.get(method.method).fn(ctx)
    if not isinstance(plan, MethodPlan):
        raise ConfigError(f"{method.source}: method {method.method!r} returned {type(plan).__name__}, not a MethodPlan")
    return plan


def check_method(spec: Any, method: Any) -> None:
    """Expand the method once (first seed) so a task it cannot use fails now, naming both."""
    expand(spec, method, spec.seeds[0], spec.run_dir(method.name, spec.seeds[0]), spec.base_model)


# ---------------------------------------------------------------------------------------------------- methods
@register_method("sft")
def sequential_sft(ctx: PlanContext) -> MethodPlan:
    """Sequential SFT: stage k is SFT on task k's data, from stage k−1's model."""
    return MethodPlan([ctx.sft_stage(task) for task in ctx.spec.tasks])


@dataclass
class LoraArgs:
    r: int = _f(8, "LoRA rank of each stage's adapter.", ge=1)
    alpha: int = _f(16, "LoRA alpha.", ge=1)
    dropout: float = _f(0.0, "LoRA dropout.", ge=0, lt=1)
    target_modules: str = _f("all-linear", "Comma-separated module names, or all-linear.")


@register_method("sft_lora", args=LoraArgs)
def sequential_sft_lora(ctx: PlanContext) -> MethodPlan:
    """Sequential SFT with a new LoRA adapter per stage, merged into the weights after it (Hu et al., arXiv
    2106.09685)."""
    a = ctx.args
    lora = {"lora": {"enabled": True, "r": a.r, "alpha": a.alpha, "dropout": a.dropout,
                     "target_modules": a.target_modules}}
    return MethodPlan([ctx.sft_stage(task, lora) for task in ctx.spec.tasks])


@dataclass
class RFTArgs:
    algorithm: str = _f("grpo", "Algorithm preset of every RL stage (grpo, dapo, dr_grpo, gspo, rloo, ...).")


@register_method("rft", args=RFTArgs)
def sequential_rft(ctx: PlanContext) -> MethodPlan:
    """Sequential RFT (Lai et al., arXiv 2507.05386): stage k is RL on task k's verifiable reward."""
    return MethodPlan([{"name": t.name, "recipe": ctx.rft_recipe(t, ctx.args.algorithm)} for t in ctx.spec.tasks])


@dataclass
class RIFArgs:
    algorithm: str = _f("grpo", "Algorithm preset of every RL stage.")
    k: int = _f(8, "Rollouts per training instance before each stage (K).", ge=1)
    min_successes: int = _f(1, "Keep an instance with at least this many successful rollouts "
                                      "(1 drops the 'incompetent' ones that no rollout solves).", ge=0, le="k")
    max_successes: int = _f(-1, "Keep an instance with at most this many successes (-1: K, keep solved "
                                       "ones; K-1 also drops the fully solved ones).", ge=-1, le="k")
    success_threshold: float = _f(1.0, "A rollout succeeds when its total reward is >= this.")
    temperature: float = _f(-1.0, "Sampling temperature of the filter rollouts (-1: rl.temperature).")
    max_new_tokens: int = _f(0, "Generation cap of the filter rollouts (0: rl.max_new_tokens).", ge=0)
    batch_size: int = _f(64, "Sequences per generate call.", ge=1)


@register_method("rif_rft", args=RIFArgs)
def rif_rft(ctx: PlanContext) -> MethodPlan:
    """RIF-RFT: sequential RFT on the instances the current model solves sometimes (Lai et al., arXiv 2507.05386)."""
    from mmsft.continual.hooks import SelectionHook
    from mmsft.data.selection import RolloutFilter

    a = ctx.args
    if a.k < 1 or not 0 <= a.min_successes <= a.k or a.max_successes > a.k:
        raise ConfigError(f"{ctx.method.source}: need k >= 1, 0 <= min_successes <= k and max_successes <= k "
                          f"(got k={a.k}, min_successes={a.min_successes}, max_successes={a.max_successes})")
    if 0 <= a.max_successes < a.min_successes:
        raise ConfigError(f"{ctx.method.source}: max_successes={a.max_successes} < min_successes={a.min_successes} "
                          "keeps nothing")
    stages = [{"name": t.name, "recipe": ctx.rft_recipe(t, a.algorithm, need_data=not t.env)} for t in ctx.spec.tasks]
    rule = RolloutFilter(k=a.k, min_successes=a.min_successes,
                         max_successes=a.k if a.max_successes < 0 else a.max_successes,
                         success_threshold=a.success_threshold, temperature=a.temperature,
                         max_new_tokens=a.max_new_tokens, batch_size=a.batch_size)
    return MethodPlan(stages, [SelectionHook(rule)])


@dataclass
class MultiTaskArgs:
    mode: str = _f("sft", "sft: joint SFT on every task's data; rft: joint RL (each row keeps its task's "
                                 "reward).", ("sft", "rft"))
    algorithm: str = _f("grpo", "Algorithm preset when mode is rft.")
    steps: str = _f("sum", "sum: train.max_steps = the sum of the tasks' steps; recipe: as the recipes say.",
                           ("sum", "recipe"))


@register_method("multitask", args=MultiTaskArgs)
def multitask(ctx: PlanContext) -> MethodPlan:
    """Joint training on all tasks at once — the upper bound of the comparison (Lai et al., arXiv 2507.05386)."""
    from mmsft.continual.hooks import JointDataHook

    a, tasks = ctx.args, ctx.spec.tasks
    kind = a.mode
    per_task = []
    for task in tasks:
        recipe = ctx.sft_stage(task)["recipe"] if kind == "sft" else ctx.rft_recipe(task, a.algorithm, True)
        per_task.append(load_config_dict(deep_merge(ctx.spec.defaults, recipe), where=f"{ctx.method.source}: task "
                                         f"{task.name!r}"))
    recipe: dict[str, Any] = {}
    for task in tasks:
        recipe = deep_merge(recipe, deep_merge(task.recipe, task.sft if kind == "sft" else task.rft))
    recipe = deep_merge(recipe, ctx.method.recipe)
    joint_path = str(ctx.run_dir / "data" / "joint.jsonl")
    forced: dict[str, Any] = {"data": {"train_path": joint_path}}
    if kind == "sft":
        forced["stage"] = "sft"
    else:
        forced.update(algorithm=a.algorithm, plugins=["mmsft.continual.rewards"],
                      rl={"rewards": "continual_task_reward",
                          "max_new_tokens": max(c.rl.max_new_tokens for c in per_task)})
    if a.steps == "sum" and all(c.train.max_steps > 0 for c in per_task):
        forced["train"] = {"max_steps": sum(c.train.max_steps for c in per_task)}
    return MethodPlan([{"name": "joint", "recipe": deep_merge(recipe, forced)}],
                      [JointDataHook(list(tasks), Path(joint_path), with_rewards=kind == "rft")], joint=True)


@dataclass
class PastArgs:
    source: str = _f("", "Task whose RL skill is extracted (default: the first task).")
    scale: float = _f(1.0, "λ: the skill vector is added as λ·(θ_RL − θ_SFT).")
    targets: str = _f("next", "next: inject after SFT on the task after the source; all: after every "
                                     "later task.", ("next", "all"))
    algorithm: str = _f("grpo", "Algorithm preset of the source task's RL run.")
    rl_recipe: dict = _f({}, "Recipe keys merged over the source task's RL recipe.")


@register_method("past", args=PastArgs)
def past(ctx: PlanContext) -> MethodPlan:
    """PaST skill injection (Tang et al., arXiv 2601.11258) on a sequential-SFT backbone."""
    from mmsft.continual.hooks import PastHook

    a, tasks = ctx.args, ctx.spec.tasks
    source = a.source or tasks[0].name
    names = [t.name for t in tasks]
    if source not in names:
        raise ConfigError(f"{ctx.method.source}: source task {source!r} is not in the sequence {names}")
    index = names.index(source)
    if index == len(tasks) - 1:
        raise ConfigError(f"{ctx.method.source}: source task {source!r} is the last task; no later task to inject "
                          "its skill into")
    targets = names[index + 1:] if a.targets == "all" else [names[index + 1]]
    rl_recipe = deep_merge(ctx.rft_recipe(ctx.spec.task(source), a.algorithm, need_data=False), a.rl_recipe)
    return MethodPlan([ctx.sft_stage(task) for task in tasks], [PastHook(source, targets, a.scale, rl_recipe)])


__all__ = ["METHODS", "MethodPlan", "PlanContext", "check_method", "expand", "method_args", "register_method"]
