"""Running a continual experiment: for each seed and method, the method's pipeline (one stage per task) with every
task's held-out sets and the general probes evaluated after every stage; the starting model evaluated once.

Layout of ``output_dir``::

    experiment.yaml            the resolved experiment
    warmup/                    the optional warm-up run (a one-stage pipeline); its model starts every method
    start/                     evaluations of the starting model (and of base_model when there is a warm-up)
    runs/<method>/seed<s>/     one pipeline run each: stages/<k>-<task>/, eval/, matrix.*, pipeline_state.json,
                               continual_log.json (per-stage CPU/wall time, steps, rollouts, filter counts),
                               selection/<k>-<task>/ (RIF-RFT), past/ (PaST skill run), data/joint.jsonl (multitask)
    results.json  results.md  heatmaps.png  curves.png

Resume: rerunning the same command skips every finished (method, seed, stage) — the pipeline's state file — and
every finished evaluation; a stage killed mid-training continues from its last checkpoint; RIF-RFT rollouts and PaST
skill runs are cached on disk. Unless ``keep_checkpoints`` is true, a finished stage's ``checkpoints/`` folder is
deleted; its ``final/`` (or ``merged/`` / ``past/``) model stays, so any cell of the matrix can be recomputed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.config import ConfigError, RunConfig, load_config_dict, to_dict
from mmsft.continual.hooks import Skip
from mmsft.continual.methods import MethodPlan, expand
from mmsft.continual.spec import ExperimentSpec, load_experiment
from mmsft.pipeline import Pipeline, PipelineSpec, load_pipeline, run_pipeline
from mmsft.pipeline.spec import StageSpec, deep_merge
from mmsft.pipeline.state import PipelineState, PipelineStateError, fingerprint

LOG_FILE = "continual_log.json"
RESULTS_FILE = "results.json"
START = "start"


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def rl_rollouts(cfg: RunConfig, steps: int) -> int:
    """Rollouts an RL stage sampled: rollout batches × ``rl.prompts_per_step`` × ``rl.group_size``, one rollout batch
    per ``rl.ppo_epochs × rl.mini_batches`` optimizer steps (dynamic sampling's extra rounds are not counted); 0 for
    a stage that samples nothing (SFT)."""
    from mmsft.train.stage import producer_entry

    provides = set(producer_entry(cfg.stage).requires)
    if "advantages" not in provides:
        return 0
    per_batch = max(1, cfg.rl.ppo_epochs * cfg.rl.mini_batches)
    return math.ceil(steps / per_batch) * cfg.rl.prompts_per_step * cfg.rl.group_size


class ContinualPipeline(Pipeline):
    """A pipeline whose stages run a method's hooks around training and record their cost in ``continual_log.json``."""

    def __init__(self, spec: PipelineSpec, hooks: list[Any], defaults: dict[str, Any], seed: int,
                 keep_checkpoints: bool = False, quiet: bool = False) -> None:
        super().__init__(spec, quiet=quiet)
        self.hooks, self.defaults, self.seed, self.keep_checkpoints = hooks, defaults, seed, keep_checkpoints
        self.log_path = self.run_dir / LOG_FILE
        self.log: dict[str, Any] = {}
        if self.log_path.is_file():
            try:
                self.log = json.loads(self.log_path.read_text())
            except json.JSONDecodeError as exc:
                raise PipelineStateError(f"{self.log_path} is not valid JSON ({exc}); delete it (only the cost "
                                         "records are lost)") from None

    # ---- used by hooks ----------------------------------------------------------------------------------------
    def note(self, stage: StageSpec, key: str, value: Any) -> None:
        self.log.setdefault(stage.name, {"index": stage.index})[key] = value
        if self.is_main:
            _atomic_json(self.log_path, self.log)

    def rollouts(self, cfg: RunConfig, steps: int) -> int:
        return rl_rollouts(cfg, steps)

    def prune(self, folder: Path) -> None:
        """Delete ``folder/checkpoints`` once ``folder/final`` exists, unless checkpoints are kept."""
        if not self.keep_checkpoints and self.is_main and (folder / "final").is_dir():
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)

    # ---- the stage ----------------------------------------------------------------------------------------------
    def _train(self, stage: StageSpec, cfg: RunConfig, result: Any) -> Path:
        stage_dir = self.stage_dir(stage)
        skip = None
        for hook in self.hooks:
            out = hook.before(self, stage, cfg)
            if isinstance(out, Skip):
                skip = out
                break
            cfg = out
        resumed = (stage_dir / "checkpoints").is_dir() and not (stage_dir / "final").is_dir()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if skip is not None:
            model_dir = self._pass_through(stage, cfg, skip)
        else:
            model_dir = super()._train(stage, cfg, result)
        if stage.name in result.trained:
            steps = _steps(stage_dir)
            self.note(stage, "train", {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
                                       "steps": steps, "rollouts": rl_rollouts(cfg, steps),
                                       "resumed_from_checkpoint": resumed, "stage": cfg.stage})
        for hook in self.hooks:
            model_dir = hook.after(self, stage, cfg, model_dir)
        self.prune(stage_dir)
        return model_dir

    def _pass_through(self, stage: StageSpec, cfg: RunConfig, skip: Skip) -> Path:
        """The stage trains nothing: ``final/`` is the starting model (hard links, else copies)."""
        final = self.stage_dir(stage) / "final"
        if self.is_main and not (final / "config.json").is_file():
            tmp = final.with_name(f".final-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(cfg.model.name_or_path, tmp, copy_function=_link_or_copy)
            os.replace(tmp, final)
        if self.is_main:
            self.state.mark_stage(stage.name, stage.index, final, fingerprint(to_dict(cfg)))
            self.note(stage, "skipped", skip.reason)
        self.console.print(f"[bold]stage {stage.index} {stage.name}[/bold]: not trained ({skip.reason})")
        return final


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _steps(stage_dir: Path) -> int:
    summary = stage_dir / "summary.json"
    if summary.is_file():
        try:
            return int(json.loads(summary.read_text()).get("steps", 0))
        except (ValueError, json.JSONDecodeError):
            return 0
    return 0


# ------------------------------------------------------------------------------------------------ the experiment
@dataclass
class PlannedRun:
    method: Any  # MethodSpec
    seed: int
    plan: MethodPlan
    pipeline: PipelineSpec


@dataclass
class ExperimentResult:
    output_dir: Path
    results: dict[str, Any]
    trained: list[str] = field(default_factory=list)  # "<method>/seed<s>/<stage>" trained by this call


def pipeline_document(spec: ExperimentSpec, method: Any, seed: int, plan: MethodPlan,
                      start_model: str) -> dict[str, Any]:
    """The pipeline a method expands to for one seed (the experiment defaults under every stage, the seed over it)."""
    defaults = deep_merge(spec.defaults, {"model": {"name_or_path": start_model}})
    return {"output_dir": str(spec.run_dir(method.name, seed)), "plugins": list(spec.plugins), "defaults": defaults,
            "overrides": [f"train.seed={seed}"], "evaluate_base": False, "stages": plan.stages,
            "evaluators": [e.as_pipeline() for e in spec.eval_entries()]}


def plan_runs(spec: ExperimentSpec, start: str | None = None) -> list[PlannedRun]:
    """Every (seed, method) pipeline from the starting model ``start`` (default: the base model, or where the
    warm-up will write its model), validated (stage configs, evaluator arguments) before anything trains."""
    if start is None:
        start = str(spec.output_dir / "warmup" / "stages" / "1-warmup" / "final") if spec.warmup else spec.base_model
    runs = []
    for seed in spec.seeds:
        for method in spec.methods:
            plan = expand(spec, method, seed, spec.run_dir(method.name, seed), start)
            try:
                pipeline = load_pipeline(pipeline_document(spec, method, seed, plan, start))
            except ConfigError as exc:
                raise ConfigError(f"{method.source} (seed {seed}): {str(exc).removeprefix('<pipeline>: ')}") from None
            runs.append(PlannedRun(method, seed, plan, pipeline))
    return runs


def _warmup(spec: ExperimentSpec, quiet: bool) -> str:
    if not spec.warmup:
        return spec.base_model
    doc = {"output_dir": str(spec.output_dir / "warmup"), "plugins": list(spec.plugins),
           "defaults": deep_merge(spec.defaults, {"model": {"name_or_path": spec.base_model}}),
           "evaluate_base": False, "stages": [{"name": "warmup", "recipe": spec.warmup}]}
    return str(run_pipeline(doc, quiet=quiet).final_model_dir)


def evaluate_start(spec: ExperimentSpec, models: dict[str, str], quiet: bool = False) -> dict[str, Any]:
    """Every evaluation set on the starting model(s), cached in ``<output_dir>/start/pipeline_state.json``:
    ``{label: {set: {"metrics", "main"}}}``."""
    import torch
    from rich.console import Console

    from mmsft.data.schema import MediaPolicy
    from mmsft.eval.evaluators import EvalContext, ModelCache, ModelSettings, run_evaluator
    from mmsft.train.trainer import media_budget

    console = Console(quiet=quiet)
    folder = spec.output_dir / "start"
    state = PipelineState(folder)
    out: dict[str, Any] = {}
    for label, model in models.items():
        cfg = load_config_dict(deep_merge(spec.defaults, {"model": {"name_or_path": model}}), where=spec.source)
        if cfg.train.torch_threads > 0:
            torch.set_num_threads(cfg.train.torch_threads)
        settings = ModelSettings.from_config(cfg, media_budget(cfg))
        media = MediaPolicy.from_config(cfg.data.media_roots, cfg.data.allow_any_media_path)
        cache = ModelCache()
        out[label] = {}
        for entry in spec.eval_entries():
            args = {"evaluator": entry.evaluator, **entry.args}
            record = state.evaluation(label, entry.name, args, model)
            if record is None:
                ctx = EvalContext(folder / "eval" / label / entry.name, settings, stage=label, eval_set=entry.name,
                                  cache=cache, media=media)
                metrics, main = run_evaluator(entry.evaluator, model, entry.args, ctx)
                state.mark_evaluation(label, entry.name, args, model, metrics, main)
                console.print(f"  {label} · {entry.name}: {main} = {metrics[main]:.4g}")
            else:
                metrics, main = record["metrics"], record["main"]
            out[label][entry.name] = {"metrics": metrics, "main": main}
        cache.clear()
    return out


def collect_run(spec: ExperimentSpec, planned: PlannedRun, matrix: Any, start: dict[str, Any]) -> dict[str, Any]:
    """The saved record of one (method, seed): its rows, the task matrix A, the general rows, every main value."""
    stages = [s["name"] for s in planned.plan.stages]
    rows = [START, *stages]
    sets = [e.name for e in spec.eval_entries()]
    cells: dict[str, dict[str, float | None]] = {START: {s: start[s]["metrics"][start[s]["main"]] for s in sets}}
    for stage in stages:
        cells[stage] = {s: matrix.main(stage, s) for s in sets}
    log_path = spec.run_dir(planned.method.name, planned.seed) / LOG_FILE
    return {"method": planned.method.name, "kind": planned.method.method, "seed": planned.seed,
            "joint": planned.plan.joint, "rows": rows,
            "A": [[cells[r][t.main_eval] for t in spec.tasks] for r in rows],
            "general": {g.name: [cells[r][g.name] for r in rows] for g in spec.general},
            "cells": cells, "log": json.loads(log_path.read_text()) if log_path.is_file() else {}}


def run_experiment(source: str | Path | dict[str, Any], overrides: list[str] | None = None,
                   quiet: bool = False, jobs: int = 1) -> ExperimentResult:
    """Validate everything, then train and evaluate every (seed, method); write results.json and the report.

    ``jobs > 1`` trains the (method, seed) runs in that many worker processes after the warm-up and the starting
    model's evaluations (:mod:`mmsft.continual.parallel`); the results are the same as with ``jobs=1``."""
    from rich.console import Console

    from mmsft.continual.parallel import check_jobs, train_in_parallel

    from mmsft.continual.report import render

    console = Console(quiet=quiet)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("mmsft continual runs in one process (its filter, evaluations and reports are not "
                          "data-parallel); launch it without torchrun / accelerate launch")
    spec = load_experiment(source, overrides)
    runs = plan_runs(spec)  # fails before training on any bad stage config or evaluator argument
    out = spec.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.yaml").write_text(yaml.safe_dump(spec.document, sort_keys=False))
    start_model = _warmup(spec, quiet)
    runs = plan_runs(spec, start_model)  # the warm-up's model folder (merged/ for a LoRA warm-up)
    models = {START: start_model, **({"base": spec.base_model} if spec.warmup else {})}
    start = evaluate_start(spec, models, quiet)
    results = _results_skeleton(spec, start)
    trained: list[str] = []
    if check_jobs(jobs) > 1 and len(runs) > 1:
        console.print(f"[bold]training {len(runs)} runs in {min(jobs, len(runs))} worker processes[/bold]")
        trained_by_workers = train_in_parallel(source, overrides, runs, start_model, min(jobs, len(runs)), console)
    for planned in runs:
        console.print(f"[bold]method {planned.method.name} · seed {planned.seed}[/bold] "
                      f"({len(planned.plan.stages)} stage{'s' * (len(planned.plan.stages) > 1)})")
        pipeline = ContinualPipeline(planned.pipeline, planned.plan.hooks, spec.defaults, planned.seed,
                                     spec.keep_checkpoints, quiet=quiet)
        result = pipeline.run()
        trained += [f"{planned.method.name}/seed{planned.seed}/{s}" for s in result.trained]
        if jobs > 1 and len(runs) > 1:
            trained += [f"{planned.method.name}/seed{planned.seed}/{s}"
                        for s in trained_by_workers[(planned.method.name, planned.seed)]]
        results["runs"].append(collect_run(spec, planned, result.matrix, start[START]))
        _atomic_json(out / RESULTS_FILE, results)
    results["time"] = {"cpu_s_this_call": time.process_time() - cpu0, "wall_s_this_call": time.perf_counter() - wall0}
    _atomic_json(out / RESULTS_FILE, results)
    render(out)
    console.print(f"[bold]continual[/bold] {out}: results.json, results.md, heatmaps.png, curves.png")
    return ExperimentResult(out, json.loads((out / RESULTS_FILE).read_text()), trained)


def _results_skeleton(spec: ExperimentSpec, start: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "output_dir": str(spec.output_dir), "experiment": spec.document,
            "tasks": [{"name": t.name, "eval": t.main_eval, "metric": start[START][t.main_eval]["main"]}
                      for t in spec.tasks],
            "general": [{"name": g.name, "metric": start[START][g.name]["main"]} for g in spec.general],
            "methods": [{"name": m.name, "method": m.method} for m in spec.methods], "seeds": spec.seeds,
            "start": {label: {s: v["metrics"][v["main"]] for s, v in sets.items()} for label, sets in start.items()},
            "runs": []}


__all__ = ["ContinualPipeline", "ExperimentResult", "collect_run", "evaluate_start", "pipeline_document",
           "plan_runs", "rl_rollouts", "run_experiment"]
