"""``mmsft/Libero-v0``: one LIBERO task as a headless gymnasium environment.

Observation (a dict):
    ``images``       {camera: uint8 (S, S, 3)}, upright (rotated 180 degrees like every published LIBERO policy);
                     absent when ``cameras=()`` (physics only).
    ``proprio``      float32 (8,): end-effector position (3), axis-angle of its orientation (3), gripper qpos (2).
    ``instruction``  the task's language instruction (also in ``info["instruction"]``).
Action: float32 (7,) in [-1, 1]: OSC_POSE deltas [dx, dy, dz, droll, dpitch, dyaw] (robosuite scales them to
0.05 m and 0.5 rad per unit) and the gripper (-1 open, +1 close). Values outside [-1, 1] are clipped.
Reward: 1.0 on a step where the task's success predicate holds, else 0.0 (sparse). ``terminated`` on success
(unless ``ignore_terminations``), ``truncated`` at the suite's paper step limit. The 10 settle steps after a reset
(zero motion, gripper open) are not counted.

``reset(options={"init_state": k})`` loads stored init state ``k`` (episode k of the standard protocol uses init
state k); without it a state is drawn with the env's ``np_random`` (seed with ``reset(seed=...)``).
Fixture placement, which the stored init states do not cover, is seeded per episode from
``(seed, task_id, init_state)`` (LIBERO samples it from numpy's global RNG), so an episode is reproducible
regardless of which worker runs it and of what that worker ran before (see ``LiberoEnv._hard_reset``).
``options={"task_id": j}`` switches the task of the same suite (the simulator is rebuilt, 4-10 s). The simulator is
built lazily on the first reset, so constructing the env (and reading its spaces) is cheap.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np

from envs.libero.headless import configure_headless
from envs.libero.render import apply_fast_render, check_render_mode, render_size, upright
from envs.libero.suites import (
    CAMERA_NAMES,
    NUM_SETTLE_STEPS,
    SUITE_MAX_STEPS,
    check_cameras,
    check_suite,
    init_states,
    task_spec,
)

configure_headless()  # before anything below imports mujoco

ACTION_DIM = 7
PROPRIO_DIM = 8
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
_RESET_OPTIONS = ("init_state", "task_id")


class LiberoSimulationError(RuntimeError):
    """The simulator reached a non-finite state or raised; the episode cannot continue."""


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of a unit quaternion in robosuite's (x, y, z, w) order."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(max(1.0 - w * w, 0.0))
    if den < 1e-8:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


def proprio_from_raw(raw: dict[str, np.ndarray]) -> np.ndarray:
    """The 8-D proprio vector (eef pos, eef axis-angle, gripper qpos) from a raw robosuite observation."""
    return np.concatenate(
        [raw["robot0_eef_pos"], quat_to_axis_angle(raw["robot0_eef_quat"]), raw["robot0_gripper_qpos"]]
    ).astype(np.float32)


def object_poses_from_raw(raw: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Privileged object poses {object: {"pos": (3,), "quat": (4,) xyzw}} from a raw LIBERO observation."""
    poses: dict[str, dict[str, np.ndarray]] = {}
    for key, value in raw.items():
        if key.endswith("_pos") and not key.startswith("robot0_") and "_to_" not in key:
            name = key[: -len("_pos")]
            if f"{name}_quat" in raw:
                poses[name] = {"pos": np.array(value, dtype=np.float64), "quat": np.array(raw[f"{name}_quat"])}
    return poses


