"""The experiment file of ``mmsft continual``: an ordered task sequence, the methods to compare, and seeds.

::

    output_dir: runs/continual
    plugins: [tasks.image_classification]      # modules imported first (rewards, evaluators, methods, ...)
    base_model: assets/shapes_base             # the starting model of every method
    seeds: [0, 1]
    defaults: {train: {torch_threads: 1}}      # recipe keys under every stage of every method
    warmup: {data: {train_path: fmt.jsonl}}    # optional recipe trained once from base_model; all methods start there
    keep_checkpoints: false                    # false: a finished stage's checkpoints/ are deleted (final/ stays)
    tasks:
      - name: count
        data: data/count/train.jsonl           # SFT targets and RL prompts (a JSONL in the mmsft schema)
        reward: cls_accuracy                   # the verifier (rl.rewards of RFT stages, the RIF-RFT filter)
        eval: {evaluator: generation_accuracy, path: data/count/test.jsonl, max_new_tokens: 4}   # or a list
        recipe: {rl: {max_new_tokens: 4}}      # merged into every stage on this task (any method)
        sft: {train: {max_steps: 100}}         # merged into SFT stages on this task
        rft: {train: {max_steps: 40}}          # merged into RL stages on this task
        # env: {task: sokoban, env: {...}}     # an environment task: RL stages train in it instead
    general:                                   # probe sets never trained on (evaluated after every stage)
      - {name: attributes, evaluator: generation_accuracy, path: data/general/test.jsonl}
    methods:
      - sft                                    # a registered method name with its default arguments
      - {name: grpo, method: rft, algorithm: grpo, recipe: {optim: {lr: 1.0e-4}}}
      - {name: rif, method: rif_rft, k: 8, min_successes: 1}

Every entry is validated when the file is loaded — unknown keys (with the nearest valid names), unknown methods,
rewards or evaluators, missing data files, a task a method needs data or a reward for — naming the entry, before
anything trains. Paths inside the file are used as written (relative to the working directory), as in recipes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.config import ConfigError
from mmsft.pipeline.spec import BASE, _check_keys, _check_name, deep_merge

EXPERIMENT_KEYS = ("output_dir", "plugins", "base_model", "seeds", "defaults", "warmup", "keep_checkpoints",
                   "tasks", "general", "methods")
TASK_KEYS = ("name", "data", "reward", "eval", "recipe", "sft", "rft", "env")
METHOD_KEYS = ("name", "method", "recipe")  # every other key is the method's own argument
RESERVED = (BASE, "start", "joint")


@dataclass
class EvalEntry:
    """One evaluation set: a matrix column name, an evaluator and its arguments."""

    name: str
    evaluator: str
    args: dict[str, Any]

    def as_pipeline(self) -> dict[str, Any]:
        return {"name": self.name, "evaluator": self.evaluator, **self.args}


@dataclass
class TaskSpec:
    """One task of the sequence; ``evals[0]`` is its main held-out set (the accuracy matrix column)."""

    name: str
    data: str
    reward: str
    evals: list[EvalEntry]
    recipe: dict[str, Any] = field(default_factory=dict)
    sft: dict[str, Any] = field(default_factory=dict)
    rft: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def main_eval(self) -> str:
        return self.evals[0].name


@dataclass
class MethodSpec:
    """One compared method: a display name, a registered method, its parsed arguments and an extra recipe."""

    name: str
    method: str
    args: Any
    recipe: dict[str, Any]
    source: str


@dataclass
class ExperimentSpec:
    output_dir: Path
    base_model: str
    seeds: list[int]
    tasks: list[TaskSpec]
    general: list[EvalEntry]
    methods: list[MethodSpec]
    defaults: dict[str, Any] = field(default_factory=dict)
    warmup: dict[str, Any] | None = None
    keep_checkpoints: bool = False
    plugins: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    source: str = "<experiment>"

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise ConfigError(f"{self.source}: unknown task {name!r}; the tasks are {[t.name for t in self.tasks]}")

    def eval_entries(self) -> list[EvalEntry]:
        """Every task's evaluation sets, then the general probes (the pipeline's evaluators)."""
        return [e for t in self.tasks for e in t.evals] + list(self.general)

    def run_dir(self, method: str, seed: int) -> Path:
        return self.output_dir / "runs" / method / f"seed{seed}"


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"experiment file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"experiment file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of recipe keys, got {value!r}")
    return copy.deepcopy(value)


def _parse_eval(raw: Any, default_name: str, where: str, taken: set[str]) -> EvalEntry:
    from mmsft.eval.evaluators import check_spec
    from mmsft.registry import RegistryError

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping {{evaluator, <its arguments>}}, got {raw!r}")
    if "evaluator" not in raw:
        raise ConfigError(f"{where}: key 'evaluator' is required (e.g. generation_accuracy, puzzle_success)")
    name = _check_name(raw.get("name", default_name), where)
    if name in taken or name in RESERVED:
        raise ConfigError(f"{where}: evaluation set name {name!r} is used twice or reserved")
    taken.add(name)
    args = {k: v for k, v in raw.items() if k not in ("name", "evaluator")}
    try:
        check_spec(str(raw["evaluator"]), args, f"{where} ({name!r})")
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    path = args.get("path")
    if isinstance(path, str) and path and not Path(path).exists():
        raise ConfigError(f"{where} ({name!r}): evaluation data {path} does not exist")
    _check_verifier(str(raw["evaluator"]), args, f"{where} ({name!r})")
    return EvalEntry(name, str(raw["evaluator"]), args)


ANSWER_EVALUATORS = ("generation_accuracy", "puzzle_success")
"""Built-in evaluators that verify a generation against each row's ``answer``."""


