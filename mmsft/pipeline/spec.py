"""The pipeline file: stages (each a full training recipe) and the evaluation sets scored after every stage.

::

    output_dir: runs/pipe                       # <run>: stages/<k>-<name>/, eval/, matrix.*, pipeline_state.json
    plugins: [tasks.puzzles.evaluators]         # modules imported first (they register evaluators, rewards, ...)
    defaults: {train: {torch_threads: 1}}       # merged under every stage's recipe
    overrides: [train.save_steps=50]            # applied over every stage, after the stage's own overrides
    evaluate_base: true                         # also score the starting model (row "base")
    stages:
      - {name: sft, recipe: sft.yaml, overrides: [optim.lr=1e-4]}     # a recipe file (relative to this file)
      - {name: rl, recipe: {algorithm: grpo, rl: {rewards: puzzle}}}   # or an inline recipe
    evaluators:
      - {name: heldout, evaluator: generation_accuracy, path: data/eval.jsonl, max_samples: 50}

Stage ``k`` trains into ``<run>/stages/<k>-<name>/``; from stage 2 on, ``model.name_or_path`` is the previous stage's
model (its ``final/``, or ``merged/`` for a LoRA stage) and ``train.output_dir`` is the stage folder, whatever the
recipe says. Every stage config and every evaluator's arguments are validated when the file is loaded, before any
training: an unknown key fails naming it, with the nearest valid names.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.config import ConfigError, RunConfig, load_config_dict, parse_overrides

PIPELINE_KEYS = ("output_dir", "plugins", "defaults", "overrides", "evaluate_base", "stages", "evaluators")
STAGE_KEYS = ("name", "recipe", "overrides")
EVAL_KEYS = ("name", "evaluator")  # every other key of an evaluation set is the evaluator's argument
BASE = "base"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _nearest(key: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else f" Valid keys: {', '.join(options)}."


def _check_keys(mapping: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}.{_nearest(str(key), allowed)}")


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (a folder name)")
    return name


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` ⊕ ``top``: nested mappings merge key by key, anything else in ``top`` replaces."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _override_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ConfigError(f"{where}: expected a list of 'key=value' strings (e.g. [optim.lr=1e-4]), got {value!r}")
    return list(value)


@dataclass
class StageSpec:
    """One stage: its recipe (defaults ⊕ recipe) and the ``key=value`` overrides applied on top."""

    index: int  # 1-based
    name: str
    recipe: dict[str, Any]
    overrides: list[str]
    source: str  # for error messages: "<file>: stage 2 'rl'"

    @property
    def dirname(self) -> str:
        return f"{self.index}-{self.name}"

    def config(self, out_dir: Path, start_model: str | None = None) -> RunConfig:
        """The stage's run config; ``start_model`` (stage ≥ 2) replaces ``model.name_or_path``."""
        try:
            cfg = load_config_dict(self.recipe, self.overrides, where=self.source)
        except ConfigError as exc:  # errors from the overrides do not name the stage yet
            if str(exc).startswith(self.source):
                raise
            raise ConfigError(f"{self.source}: {exc}") from None
        if start_model is not None:
            cfg.model.name_or_path = str(start_model)
        cfg.train.output_dir = str(out_dir)
        return cfg


@dataclass
class EvalSetSpec:
    """One evaluation set: a name (a matrix column), an evaluator and the evaluator's own arguments."""

    name: str
    evaluator: str
    args: dict[str, Any]
    source: str


