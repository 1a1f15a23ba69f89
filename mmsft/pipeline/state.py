"""``<run>/pipeline_state.json``: which stages finished training and which evaluations are done, written atomically
(temporary file + rename) after every stage's training and after every evaluation, so a killed pipeline resumes
where it stopped.

A stage record keeps the stage's resolved config (flattened, without cosmetic keys): rerunning the pipeline with a
changed recipe for a finished stage is refused, naming the changed keys. An evaluation record keeps the evaluator
and its arguments: when they change, that cell is evaluated again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mmsft.errors import register_user_error

STATE_FILE = "pipeline_state.json"
#: Keys that do not change what a stage trains (logging, resume policy, threads); ignored when comparing configs.
COSMETIC_KEYS = frozenset({"train.progress", "train.tensorboard", "train.report_to", "train.logging_steps",
                           "train.resume", "train.torch_threads"})


@register_user_error
class PipelineStateError(RuntimeError):
    """The run folder's state file is unreadable or disagrees with the pipeline file."""


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fingerprint(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The flattened config minus :data:`COSMETIC_KEYS`, JSON-normalised (tuples become lists)."""
    flat = {k: v for k, v in flatten(config_dict).items() if k not in COSMETIC_KEYS}
    return json.loads(json.dumps(flat, sort_keys=True, default=str))


def config_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 8,
                   defaults: dict[str, Any] | None = None) -> list[str]:
    """``["optim.lr: 0.01 -> 0.001", ...]`` for keys whose values differ.

    With ``defaults`` (a fingerprint of the default config), a key missing from ``old`` whose new value is its
    default is not a change: it is a config key added by a newer mmsft, and the old run trained without it, which
    is what the default means."""
    keys = sorted(set(old) | set(new))

    def added_at_default(key: str) -> bool:
        return defaults is not None and key not in old and key in defaults and new.get(key) == defaults[key]

    changes = [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in keys
               if old.get(k) != new.get(k) and not added_at_default(k)]
    return changes[:limit] + ([f"... and {len(changes) - limit} more"] if len(changes) > limit else [])


class PipelineState:
    """Stage and evaluation records of one run folder."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / STATE_FILE
        self.enabled = enabled
        self.data: dict[str, Any] = {"version": 1, "stages": {}, "evals": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise PipelineStateError(f"{self.path} is not valid JSON ({exc}); delete it to rerun every "
                                         "stage and evaluation") from None
            if not isinstance(loaded, dict) or not isinstance(loaded.get("stages"), dict) \
                    or not isinstance(loaded.get("evals"), dict):
                raise PipelineStateError(f"{self.path}: expected a mapping with 'stages' and 'evals'")
            self.data = loaded

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.data["stages"].get(name)

    def mark_stage(self, name: str, index: int, model_dir: Path, config: dict[str, Any]) -> None:
        self.data["stages"][name] = {"index": index, "model": str(model_dir), "config": config,
                                     "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.save()

    def forget_stage(self, name: str) -> None:
        """Drop a stage's record and its evaluations (the stage is about to be trained again)."""
        self.data["stages"].pop(name, None)
        for key in [k for k in self.data["evals"] if k.split("/", 1)[0] == name]:
            del self.data["evals"][key]
        self.save()

    def evaluation(self, stage: str, eval_set: str, spec: dict[str, Any], model: str) -> dict[str, Any] | None:
        """The recorded result of this cell when it was made with the same evaluator arguments and model."""
        record = self.data["evals"].get(f"{stage}/{eval_set}")
        if record is None or record.get("spec") != _normal(spec) or record.get("model") != model:
            return None
        return record

    def mark_evaluation(self, stage: str, eval_set: str, spec: dict[str, Any], model: str,
                        metrics: dict[str, float], main: str) -> None:
        self.data["evals"][f"{stage}/{eval_set}"] = {"spec": _normal(spec), "model": model, "metrics": metrics,
                                                     "main": main,
                                                     "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.save()

    def save(self) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def _normal(spec: dict[str, Any]) -> Any:
    return json.loads(json.dumps(spec, sort_keys=True, default=str))
