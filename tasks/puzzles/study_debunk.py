"""``mmsft study debunk``: "Debunk the Myth of SFT Generalization" (Lin et al., arXiv 2510.00237) at toy scale, on
Sokoban and General Points (the 24 game of "SFT Memorizes, RL Generalizes", Chu et al., arXiv 2501.17161).

Arms, per world, all from one tiny random-init text model (``mmsft models build-tiny text``):

* ``answer-only``: SFT on solver answers with one fixed prompt (Sokoban: the next optimal move, debunk's per-step
  pairs; General Points: the JSON answer);
* ``answer-only+div``: the same with prompt diversity (Sokoban: action vocabulary and symbol legend sampled per
  example from the *train* families; General Points: J/Q/K values sampled per example);
* ``cot``, ``cot+div``: SFT on templated reasoning then the answer (Sokoban: perception, sub-goal, route,
  predicted next state; General Points: card reading and the solver's arithmetic), without / with diversity;
* ``rl``: GRPO through the agent loop (Sokoban multi-turn, one move per turn, success reward; General Points
  single-turn, the reward table) starting from the ``answer-only`` model. The paper runs RL from the instruction-
  tuned base model; a random-init tiny model earns no reward at all, so our RL arm needs that SFT start.

Evaluation (greedy, through the agent loop, on ``test``-split levels / hands, disjoint from every training seed):
in distribution, held-out prompt families (Sokoban: unseen action vocabularies, unseen symbol legends, and the
"fake" variant that announces a new vocabulary but scores the old one; General Points: unseen card values
11/12/13, all-5, all-7 with a face card in every hand), and harder instances (Sokoban: two boxes, 8x8 rooms;
General Points: 5 cards). Parse failures per turn are reported next to success. Outputs in ``<out>``:
``results.json``, ``results.md``, ``curves.png`` and ``transcripts/<world>/<arm>/<suite>.txt``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.puzzles.study_common import (Clock, default_workers, evaluate_env, grpo_env_config, markdown_table,
                                       plot_panels, read_metrics, series, sft_config, train_all)

PLUGINS = ("tasks.puzzles.env_tasks",)
SFT_ARMS: tuple[tuple[str, bool, bool], ...] = (
    ("answer-only", False, False), ("answer-only+div", False, True), ("cot", True, False), ("cot+div", True, True))
"""(name, chain of thought, prompt diversity)."""
ARMS = tuple(a[0] for a in SFT_ARMS) + ("rl",)

SOKOBAN_SUITES: dict[str, tuple[str, dict[str, Any], int]] = {
    "in-dist": ("in distribution", {}, 12),
    "actions-heldout": ("held-out prompt", {"prompt_diversity": "actions", "families": "heldout"}, 12),
    "symbols-heldout": ("held-out prompt", {"prompt_diversity": "symbols", "families": "heldout"}, 12),
    "actions-fake": ("fake (lower is better)", {"prompt_diversity": "actions", "families": "fake"}, 12),
    "6x6-2boxes": ("harder", {"num_boxes": 2}, 24),
    "8x8-1box": ("harder", {"dim": [8, 8]}, 24),
}
"""Sokoban suite -> (axis, task_args, turn budget); all compact prompts (tasks/puzzles/sokoban_compact.py)."""
GP_SUITES: dict[str, tuple[str, dict[str, Any]]] = {
    "in-dist": ("in distribution", {}),
    "face-11-12-13": ("held-out prompt", {"face_values": "face_ood", "force_face_card": True}),
    "face-all5": ("held-out prompt", {"face_values": "all5", "force_face_card": True}),
    "face-all7": ("held-out prompt", {"face_values": "all7", "force_face_card": True}),
    "5cards": ("harder", {"num_cards": 5}),
}


@dataclass
class DebunkSettings:
    """Sizes of one study run; :meth:`quick` is the under-10-minute preset."""

    out: Path
    seed: int = 0
    worlds: tuple[str, ...] = ("sokoban", "general_points")
    sok_rows: int = 3000
    sok_sft_steps: int = 500
    sok_rl_steps: int = 30
    sok_eval_levels: int = 64
    gp_rows: int = 2000
    gp_sft_steps: int = 600
    gp_rl_steps: int = 15
    gp_eval_hands: int = 128
    micro_batch: int = 32
    lr: float = 3e-3
    workers: int = field(default_factory=default_workers)
    keep_transcripts: int = 3

    @classmethod
    def quick(cls, out: Path) -> "DebunkSettings":
        return cls(out=out, sok_rows=1200, sok_sft_steps=300, sok_rl_steps=8, sok_eval_levels=32, gp_rows=600,
                   gp_sft_steps=300, gp_rl_steps=4, gp_eval_hands=32, micro_batch=16)

    def describe(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self).items()}


def _build(world: str, out: Path, fmt: str, diverse: bool, num: int, seed: int) -> Path:
    from tasks.puzzles.build import BuildConfig, build_general_points, build_sokoban

    if out.exists():
        shutil.rmtree(out)
    if world == "sokoban":
        build_sokoban(BuildConfig(world="sokoban", out=out, format="cot" if fmt == "cot" else "step", num=num,
                                  seed=seed, axes=("actions", "symbols") if diverse else (),
                                  prompt_style="compact"))
    else:
        build_general_points(BuildConfig(world="general-points", out=out, format="cot" if fmt == "cot" else "plan",
                                         num=num, seed=seed, axes=("cards",) if diverse else ()))
    return out / "train.jsonl"


def _sokoban_env(cot: bool, suite_args: dict[str, Any], turns: int) -> dict[str, Any]:
    return {"mode": "multi_turn", "max_turns": turns, "max_new_tokens_per_turn": 256 if cot else 8,
            "concat_turns": False, "episode_reward": "success",
            "task_args": {"prompt_style": "compact", "format": "cot" if cot else "step", **suite_args}}


def _gp_env(cot: bool, suite_args: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "single_turn", "max_turns": 1, "max_new_tokens_per_turn": 320 if cot else 96,
            "episode_reward": "return", "task_args": {"format": "cot" if cot else "plan", **suite_args}}


def _world_run(world: str, s: DebunkSettings, base: Path, clock: Clock, log: Any,
               save: Any = None) -> dict[str, Any]:
    out = s.out / world
    sok = world == "sokoban"
    rows, sft_steps, rl_steps = ((s.sok_rows, s.sok_sft_steps, s.sok_rl_steps) if sok else
                                 (s.gp_rows, s.gp_sft_steps, s.gp_rl_steps))
    max_length = 640 if sok else 768
    from mmsft import api

    jobs: dict[str, dict[str, Any]] = {}
    for name, cot, diverse in sorted(SFT_ARMS, key=lambda a: not a[1]):  # CoT runs (the longest) start first
        data = clock.run(f"{world}/data/{name}", lambda: _build(world, out / "data" / name, "cot" if cot else "ans",
                                                                  diverse, rows, s.seed))
        jobs[name] = sft_config(base, data, out / "runs" / name, sft_steps, s.micro_batch, max_length, lr=s.lr,
                                seed=s.seed)
    models = train_all(jobs, clock, s.workers, log, prefix=f"{world}/train/")
    log(f"[{world}] SFT {', '.join(jobs)}: {sft_steps} steps each")
    env = (_sokoban_env(False, {}, 8) if sok else _gp_env(False, {}))
    env = {**env, "task_args": dict(env["task_args"])}
    if sok:
        env["task_args"].pop("format")
    rl_cfg = grpo_env_config(models["answer-only"], "sokoban" if sok else "general_points", out / "runs" / "rl",
                             rl_steps, env, max_length, lr=2e-4 if sok else 1e-4, seed=s.seed, plugins=PLUGINS)
    models["rl"] = clock.run(f"{world}/train/rl", lambda: api.train(rl_cfg)).final_model_dir
    log(f"[{world}] GRPO from answer-only: {rl_steps} steps")
    results: dict[str, dict[str, Any]] = {}
    if save is not None:
        save(results)
    suites = SOKOBAN_SUITES if sok else GP_SUITES
    for arm in ARMS:
        cot = arm.startswith("cot")
        results[arm] = {}
        for suite, spec in suites.items():
            if sok:
                axis, args, turns = spec
                env = _sokoban_env(cot, args, turns)
                levels = s.sok_eval_levels
            else:
                axis, args = spec
                env = _gp_env(cot, args)
                levels = s.gp_eval_hands
            where = out / "transcripts" / arm / f"{suite}.txt"
            results[arm][suite] = clock.run(f"{world}/eval/{arm}", lambda: evaluate_env(
                models[arm], "sokoban" if sok else "general_points", env, levels, max_length * 2, where,
                s.keep_transcripts, PLUGINS))
            results[arm][suite]["axis"] = axis
        log(f"[{world}] {arm}: " + ", ".join(f"{k} {v['success']:.2f}" for k, v in results[arm].items()))
        if save is not None:
            save(results)
    return results


def run_study(settings: DebunkSettings, log: Any = print) -> dict[str, Any]:
    """Run both worlds; returns ``{"worlds": {world: {arm: {suite: metrics}}}, "time": ..., "verdict": ...}``."""
    from mmsft.models.tiny import build_tiny

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    base = clock.run("base", lambda: build_tiny("text", out / "base", seed=settings.seed))
    results: dict[str, Any] = {"settings": settings.describe(), "worlds": {}}

    def save_partial(world: str) -> Any:
        def save(partial: dict[str, Any]) -> None:  # after every arm, so an interrupted run leaves its numbers
            results["worlds"][world] = partial
            results["time"] = {"total": clock.total(), "phases": clock.phases}
            (out / "results.partial.json").write_text(json.dumps(results, indent=2))
        return save

    for world in settings.worlds:
        results["worlds"][world] = _world_run(world, settings, base, clock, log, save_partial(world))
    results["time"] = {"total": clock.total(), "phases": clock.phases}
    results["verdict"] = verdict(results["worlds"])
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(report(results))
    _plot(out, results)
    return results


def _mean(results: dict[str, Any], arm: str, axis: str) -> float:
    values = [m["success"] for m in results[arm].values() if m["axis"] == axis]
    return sum(values) / len(values) if values else float("nan")


def verdict(worlds: dict[str, Any]) -> list[str]:
    """The paper's claims, each checked on the measured table (a difference under 0.05 counts as no difference)."""
    lines = []
    for world, res in worlds.items():
        w = world.replace("_", " ")
        missing = [arm for arm in ARMS if arm not in res or len(res[arm]) < len(SOKOBAN_SUITES if world == "sokoban"
                                                                                   else GP_SUITES)]
        if missing:
            lines.append(f"{w}: the run did not finish (arms without results: {', '.join(missing)}); no verdict.")
            continue
        held = {arm: _mean(res, arm, "held-out prompt") for arm in res}
        hard = {arm: _mean(res, arm, "harder") for arm in res}
        ind = {arm: _mean(res, arm, "in distribution") for arm in res}

        def cmp(a: float, b: float) -> str:
            return "higher than" if a > b + 0.05 else ("lower than" if a < b - 0.05 else "about equal to")

        if max(ind.values()) < 0.05:
            lines.append(f"{w}: every arm is near 0 in distribution, so this run cannot test the paper's claims (the "
                         "model did not learn the task at this size).")
            continue
        lines.append(f"{w}: prompt diversity makes answer-only SFT generalise to held-out prompts — answer-only+div "
                     f"{held['answer-only+div']:.2f} is {cmp(held['answer-only+div'], held['answer-only'])} "
                     f"answer-only {held['answer-only']:.2f} "
                     f"({'holds' if held['answer-only+div'] > held['answer-only'] + 0.05 else 'not shown'}).")
        lines.append(f"{w}: CoT improves transfer to harder instances — cot {hard['cot']:.2f} is "
                     f"{cmp(hard['cot'], hard['answer-only'])} answer-only {hard['answer-only']:.2f} "
                     f"({'holds' if hard['cot'] > hard['answer-only'] + 0.05 else 'not shown'}).")
        matches = held["cot+div"] >= held["rl"] - 0.05 and hard["cot+div"] >= hard["rl"] - 0.05
        # "matches" is vacuous when neither arm learned anything off-distribution
        near_zero = max(held["cot+div"], hard["cot+div"], held["rl"], hard["rl"]) < 0.05
        status = "not tested: both near 0" if near_zero else ("holds" if matches else "not shown")
        lines.append(f"{w}: diversity + CoT matches or beats RL — cot+div held-out {held['cot+div']:.2f} / harder "
                     f"{hard['cot+div']:.2f} vs rl {held['rl']:.2f} / {hard['rl']:.2f} "
                     f"({status}"
                     f"; in distribution cot+div {ind['cot+div']:.2f}, rl {ind['rl']:.2f}).")
        if world == "sokoban":
            fake = {arm: res[arm]["actions-fake"]["success"] for arm in res}
            lines.append("sokoban: frozen-prompt check (fake vocabulary announced, old one scored; high = ignores "
                         "the instruction): " + ", ".join(f"{a} {v:.2f}" for a, v in fake.items()) + ".")
    return lines


