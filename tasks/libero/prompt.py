"""The VLA prompt of a LIBERO observation — one definition shared by training, RL rollouts and evaluation.

A :class:`VLAInterface` says how an observation becomes a prompt and how the model's tokens become env actions:
the template (OpenVLA's "What action should the robot take to <instruction>?", Kim et al., arXiv 2406.09246), the
cameras shown (images in that order, before the text), the rendered image size and render mode, optional proprio as
text (Octo / OFT feed the 8-D state to the model; here it is written as numbers after the question), the action chunk
``K`` (OFT, arXiv 2502.19645: the model emits ``K × 7`` action tokens and the policy executes them before re-planning)
and the pixel budget the images were resized to. The trainer's episode loader records it in the model folder
(``action_tokenizer.json`` → ``interface``), so evaluation and RL build exactly the training prompts; a setting that
contradicts the recorded one is an error, never a silent change.

Action convention: the env takes 7 floats in [-1, 1] (OSC deltas, gripper -1 open / +1 close). A model trained on
OpenVLA's data convention (gripper in [0, 1], 1 = open; ``action_convention: openvla``) is converted here, in
:meth:`VLAInterface.to_env_actions`, and nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from mmsft.data.media import MediaBudget
from mmsft.data.schema import Message, Part, Sample

FORMAT = "mmsft-vla-interface-v1"
TEMPLATES = {"openvla": "What action should the robot take to {instruction}?"}
CONVENTIONS = ("libero", "openvla")
CAMERAS = ("agentview", "wrist")
_DEFAULT_BUDGET = MediaBudget()


class InterfaceError(ValueError):
    """A VLA interface that is malformed or contradicts the model folder's recorded one."""


def clean_instruction(text: str) -> str:
    """OpenVLA's normalisation: stripped, no trailing period, lower case."""
    return str(text).strip().rstrip(".").strip().lower()


def proprio_text(proprio: Any) -> str:
    """The 8-D state (eef position, eef axis-angle, gripper qpos) as text, three decimals each."""
    values = np.asarray(proprio, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"proprio contains NaN or inf: {values.tolist()}")
    return " ".join(f"{v:.3f}" for v in values)


