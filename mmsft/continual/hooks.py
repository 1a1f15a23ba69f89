"""Work a continual method does around a pipeline stage.

A hook has ``before(run, stage, cfg) -> cfg | Skip`` (called before the stage trains, also when it is already
complete, so it must be cheap to repeat — each hook here caches its work on disk) and ``after(run, stage, cfg,
model_dir) -> model_dir`` (may replace the model the stage passes on). ``run`` is the
:class:`mmsft.continual.runner.ContinualPipeline`; hooks record their cost with ``run.note(stage, key, value)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsft.data.selection import RolloutFilter, absolute_media, read_rows, select_learnable, write_rows


@dataclass
class Skip:
    """Do not train this stage: the previous model passes through unchanged (the reason is recorded)."""

    reason: str


def _add_media_root(cfg: Any, folder: Path) -> None:
    roots = list(cfg.data.media_roots)
    if str(folder) not in roots:
        cfg.data.media_roots = roots + [str(folder)]


class SelectionHook:
    """RIF-RFT (Lai et al., arXiv 2507.05386): train each RL stage on the instances the current model solves in at
    least ``min_successes`` (and at most ``max_successes``) of ``k`` rollouts; no instance left skips the stage."""

    def __init__(self, rule: RolloutFilter) -> None:
        self.rule = rule

    def before(self, run: Any, stage: Any, cfg: Any) -> Any:
        if cfg.task:  # an environment task: there is no instance dataset to filter
            run.note(stage, "selection", {"not_applied": f"environment task {cfg.task!r}: no instance set to filter"})
            return cfg
        source = Path(cfg.data.train_path)
        result = select_learnable(cfg, cfg.model.name_or_path, run.run_dir / "selection" / stage.dirname, self.rule)
        run.note(stage, "selection", result.summary())
        c = result.counts
        run.console.print(f"  RIF-RFT filter {stage.name}: kept {c['kept']}/{c['instances']} (incompetent "
                          f"{c['incompetent']}, mastered {c['mastered']}, overlong {c['overlong']}; "
                          f"{c['rollouts']} rollouts{', reused' if result.reused else ''})")
        if not result.kept:
            return Skip(f"RIF-RFT kept no instance of {c['instances']}")
        cfg.data.train_path = str(result.path)
        _add_media_root(cfg, source.parent.resolve())
        return cfg

    def after(self, run: Any, stage: Any, cfg: Any, model_dir: Path) -> Path:
        return model_dir


class JointDataHook:
    """Multi-task training: writes the union of every task's rows to one JSONL (ids ``<task>:<id>``; with
    ``with_rewards`` each row names its task's reward in ``meta.continual_reward`` for ``continual_task_reward``)."""

    def __init__(self, tasks: list[Any], path: Path, with_rewards: bool) -> None:
        self.tasks, self.path, self.with_rewards = tasks, Path(path), with_rewards

    def before(self, run: Any, stage: Any, cfg: Any) -> Any:
        rows = []
        for task in self.tasks:
            source = Path(task.data)
            for sample_id, row in read_rows(source):
                row = absolute_media(row, source.parent.resolve())
                row["id"] = f"{task.name}:{sample_id}"
                row["meta"] = {**(row.get("meta") or {}), "continual_task": task.name}
                if self.with_rewards:
                    row["meta"]["continual_reward"] = task.reward
                rows.append(row)
            _add_media_root(cfg, source.parent.resolve())
        if not self.path.is_file() or self.path.read_text(encoding="utf-8") != _jsonl(rows):
            write_rows(self.path, rows)
        return cfg

    def after(self, run: Any, stage: Any, cfg: Any, model_dir: Path) -> Path:
        return model_dir


def _jsonl(rows: list[dict[str, Any]]) -> str:
    import json

    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


class PastHook:
    """PaST (Tang et al., arXiv 2601.11258): after SFT on ``source``, an RL run from that model gives
    v = θ_RL − θ_SFT (``<run>/past/<source>-rl/``); after SFT on each target task the model passed on is
    ``θ_SFT + scale·v`` (``<stage>/past/``). The sequence itself continues from the SFT models."""

    def __init__(self, source: str, targets: list[str], scale: float, rl_recipe: dict[str, Any]) -> None:
        self.source, self.targets, self.scale, self.rl_recipe = source, list(targets), scale, rl_recipe
        self.sft_model: Path | None = None
        self.rl_model: Path | None = None

    def before(self, run: Any, stage: Any, cfg: Any) -> Any:
        return cfg

    def after(self, run: Any, stage: Any, cfg: Any, model_dir: Path) -> Path:
        if stage.name == self.source:
            self.sft_model = Path(model_dir)
            self.rl_model = self._skill_run(run, stage, Path(model_dir))
            return model_dir
        if stage.name not in self.targets:
            return model_dir
        if self.sft_model is None or self.rl_model is None:
            raise RuntimeError(f"PaST: target stage {stage.name!r} reached before the source {self.source!r}")
        from mmsft.continual.past import inject_skill

        out = run.stage_dir(stage) / "past"
        if not (out / "config.json").is_file():
            started = time.process_time()
            inject_skill(model_dir, self.rl_model, self.sft_model, self.scale, out)
            run.note(stage, "past_injection", {"scale": self.scale, "source": self.source, "cpu_s":
                                               time.process_time() - started, "model": str(out)})
        return out

    def _skill_run(self, run: Any, stage: Any, sft_model: Path) -> Path:
        from mmsft.config import load_config_dict
        from mmsft.pipeline import stage_model
        from mmsft.pipeline.spec import deep_merge

        out = run.run_dir / "past" / f"{stage.name}-rl"
        recipe = deep_merge(run.defaults, self.rl_recipe)
        cfg = load_config_dict(recipe, [f"train.seed={run.seed}"], where=f"PaST skill run on {stage.name!r}")
        cfg.model.name_or_path = str(sft_model)
        cfg.train.output_dir = str(out)
        if not (out / "final").is_dir():
            from mmsft.train.trainer import Trainer

            run.console.print(f"  PaST: RL skill run on {stage.name} from {sft_model} into {out}")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = Trainer(cfg).train()
            run.note(stage, "past_rl", {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
                                        "steps": result.steps, "rollouts": run.rollouts(cfg, result.steps)})
            run.prune(out)
        return stage_model(out, cfg)


__all__ = ["JointDataHook", "PastHook", "SelectionHook", "Skip"]
