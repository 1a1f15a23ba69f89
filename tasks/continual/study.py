"""The continual post-training study at toy scale: Lai et al., "Reinforcement Fine-Tuning Naturally Mitigates
Forgetting in Continual Post-Training" (arXiv 2507.05386) — sequential SFT vs sequential RFT (GRPO) vs RIF-RFT vs
multi-task joint training on five tasks from mmsft's worlds (:mod:`tasks.continual.worlds`), two seeds.

Starting model: the thinking-capable base (``assets/thinking_base``: the shapes-world base after further pretraining
on shapes images and video clips; :func:`check_base_disjoint` checks it never saw a held-out image of this study)
after a short *instruction warm-up*: SFT on a few
labelled rows of every task (rows not used for training or testing) plus its own pretraining questions (replay). The
bare base answers the new prompts (count, direction, VGRP, Sokoban) with shape words or nothing at all — accuracy 0
is then a prompt-format failure, not a skill measurement — while the paper starts from an instruction-tuned model
with non-zero accuracy on every task. The warm-up is trained once and shared by every method and seed; the
"start" row of every matrix is this model, the "base" row the bare base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.continual.worlds import (BUILDERS, TASKS, build_attribute_replay, build_general, _read_jsonl,
                                    _write_jsonl)


@dataclass(frozen=True)
class StudyScale:
    """Data and step budgets; :data:`DEFAULT` and :data:`QUICK`."""

    train: int = 96  # training rows per task
    test: int = 48  # held-out rows per task
    general: int = 48  # general-probe rows
    warm: int = 24  # labelled warm-up rows per task
    replay: int = 96  # attribute rows mixed into the warm-up
    warm_steps: int = 200
    sft_steps: int = 100
    # RL stages train by epochs, so RIF-RFT's smaller sets train fewer steps. 16 epochs = 192 GRPO steps on 96 rows:
    # measured on the warmed-up model, GRPO's training reward stays at its starting level for the first ~80-100
    # steps (count: 0.21-0.25) and rises after (0.45 by step 180), so 6 epochs (72 steps) ended every RL stage
    # before it had learned anything (docs/continual.md, "Why GRPO did not learn").
    rft_epochs: float = 16.0
    rif_k: int = 4
    lr: float = 3e-4


DEFAULT = StudyScale()
QUICK = StudyScale(train=32, test=32, general=32, warm=16, replay=64, warm_steps=120, sft_steps=30,
                   rft_epochs=24.0)  # 96 GRPO steps on 32 rows

TASK_SETTINGS: dict[str, dict[str, Any]] = {
    # reward (the verifier), evaluator, generation cap
    "classify": {"reward": "cls_accuracy", "evaluator": "generation_accuracy", "tokens": 6},
    "count": {"reward": "cls_accuracy", "evaluator": "generation_accuracy", "tokens": 4},
    "direction": {"reward": "cls_accuracy", "evaluator": "generation_accuracy", "tokens": 4},
    "vgrp-cell": {"reward": "cls_accuracy", "evaluator": "generation_accuracy", "tokens": 4},
    "sokoban": {"reward": "puzzle_success", "evaluator": "puzzle_success", "tokens": 10},
}


def build_data(root: Path, scale: StudyScale, seed: int = 0, tasks: tuple[str, ...] = TASKS) -> dict[str, Any]:
    """Every task's ``train.jsonl`` / ``test.jsonl`` / ``warm.jsonl``, the general probe and the warm-up mix under
    ``root``; rebuilt only when ``root/data.json`` records a different scale (the builders are deterministic)."""
    stamp = {"scale": scale.__dict__, "seed": seed, "tasks": list(tasks)}
    manifest = root / "data.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("stamp") == stamp:
        return json.loads(manifest.read_text())
    paths: dict[str, Any] = {"stamp": stamp, "tasks": {}}
    warm_rows: list[dict[str, Any]] = []
    from mmsft.data.selection import absolute_media

    for name in tasks:
        folder = root / name
        built = BUILDERS[name](folder, scale.train + scale.warm, scale.test, seed)
        rows = _read_jsonl(Path(built["train"]))
        _write_jsonl(folder / "train.jsonl", rows[: scale.train])
        warm = rows[scale.train:]
        _write_jsonl(folder / "warm.jsonl", warm)
        for row in warm:
            row = absolute_media(row, folder.resolve())
            row["id"] = f"warm-{name}-{row['id']}"
            warm_rows.append(row)
        paths["tasks"][name] = {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")}
    paths["general"] = str(build_general(root / "general", scale.general, seed))
    replay = build_attribute_replay(root / "replay", scale.replay, seed)
    warm_rows += [absolute_media(r, replay.parent.resolve()) for r in _read_jsonl(replay)]
    paths["warmup"] = str(_write_jsonl(root / "warmup.jsonl", warm_rows))
    manifest.write_text(json.dumps(paths, indent=2) + "\n")
    return paths


def pretraining_scenes(num_images: int, seed: int) -> set[Any]:
    """The images (scenes) ``scripts/pretrain_thinking_base.py`` pretrains on and holds out, for its settings."""
    import importlib.util

    from tasks.image_classification.base_model import THINKING_SCRIPT

    module_spec = importlib.util.spec_from_file_location("pretrain_thinking_base", THINKING_SCRIPT)
    script = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(script)  # type: ignore[union-attr]
    return set(script.image_scenes(num_images, seed, "train")) | set(
        script.image_scenes(script.HELD_OUT_IMAGES, seed, "heldout"))


def check_base_disjoint(base_model: str | Path, scale: StudyScale, seed: int = 0) -> dict[str, Any]:
    """When ``base_model`` was built by ``scripts/pretrain_thinking_base.py`` (its ``pretrain_report.json`` names the
    image count and seed), check that no held-out image of the study that shares its generator with the pretraining
    images — the ``classify`` test pool and the general probe — is a pretraining image; raise ``ValueError`` naming the
    counts otherwise. The other tasks' media come from generators the pretraining does not use (multi-shape count
    scenes, 2-frame direction clips, Sudoku boards, text Sokoban grids). Returns what was checked."""
    from tasks.continual.worlds import classify_test_scenes, general_scenes

    report_path = Path(base_model) / "pretrain_report.json"
    if not report_path.is_file():
        return {"checked": False, "reason": f"{report_path} absent (not a thinking-base build)"}
    report = json.loads(report_path.read_text())
    pretraining = pretraining_scenes(int(report["num_images"]), int(report["seed"]))
    held_out = {"classify": classify_test_scenes(scale.test, seed), "attributes": general_scenes(scale.general, seed)}
    overlaps = {name: sum(scene in pretraining for scene in scenes) for name, scenes in held_out.items()}
    if any(overlaps.values()):
        raise ValueError(f"{report_path}: the base model was pretrained on held-out images of the continual study "
                         f"({overlaps}); use another data seed (--data-seed) or base")
    return {"checked": True, "pretraining_images": len(pretraining),
            "held_out_images": {k: len(v) for k, v in held_out.items()}, "overlapping": overlaps}


def experiment(out: Path, data: dict[str, Any], scale: StudyScale, seeds: list[int], base_model: str,
               methods: list[str], threads: int = 1) -> dict[str, Any]:
    """The study as an ``mmsft continual`` experiment (written to ``<out>/experiment.yaml`` by the command)."""
    root = str(Path(data["warmup"]).parent.resolve())
    tasks = []
    for name, paths in data["tasks"].items():
        s = TASK_SETTINGS[name]
        tasks.append({"name": name, "data": paths["train"], "reward": s["reward"],
                      "eval": {"evaluator": s["evaluator"], "path": paths["test"], "max_new_tokens": s["tokens"],
                               "batch_size": 48},
                      "recipe": {"rl": {"max_new_tokens": s["tokens"]}},
                      "sft": {"train": {"max_steps": scale.sft_steps}},
                      "rft": {"train": {"max_steps": 0, "epochs": scale.rft_epochs, "micro_batch_size": 32}}})
    catalogue = {"sft": "sft", "rft": {"name": "rft", "method": "rft", "algorithm": "grpo"},
                 "rif_rft": {"name": "rif_rft", "method": "rif_rft", "algorithm": "grpo", "k": scale.rif_k},
                 "multitask": {"name": "multitask", "method": "multitask", "mode": "sft"},
                 "sft_lora": {"name": "sft_lora", "method": "sft_lora"},
                 "past": {"name": "past", "method": "past", "source": "count"}}
    return {
        "output_dir": str(out / "run"),
        "plugins": ["tasks.image_classification.rewards", "tasks.puzzles.rewards", "tasks.puzzles.evaluators"],
        "base_model": base_model,
        "seeds": seeds,
        "defaults": {"train": {"torch_threads": threads, "progress": False, "tensorboard": False,
                               "micro_batch_size": 8, "save_steps": 20, "save_total_limit": 1, "logging_steps": 1},
                     "optim": {"lr": scale.lr, "scheduler": "constant"},
                     "data": {"media_roots": [root]},
                     "rl": {"group_size": 4, "prompts_per_step": 8, "temperature": 1.0, "log_completions": 0}},
        "warmup": {"data": {"train_path": data["warmup"]},
                   "train": {"max_steps": scale.warm_steps, "seed": 0}, "optim": {"lr": 1e-3}},
        "tasks": tasks,
        "general": [{"name": "attributes", "evaluator": "generation_accuracy", "path": data["general"],
                     "max_new_tokens": 4, "batch_size": 48}],
        "methods": [catalogue[m] for m in methods],
    }


__all__ = ["DEFAULT", "QUICK", "StudyScale", "TASK_SETTINGS", "build_data", "check_base_disjoint", "experiment"]