@dataclass(frozen=True)
class VLAInterface:
    """How observations become prompts and tokens become actions; see the module docstring."""

    template: str = "openvla"
    cameras: tuple[str, ...] = ("agentview",)
    image_size: int = 128
    render: str = "fast"
    proprio: bool = False
    chunk: int = 1
    image_min_pixels: int = _DEFAULT_BUDGET.image_min_pixels
    image_max_pixels: int = _DEFAULT_BUDGET.image_max_pixels
    action_convention: str = "libero"

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise InterfaceError(f"interface template {self.template!r}; expected one of {sorted(TEMPLATES)}")
        if not self.cameras or any(c not in CAMERAS for c in self.cameras):
            raise InterfaceError(f"interface cameras {list(self.cameras)}; expected a non-empty list from {CAMERAS}")
        if self.chunk < 1 or self.image_size < 8:
            raise InterfaceError(f"interface chunk={self.chunk} (>= 1) and image_size={self.image_size} (>= 8)")
        if not 0 < self.image_min_pixels <= self.image_max_pixels:
            raise InterfaceError(f"interface pixel budget [{self.image_min_pixels}, {self.image_max_pixels}] is empty")
        if self.action_convention not in CONVENTIONS:
            raise InterfaceError(f"interface action_convention {self.action_convention!r}; expected {CONVENTIONS}")

    # ---- persistence ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cameras"] = list(self.cameras)
        return {"format": FORMAT, **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> "VLAInterface":
        if data.get("format") != FORMAT:
            raise InterfaceError(f"{where}: interface format {data.get('format')!r}, expected {FORMAT!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise InterfaceError(f"{where}: unknown interface keys {unknown}; known: {sorted(known)}")
        values = {k: v for k, v in data.items() if k in known}
        if "cameras" in values:
            values["cameras"] = tuple(values["cameras"])
        try:
            return cls(**values)
        except InterfaceError as exc:
            raise InterfaceError(f"{where}: {exc}") from None
        except TypeError as exc:
            raise InterfaceError(f"{where}: bad interface ({exc})") from None

    @classmethod
    def of_model(cls, action_tokenizer: Any, where: str) -> "VLAInterface | None":
        """The interface recorded with a model's action tokenizer, or None when it never recorded one."""
        recorded = dict(getattr(action_tokenizer, "interface", {}) or {})
        if recorded.get("format") != FORMAT:
            return None
        return cls.from_dict(recorded, where)

    # ---- budget ---------------------------------------------------------------------------------------------------
    def budget(self, base: MediaBudget | None = None) -> MediaBudget:
        """``base`` (or the default budget) with this interface's image pixel bounds."""
        import dataclasses

        return dataclasses.replace(base or MediaBudget(), image_min_pixels=self.image_min_pixels,
                                   image_max_pixels=self.image_max_pixels)

    def resolve_budget(self, configured: MediaBudget, where: str) -> MediaBudget:
        """The recorded pixel budget; a configured budget that is not the default and differs is an error."""
        wanted = (self.image_min_pixels, self.image_max_pixels)
        given = (configured.image_min_pixels, configured.image_max_pixels)
        default = (_DEFAULT_BUDGET.image_min_pixels, _DEFAULT_BUDGET.image_max_pixels)
        if given != wanted and given != default:
            raise InterfaceError(f"{where}: data.image_min_pixels/image_max_pixels = {list(given)} but the model was "
                                 f"trained with {list(wanted)} (recorded in its action_tokenizer.json interface); "
                                 "remove the keys or set the recorded values")
        return self.budget(configured)

    # ---- prompts --------------------------------------------------------------------------------------------------
    def prompt_text(self, instruction: str, proprio: Any = None) -> str:
        text = TEMPLATES[self.template].format(instruction=clean_instruction(instruction))
        if self.proprio:
            if proprio is None:
                raise ValueError("this VLA reads proprio (interface proprio: true) but the observation has none")
            text += f"\nRobot state: {proprio_text(proprio)}"
        return text

    def message(self, instruction: str, images: Mapping[str, Any], proprio: Any = None) -> Message:
        """The user message: one image part per interface camera (in memory, in order), then the text."""
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise ValueError(f"the observation lacks camera(s) {missing} this VLA was trained on "
                             f"(it has {sorted(images)}); render them (cameras={list(self.cameras)})")
        parts = [Part("image", array=np.asarray(images[c], dtype=np.uint8)) for c in self.cameras]
        parts.append(Part("text", text=self.prompt_text(instruction, proprio)))
        return Message("user", tuple(parts))

    def sample(self, sample_id: str, instruction: str, images: Mapping[str, Any], proprio: Any = None,
               actions: Sequence[Sequence[float]] | None = None, source: str = "<memory>",
               meta: dict[str, Any] | None = None) -> Sample:
        """A training (``actions`` = the chunk target) or prompting sample of one observation."""
        return Sample(sample_id, [self.message(instruction, images, proprio)], actions=actions, source=source,
                      meta=dict(meta or {}))

    def observation_prompt(self, observation: Mapping[str, Any], info: Mapping[str, Any] | None = None
                           ) -> tuple[str, list[np.ndarray]]:
        """(text, images) of a LiberoEnv observation, for the agent loop's ``TurnPrompt``."""
        instruction = observation.get("instruction") or (info or {}).get("instruction", "")
        images = observation.get("images") or {}
        message = self.message(str(instruction), images, observation.get("proprio"))
        return message.text, [p.array for p in message.parts if p.type == "image"]

    # ---- actions --------------------------------------------------------------------------------------------------
    def to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Decoded model actions ``(K, 7)`` in the env convention, clipped to [-1, 1]."""
        out = np.array(actions, dtype=np.float32, copy=True).reshape(-1, 7)
        if self.action_convention == "openvla":  # gripper in [0, 1] with 1 = open  ->  -1 open / +1 close
            out[:, -1] = 1.0 - 2.0 * out[:, -1]
        return np.clip(out, -1.0, 1.0)

    def env_kwargs(self) -> dict[str, Any]:
        """The LiberoEnv settings this VLA's observations need."""
        return {"image_size": self.image_size, "cameras": tuple(self.cameras), "render": self.render}

    def check_env(self, image_size: int, cameras: Sequence[str], where: str) -> None:
        """An env that renders differently from training is an error naming both settings."""
        missing = [c for c in self.cameras if c not in tuple(cameras)]
        if int(image_size) != self.image_size or missing:
            raise InterfaceError(f"{where}: the VLA was trained on {self.image_size} px images from "
                                 f"{list(self.cameras)}; the env renders {image_size} px from {list(cameras)}")
