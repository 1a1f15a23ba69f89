"""Checkpoints that are complete when they exist, verified before use, and never unpickled.

Layout of ``<run>/checkpoints/step-000042/``::

    model/                              save_pretrained (safetensors weights or LoRA adapter) + processor: a model folder
    optimizer.json, optimizer.safetensors   optimizer state (JSON structure + tensors, see mmsft.train.state_files)
    scheduler.json                      learning-rate scheduler state
    rng.json, rng.safetensors           python ``random`` and numpy states as JSON, torch/CUDA states as uint8 tensors
    trainer_state.json                  step, data position, counters
    scorers.json, scorers.safetensors   state of stateful scorers (e.g. CurioSFT's lagged self-teacher), if any
    COMPLETE                            written last: format, step, and the size and sha256 of every other file

Writing goes to ``.tmp-step-000042-<pid>/`` and ends with one rename, so a crash (kill -9 included) never leaves a
``step-*`` folder behind that lacks its marker. Re-saving a step that exists renames the old folder aside first and
deletes it only after the new one is in place; :func:`clean_stale` finishes or rolls back an interrupted swap and
removes stale ``.tmp-*`` folders at start-up. ``final/`` is written the same way.

Loading verifies the marker, that the folder holds exactly the listed files with their sizes and sha256 (truncation,
bit rot, a half-copied folder) and that no pickle file is present. ``train.resume=auto`` takes the newest intact
checkpoint and names every damaged newer one it skipped. Nothing is read with ``torch.load`` or ``pickle``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmsft.report.model_card import write_model_card
from mmsft.train.state_files import StateFileError, load_state, save_state

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
MARKER = "COMPLETE"
FORMAT = 2
FINAL_DIR = "final"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib")
_STEP_RE = re.compile(r"step-(\d+)")
_ASIDE_RE = re.compile(r"\.old-(.+)-\d+")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, damaged or unsafe; the message names the folder or file and why."""


