"""Dataset loaders: JSONL files and Hugging Face ``datasets`` saved on disk, both in the :mod:`schema` format."""

from __future__ import annotations

import json
from pathlib import Path

from mmsft.data.schema import DataError, Sample, sample_from_dict


def load_jsonl(path: str | Path, check_media: bool = True) -> list[Sample]:
    """Read and validate every row of a JSONL file; media paths resolve relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file {path} does not exist (expected a JSONL file)")
    samples: list[Sample] = []
    with path.open("r", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{source}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            samples.append(sample_from_dict(row, source, path.parent, index=len(samples)))
    if not samples:
        raise DataError(f"dataset file {path} contains no samples")
    if check_media:
        check_media_exists(samples)
    return samples


def load_hf_disk(path: str | Path, split: str | None = None, check_media: bool = True) -> list[Sample]:
    """A ``datasets`` dataset saved with ``save_to_disk`` whose rows follow the JSONL schema."""
    from datasets import DatasetDict, load_from_disk

    path = Path(path)
    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if split is None or split not in dataset:
            raise DataError(f"{path} holds splits {list(dataset)}; choose one with a valid split name, got {split!r}")
        dataset = dataset[split]
    samples = [sample_from_dict(row, f"{path}[{i}]", path, index=i) for i, row in enumerate(dataset)]
    if not samples:
        raise DataError(f"dataset {path} contains no samples")
    if check_media:
        check_media_exists(samples)
    return samples


def load_dataset(path: str | Path, split: str | None = None, check_media: bool = True) -> list[Sample]:
    """JSONL file or a ``save_to_disk`` folder, chosen by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return load_hf_disk(path, split=split, check_media=check_media)
    return load_jsonl(path, check_media=check_media)


def check_media_exists(samples: list[Sample]) -> None:
    for sample in samples:
        for kind in ("image", "video"):
            for media_path in sample.media(kind):
                if not Path(media_path).is_file():
                    raise DataError(f"{sample.where()}: {kind} file {media_path} does not exist")