def _check_verifier(evaluator: str, args: dict[str, Any], where: str) -> None:
    """An evaluation set must be able to verify: ``reward_mean`` names resolvable rewards; the answer-checking
    evaluators read a JSONL whose rows all carry an ``answer`` (the first row without one is named)."""
    import json

    if evaluator == "reward_mean":
        rewards = str(args.get("rewards") or "")
        if not rewards.strip():
            raise ConfigError(f"{where}: reward_mean needs 'rewards' (the verifier that scores a generation)")
        _check_rewards(rewards, f"{where}: key 'rewards'")
    elif evaluator in ANSWER_EVALUATORS:
        path = Path(str(args.get("path") or ""))
        if not path.is_file() or path.suffix != ".jsonl":
            return  # a save_to_disk folder (or a missing path, reported by the evaluator) is checked when it runs
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise ConfigError(f"{where}: {path}:{line_no} is not valid JSON") from None
                if not isinstance(row, dict) or row.get("answer") is None:
                    raise ConfigError(f"{where}: {path}:{line_no} has no 'answer'; {evaluator} verifies each "
                                      "generation against its row's answer")


def _check_rewards(names: str, where: str) -> None:
    from mmsft.registry import RegistryError
    from mmsft.rewards import REWARDS

    for name in [n.strip() for n in names.split(",") if n.strip()]:
        try:
            REWARDS.get(name)
        except RegistryError as exc:
            raise ConfigError(f"{where}: reward {name!r}: {exc}") from None


def _parse_tasks(raw: Any, where: str, taken: set[str]) -> list[TaskSpec]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: key 'tasks' must be a non-empty list of tasks ({{name, data, reward, eval}})")
    tasks: list[TaskSpec] = []
    for position, entry in enumerate(raw):
        here = f"{where}: tasks[{position}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: expected a mapping with keys {list(TASK_KEYS)}, got {entry!r}")
        _check_keys(entry, TASK_KEYS, here)
        if "name" not in entry:
            raise ConfigError(f"{here}: key 'name' is required")
        name = _check_name(entry["name"], here)
        here = f"{where}: task {name!r}"
        if name in RESERVED or any(t.name == name for t in tasks):
            raise ConfigError(f"{here}: task name {name!r} is used twice or reserved ({', '.join(RESERVED)})")
        data = entry.get("data") or ""
        if not isinstance(data, str):
            raise ConfigError(f"{here}: 'data' must be a path to a JSONL file, got {data!r}")
        if data and not Path(data).exists():
            raise ConfigError(f"{here}: training data {data} does not exist")
        env = _mapping(entry.get("env"), f"{here}: key 'env'")
        if not data and not env:
            raise ConfigError(f"{here}: give training data ('data': a JSONL) or an environment task ('env')")
        reward = entry.get("reward") or ""
        if not isinstance(reward, str):
            raise ConfigError(f"{here}: 'reward' must be a comma-separated list of reward names, got {reward!r}")
        _check_rewards(reward, f"{here}: key 'reward'")
        evals_raw = entry.get("eval")
        if isinstance(evals_raw, dict):
            evals_raw = [evals_raw]
        if not isinstance(evals_raw, list) or not evals_raw:
            raise ConfigError(f"{here}: key 'eval' is required: the task's held-out set(s) "
                              "({evaluator, path, ...} or a list of them)")
        evals = [_parse_eval(e, name if i == 0 else f"{name}-{i + 1}", f"{here}: eval[{i}]", taken)
                 for i, e in enumerate(evals_raw)]
        tasks.append(TaskSpec(name, data, reward, evals, _mapping(entry.get("recipe"), f"{here}: key 'recipe'"),
                              _mapping(entry.get("sft"), f"{here}: key 'sft'"),
                              _mapping(entry.get("rft"), f"{here}: key 'rft'"), env, here))
    return tasks