def _warn(message: str) -> None:
    print(f"mmsft: warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    """Python ``random`` (JSON), numpy MT19937 (JSON) and torch/CUDA generator states (uint8 tensors)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], where: str = "rng state") -> None:
    try:
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(x) for x in internal), gauss))
        np.random.set_state(tuple(state["numpy"]))
        generator = state["torch"]
        if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
            raise TypeError("torch state must be a uint8 tensor")
        torch.set_rng_state(generator)
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: not a valid RNG state ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------------------------------------- writing
def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files(folder: Path) -> list[str]:
    """Relative paths of every regular file under ``folder`` (dot-files such as .DS_Store ignored)."""
    out = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def write_marker(folder: Path, step: int) -> None:
    """Write ``COMPLETE`` listing the size and sha256 of every other file; call it last."""
    files = {rel: {"size": (folder / rel).stat().st_size, "sha256": _sha256(folder / rel)}
             for rel in _files(folder) if rel != MARKER}
    (folder / MARKER).write_text(json.dumps({"format": FORMAT, "step": step, "files": files}, indent=1))


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing ``target`` is moved aside first and removed only afterwards."""
    if not target.exists():
        os.replace(tmp, target)
        return
    aside = target.parent / f".old-{target.name}-{os.getpid()}"
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(target, aside)
    os.replace(tmp, target)
    shutil.rmtree(aside, ignore_errors=True)


def _fresh_tmp(parent: Path, name: str) -> Path:
    tmp = parent / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def save_checkpoint(run_dir: Path, step: int, model: Any, processor: Any, optimizer: Any, scheduler: Any,
                    trainer_state: dict[str, Any], keep: int = 0, extra_states: dict[str, Any] | None = None) -> Path:
    """Write ``step-{step:06d}`` atomically (see the module doc) and keep the newest ``keep`` checkpoints (0: all).
    ``extra_states``: ``{name: state tree}`` written as ``NAME.json`` (+ ``NAME.safetensors``) with
    :func:`mmsft.train.state_files.save_state` (read back with :func:`load_extra_state`)."""
    if step < 0:
        raise CheckpointError(f"checkpoint step must be >= 0, got {step}")
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = _fresh_tmp(root, name)
    model.save_pretrained(tmp / "model", safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(tmp / "model")
    trainer_state = dict(trainer_state)
    action_tokenizer = trainer_state.pop("_action_tokenizer", None)
    if action_tokenizer is not None:
        action_tokenizer.save(tmp / "model")
    write_model_card(tmp / "model", run_dir, "checkpoint", step, location=root / name / "model")
    save_state(tmp, "optimizer", optimizer.state_dict())
    save_state(tmp, "scheduler", scheduler.state_dict())
    save_state(tmp, "rng", rng_state())
    for extra_name, tree in (extra_states or {}).items():
        save_state(tmp, extra_name, tree)
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, **trainer_state}, indent=2))
    write_marker(tmp, step)
    final = root / name
    _swap_into_place(tmp, final)
    _prune(Path(run_dir), step, keep)
    return final


def _prune(run_dir: Path, step: int, keep: int) -> None:
    """Keep the checkpoint just written and the newest ``keep - 1`` complete older ones; newer ones are left alone."""
    if keep <= 0:
        return
    older = [d for d in _step_dirs(run_dir) if _step_of(d) < step]
    complete = [d for d in older if (d / MARKER).is_file()]
    retain = set(complete[len(complete) - (keep - 1):]) if keep > 1 else set()
    for folder in older:
        if folder not in retain:
            shutil.rmtree(folder, ignore_errors=True)


def export_final(run_dir: Path, model: Any, processor: Any, action_tokenizer: Any = None) -> Path:
    """Write ``<run>/final`` (a plain model folder) through a temporary folder and one rename."""
    run_dir = Path(run_dir)
    tmp = _fresh_tmp(run_dir, FINAL_DIR)
    model.save_pretrained(tmp, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(tmp)
    if action_tokenizer is not None:
        action_tokenizer.save(tmp)
    write_model_card(tmp, run_dir, "final", location=run_dir / FINAL_DIR)
    final = run_dir / FINAL_DIR
    _swap_into_place(tmp, final)
    return final


def clean_stale(run_dir: Path) -> list[str]:
    """Remove ``.tmp-*`` leftovers of interrupted writes and settle interrupted swaps; returns what was done."""
    done = []
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            aside = _ASIDE_RE.fullmatch(path.name)
            if aside:  # the swap stopped between its two renames: the set-aside copy is complete
                target = folder / aside.group(1)
                if target.exists():
                    shutil.rmtree(path, ignore_errors=True)
                    done.append(f"removed {path}")
                else:
                    os.replace(path, target)
                    done.append(f"restored {target} from {path.name}")
            elif path.name.startswith(".tmp-"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                done.append(f"removed {path}")
    return done


# ---------------------------------------------------------------------------------------------------- reading
def _step_of(path: Path) -> int:
    match = _STEP_RE.fullmatch(path.name)
    return int(match.group(1)) if match else -1


def _step_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _step_of(p) >= 0), key=_step_of)


def list_checkpoints(run_dir: Path, verified: bool = False) -> list[Path]:
    """Checkpoints oldest first: those with a completion marker, or (``verified``) those passing full verification."""
    found = [d for d in _step_dirs(run_dir) if (d / MARKER).is_file()]
    if not verified:
        return found
    intact = []
    for folder in found:
        try:
            verify_checkpoint(folder)
        except CheckpointError:
            continue
        intact.append(folder)
    return intact


def verify_checkpoint(path: Path, hashes: bool = True) -> dict[str, Any]:
    """Check a checkpoint folder against its ``COMPLETE`` manifest; returns its trainer state.

    Raises :class:`CheckpointError` naming the folder or file: a pickle file is present (never loaded), the marker is
    missing (interrupted write, or another format), a file is missing, unlisted, of the wrong size or (``hashes``)
    of the wrong sha256, or ``trainer_state.json`` is unreadable.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint folder")
    present = _files(path)
    for rel in present:
        if rel.lower().endswith(PICKLE_SUFFIXES):
            raise CheckpointError(f"{path / rel}: pickle files are never loaded (unpickling can run code); "
                                  "mmsft checkpoints hold only safetensors and JSON")
    if MARKER not in present:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {MARKER} marker: the write was interrupted, "
                              "or the folder was not written by this mmsft version)")
    try:
        manifest = json.loads((path / MARKER).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest["format"] != FORMAT or not isinstance(files, dict):
            raise ValueError(f"format {manifest.get('format')!r}, expected {FORMAT}")
        sizes = {rel: int(entry["size"]) for rel, entry in files.items()}
        digests = {rel: str(entry["sha256"]) for rel, entry in files.items()}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path / MARKER}: unreadable completion marker ({type(exc).__name__}: {exc})") from None
    listed, on_disk = set(files), set(present) - {MARKER}
    missing, unlisted = sorted(listed - on_disk), sorted(on_disk - listed)
    if missing:
        raise CheckpointError(f"{path / missing[0]}: listed in {MARKER} but missing")
    if unlisted:
        raise CheckpointError(f"{path / unlisted[0]}: not listed in {MARKER} (the folder was modified after it was "
                              "written)")
    for rel in sorted(listed):
        size = (path / rel).stat().st_size
        if size != sizes[rel]:
            raise CheckpointError(f"{path / rel}: {size} bytes, expected {sizes[rel]} (truncated or modified)")
    if hashes:
        for rel in sorted(listed):
            if _sha256(path / rel) != digests[rel]:
                raise CheckpointError(f"{path / rel}: sha256 differs from {MARKER} (corrupted or modified)")
    state = load_trainer_state(path)
    if state["step"] != manifest.get("step"):
        raise CheckpointError(f"{path / STATE_FILE}: step {state['step']} but {MARKER} says {manifest.get('step')}")
    return state


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    path = Path(checkpoint) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or state["step"] < 0:
        raise CheckpointError(f"{path}: expected an object with a non-negative integer 'step'")
    return state


