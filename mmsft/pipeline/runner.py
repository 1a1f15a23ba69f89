"""Running a pipeline: train the stages in order, each from the previous stage's model, and score every evaluation
set after every stage (and on the starting model), filling the stage × eval-set matrix.

Resume, stage by stage: a stage whose training is recorded in ``pipeline_state.json`` and whose model folder exists
is not trained again; a stage killed mid-training is trained again with its own ``train.resume`` (``auto`` by default:
it continues from its latest checkpoint, bit-identically); an evaluation already recorded for the same model and
arguments is not repeated. Under ``torchrun`` / ``accelerate launch`` every process trains; evaluations run on the
main process only while the others wait at a barrier.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.config import RunConfig, to_dict
from mmsft.eval.evaluators import EvalContext, ModelCache, ModelSettings, run_evaluator
from mmsft.pipeline.matrix import Matrix
from mmsft.pipeline.spec import BASE, PipelineSpec, StageSpec, load_pipeline
from mmsft.pipeline.state import PipelineState, PipelineStateError, config_changes, fingerprint
from mmsft.report import write_report_safely
from mmsft.report.model_card import write_model_card


@dataclass
class PipelineResult:
    """What a run produced; ``matrix`` holds every metric (``matrix.main(stage, eval_set)`` for the main one)."""

    run_dir: Path
    matrix: Matrix
    model_dirs: dict[str, Path] = field(default_factory=dict)  # row label -> model folder it evaluated / passed on
    trained: list[str] = field(default_factory=list)  # stages trained (or resumed) by this call
    skipped: list[str] = field(default_factory=list)  # stages already complete
    is_main: bool = True  # False in the other processes of a data-parallel launch

    @property
    def final_model_dir(self) -> Path:
        return list(self.model_dirs.values())[-1]


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _free_memory() -> None:
    """Release the finished trainer's model and optimizer before evaluating or training the next stage."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def stage_model(stage_dir: Path, cfg: RunConfig) -> Path:
    """The model a finished stage passes on: ``final/``, or for a LoRA stage ``merged/`` (the adapter merged into the
    stage's base weights, written once, atomically), so evaluators and the next stage load an ordinary folder."""
    final = stage_dir / "final"
    if not (final / "adapter_config.json").is_file():
        return final
    merged = stage_dir / "merged"
    if (merged / "config.json").is_file():
        return merged
    from peft import PeftModel

    import mmsft.peft_methods  # noqa: F401  (mmsft's own PEFT types: a resumed pipeline may not have trained here)
    from mmsft.models.loading import load_model

    loaded = load_model(cfg.model.name_or_path, family=cfg.model.family, dtype=cfg.model.dtype,
                        trust_remote_code=cfg.model.trust_remote_code)
    model = PeftModel.from_pretrained(loaded.model, str(final)).merge_and_unload()
    tmp = stage_dir / f".merged-{os.getpid()}"
    model.save_pretrained(tmp, safe_serialization=True)
    loaded.processor.save_pretrained(tmp)
    if loaded.action_tokenizer is not None:
        loaded.action_tokenizer.save(tmp)
    write_model_card(tmp, stage_dir, "merged", location=merged)
    os.replace(tmp, merged)
    return merged


