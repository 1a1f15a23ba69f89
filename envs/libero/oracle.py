"""A scripted pick-and-place oracle on privileged object poses (no model weights).

It reads ``info["object_poses"]`` and ``info["objects_of_interest"]`` (``LiberoEnv(privileged=True)``) and the
end-effector position (``obs["proprio"][:3]``), and drives the OSC deltas with a clipped P-controller through a
fixed phase sequence: hover above the object, descend, close the gripper, lift, carry over the target, lower, open,
retreat. The grasp point is offset along +y because the Panda fingers close along y: a finger lands on a bowl's rim
(an x offset slides along the rim and fails). A phase also ends when the gripper stalls close to its waypoint
(contact, or the controller's steady-state error under a held load). It is written for the libero_spatial tasks
("pick up the black bowl ... and place it on the plate": object of interest 0 goes onto object of interest 1) and
solves 9 of the 10 (not task 4, whose bowl sits in a drawer under the cabinet top); it serves as a test fixture,
a weight-free teacher and a demonstration source.

Policy protocol (shared with the eval runner): ``policy(obs, info) -> action (7,)`` plus ``reset()`` called at the
start of every episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

OPEN, CLOSE = -1.0, 1.0


@dataclass(frozen=True)
class OracleConfig:
    """Geometry and gains of the scripted oracle (metres, steps)."""

    gain: float = 10.0
    grasp_offset: tuple[float, float, float] = (0.0, 0.04, 0.0)
    hover_height: float = 0.12
    grasp_height: float = 0.01
    carry_height: float = 0.10
    place_clearance: float = 0.03
    tolerance: float = 0.01
    transit_tolerance: float = 0.02
    grip_steps: int = 12
    release_steps: int = 8
    max_phase_steps: int = 80
    stall_window: int = 6
    stall_distance: float = 0.002
    stall_tolerance: float = 0.04


PHASES = ("hover", "descend", "grasp", "lift", "carry", "lower", "release", "retreat")


class ScriptedOracle:
    """Pick ``objects_of_interest[0]`` and place it on ``objects_of_interest[1]``. See the module docstring."""

    def __init__(self, config: OracleConfig | None = None) -> None:
        self.config = config or OracleConfig()
        self.reset()

    def reset(self) -> None:
        """Start a new episode."""
        self._recent = []
        self.phase = 0
        self._phase_steps = 0
        self._grip_offset: np.ndarray | None = None
        self._grasp_eef: np.ndarray | None = None
        self._recent: list[np.ndarray] = []

    def __call__(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        poses = info.get("object_poses")
        names = info.get("objects_of_interest")
        if poses is None or names is None:
            raise ValueError(
                "ScriptedOracle needs privileged info (info['object_poses'], info['objects_of_interest']); "
                "make the env with privileged=True"
            )
        if len(names) < 2 or names[0] not in poses or names[1] not in poses:
            raise ValueError(
                f"ScriptedOracle does pick-and-place of objects_of_interest[0] onto [1]; this task has "
                f"objects_of_interest={list(names)} with poses for {sorted(poses)}"
            )
        cfg = self.config
        eef = np.asarray(obs["proprio"][:3], dtype=np.float64)
        obj = poses[names[0]]["pos"]
        target = poses[names[1]]["pos"]
        offset = np.asarray(cfg.grasp_offset)
        name = PHASES[min(self.phase, len(PHASES) - 1)]
        gripper = CLOSE if name in ("grasp", "lift", "carry", "lower") else OPEN
        if name == "hover":
            goal = obj + offset + [0.0, 0.0, cfg.hover_height]
        elif name == "descend":
            goal = obj + offset + [0.0, 0.0, cfg.grasp_height]
        elif name == "grasp":
            goal = eef
        elif name == "lift":
            if self._grasp_eef is None:  # first lift step: remember where and how the object is held
                self._grasp_eef = eef.copy()
                self._grip_offset = eef - obj
            goal = self._grasp_eef + [0.0, 0.0, cfg.carry_height]
        elif name == "carry":
            goal = target + self._carry_offset()
            goal[2] = self._grasp_eef[2] + cfg.carry_height
        elif name == "lower":
            goal = target + self._carry_offset()
            goal[2] = target[2] + self._grip_offset[2] + cfg.place_clearance
        elif name == "release":
            goal = eef
        else:  # retreat
            goal = eef + [0.0, 0.0, 0.05]
        delta = np.clip(cfg.gain * (goal - eef), -1.0, 1.0)
        self._advance(name, float(np.linalg.norm(goal - eef)), eef)
        return np.concatenate([delta, np.zeros(3), [gripper]]).astype(np.float32)

    def _carry_offset(self) -> np.ndarray:
        """Horizontal offset of the gripper from the held object, so the object (not the gripper) is centred."""
        assert self._grip_offset is not None, "carry/lower before lift"
        return np.array([self._grip_offset[0], self._grip_offset[1], 0.0])

    def _stalled(self, eef: np.ndarray) -> bool:
        """The gripper has stopped moving (contact, or the OSC's steady-state error under a held load)."""
        window = self.config.stall_window
        self._recent = (self._recent + [eef.copy()])[-window:]
        moved = float(np.linalg.norm(self._recent[-1] - self._recent[0]))
        return len(self._recent) == window and moved < self.config.stall_distance

    def _advance(self, name: str, error: float, eef: np.ndarray) -> None:
        cfg = self.config
        self._phase_steps += 1
        stalled = self._stalled(eef)
        if name == "grasp":
            done = self._phase_steps >= cfg.grip_steps
        elif name == "release":
            done = self._phase_steps >= cfg.release_steps
        elif name == "retreat":
            done = False
        else:
            tolerance = cfg.transit_tolerance if name in ("hover", "lift", "carry") else cfg.tolerance
            done = (
                error < tolerance
                or (stalled and error < cfg.stall_tolerance)
                or self._phase_steps >= cfg.max_phase_steps
            )
        if done:
            self.phase += 1
            self._phase_steps = 0
            self._recent = []