def resolve_resume(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint to resume from.

    ``never`` → None. ``auto`` → the newest intact checkpoint of the run (damaged newer ones are named in a warning
    and skipped), None when the run has none, and an error when every one is damaged. A path → that checkpoint,
    verified (an error names what is wrong; there is no fallback for an explicit path).
    """
    if resume == "never":
        return None
    if resume == "auto":
        damaged: list[str] = []
        for folder in reversed(_step_dirs(run_dir)):
            try:
                verify_checkpoint(folder)
            except CheckpointError as exc:
                damaged.append(str(exc))
                continue
            for reason in damaged:
                _warn(f"skipping damaged checkpoint: {reason}; resuming from {folder}")
            return folder
        if damaged:
            raise CheckpointError(f"train.resume=auto: no intact checkpoint in {Path(run_dir) / CHECKPOINT_DIR} "
                                  f"({'; '.join(damaged)}); remove the damaged folders or use a new train.output_dir")
        return None
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"train.resume={resume!r}: no such folder (expected auto, never, or a checkpoint "
                              "folder such as <run>/checkpoints/step-000042)")
    try:
        verify_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"train.resume={resume!r}: {exc}") from None
    return path


def _load(checkpoint: Path, name: str) -> Any:
    try:
        return load_state(checkpoint, name)
    except StateFileError as exc:
        raise CheckpointError(str(exc)) from None


def restore_training_state(checkpoint: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load optimizer, scheduler and RNG states into the given objects; returns ``trainer_state.json``."""
    checkpoint = Path(checkpoint)
    state = load_trainer_state(checkpoint)
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        try:
            target.load_state_dict(_load(checkpoint, name))
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{checkpoint / (name + '.json')}: does not fit this run's {name} "
                                  f"({type(exc).__name__}: {exc}); was it written with another model or LoRA "
                                  "setting?") from None
    set_rng_state(_load(checkpoint, "rng"), where=str(checkpoint / "rng.json"))
    return state


def load_extra_state(checkpoint: Path, name: str) -> Any:
    """A state tree written through ``save_checkpoint(..., extra_states={name: tree})``, or None if absent."""
    if not (Path(checkpoint) / f"{name}.json").is_file():
        return None
    return _load(Path(checkpoint), name)
