"""``mmsft study vla-opd``: VLA-OPD's comparison (Zhong et al., arXiv 2603.26666) at toy scale on libero_spatial.

Protocol: oracle demonstrations of ``tasks`` (init states ``0 .. demos-1``) train a tiny VLA from scratch by SFT
(action chunks, the CPU settings of ../shared/reference/embodied.md section D). Starting from that model, three
post-training methods get the same rollout budget — the same number of rollout batches of ``group_size`` episodes
on the *new* task ``tasks[-1]`` (training init states ``0 .. train_init_states-1``):

* ``grpo`` — GRPO on the binary success reward with dynamic sampling (SimpleVLA-RL, arXiv 2509.09674);
* ``opd`` — on-policy distillation from the scripted oracle (per-token reverse-KL advantage, PPO-clip);
* ``dagger`` — the supervised control: cross-entropy to the oracle's action in the states the student visits.

Each method's checkpoints are evaluated with the standard protocol on the new task's training init states
(``seen``), on held-out init states 40+ (``heldout``), and on the earlier task ``tasks[0]`` (``forgetting``: its
success after post-training on the new one). Results: ``results.json`` / ``results.md`` (table, env steps, wall
and CPU seconds per phase), ``curves.png`` (success against env steps and wall time) and rollout GIFs.

The budget is equal in episodes (``rollout_batches × group_size``, at most 220 steps each); successful episodes
are shorter, so the env steps an arm used are counted per rollout batch and the curves are drawn against them.

Default size, chosen so that the SFT start succeeds on both tasks (20 demonstrations per task as in the research
notes' one-task run that reached 6/10; more SFT steps because two tasks share the model — not yet measured to
completion, see docs/libero.md): 20 demonstrations per task, 4,000 SFT steps, 6 rollout batches of 2 episodes per
method (one simulator worker per episode: 2 workers in all), 10 episodes per evaluation set — about an hour of 2
idle cores; ``--quick`` is a pipeline check (about 1,100 CPU-seconds, 10-12 minutes there; its SFT is far too
short to succeed). On a shared machine, the wall clock is longer: CPU seconds are reported beside it.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

TINY_VLA = {"hidden_size": 192, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vision_hidden_size": 96, "vision_intermediate_size": 192,
            "vision_depth": 3, "vision_window_size": 112, "min_pixels": 12544}
METHODS = {"grpo": "vla_grpo", "opd": "vla_opd", "dagger": "vla_dagger"}


@dataclass
class StudyConfig:
    """Sizes of the study (``--quick`` shrinks every one of them)."""

    out: Path = Path("runs/study_vla_opd")
    suite: str = "libero_spatial"
    tasks: tuple[int, ...] = (0, 1)
    demos_per_task: int = 20
    image_size: int = 64
    chunk: int = 4
    sft_steps: int = 4000
    rollout_batches: int = 6
    curve_points: int = 2  # checkpoints evaluated per method (the last one also on held-out states and forgetting)
    group_size: int = 2  # one simulator worker per episode of a rollout batch: 2 keeps a 2-core machine at 2
    train_init_states: int = 10
    eval_trials: int = 10
    workers: int = 2
    lr_sft: float = 1e-3
    lr_post: float = 3e-4
    methods: tuple[str, ...] = ("grpo", "opd", "dagger")
    gifs: int = 2
    seed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick(cls, **overrides: Any) -> "StudyConfig":
        base = cls(demos_per_task=3, sft_steps=300, rollout_batches=2, curve_points=1, group_size=2,
                   train_init_states=3, eval_trials=1, gifs=1)
        return replace(base, **overrides)

    def sft_key(self) -> dict[str, Any]:
        """What the demonstrations and the SFT model depend on: a resumed study reuses them only if it matches."""
        return {"suite": self.suite, "tasks": list(self.tasks), "demos_per_task": self.demos_per_task,
                "image_size": self.image_size, "chunk": self.chunk, "sft_steps": self.sft_steps,
                "lr_sft": self.lr_sft, "seed": self.seed}


class Clock:
    """Wall and CPU seconds (this process plus its finished children, e.g. simulator workers) per phase.

    With ``path`` every finished phase is also written there, so a resumed study reports the time a reused phase
    took when it ran (marked ``reused``) and its totals cover the whole study, not just the last process."""

    def __init__(self, path: Path | None = None) -> None:
        self.phases: dict[str, dict[str, Any]] = {}
        self.path = path
        self.recorded: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            self.recorded = json.loads(path.read_text())

    @staticmethod
    def _cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def _save(self) -> None:
        if self.path is not None:
            fresh = {k: v for k, v in self.phases.items() if not v.get("reused")}
            self.recorded.update(fresh)
            self.path.write_text(json.dumps(self.recorded, indent=2) + "\n")

    def reuse(self, name: str) -> None:
        """Record that a phase's output came from an earlier run in the same folder (with that run's times when
        they were recorded, else 0)."""
        earlier = self.recorded.get(name, {"wall_s": 0.0, "cpu_s": 0.0})
        self.phases[name] = {"wall_s": earlier["wall_s"], "cpu_s": earlier["cpu_s"], "reused": True}
        print(f"[study] {name}: reused from an earlier run in this folder", flush=True)

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.monotonic(), self._cpu()
        try:
            return fn(*args, **kwargs)
        finally:
            self.phases[name] = {"wall_s": round(time.monotonic() - wall, 1), "cpu_s": round(self._cpu() - cpu, 1)}
            print(f"[study] {name}: {self.phases[name]['wall_s']} s wall, {self.phases[name]['cpu_s']} s CPU",
                  flush=True)
            self._save()


def _quiet(cfg: StudyConfig) -> dict[str, Any]:
    return {"progress": False, "tensorboard": False, "torch_threads": 1, "seed": cfg.seed}


def train_sft(cfg: StudyConfig, model: Path, demos: Path) -> Path:
    from mmsft.config import load_config_dict
    from mmsft.train.trainer import Trainer

    recipe = {"model": {"name_or_path": str(model)},
              "data": {"train_path": str(demos), "loader": "libero_episodes", "max_length": 512,
                       "loader_args": {"chunk": cfg.chunk, "cameras": ["agentview"], "tasks": list(cfg.tasks)},
                       "image_min_pixels": 12544, "image_max_pixels": 12544},
              "train": {"output_dir": str(cfg.out / "sft"), "max_steps": cfg.sft_steps, "micro_batch_size": 16,
                        "logging_steps": 25, "save_steps": max(1, cfg.sft_steps // 8), "save_total_limit": 2,
                        **_quiet(cfg)},  # checkpoints: an interrupted SFT resumes from the last one
              "optim": {"lr": cfg.lr_sft, "scheduler": "constant", "warmup_ratio": 0.02}}
    return Trainer(load_config_dict(recipe)).train().final_model_dir


def post_train(cfg: StudyConfig, method: str, start: Path) -> Path:
    from mmsft.config import load_config_dict
    from mmsft.train.trainer import Trainer

    task_args: dict[str, Any] = {"suite": cfg.suite, "task_ids": [cfg.tasks[-1]],
                                 "train_init_states": cfg.train_init_states, "heldout_init_states": 10,
                                 "reset_timeout": 1800.0}  # building 4 simulators on a loaded CPU: > 600 s seen
    if method != "grpo":
        task_args.update(teacher="oracle", teacher_sigma_bins=2.0)
    run = cfg.out / method
    recipe = {"task": "libero", "algorithm": METHODS[method], "model": {"name_or_path": str(start)},
              "env": {"task_args": task_args, "max_turns": -(-220 // cfg.chunk) + 1, "eval_episodes": 0,
                      "log_media": 0, "log_episodes": 1},
              "rl": {"group_size": cfg.group_size, "prompts_per_step": 1, "temperature": 1.0},
              "data": {"max_length": 512},
              "train": {"output_dir": str(run), "max_steps": cfg.rollout_batches, "micro_batch_size": 32,
                        "save_steps": max(1, cfg.rollout_batches // max(1, cfg.curve_points)),
                        "save_total_limit": 0, **_quiet(cfg)},
              "optim": {"lr": cfg.lr_post, "scheduler": "constant"}}
    Trainer(load_config_dict(recipe)).train()
    return run


def env_steps_per_batch(run: Path, chunk: int) -> list[float]:
    """Approximate env steps of every rollout batch: episodes × mean turns × chunk (from metrics.jsonl)."""
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "rollout/turns" in row:
            steps.append(row["rollout/episodes"] * row["rollout/turns"] * chunk)
    return steps


def evaluate_point(cfg: StudyConfig, clock: Clock, name: str, model: Path, full: bool, video: bool
                   ) -> dict[str, Any]:
    """Success of ``model`` on the new task's training init states (``seen``) and, when ``full``, on its held-out
    init states 40+ and on the earlier task (``forgetting``), in one run of the workers."""
    from envs.libero.vector import EpisodeSpec
    from tasks.libero.evaluate import EvalConfig, evaluate
    from tasks.libero.policies import load_policy

    new, old = cfg.tasks[-1], cfg.tasks[0]
    sets = {"seen": (new, 0)}
    if full:
        sets["heldout"] = (new, 40)
        if old != new:
            sets["forgetting"] = (old, 0)
    specs = [EpisodeSpec(task, offset + k) for task, offset in sets.values() for k in range(cfg.eval_trials)]
    ecfg = EvalConfig(suite=cfg.suite, workers=cfg.workers, image_size=cfg.image_size, cameras=("agentview",),
                      render="fast", video="gif" if video else "none", out_dir=cfg.out / "eval" / name)
    summary = _cached_eval(ecfg.out_dir, specs)
    if summary is None:
        summary = clock.run(f"eval {name}", evaluate, load_policy(f"mmsft:{model}"), ecfg, None, specs)
    else:
        clock.reuse(f"eval {name}")
    point: dict[str, Any] = {"env_steps_per_s": summary["meta"]["env_steps_per_s"],
                             "policy_s": summary["meta"]["policy_s"], "simulator_s": summary["meta"]["simulator_s"]}
    for key, (task, offset) in sets.items():
        rows = [r for r in summary["results"]
                if r["task_id"] == task and offset <= r["init_state"] < offset + cfg.eval_trials]
        wins = sum(r["success"] for r in rows)
        point[key] = {"successes": wins, "episodes": len(rows), "success_rate": wins / max(len(rows), 1)}
    return point


def _cached_eval(folder: Path, specs: list[Any]) -> dict[str, Any] | None:
    """The ``results.json`` of an earlier evaluation in ``folder`` if it ran exactly these episodes, else None."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    ran = sorted((r["task_id"], r["init_state"]) for r in summary.get("results", []))
    return summary if ran == sorted((s.task_id, s.init_state) for s in specs) else None