def _parse_methods(raw: Any, where: str) -> list[MethodSpec]:
    from mmsft.continual.methods import METHODS, method_args
    from mmsft.registry import RegistryError

    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: key 'methods' must be a non-empty list (e.g. [sft, rft, rif_rft])")
    methods: list[MethodSpec] = []
    for position, entry in enumerate(raw):
        here = f"{where}: methods[{position}]"
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: expected a method name or a mapping {{name, method, recipe, <args>}}, "
                              f"got {entry!r}")
        method = entry.get("method", entry.get("name"))
        if not isinstance(method, str) or not method:
            raise ConfigError(f"{here}: key 'method' is required (one of {METHODS.names()})")
        try:
            METHODS.get(method)
        except RegistryError as exc:
            raise ConfigError(f"{here}: {exc}") from None
        name = _check_name(entry.get("name", method), here)
        if any(m.name == name for m in methods):
            raise ConfigError(f"{here}: method name {name!r} is used twice; give each entry its own 'name'")
        here = f"{where}: method {name!r}"
        args = method_args(method, {k: v for k, v in entry.items() if k not in METHOD_KEYS}, here)
        methods.append(MethodSpec(name, method, args, _mapping(entry.get("recipe"), f"{here}: key 'recipe'"), here))
    return methods


def _parse_seeds(raw: Any, where: str) -> list[int]:
    if raw is None:
        return [0]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)
            or len(set(raw)) != len(raw)):
        raise ConfigError(f"{where}: key 'seeds' must be a non-empty list of distinct integers >= 0, got {raw!r}")
    return list(raw)


def load_experiment(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> ExperimentSpec:
    """Read and validate an experiment (a YAML path or a mapping) with ``key=value`` overrides of its top-level keys
    (``output_dir=runs/x``, ``seeds=[0]``, ``defaults.train.torch_threads=1``)."""
    if isinstance(source, dict):
        document, where = copy.deepcopy(source), "<experiment>"
    else:
        document, where = _read(Path(source)), str(source)
    from mmsft.config import parse_overrides

    for item in overrides or []:
        key = item.split("=", 1)[0].strip().split(".", 1)[0]
        if key not in EXPERIMENT_KEYS:
            raise ConfigError(f"override {item!r}: {key!r} is not an experiment key "
                              f"({', '.join(EXPERIMENT_KEYS)}); stage keys go under defaults. (defaults.optim.lr=1e-4)")
    document = deep_merge(document, parse_overrides(list(overrides or [])))
    _check_keys(document, EXPERIMENT_KEYS, where)
    plugins = document.get("plugins") or []
    if isinstance(plugins, str):
        plugins = [p for p in plugins.split(",") if p.strip()]
    if not isinstance(plugins, list):
        raise ConfigError(f"{where}: key 'plugins' must be a list of module names, got {plugins!r}")
    if plugins:
        from mmsft.plugins import PluginError, load_plugins

        try:
            load_plugins(plugins, where=f"{where}: key 'plugins'")
        except PluginError as exc:
            raise ConfigError(str(exc)) from None
    defaults = _mapping(document.get("defaults"), f"{where}: key 'defaults'")
    base_model = document.get("base_model") or defaults.get("model", {}).get("name_or_path") or ""
    if not isinstance(base_model, str) or not base_model:
        raise ConfigError(f"{where}: key 'base_model' is required (the starting model folder of every method)")
    if not Path(base_model).is_dir():
        raise ConfigError(f"{where}: base_model {base_model} does not exist (expected a model folder)")
    warmup = document.get("warmup")
    if warmup is not None:
        warmup = _mapping(warmup, f"{where}: key 'warmup'")
    keep = document.get("keep_checkpoints", False)
    if not isinstance(keep, bool):
        raise ConfigError(f"{where}: key 'keep_checkpoints' must be true or false, got {keep!r}")
    output_dir = document.get("output_dir") or "runs/continual"
    if not isinstance(output_dir, str):
        raise ConfigError(f"{where}: key 'output_dir' must be a path, got {output_dir!r}")
    taken: set[str] = set()
    tasks = _parse_tasks(document.get("tasks"), where, taken)
    general_raw = document.get("general") or []
    if not isinstance(general_raw, list):
        raise ConfigError(f"{where}: key 'general' must be a list of evaluation sets ({{name, evaluator, ...}})")
    general = []
    for i, entry in enumerate(general_raw):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{where}: general[{i}]: expected a mapping with 'name', 'evaluator' and its "
                              f"arguments, got {entry!r}")
        general.append(_parse_eval(entry, str(entry["name"]), f"{where}: general[{i}]", taken))
    methods = _parse_methods(document.get("methods"), where)
    spec = ExperimentSpec(Path(output_dir), base_model, _parse_seeds(document.get("seeds"), f"{where}"), tasks,
                          general, methods, defaults, warmup, keep, [str(p) for p in plugins], document, where)
    from mmsft.continual.methods import check_method

    for method in methods:
        check_method(spec, method)
    return spec


__all__ = ["EvalEntry", "ExperimentSpec", "MethodSpec", "TaskSpec", "load_experiment"]