@dataclass
class PipelineSpec:
    output_dir: Path
    stages: list[StageSpec]
    evals: list[EvalSetSpec]
    evaluate_base: bool = True
    plugins: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)  # the resolved pipeline mapping (saved in the run)
    source: str = "<pipeline>"


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def split_overrides(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Command-line ``key=value``: pipeline keys (``output_dir``, ``evaluate_base``, ``defaults.*``, ...) change the
    pipeline; any other key (``optim.lr=1e-4``) is appended to the every-stage ``overrides``."""
    pipeline, stage = [], []
    for item in overrides:
        key = item.split("=", 1)[0].strip().split(".", 1)[0]
        (pipeline if key in PIPELINE_KEYS else stage).append(item)
    return parse_overrides(pipeline), stage


def load_pipeline(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> PipelineSpec:
    """Read and validate a pipeline (a YAML path or a mapping) with command-line overrides."""
    if isinstance(source, dict):
        document, base_dir, where = copy.deepcopy(source), Path.cwd(), "<pipeline>"
    else:
        path = Path(source)
        document, base_dir, where = _read_yaml(path, "pipeline file"), path.parent, str(path)
    top, stage_extra = split_overrides(list(overrides or []))
    for key, value in top.items():
        if key in ("stages", "evaluators") and isinstance(value, dict):
            raise ConfigError(f"override {key}.…: lists cannot be overridden key by key; give the stage keys "
                              "directly (they apply to every stage) or edit the pipeline file")
    document = deep_merge(document, top)
    _check_keys(document, PIPELINE_KEYS, where)
    if stage_extra:
        document["overrides"] = _override_list(document.get("overrides"), f"{where}: key 'overrides'") + stage_extra

    plugins = document.get("plugins") or []
    if isinstance(plugins, str):
        plugins = [p for p in plugins.split(",") if p.strip()]
    if not isinstance(plugins, list):
        raise ConfigError(f"{where}: key 'plugins' must be a list of module names, got {plugins!r}")
    if plugins:
        from mmsft.plugins import load_plugins

        load_plugins(plugins, where=f"{where}: key 'plugins'")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: key 'defaults' must be a mapping of recipe keys, got {defaults!r}")
    every = _override_list(document.get("overrides"), f"{where}: key 'overrides'")
    evaluate_base = document.get("evaluate_base", True)
    if not isinstance(evaluate_base, bool):
        raise ConfigError(f"{where}: key 'evaluate_base' must be true or false, got {evaluate_base!r}")
    output_dir = document.get("output_dir") or "runs/pipeline"
    if not isinstance(output_dir, str):
        raise ConfigError(f"{where}: key 'output_dir' must be a path, got {output_dir!r}")

    stages = _parse_stages(document.get("stages"), defaults, every, base_dir, where)
    evals = _parse_evals(document.get("evaluators"), where)
    out = Path(output_dir)
    for stage in stages:  # validate every stage's config now, not hours later
        stage.config(out / "stages" / stage.dirname, start_model=None if stage.index == 1 else "<previous stage>")
    if not stages[0].config(out).model.name_or_path:
        raise ConfigError(f"{stages[0].source}: model.name_or_path is not set (the pipeline's starting model; set it "
                          "in the recipe or under defaults.model)")
    return PipelineSpec(out, stages, evals, evaluate_base, [str(p) for p in plugins], document, where)


def _parse_stages(raw: Any, defaults: dict[str, Any], every: list[str], base_dir: Path,
                  where: str) -> list[StageSpec]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: key 'stages' must be a non-empty list of stages ({{name, recipe, overrides}})")
    stages: list[StageSpec] = []
    for index, entry in enumerate(raw, start=1):
        here = f"{where}: stages[{index - 1}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: expected a mapping with keys {list(STAGE_KEYS)}, got {entry!r}")
        _check_keys(entry, STAGE_KEYS, here)
        recipe = entry.get("recipe") or {}
        default_name = f"stage{index}"
        if isinstance(recipe, str):
            path = Path(recipe) if Path(recipe).is_absolute() else base_dir / recipe
            default_name = Path(recipe).stem
            recipe = _read_yaml(path, f"{here}: recipe file")
        elif not isinstance(recipe, dict):
            raise ConfigError(f"{here}: 'recipe' must be a YAML file path or an inline mapping, got {recipe!r}")
        name = _check_name(entry.get("name", default_name), here)
        if name == BASE:
            raise ConfigError(f"{here}: name {BASE!r} is reserved for the starting model's row")
        if any(s.name == name for s in stages):
            raise ConfigError(f"{here}: stage name {name!r} is used twice")
        own = entry.get("overrides")
        if isinstance(own, dict):  # a mapping of recipe keys is merged like the recipe itself
            recipe, own = deep_merge(recipe, own), []
        overrides = _override_list(own, f"{here}: key 'overrides'") + every
        stages.append(StageSpec(index, name, deep_merge(defaults, recipe), overrides, f"{where}: stage {index} {name!r}"))
    return stages


def _parse_evals(raw: Any, where: str) -> list[EvalSetSpec]:
    from mmsft.eval.evaluators import check_spec
    from mmsft.registry import RegistryError

    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: key 'evaluators' must be a list of evaluation sets ({{name, evaluator, ...}})")
    evals: list[EvalSetSpec] = []
    for position, entry in enumerate(raw):
        here = f"{where}: evaluators[{position}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: expected a mapping with 'name', 'evaluator' and its arguments, got {entry!r}")
        for key in EVAL_KEYS:
            if key not in entry:
                raise ConfigError(f"{here}: key {key!r} is required")
        name = _check_name(entry["name"], here)
        if any(e.name == name for e in evals):
            raise ConfigError(f"{here}: evaluation set name {name!r} is used twice")
        args = {k: v for k, v in entry.items() if k not in EVAL_KEYS}
        source = f"{where}: evaluation set {name!r}"
        try:
            check_spec(str(entry["evaluator"]), args, source)
        except RegistryError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        evals.append(EvalSetSpec(name, str(entry["evaluator"]), args, source))
    return evals
