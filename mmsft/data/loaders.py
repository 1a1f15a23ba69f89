"""Dataset loaders: JSONL files and Hugging Face ``datasets`` saved on disk, both in the :mod:`schema` format, plus
registered loaders for other on-disk formats (:data:`DATASET_LOADERS`, e.g. recorded robot episodes).

Every row is validated; a bad row is an error naming the file, the line (or row index), the sample id and what was
expected — bytes that are not UTF-8, invalid or too deeply nested JSON, a duplicate sample id (both lines named), a
media path outside the data root (see :class:`~mmsft.data.schema.MediaPolicy`), a missing media file.

A registered loader (``data.loader: NAME``, or ``auto``: the first loader whose ``detect(path)`` accepts the path)
is ``fn(path, args, role, media) -> Sequence[Sample]`` with ``args`` = ``data.loader_args`` and ``role`` ``train``
or ``eval``. Task packages register theirs through the ``mmsft.plugins`` entry points::

    @DATASET_LOADERS.register("libero_episodes", detect=is_episode_folder)
    def load_episodes(path, args, role, media): ...

The returned sequence may define ``configure_model(loaded, budget) -> MediaBudget``; the trainer calls it before it
builds the adapter (e.g. fitting a VLA's action-tokenizer statistics on the demonstrations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from mmsft.data.schema import DataError, MediaPolicy, Sample, sample_from_dict
from mmsft.registry import Registry

DATASET_LOADERS: Registry = Registry("dataset loader")


def _parse_line(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        "save the file as UTF-8") from None
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{source}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise DataError(f"{source}: invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise DataError(f"{source}: invalid JSON ({exc})") from None


def _check_unique(samples: Iterable[Sample]) -> None:
    first: dict[str, str] = {}
    for sample in samples:
        if sample.id in first:
            raise DataError(f"{sample.where()}: duplicate sample id, first used at {first[sample.id]}; sample ids must "
                            "be unique (they name samples in errors, logs and rollouts)")
        first[sample.id] = sample.source


def load_jsonl(path: str | Path, check_media: bool = True, media: MediaPolicy | None = None) -> list[Sample]:
    """Read and validate every row of a JSONL file; media paths resolve relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file {path} does not exist (expected a JSONL file)")
    samples: list[Sample] = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            source = f"{path}:{line_no}"
            row = _parse_line(raw, source)
            samples.append(sample_from_dict(row, source, path.parent, index=len(samples), media=media))
    if not samples:
        raise DataError(f"dataset file {path} contains no samples")
    _check_unique(samples)
    if check_media:
        check_media_exists(samples)
    return samples


def load_hf_disk(path: str | Path, split: str | None = None, check_media: bool = True,
                 media: MediaPolicy | None = None) -> list[Sample]:
    """A ``datasets`` dataset saved with ``save_to_disk`` whose rows follow the JSONL schema."""
    from datasets import DatasetDict, load_from_disk

    path = Path(path)
    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if split is None or split not in dataset:
            raise DataError(f"{path} holds splits {list(dataset)}; choose one with a valid split name, got {split!r}")
        dataset = dataset[split]
    samples = [sample_from_dict(row, f"{path}[{i}]", path, index=i, media=media) for i, row in enumerate(dataset)]
    if not samples:
        raise DataError(f"dataset {path} contains no samples")
    _check_unique(samples)
    if check_media:
        check_media_exists(samples)
    return samples


def detect_loader(path: Path) -> str | None:
    """The first registered loader whose ``detect`` accepts ``path`` (plugins are loaded first), or None."""
    for name in DATASET_LOADERS.names():
        detect = DATASET_LOADERS.get(name).meta.get("detect")
        if detect is not None and detect(path):
            return name
    return None


def load_dataset(path: str | Path, split: str | None = None, check_media: bool = True,
                 media: MediaPolicy | None = None, loader: str = "auto", loader_args: dict[str, Any] | None = None,
                 role: str = "train") -> Sequence[Sample]:
    """A registered format (``loader``, or detected), else a JSONL file or a ``save_to_disk`` folder."""
    path = Path(path)
    name = detect_loader(path) if loader == "auto" else loader
    if name:  # the loader itself reports a missing path (some can create the data, e.g. by recording it)
        samples = DATASET_LOADERS.get(name).fn(path, dict(loader_args or {}), role, media)
        if not len(samples):
            raise DataError(f"dataset {path} (data.loader {name!r}, {role}) contains no samples")
        return samples
    if loader_args:
        raise DataError(f"data.loader_args {sorted(loader_args)} given for {path}, which is read as JSONL / "
                        "save_to_disk (no arguments); set data.loader to a registered loader")
    if path.is_dir():
        return load_hf_disk(path, split=split, check_media=check_media, media=media)
    return load_jsonl(path, check_media=check_media, media=media)


def check_media_exists(samples: list[Sample]) -> None:
    for sample in samples:
        for kind in ("image", "video"):
            for media_path in sample.media(kind):
                if not Path(media_path).is_file():
                    raise DataError(f"{sample.where()}: {kind} file {media_path} does not exist")
