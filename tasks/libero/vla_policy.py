"""The built-in LIBERO policy of a trained mmsft VLA folder: ``--policy mmsft:runs/vla/final``.

:class:`VLAPolicy` loads the folder (weights, processor, action tokenizer and the recorded
:class:`~tasks.libero.prompt.VLAInterface`), builds each slot's prompt exactly as training did (same template,
cameras, proprio text and pixel budget; images stay in memory), and samples **only action tokens**: generation is
restricted to the action-bin vocabulary with no stop token (:meth:`VLAAdapter.sampling_constraints`), so every
completion is ``chunk × 7`` bin tokens. The tokens are decoded by the action tokenizer into ``chunk`` actions (bin
centres), converted to the env convention by the interface, and executed one per env step; a slot re-plans when its
chunk is used up (OFT-style open-loop chunks, arXiv 2502.19645). All slots that need a plan at a step share one
batched ``generate`` call. Decoding is greedy by default (OpenVLA's protocol); ``temperature > 0`` samples with a
fixed seed.

A folder that never recorded an interface (e.g. a VLA built with ``mmsft models build-tiny vla`` and not trained on
episodes) is run with the default interface (agentview, 128 px, fast render, chunk 1), and :attr:`recorded` says so;
an OpenVLA-style folder (statistics from ``dataset_statistics.json``) gets OpenVLA's (224 px, paper render, gripper
in [0, 1] converted to the env's -1/+1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tasks.libero.prompt import VLAInterface

PREFIX = "mmsft:"
OPENVLA_INTERFACE = VLAInterface(image_size=224, render="paper", action_convention="openvla")


def interface_of(action_tokenizer: Any, where: str) -> tuple[VLAInterface, bool]:
    """(interface, recorded): the folder's recorded interface, or the documented default for its kind."""
    recorded = VLAInterface.of_model(action_tokenizer, where)
    if recorded is not None:
        return recorded, True
    source = str((getattr(action_tokenizer, "interface", {}) or {}).get("source", ""))
    if source.startswith("dataset_statistics.json"):
        return OPENVLA_INTERFACE, False
    return VLAInterface(), False


def folder_interface(folder: Path) -> tuple[VLAInterface, bool]:
    """:func:`interface_of` a model folder, read from its statistics file alone (no weights)."""
    from mmsft.models.action_tokenizer import ACTION_TOKENIZER_FILE, DATASET_STATISTICS_FILE, ActionTokenizer

    if (folder / ACTION_TOKENIZER_FILE).is_file():
        return interface_of(ActionTokenizer.load(folder), str(folder / ACTION_TOKENIZER_FILE))
    if (folder / DATASET_STATISTICS_FILE).is_file():
        return OPENVLA_INTERFACE, False
    raise ValueError(f"--policy {PREFIX}{folder}: not a VLA folder (no {ACTION_TOKENIZER_FILE} or "
                     f"{DATASET_STATISTICS_FILE})")


class VLAPolicy:
    """A batched policy over all vector-env slots; see the module docstring.

    ``act_batch(slots, observations, infos)`` returns one env action per listed slot; ``reset_slot(slot)`` starts a
    new episode on a slot (drops its remaining chunk).
    """

    privileged = False
    batched = True

    def __init__(self, model_dir: str, temperature: float = 0.0, seed: int = 0, device: str = "cpu",
                 batch_size: int = 64) -> None:
        from mmsft.models.loading import build_adapter, load_model
        from mmsft.rollout.engine import HFGenerateEngine

        self.model_dir = str(model_dir)
        loaded = load_model(self.model_dir)
        if loaded.action_tokenizer is None:
            raise ValueError(f"--policy {PREFIX}{model_dir}: not a VLA folder (no action_tokenizer.json or "
                             "dataset_statistics.json); train one on demonstrations first")
        self.interface, self.recorded = interface_of(loaded.action_tokenizer, f"{model_dir}/action_tokenizer.json")
        loaded.model.to(device).eval()
        self.loaded = loaded
        self.adapter = build_adapter(loaded, self.interface.budget(), padding_side="left", max_length=None)
        self.engine = HFGenerateEngine(lambda: loaded.model, self.adapter, batch_size=batch_size)
        self.temperature, self.seed = float(temperature), int(seed)
        self.tokens = self.adapter.tokens_per_action * self.interface.chunk
        self._queues: dict[int, list[np.ndarray]] = {}
        self._calls = 0
        self.model_seconds = 0.0
        self.plans = 0
        self.executed_tokens: list[np.ndarray] = []  # per executed action, its action-token ids (for checks)
        self._token_queues: dict[int, list[np.ndarray]] = {}

    # ---- the batched protocol ------------------------------------------------------------------------------------
    def reset_slot(self, slot: int) -> None:
        self._queues.pop(slot, None)
        self._token_queues.pop(slot, None)

    def act_batch(self, slots: Sequence[int], observations: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]]) -> list[np.ndarray]:
        need = [k for k, slot in enumerate(slots) if not self._queues.get(slot)]
        if need:
            self._plan([slots[k] for k in need], [observations[k] for k in need], [infos[k] for k in need])
        out = []
        for slot in slots:
            out.append(self._queues[slot].pop(0))
            self.executed_tokens.append(self._token_queues[slot].pop(0))
        return out

    def _plan(self, slots: list[int], observations: list[dict[str, Any]], infos: list[dict[str, Any]]) -> None:
        from mmsft.rollout.engine import SamplingParams

        started = time.perf_counter()
        prompts = []
        for slot, obs, info in zip(slots, observations, infos):
            instruction = obs.get("instruction") or info.get("instruction", "")
            sample = self.interface.sample(f"slot{slot}", str(instruction), obs.get("images") or {},
                                           obs.get("proprio"))
            prompts.append(self.adapter.encode(sample, with_target=False))
        subset, allow_stop = self.adapter.sampling_constraints()
        params = SamplingParams(n=1, max_new_tokens=self.tokens, temperature=self.temperature,
                                seed=self.seed * 1_000_003 + self._calls, vocab_subset=subset, allow_stop=allow_stop)
        self._calls += 1
        rollouts = self.engine.generate(prompts, params)
        dim = self.adapter.tokens_per_action
        for slot, rollout in zip(slots, rollouts):
            ids = np.asarray(rollout.completion_ids.tolist(), dtype=np.int64)
            if len(ids) != self.tokens:  # impossible under allow_stop=False; the policy stays total anyway
                raise RuntimeError(f"the VLA generated {len(ids)} tokens, expected {self.tokens}")
            ids = ids.reshape(-1, dim)
            actions = self.interface.to_env_actions(self.adapter.decode_actions(ids))
            self._queues[slot] = list(actions)
            self._token_queues[slot] = list(ids)
        self.plans += len(slots)
        self.model_seconds += time.perf_counter() - started

    def env_requirements(self) -> dict[str, Any]:
        """Env settings the model was trained with (image size, cameras, render mode)."""
        return self.interface.env_kwargs()

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_dir, "interface": self.interface.to_dict(), "interface_recorded": self.recorded,
                "temperature": self.temperature}
