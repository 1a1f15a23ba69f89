"""Environment task ``libero``: a VLA plays LIBERO episodes in :class:`envs.libero.vector.LiberoVectorEnv` workers.

Each turn the policy sees the prompt of its observation — built by the model's
:class:`~tasks.libero.prompt.VLAInterface` exactly as in training (camera image(s) in memory, OpenVLA's "What action
should the robot take to <instruction>?", Kim et al., arXiv 2406.09246, optional proprio) — and emits exactly
``chunk × 7`` action-bin tokens (sampling is restricted to the action vocabulary and no stop token can be sampled);
they are decoded through the model's action tokenizer into ``chunk`` actions and executed in order (OFT-style chunks,
arXiv 2502.19645). Use ``env.concat_turns: false`` (each step is prompted with its own observation, as VLAs are
trained). An output that is not a whole number of action vectors of action tokens (impossible under the constrained
sampler, but the bridge is total) is counted and replaced by a hold action (zero motion, gripper open).

Interface: a model trained on demonstrations carries its interface (cameras, image size, render, proprio, chunk,
pixel budget); ``task_args`` may leave those keys unset (they follow the model) and a contradicting value is an
error. A model without a recorded interface uses ``task_args`` (defaults: agentview, 128 px, fast render, chunk 1).

Levels: a seed is ``task_id * 1000 + init_state``. Training cycles over the suite's tasks (``task_ids``) and the
first ``train_init_states`` stored init states (0: all of ``0 .. 49 − heldout_init_states``); the ``val`` / ``test``
splits use the last ``heldout_init_states`` ones, so held-out success is measured on initial states never trained
on. GRPO groups repeat one level (``rl.group_size`` episodes from the same init state).

Teachers (on-policy distillation, VLA-OPD arXiv 2603.26666): ``teacher`` is ``oracle`` (the scripted oracle of
:mod:`envs.libero.oracle` on privileged poses, turned into a discretised Gaussian over the bins —
:mod:`tasks.libero.teacher` — and recorded while the episode runs), a VLA model folder (scored after the rollout by
``rl.teacher: tasks.libero.teacher:libero_teacher``; it must share the action statistics and interface), or a
mapping ``{task id: oracle | folder, default: ...}`` routing each task to its teacher. ``teacher_sigma_bins > 0``
without ``teacher`` means ``teacher: oracle``. With ``oracle_shaping = c > 0`` every turn's reward also gets
``−c · mean |a − a_oracle|``: a dense shaping term from the privileged oracle, for GRPO while the sparse success
reward is all zeros.

``task_args``: ``suite`` (libero_spatial), ``task_ids`` (all ten), ``cameras`` / ``camera``, ``image_size``,
``render``, ``chunk``, ``proprio`` (from the model, see above), ``train_init_states`` (0), ``heldout_init_states``
(10), ``teacher`` (none), ``teacher_sigma_bins`` (2 when a route is the oracle), ``teacher_floor`` (0.01: the
oracle distribution's uniform mass, bounding its log-probs), ``oracle_shaping`` (0),
``step_timeout`` (120 s), ``reset_timeout`` (600 s), ``backend`` (``process``; ``ray`` runs the simulator
workers as Ray actors, see :class:`envs.libero.vector.LiberoVectorEnv`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmsft.rollout.envs import BatchedEnv, LiberoBatch
from mmsft.rollout.tasks import ENV_TASKS, EnvTask, GeneratedTurn, GenerationSpec, TurnAction, TurnPrompt
from tasks.libero.prompt import VLAInterface

NUM_INIT_STATES = 50  # stored init states per LIBERO task (the benchmark protocol)
_INTERFACE_KEYS = ("cameras", "image_size", "render", "chunk", "proprio")
_DEFAULTS: dict[str, Any] = {"suite": "libero_spatial", "task_ids": list(range(10)), "camera": None,
                             "cameras": None, "image_size": None, "render": None, "chunk": None, "proprio": None,
                             "train_init_states": 0, "heldout_init_states": 10, "teacher": None,
                             "teacher_sigma_bins": 0.0, "teacher_floor": 0.01, "oracle_shaping": 0.0,
                             "step_timeout": 120.0, "reset_timeout": 600.0, "backend": "process"}


def hold_action() -> np.ndarray:
    """Zero motion with the gripper open."""
    action = np.zeros(7, dtype=np.float32)
    action[-1] = -1.0
    return action


def teacher_routes(spec: Any, task_ids: list[int], sigma: float) -> dict[int, str]:
    """``{task id: "oracle" | model folder}`` of ``task_args.teacher`` (empty: no teacher); see the module
    docstring."""
    if spec in (None, "", {}):
        return {t: "oracle" for t in task_ids} if sigma > 0 else {}
    if isinstance(spec, str):
        return {t: spec for t in task_ids}
    if not isinstance(spec, dict):
        raise ValueError(f"env.task_args.teacher={spec!r}: expected 'oracle', a model folder, or a mapping "
                         "{task id: oracle | folder, default: ...}")
    routes: dict[int, str] = {}
    default = spec.get("default")
    for key, value in spec.items():
        if key == "default":
            continue
        try:
            task = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"env.task_args.teacher: key {key!r} is not a task id or 'default'") from None
        if not isinstance(value, str) or not value:
            raise ValueError(f"env.task_args.teacher.{key}: expected 'oracle' or a model folder, got {value!r}")
        routes[task] = value
    for task in task_ids:
        if task not in routes:
            if not isinstance(default, str) or not default:
                raise ValueError(f"env.task_args.teacher routes no teacher to task {task} and has no 'default'")
            routes[task] = default
    return routes


class LiberoTask(EnvTask):
    """LIBERO with a VLA policy; see the module docstring."""

    name = "libero"

    def __init__(self, cfg: Any, adapter: Any) -> None:
        super().__init__(cfg, adapter)
        unknown = sorted(set(cfg.task_args) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"env.task_args {unknown} are not understood by task 'libero'; valid keys: "
                             f"{sorted(_DEFAULTS)}")
        self.args = {**_DEFAULTS, **cfg.task_args}
        if getattr(adapter, "action_tokenizer", None) is None:
            raise ValueError(f"task 'libero' needs a VLA (model.family vla, with action_tokenizer.json); the model's "
                             f"adapter is {adapter.family!r}")
        self.interface = self._interface(adapter)
        self.chunk = self.interface.chunk
        held, first = int(self.args["heldout_init_states"]), int(self.args["train_init_states"])
        if not 0 < held < NUM_INIT_STATES or not 0 <= first <= NUM_INIT_STATES - held:
            raise ValueError(f"env.task_args: heldout_init_states={held} must be in 1..{NUM_INIT_STATES - 1} and "
                             f"train_init_states={first} in 0..{NUM_INIT_STATES - held}")
        self.task_ids = [int(t) for t in self.args["task_ids"]]
        self.train_states = list(range(first or NUM_INIT_STATES - held))
        self.heldout_states = list(range(NUM_INIT_STATES - held, NUM_INIT_STATES))
        sigma = float(self.args["teacher_sigma_bins"])
        self.routes = teacher_routes(self.args["teacher"], self.task_ids, sigma)
        self.teacher = None
        if "oracle" in self.routes.values():
            from tasks.libero.teacher import OracleBinTeacher  # torch: imported only when a teacher is asked for

            self.teacher = OracleBinTeacher(adapter.action_tokenizer, sigma if sigma > 0 else 2.0,
                                            float(self.args["teacher_floor"]))
        self.shaping = float(self.args["oracle_shaping"])
        if self.shaping < 0:
            raise ValueError(f"env.task_args.oracle_shaping={self.shaping}: expected >= 0")
        self.uses_oracle = self.teacher is not None or self.shaping > 0
        self._oracles: list[Any] = []
        self._oracle_actions: dict[int, np.ndarray] = {}
        self._slot_tasks: list[int] = []

    def _interface(self, adapter: Any) -> VLAInterface:
        """The model's recorded interface (``task_args`` may only repeat it), else one built from ``task_args``."""
        given = {k: self.args[k] for k in _INTERFACE_KEYS if self.args[k] is not None}
        if self.args["camera"] is not None:
            if "cameras" in given:
                raise ValueError("env.task_args: give 'cameras' or 'camera', not both")
            given["cameras"] = [self.args["camera"]]
        if "cameras" in given:
            given["cameras"] = tuple(given["cameras"])
        recorded = VLAInterface.of_model(adapter.action_tokenizer, "the model's action_tokenizer.json")
        if recorded is None:
            interface = VLAInterface(**given, image_min_pixels=adapter.budget.image_min_pixels,
                                     image_max_pixels=adapter.budget.image_max_pixels)
            return interface
        clash = {k: (v, getattr(recorded, k)) for k, v in given.items() if v != getattr(recorded, k)}
        if clash:
            detail = ", ".join(f"{k}={v!r} (model: {m!r})" for k, (v, m) in clash.items())
            raise ValueError(f"env.task_args {detail} contradict the interface the model was trained with; leave "
                             "them unset to use the model's")
        adapter.budget = recorded.resolve_budget(adapter.budget, "task 'libero'")
        return recorded

    # ---- episodes ---------------------------------------------------------------------------------------------
    def make_env(self, num_envs: int) -> BatchedEnv:
        from envs.libero.vector import LiberoVectorEnv

        a = self.args
        env_kwargs = {"suite": a["suite"], **self.interface.env_kwargs(), "privileged": self.uses_oracle}
        vec = LiberoVectorEnv(num_envs, env_kwargs=env_kwargs, step_timeout=float(a["step_timeout"]),
                              reset_timeout=float(a["reset_timeout"]), backend=str(a["backend"]))
        return LiberoBatch(vec, self.episode_of)

    def level_seed(self, split: str, index: int) -> int:
        states = self.train_states if split == "train" else self.heldout_states
        task = self.task_ids[index % len(self.task_ids)]
        return task * 1000 + states[(index // len(self.task_ids)) % len(states)]

    @staticmethod
    def episode_of(seed: int) -> tuple[int, int]:
        return seed // 1000, seed % 1000

    def begin_episodes(self, env: BatchedEnv, observations: list, infos: list) -> None:
        self._slot_tasks = [int(i.get("task_id", -1)) for i in infos]
        if self.uses_oracle:
            from envs.libero.oracle import ScriptedOracle

            self._oracles = [ScriptedOracle() for _ in observations]
            self._oracle_actions = {}

    # ---- turns ------------------------------------------------------------------------------------------------
    def generation(self) -> GenerationSpec:
        subset, allow_stop = self.adapter.sampling_constraints()
        return GenerationSpec(self.adapter.tokens_per_action * self.chunk, subset, allow_stop)

    def observe(self, env: BatchedEnv, slot: int, observation: dict[str, Any], info: dict[str, Any],
                turn: int) -> TurnPrompt:
        if self.uses_oracle:
            self._oracle_actions[slot] = np.asarray(self._oracles[slot](observation, info), dtype=np.float64)
        text, images = self.interface.observation_prompt(observation, info)
        return TurnPrompt(text, images)

    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        ids = np.asarray(output.token_ids.tolist(), dtype=np.int64)
        dim = self.adapter.tokens_per_action
        if len(ids) == 0 or len(ids) % dim:
            return TurnAction([hold_action()], "not_whole_actions", summary=f"{len(ids)} tokens")
        try:
            actions = self.interface.to_env_actions(self.adapter.decode_actions(ids.reshape(-1, dim)))
        except ValueError as exc:
            return TurnAction([hold_action()], "not_action_tokens", summary=str(exc)[:200])
        shaping = 0.0
        if self.shaping > 0:
            shaping = -self.shaping * float(np.abs(actions - self._oracle_actions[slot][None, :]).mean())
        return TurnAction(list(actions), penalty=shaping, summary=np.round(actions, 3).tolist())

    def teacher_logprobs(self, slot: int, output: GeneratedTurn) -> Any:
        if self.teacher is None:
            return None
        task = self._slot_tasks[slot] if slot < len(self._slot_tasks) else -1
        if self.routes.get(task) != "oracle":
            return None  # a VLA teacher scores this slot after the rollout (rl.teacher)
        oracle = self._oracle_actions[slot]
        return self.teacher.log_probs(np.repeat(oracle[None, :], self.chunk, axis=0))

    def frames(self, env: BatchedEnv, observations: list) -> list:
        camera = self.interface.cameras[0]
        return [o["images"][camera] if o is not None and "images" in o else None for o in observations]


@ENV_TASKS.register("libero")
def make_libero(cfg: Any, adapter: Any) -> LiberoTask:
    return LiberoTask(cfg, adapter)