def _finished_sft(cfg: StudyConfig) -> Path | None:
    """``<out>/sft/final`` of an earlier run of this study that finished its SFT (``summary.json`` written last)."""
    final = cfg.out / "sft" / "final"
    done = (final / "model.safetensors").is_file() and (cfg.out / "sft" / "summary.json").is_file()
    return final if done else None


def check_study_key(cfg: StudyConfig) -> None:
    """Refuse to resume in a folder whose demonstrations / SFT model were made with other settings
    (``<out>/study_key.json``); a new folder gets the key."""
    path = cfg.out / "study_key.json"
    key = cfg.sft_key()
    if path.is_file():
        earlier = json.loads(path.read_text())
        diff = {k: (earlier.get(k), v) for k, v in key.items() if earlier.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise ValueError(f"study vla-opd: {path} records other settings for the demonstrations and SFT model "
                             f"({detail}); use another --out or the same settings")
        return
    if (cfg.out / "demos").exists() or (cfg.out / "sft").exists():
        raise ValueError(f"study vla-opd: {cfg.out} holds demos/ or sft/ but no study_key.json recording their "
                         f"settings; write {key} there if they match, or use another --out")
    path.write_text(json.dumps(key, indent=2) + "\n")


def run_study(cfg: StudyConfig, stop_after: str = "") -> dict[str, Any]:
    """Run every phase (see the module docstring); returns and writes the results.

    Rerunning in the same ``out`` folder resumes (after :func:`check_study_key`): the demonstrations, a finished
    SFT model, finished post-training runs (an interrupted one continues from its last checkpoint) and
    evaluations that ran the same episodes are reused; their phases are marked ``reused`` and keep the times
    recorded in ``phases.json`` when they ran. ``stop_after="sft"`` ends after the SFT model is trained (e.g. to
    train it while another job holds the simulator workers; the next run in the folder goes on from there)."""
    from mmsft.models.tiny import build_tiny
    from tasks.libero.dataset import load_episodes

    cfg.out.mkdir(parents=True, exist_ok=True)
    check_study_key(cfg)
    clock = Clock(cfg.out / "phases.json")
    demos = cfg.out / "demos"
    if (demos / "index.jsonl").is_file():
        clock.reuse("collect demonstrations")
    else:
        clock.run("collect demonstrations", load_episodes, demos, {
            "chunk": cfg.chunk, "collect": {"suite": cfg.suite, "tasks": list(cfg.tasks), "workers": cfg.workers,
                                            "episodes_per_task": cfg.demos_per_task, "image_size": cfg.image_size}},
            "train")
    sft = _finished_sft(cfg)
    if sft is None:
        model = build_tiny("vla", cfg.out / "tiny_vla", seed=cfg.seed, **TINY_VLA)
        sft = clock.run("sft", train_sft, cfg, model, demos)
    else:
        clock.reuse("sft")
    points: dict[str, list[dict[str, Any]]] = {}
    if stop_after == "sft":
        return write_results(cfg, points, clock)
    base = evaluate_point(cfg, clock, "sft", sft, full=True, video=True)
    write_results(cfg, points, clock, start=base)
    for method in cfg.methods:
        phase = f"post-train {method}"
        run = cfg.out / method
        if phase in clock.recorded and (run / "final" / "model.safetensors").is_file():
            clock.reuse(phase)
        else:
            clock.run(phase, post_train, cfg, method, sft)
        per_batch = env_steps_per_batch(run, cfg.chunk)
        wall = clock.phases[phase]["wall_s"]
        curve = [{"batches": 0, "env_steps": 0.0, "wall_s": 0.0, **base}]
        checkpoints = sorted((run / "checkpoints").glob("step-*"), key=lambda c: int(c.name.split("-")[1]))
        for checkpoint in checkpoints:
            batches = int(checkpoint.name.split("-")[1])
            last = checkpoint == checkpoints[-1]
            point = evaluate_point(cfg, clock, f"{method}-{batches}", checkpoint / "model", full=last, video=last)
            curve.append({"batches": batches, "env_steps": float(sum(per_batch[:batches])),
                          "wall_s": round(wall * batches / max(len(per_batch), 1), 1), **point})
            points[method] = curve
            write_results(cfg, points, clock, start=base)  # after every point: an interrupted study leaves its table
    results = write_results(cfg, points, clock, start=base)
    collect_gifs(cfg, cfg.out / "gifs")
    return results


def write_results(cfg: StudyConfig, points: dict[str, list[dict[str, Any]]], clock: Clock,
                  start: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``results.json``, ``results.md`` and ``curves.png`` for the points evaluated so far (``start``: the SFT
    model's point, shown before any method has one)."""
    results = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
               "start": start, "methods": points, "phases": clock.phases,
               "total": {"wall_s": round(sum(p["wall_s"] for p in clock.phases.values()), 1),
                         "cpu_s": round(sum(p["cpu_s"] for p in clock.phases.values()), 1)}}
    (cfg.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (cfg.out / "results.md").write_text(to_markdown(results))
    plot_curves(results, cfg.out / "curves.png")
    return results


def merge_results(folders: list[Path], target: Path) -> dict[str, Any]:
    """One table, curves and GIF folder from studies that ran different ``--methods`` from the same SFT model
    (e.g. one process per method); phases of the same name (the shared, reused ones) are kept once."""
    merged: dict[str, Any] = {}
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"study merge: {path} does not exist (run the study there first)")
        part = json.loads(path.read_text())
        if not merged:
            merged = {"config": part["config"], "start": part.get("start"), "methods": {}, "phases": {}}
        elif part["config"]["tasks"] != merged["config"]["tasks"]:
            raise ValueError(f"study merge: {path} used tasks {part['config']['tasks']}, "
                             f"{folders[0]} used {merged['config']['tasks']}")
        merged["methods"].update(part["methods"])
        for name, phase in part["phases"].items():
            if not phase.get("reused") or name not in merged["phases"]:
                merged["phases"][name] = phase
        gifs = Path(folder) / "gifs"
        if gifs.is_dir():
            (target / "gifs").mkdir(parents=True, exist_ok=True)
            for gif in gifs.glob("*.gif"):
                shutil.copy(gif, target / "gifs" / gif.name)
    merged["config"]["merged_from"] = [str(f) for f in folders]
    merged["total"] = {"wall_s": round(sum(p["wall_s"] for p in merged["phases"].values()), 1),
                       "cpu_s": round(sum(p["cpu_s"] for p in merged["phases"].values()), 1)}
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text(json.dumps(merged, indent=2) + "\n")
    (target / "results.md").write_text(to_markdown(merged))
    plot_curves(merged, target / "curves.png")
    return merged


def to_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    new, old = cfg["tasks"][-1], cfg["tasks"][0]
    lines = [f"# VLA-OPD study (libero_spatial, post-training on task {new}, forgetting on task {old})", "",
             "| method | rollout batches | env steps | seen (task %d) | held-out (task %d) | task %d (forgetting) |"
             % (new, new, old), "|---|---:|---:|---:|---:|---:|"]

    def cell(point: dict[str, Any], key: str) -> str:
        if key not in point:
            return "–"
        return f"{point[key]['successes']}/{point[key]['episodes']}"

    base = results.get("start") or (next(iter(results["methods"].values()))[0] if results["methods"] else None)
    if base is not None:
        lines.append(f"| SFT (start) | 0 | 0 | {cell(base, 'seen')} | {cell(base, 'heldout')} | "
                     f"{cell(base, 'forgetting')} |")
    for method, curve in results["methods"].items():
        for point in curve[1:]:
            lines.append(f"| {method} | {point['batches']} | {point['env_steps']:.0f} | {cell(point, 'seen')} | "
                         f"{cell(point, 'heldout')} | {cell(point, 'forgetting')} |")
    lines += ["", "| phase | wall s | CPU s |", "|---|---:|---:|"]
    for name, p in results["phases"].items():
        if not p.get("reused"):
            lines.append(f"| {name} | {p['wall_s']} | {p['cpu_s']} |")
        elif p["wall_s"] or p["cpu_s"]:
            lines.append(f"| {name} (earlier run) | {p['wall_s']} | {p['cpu_s']} |")
        else:
            lines.append(f"| {name} | reused | reused |")
    lines += [f"| **total** | **{results['total']['wall_s']}** | **{results['total']['cpu_s']}** |", ""]
    return "\n".join(lines)


def plot_curves(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for method, curve in results["methods"].items():
        xs = [p["env_steps"] for p in curve]
        walls = [p["wall_s"] for p in curve]
        seen = [p["seen"]["success_rate"] for p in curve]
        axes[0].plot(xs, seen, marker="o", label=method)
        for ax, key in ((axes[1], "heldout"), (axes[2], "forgetting")):
            full = [(p["env_steps"], p[key]["success_rate"]) for p in curve if key in p]
            ax.plot([x for x, _ in full], [y for _, y in full], marker="o", label=method)
        axes[3].plot(walls, seen, marker="o", label=method)
    old = results["config"]["tasks"][0]
    titles = ("seen init states", "held-out init states", f"task {old} (forgetting)", "seen init states")
    xlabels = ("env steps", "env steps", "env steps", "post-training wall s")
    for ax, title, xlabel in zip(axes, titles, xlabels):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    if results["methods"]:
        axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def collect_gifs(cfg: StudyConfig, target: Path) -> list[Path]:
    """Copy a few evaluation GIFs (successes first) of the start model and each method's last checkpoint."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for folder in sorted((cfg.out / "eval").glob("*/videos")):
        videos = sorted(folder.glob("*.gif"), key=lambda p: ("success" not in p.name, p.name))[:cfg.gifs]
        for video in videos:
            copied.append(Path(shutil.copy(video, target / f"{folder.parent.name}_{video.name}")))
    return copied
