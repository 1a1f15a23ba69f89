"""The VideoRFT study on the embedded video world (arXiv 2505.12434; T-GRPO of arXiv 2503.21776): zero-shot vs CoT-SFT
vs SFT→GRPO (accuracy + format) vs SFT→GRPO (+ semantic reward) vs SFT→GRPO (+ semantic + T-GRPO), scored on
held-out clips with VideoRFT's protocol (greedy here: the tiny model's 0.1/0.001 sampling is the same), accuracy
overall and by problem type, format rate, reward curves and a table.

Every RL arm starts from the same SFT model, draws its prompts in the same seeded order and differs only in its
rewards / T-GRPO. Results go to ``<out>/results.json``, ``results.md`` and ``curves.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.video import plugin as _plugin  # noqa: F401  (rewards, stage video_rl, evaluator)
from tasks.video.recipes import EMBEDDED_BASE, REPO_ROOT, eval_spec, grpo_config, sft_config, world_data

STUDY_BASE = REPO_ROOT / "assets" / "thinking_base"
"""The study's default start: the thinking-capable tiny base (``scripts/pretrain_thinking_base.py``; pretrained on
shapes-world images and video-world clips, disjoint from the study's, in answer-only and think-then-answer formats),
a stand-in for the instruct model VideoRFT starts from."""

ARMS: tuple[tuple[str, bool, bool], ...] = (
    ("sft-grpo", False, False),
    ("sft-grpo+semantic", True, False),
    ("sft-grpo+semantic+tgrpo", True, True),
)
"""RL arms: (name, semantic reward, T-GRPO)."""


@dataclass
class StudySettings:
    out: Path
    base_model: str = str(STUDY_BASE)
    num_train: int = 700
    num_eval: int = 140
    sft_steps: int = 1500
    sft_lr: float = 2e-3
    rl_steps: int = 60
    rl_lr: float = 2e-4
    group_size: int = 4
    prompts_per_step: int = 4
    max_new_tokens: int = 160
    seed: int = 0

    @classmethod
    def quick(cls, out: Path) -> "StudySettings":
        return cls(out=out, num_train=280, num_eval=70, sft_steps=500, rl_steps=12)


def _evaluate(model: str | Path, world: Any, out_dir: Path, max_new_tokens: int) -> dict[str, float]:
    from mmsft import api

    spec = {**eval_spec(EMBEDDED_BASE, world.eval_json), "max_new_tokens": max_new_tokens}
    return api.evaluate(model, evaluator="videorft_eval", out_dir=out_dir, **spec)


def run_study(settings: StudySettings, log: Any = print) -> dict[str, Any]:
    """Run every arm; returns ``{"arms": {name: metrics}, "wall_s": {...}, "settings": {...}}``."""
    from mmsft import api

    out = Path(settings.out)
    started = time.perf_counter()
    if settings.base_model == str(STUDY_BASE):
        from tasks.image_classification.base_model import ensure_thinking_base

        ensure_thinking_base(STUDY_BASE)  # shipped; rebuilt by its script when missing
    world = world_data(out / "data", settings.num_train, settings.num_eval, seed=settings.seed)
    results: dict[str, Any] = {"arms": {}, "wall_s": {"data": round(time.perf_counter() - started, 1)},
                               "settings": {k: (str(v) if isinstance(v, Path) else v)
                                            for k, v in vars(settings).items()}}

    tokens = settings.max_new_tokens

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        value = fn()
        results["wall_s"][name] = round(time.perf_counter() - t0, 1)
        return value

    results["arms"]["zero-shot"] = timed("zero-shot", lambda: _evaluate(settings.base_model, world,
                                                                         out / "eval" / "zero-shot", tokens))
    log(f"zero-shot: {results['arms']['zero-shot']['accuracy']:.3f}")
    sft = sft_config(settings.base_model, world.sft_jsonl, world.root, out / "runs" / "sft",
                     max_steps=settings.sft_steps)
    sft["optim"]["lr"] = settings.sft_lr
    sft["train"]["seed"] = settings.seed
    sft_model = timed("cot-sft", lambda: api.train(sft)).final_model_dir
    results["arms"]["cot-sft"] = _evaluate(sft_model, world, out / "eval" / "cot-sft", tokens)
    log(f"cot-sft: {results['arms']['cot-sft']['accuracy']:.3f}")
    for name, semantic, tgrpo in ARMS:
        config = grpo_config(sft_model, world.rl_jsonl, world.root, out / "runs" / name, semantic=semantic,
                             tgrpo=tgrpo, max_steps=settings.rl_steps)
        config["rl"].update({"group_size": settings.group_size, "prompts_per_step": settings.prompts_per_step,
                             "max_new_tokens": settings.max_new_tokens})
        config["optim"]["lr"] = settings.rl_lr
        config["train"]["seed"] = settings.seed
        model = timed(name, lambda: api.train(config)).final_model_dir
        results["arms"][name] = _evaluate(model, world, out / "eval" / name, tokens)
        log(f"{name}: {results['arms'][name]['accuracy']:.3f}")
    results["wall_s"]["total"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table(results))
    plot_curves({name: out / "runs" / name / "metrics.jsonl" for name, _, _ in ARMS}, out / "curves.png")
    return results


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per arm — accuracy, format, accuracy per problem type, wall time."""
    types = sorted({k.split("/", 2)[2] for m in results["arms"].values() for k in m if k.startswith("accuracy/type/")})
    head = ["arm", "accuracy", "format", *types, "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for arm, metrics in results["arms"].items():
        cells = [arm, f"{metrics['accuracy']:.3f}", f"{metrics['format']:.3f}",
                 *(f"{metrics.get(f'accuracy/type/{t}', 0.0):.3f}" for t in types),
                 str(results["wall_s"].get(arm, ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\ntotal wall time {results['wall_s'].get('total', '?')} s\n"


def plot_curves(runs: dict[str, Path], out_path: Path) -> Path:
    """Accuracy reward and total reward per RL step, one line per arm (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, path in runs.items():
        if not Path(path).is_file():
            continue
        records = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
        for axis, key in zip(axes, ("reward/videorft_accuracy", "reward/total")):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                axis.plot(*zip(*points), label=name, marker=".", linewidth=1)
    for axis, title in zip(axes, ("accuracy reward per rollout batch", "total reward per rollout batch")):
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return Path(out_path)


__all__ = ["ARMS", "STUDY_BASE", "StudySettings", "plot_curves", "run_study", "table"]