class LiberoEnv(gym.Env):
    """A LIBERO task (suite + task id) with the standard evaluation protocol. See the module docstring.

    Args:
        suite: one of libero_spatial, libero_object, libero_goal, libero_10, libero_90.
        task_id: task index within the suite (10 tasks each; 90 for libero_90).
        image_size: side of the observed images (the papers use 224).
        cameras: subset of ("agentview", "wrist"); () is physics only (no rendering, no ``images`` key).
        render: "fast" (no shadows/reflections/MSAA, rendered at image_size) or "paper" (256 px, resized).
        max_episode_steps: step limit; None uses the suite's paper limit.
        num_settle_steps: zero-motion steps after each reset (10 in the protocol), not counted.
        privileged: add ``object_poses`` and ``objects_of_interest`` to ``info`` (oracles, reward shaping).
        ignore_terminations: keep stepping after success (success-at-end metrics); truncation still applies.
        seed: base seed of the per-episode fixture placement (7, as in the published protocol).
        render_mode: None or "rgb_array" (``render()`` returns the first camera's latest frame).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        suite: str = "libero_spatial",
        task_id: int = 0,
        image_size: int = 128,
        cameras: tuple[str, ...] | list[str] = ("agentview", "wrist"),
        render: str = "fast",
        max_episode_steps: int | None = None,
        num_settle_steps: int = NUM_SETTLE_STEPS,
        privileged: bool = False,
        ignore_terminations: bool = False,
        seed: int = 7,
        render_mode: str | None = None,
    ) -> None:
        self.suite = check_suite(suite)
        self.cameras = check_cameras(cameras)
        self.render_quality = check_render_mode(render)
        if not isinstance(image_size, (int, np.integer)) or not 16 <= int(image_size) <= 1024:
            raise ValueError(f"image_size={image_size!r}; expected an int in [16, 1024]")
        self.image_size = int(image_size)
        if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps={max_episode_steps!r}; expected a positive int or None")
        self.max_episode_steps = int(max_episode_steps or SUITE_MAX_STEPS[self.suite])
        if not isinstance(num_settle_steps, int) or num_settle_steps < 0:
            raise ValueError(f"num_settle_steps={num_settle_steps!r}; expected an int >= 0")
        self.num_settle_steps = num_settle_steps
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        if render_mode == "rgb_array" and not self.cameras:
            raise ValueError("render_mode='rgb_array' needs at least one camera; cameras=() is physics only")
        self.render_mode = render_mode
        self.privileged = bool(privileged)
        self.ignore_terminations = bool(ignore_terminations)
        self._sim_seed = int(seed)
        self._task = task_spec(self.suite, task_id)
        self._env: Any = None  # libero ControlEnv / OffScreenRenderEnv, built on first reset
        self._steps = 0
        self._done = True
        self._init_state_id: int | None = None
        self._last_obs: dict[str, Any] | None = None

        side = self.image_size
        obs_spaces: dict[str, gym.Space] = {}
        if self.cameras:
            obs_spaces["images"] = gym.spaces.Dict(
                {cam: gym.spaces.Box(0, 255, (side, side, 3), np.uint8) for cam in self.cameras}
            )
        obs_spaces["proprio"] = gym.spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32)
        obs_spaces["instruction"] = gym.spaces.Text(max_length=512, charset=string.printable)
        self.observation_space = gym.spaces.Dict(obs_spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    # ------------------------------------------------------------------ properties
    @property
    def task_id(self) -> int:
        return self._task.task_id

    @property
    def instruction(self) -> str:
        return self._task.instruction

    @property
    def num_init_states(self) -> int:
        return self._task.num_init_states

    @property
    def raw_env(self) -> Any:
        """The underlying LIBERO env (None before the first reset); for privileged access and benchmarks."""
        return self._env

    # ------------------------------------------------------------------ simulator lifecycle
    def _build(self) -> None:
        from libero.libero.envs import OffScreenRenderEnv
        from libero.libero.envs.env_wrapper import ControlEnv

        horizon = self.num_settle_steps + self.max_episode_steps + 10
        common = dict(bddl_file_name=self._task.bddl_file, control_freq=20, horizon=horizon, ignore_done=True)
        if self.cameras:
            side = render_size(self.render_quality, self.image_size)
            self._env = OffScreenRenderEnv(
                camera_names=[CAMERA_NAMES[c] for c in self.cameras],
                camera_heights=side,
                camera_widths=side,
                **common,
            )
        else:
            self._env = ControlEnv(
                has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False, **common
            )

    def _close_sim(self) -> None:
        if self._env is None:
            return
        sim = getattr(self._env.env, "sim", None)
        ctx = getattr(sim, "_render_context_offscreen", None) if sim is not None else None
        self._env.close()
        gl_ctx = getattr(ctx, "gl_ctx", None)
        if gl_ctx is not None:
            gl_ctx.free()
        self._env = None

    def close(self) -> None:
        """Release the simulator and its GL context (explicitly, so nothing is left to interpreter teardown)."""
        self._close_sim()
        self._done = True

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(_RESET_OPTIONS))
        if unknown:
            raise ValueError(f"reset options {unknown} not understood; expected keys from {list(_RESET_OPTIONS)}")
        task_id = options.get("task_id")
        if task_id is not None and int(task_id) != self._task.task_id:
            self._task = task_spec(self.suite, int(task_id))
            self._close_sim()
        init_id = options.get("init_state")
        n = self._task.num_init_states
        if init_id is None:
            init_id = int(self.np_random.integers(n))
        elif not isinstance(init_id, (int, np.integer)) or not 0 <= int(init_id) < n:
            raise ValueError(f"options['init_state']={init_id!r}; expected an int in [0, {n}) for this task")
        if self._env is None:
            self._build()
        # Fixtures (cabinets, stoves, ...) are not in the stored init states: every hard reset re-samples their
        # placement from numpy's *global* RNG. Seeding it per episode makes an episode a function of
        # (seed, task, init state) only, whatever worker runs it and whatever ran before.
        base = self._sim_seed if seed is None else int(seed)
        self._env.seed((base * 1_000_003 + self._task.task_id * 1_009 + int(init_id)) % 2**32)
        self._hard_reset()
        self._tune_render()
        raw = self._env.set_init_state(init_states(self.suite, self._task.task_id)[int(init_id)])
        for _ in range(self.num_settle_steps):
            raw, _, _, _ = self._env.step(SETTLE_ACTION)
        self._check_finite()
        self._init_state_id = int(init_id)
        self._steps = 0
        self._done = False
        obs = self._observation(raw)
        return obs, self._info(raw, success=bool(self._env.check_success()))

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called on a finished (or never reset) episode; call reset() first")
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (ACTION_DIM,):
            raise ValueError(f"action shape {act.shape}; expected ({ACTION_DIM},) = 6 OSC deltas + gripper")
        if not np.all(np.isfinite(act)):
            raise ValueError(f"action {act.tolist()} has non-finite values")
        raw, _, _, _ = self._env.step(np.clip(act, -1.0, 1.0))
        self._check_finite()
        self._steps += 1
        success = bool(self._env.check_success())
        terminated = success and not self.ignore_terminations
        truncated = (not terminated) and self._steps >= self.max_episode_steps
        self._done = terminated or truncated
        obs = self._observation(raw)
        return obs, float(success), terminated, truncated, self._info(raw, success=success)

    def render(self) -> np.ndarray | None:
        """The latest upright frame of the first camera when ``render_mode='rgb_array'``, else None."""
        if self.render_mode != "rgb_array" or self._last_obs is None:
            return None
        return self._last_obs["images"][self.cameras[0]]

    # ------------------------------------------------------------------ helpers
    def _hard_reset(self) -> None:
        """Rebuild the scene (robosuite hard reset) with the same random draws whatever reset came before.

        LIBERO's ``_load_model`` *appends* one open/close or on/off joint sampler per articulated object of the
        scene's initial state (drawers, stoves) to ``object_property_initializers``, a list created once in the
        constructor, and every hard reset calls ``_load_model``. Each earlier reset of the same simulator thus adds
        draws from numpy's global RNG before the fixture placement is sampled, and the fixtures (cabinets, racks)
        land 3-17 mm elsewhere on the n-th reset of an init state than on the first. Emptying the list first
        leaves exactly the samplers of the scene being built, so the draws depend on the seed alone.
        """
        inner = self._env.env
        if not inner.hard_reset or inner.deterministic_reset:
            raise RuntimeError("LiberoEnv needs robosuite's hard reset (hard_reset=True, deterministic_reset=False)")
        inner.object_property_initializers.clear()
        self._env.reset()

    def _tune_render(self) -> None:
        if self.cameras and self.render_quality == "fast":
            apply_fast_render(self._env.env.sim)

    def _check_finite(self) -> None:
        data = self._env.env.sim.data
        if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
            raise LiberoSimulationError(
                f"non-finite simulator state in {self.suite} task {self._task.task_id} "
                f"(init state {self._init_state_id}, step {self._steps})"
            )

    def _observation(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.cameras:
            obs["images"] = {
                cam: upright(raw[f"{CAMERA_NAMES[cam]}_image"], self.image_size) for cam in self.cameras
            }
        obs["proprio"] = proprio_from_raw(raw)
        obs["instruction"] = self._task.instruction
        self._last_obs = obs
        return obs

    def _info(self, raw: dict[str, np.ndarray], success: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "suite": self.suite,
            "task_id": self._task.task_id,
            "init_state": self._init_state_id,
            "instruction": self._task.instruction,
            "step": self._steps,
            "success": success,
        }
        if self.privileged:
            info["object_poses"] = object_poses_from_raw(raw)
            info["objects_of_interest"] = list(self._env.obj_of_interest)
        return info