class Pipeline:
    """A validated pipeline (:func:`mmsft.pipeline.spec.load_pipeline`) and its run folder."""

    def __init__(self, spec: PipelineSpec, quiet: bool = False) -> None:
        from rich.console import Console

        self.spec = spec
        self.run_dir = spec.output_dir
        self.is_main = _is_main_process()
        self.console = Console(quiet=quiet or not self.is_main)
        self.matrix = Matrix(([BASE] if spec.evaluate_base else []) + [s.name for s in spec.stages],
                             [e.name for e in spec.evals])

    def stage_dir(self, stage: StageSpec) -> Path:
        return self.run_dir / "stages" / stage.dirname

    def run(self) -> PipelineResult:
        spec = self.spec
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "pipeline.yaml").write_text(yaml.safe_dump(spec.document, sort_keys=False))
        self.state = PipelineState(self.run_dir, enabled=self.is_main)
        result = PipelineResult(self.run_dir, self.matrix, is_main=self.is_main)
        first = spec.stages[0].config(self.stage_dir(spec.stages[0]))
        model = first.model.name_or_path
        if spec.evaluate_base:
            result.model_dirs[BASE] = Path(model)
            self._evaluate(BASE, "0-base", model, first)
        for stage in spec.stages:
            cfg = stage.config(self.stage_dir(stage), start_model=None if stage.index == 1 else model)
            model_dir = self._train(stage, cfg, result)
            result.model_dirs[stage.name] = model_dir
            self._evaluate(stage.name, stage.dirname, str(model_dir), cfg)
            model = str(model_dir)
        if self.is_main:
            self.matrix.write(self.run_dir)
        else:  # the main process evaluated; read its records
            self.state = PipelineState(self.run_dir, enabled=False)
            self._fill_from_state()
        self.console.print(f"[bold]pipeline[/bold] {self.run_dir}: matrix.json, matrix.md, matrix.png\n"
                           + self.matrix.to_markdown())
        if self.is_main:
            write_report_safely(self.run_dir)  # report.html over every stage; a failure is only a warning
        return result

    # --------------------------------------------------------------------------------------------------------
    def _train(self, stage: StageSpec, cfg: RunConfig, result: PipelineResult) -> Path:
        stage_dir = self.stage_dir(stage)
        print_to = self.console.print
        config = fingerprint(to_dict(cfg))
        record = self.state.stage(stage.name)
        if record is not None and Path(record["model"]).is_dir() and (stage_dir / "final").is_dir():
            differences = config_changes(record["config"], config, defaults=fingerprint(to_dict(RunConfig())))
            if differences:
                changes = "; ".join(differences)
                raise PipelineStateError(
                    f"{stage.source}: this stage was trained in {stage_dir} with a different config ({changes}); "
                    "use a new output_dir, or delete that folder and those of the later stages to retrain from there")
            print_to(f"[bold]stage {stage.index} {stage.name}[/bold]: complete, skipped ({record['model']})")
            result.skipped.append(stage.name)
            return Path(record["model"])
        if record is not None:
            self.state.forget_stage(stage.name)
        later = [self.stage_dir(s) for s in self.spec.stages[stage.index:] if self.stage_dir(s).exists()]
        if later:
            raise PipelineStateError(f"{stage.source}: stage is about to be (re)trained but later stage folders exist "
                                     f"({', '.join(map(str, later))}), trained from an older model; delete them or "
                                     "use a new output_dir")
        from mmsft.train.trainer import Trainer

        print_to(f"[bold]stage {stage.index} {stage.name}[/bold]: training from {cfg.model.name_or_path} "
                 f"into {stage_dir}")
        Trainer(cfg).train()
        _free_memory()
        if self.is_main:
            stage_model(stage_dir, cfg)  # merges a LoRA stage once
        _barrier()
        model_dir = stage_model(stage_dir, cfg)
        if self.is_main:
            self.state.mark_stage(stage.name, stage.index, model_dir, config)
        result.trained.append(stage.name)
        return model_dir

    def _evaluate(self, label: str, dirname: str, model: str, cfg: RunConfig) -> None:
        if not self.spec.evals:
            return
        if self.is_main:
            import torch

            from mmsft.data.schema import MediaPolicy
            from mmsft.train.trainer import media_budget

            if cfg.train.torch_threads > 0:
                torch.set_num_threads(cfg.train.torch_threads)
            settings = ModelSettings.from_config(cfg, media_budget(cfg))
            media = MediaPolicy.from_config(cfg.data.media_roots, cfg.data.allow_any_media_path)
            cache = ModelCache()
            for eval_set in self.spec.evals:
                spec = {"evaluator": eval_set.evaluator, **eval_set.args}
                record = self.state.evaluation(label, eval_set.name, spec, model)
                if record is None:
                    ctx = EvalContext(self.run_dir / "eval" / dirname / eval_set.name, settings, stage=label,
                                      eval_set=eval_set.name, cache=cache, media=media)
                    metrics, main = run_evaluator(eval_set.evaluator, model, eval_set.args, ctx)
                    self.state.mark_evaluation(label, eval_set.name, spec, model, metrics, main)
                    self.console.print(f"  {label} · {eval_set.name}: {main} = {metrics[main]:.4g}")
                else:
                    metrics, main = record["metrics"], record["main"]
                self.matrix.set(label, eval_set.name, metrics, main)
                self.matrix.write(self.run_dir)
            cache.clear()
        _barrier()

    def _fill_from_state(self) -> None:
        for key, record in self.state.data["evals"].items():
            stage, eval_set = key.split("/", 1)
            if stage in self.matrix.stages and eval_set in self.matrix.eval_sets:
                self.matrix.set(stage, eval_set, record["metrics"], record["main"])


def run_pipeline(source: str | Path | dict[str, Any], overrides: list[str] | None = None,
                 quiet: bool = False) -> PipelineResult:
    """Load, validate and run a pipeline (a YAML path or a mapping); see :mod:`mmsft.pipeline.spec` for the format."""
    return Pipeline(load_pipeline(source, overrides), quiet=quiet).run()