def report(results: dict[str, Any]) -> str:
    parts = []
    for world, res in results["worlds"].items():
        suites = list(next(iter(res.values())))
        header = ["arm", *(f"{s} ({res[next(iter(res))][s]['axis']})" for s in suites), "parse fail/turn (mean)"]
        rows = []
        for arm, by_suite in res.items():
            fails = sum(m["parse_failure_rate"] for m in by_suite.values()) / len(by_suite)
            rows.append([arm, *(by_suite[s]["success"] for s in suites), fails])
        parts.append(f"### {world}: success (greedy, test split)\n\n" + markdown_table(header, rows))
        parse_rows = [[arm, *(m["parse_failure_rate"] for m in by_suite.values())] for arm, by_suite in res.items()]
        parts.append(f"{world}: parse failures per turn\n\n" + markdown_table(["arm", *suites], parse_rows))
    t = results["time"]
    trains = {k: v for k, v in t["phases"].items() if "/train/" in k}
    parts.append("Time: total wall {wall_s} s, CPU {cpu_s} s (this process, all threads).".format(**t["total"]) +
                 " Training: " + ", ".join(f"{k} {v['wall_s']} s wall / {v['cpu_s']} s CPU" for k, v in trains.items()))
    parts.append("Verdict:\n\n" + "\n".join(f"- {line}" for line in results["verdict"]))
    return "\n\n".join(parts) + "\n"


def _plot(out: Path, results: dict[str, Any]) -> None:
    panels = []
    for world in results["worlds"]:
        runs = out / world / "runs"
        panels.append((f"{world}: SFT loss", {arm: series(read_metrics(runs / arm), "train/loss", 5)
                                              for arm, _, _ in SFT_ARMS}))
        key = "rollout/success_rate" if world == "sokoban" else "rollout/return"
        panels.append((f"{world}: GRPO {key}", {"rl": series(read_metrics(runs / "rl"), key)}))
    world = next(iter(results["worlds"]))
    res = results["worlds"][world]
    suites = list(next(iter(res.values())))
    bars = (f"{world}: success by suite", suites, {arm: [res[arm][s]["success"] for s in suites] for arm in res})
    plot_panels(panels, out / "curves.png", bars)


__all__ = ["ARMS", "DebunkSettings", "GP_SUITES", "SOKOBAN_SUITES", "report", "run_study", "verdict"]
