"""Environment task ``libero``: a VLA plays LIBERO episodes in :class:`envs.libero.vector.LiberoVectorEnv` workers.

Each turn the policy sees one camera image and the OpenVLA prompt "What action should the robot take to
<instruction>?" (Kim et al., arXiv 2406.09246) and emits exactly ``chunk × action_dim`` action-bin tokens (sampling
is restricted to the action vocabulary and no stop token can be sampled); they are decoded through the model's
action tokenizer into ``chunk`` actions, executed in order. Use ``env.concat_turns: false`` (each step is prompted
with its own image, as VLAs are trained). An output that is not a whole number of action vectors of action tokens
(impossible under the constrained sampler, but the bridge is total) is counted and replaced by a hold action (zero
motion, gripper open).

Levels: a seed is ``task_id * 1000 + init_state``. Training cycles over the suite's tasks (``task_ids``) and the
first ``50 − heldout_init_states`` stored init states; the ``val`` / ``test`` splits use the last
``heldout_init_states`` ones, so held-out success is measured on initial states never trained on.

With ``teacher_sigma_bins > 0`` the bridge runs the scripted oracle (:mod:`envs.libero.oracle`, privileged object
poses) on every observed state and records its action as a teacher distribution over the bins
(:mod:`tasks.libero.teacher`), for on-policy distillation (``rl.advantage: opd``) or exact reverse KL. With
``oracle_shaping = c > 0`` every turn's reward also gets ``−c · mean |a − a_oracle|`` (mean over the chunk's action
dimensions): a dense shaping term from the same privileged oracle, for GRPO on tasks whose sparse success reward is
all zeros early in training.

``task_args``: ``suite`` (libero_spatial), ``task_ids`` (all ten), ``camera`` (agentview), ``image_size`` (128),
``render`` (fast), ``chunk`` (1), ``heldout_init_states`` (10), ``teacher_sigma_bins`` (0: no teacher),
``oracle_shaping`` (0), ``step_timeout`` (120 s), ``reset_timeout`` (600 s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmsft.rollout.envs import BatchedEnv, LiberoBatch
from mmsft.rollout.tasks import ENV_TASKS, EnvTask, GeneratedTurn, GenerationSpec, TurnAction, TurnPrompt

NUM_INIT_STATES = 50  # stored init states per LIBERO task (the benchmark protocol)
_DEFAULTS: dict[str, Any] = {"suite": "libero_spatial", "task_ids": list(range(10)), "camera": "agentview",
                             "image_size": 128, "render": "fast", "chunk": 1, "heldout_init_states": 10,
                             "teacher_sigma_bins": 0.0, "oracle_shaping": 0.0, "step_timeout": 120.0,
                             "reset_timeout": 600.0}


def hold_action() -> np.ndarray:
    """Zero motion with the gripper open."""
    action = np.zeros(7, dtype=np.float32)
    action[-1] = -1.0
    return action


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
        self.chunk = int(self.args["chunk"])
        held = int(self.args["heldout_init_states"])
        if self.chunk < 1 or not 0 < held < NUM_INIT_STATES:
            raise ValueError(f"env.task_args: chunk={self.chunk} must be >= 1 and heldout_init_states={held} in "
                             f"1..{NUM_INIT_STATES - 1}")
        self.task_ids = [int(t) for t in self.args["task_ids"]]
        self.train_states = list(range(NUM_INIT_STATES - held))
        self.heldout_states = list(range(NUM_INIT_STATES - held, NUM_INIT_STATES))
        sigma = float(self.args["teacher_sigma_bins"])
        self.teacher = None
        if sigma > 0:
            from tasks.libero.teacher import OracleBinTeacher  # torch: imported only when a teacher is asked for

            self.teacher = OracleBinTeacher(adapter.action_tokenizer, sigma)
        self.shaping = float(self.args["oracle_shaping"])
        if self.shaping < 0:
            raise ValueError(f"env.task_args.oracle_shaping={self.shaping}: expected >= 0")
        self.uses_oracle = self.teacher is not None or self.shaping > 0
        self._oracles: list[Any] = []
        self._oracle_actions: dict[int, np.ndarray] = {}

    # ---- episodes ---------------------------------------------------------------------------------------------
    def make_env(self, num_envs: int) -> BatchedEnv:
        from envs.libero.vector import LiberoVectorEnv

        a = self.args
        env_kwargs = {"suite": a["suite"], "image_size": int(a["image_size"]), "cameras": (a["camera"],),
                      "render": a["render"], "privileged": self.uses_oracle}
        vec = LiberoVectorEnv(num_envs, env_kwargs=env_kwargs, step_timeout=float(a["step_timeout"]),
                              reset_timeout=float(a["reset_timeout"]))
        return LiberoBatch(vec, self.episode_of)

    def level_seed(self, split: str, index: int) -> int:
        states = self.train_states if split == "train" else self.heldout_states
        task = self.task_ids[index % len(self.task_ids)]
        return task * 1000 + states[(index // len(self.task_ids)) % len(states)]

    @staticmethod
    def episode_of(seed: int) -> tuple[int, int]:
        return seed // 1000, seed % 1000

    def begin_episodes(self, env: BatchedEnv, observations: list, infos: list) -> None:
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
        instruction = str(observation.get("instruction") or info.get("instruction", "")).strip().rstrip(".").lower()
        image = observation["images"][self.args["camera"]]
        return TurnPrompt(f"What action should the robot take to {instruction}?", [image])

    def act(self, slot: int, output: GeneratedTurn, info: dict[str, Any]) -> TurnAction:
        ids = np.asarray(output.token_ids.tolist(), dtype=np.int64)
        dim = self.adapter.tokens_per_action
        if len(ids) == 0 or len(ids) % dim:
            return TurnAction([hold_action()], "not_whole_actions", summary=f"{len(ids)} tokens")
        try:
            actions = self.adapter.decode_actions(ids.reshape(-1, dim))
        except ValueError as exc:
            return TurnAction([hold_action()], "not_action_tokens", summary=str(exc)[:200])
        shaping = 0.0
        if self.shaping > 0:
            shaping = -self.shaping * float(np.abs(actions - self._oracle_actions[slot][None, :]).mean())
        return TurnAction([a.astype(np.float32) for a in actions], penalty=shaping,
                          summary=np.round(actions, 3).tolist())

    def teacher_logprobs(self, slot: int, output: GeneratedTurn) -> Any:
        if self.teacher is None:
            return None
        oracle = self._oracle_actions[slot]
        return self.teacher.log_probs(np.repeat(oracle[None, :], self.chunk, axis=0))

    def frames(self, env: BatchedEnv, observations: list) -> list:
        camera = self.args["camera"]
        return [o["images"][camera] if o is not None and "images" in o else None for o in observations]


@ENV_TASKS.register("libero")
def make_libero(cfg: Any, adapter: Any) -> LiberoTask:
    return LiberoTask(cfg, adapter)
