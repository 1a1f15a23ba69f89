"""Image-classification datasets: image folders and Hugging Face ``datasets`` saved on disk.

Both loaders return a :class:`ClassificationDataset` (class names in label order, one label per image, images
loaded lazily), the input of the CoOp-style k-shot sampler (Zhou et al., IJCV 2022) and of the CLS-RL row builder
(Li et al., arXiv 2503.16188). Errors name the path, the split or the column that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""File suffixes (case-insensitive) picked up by :func:`load_image_folder`."""


class ClassificationDataError(ValueError):
    """A dataset cannot be read as an image-classification dataset; the message names the path or column."""


@dataclass
class ClassificationDataset:
    """Images with integer labels into ``classnames``.

    ``paths[i]`` is the image file of item ``i`` when it lives on disk (image folders), else ``None`` and the
    image comes from ``getter(i)`` (``datasets`` rows, generated images).
    """

    classnames: list[str]
    labels: list[int]
    paths: list[str | None]
    name: str = "dataset"
    getter: Callable[[int], Image.Image] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.paths):
            raise ClassificationDataError(f"{self.name}: {len(self.labels)} labels but {len(self.paths)} images")
        bad = [lab for lab in self.labels if not 0 <= lab < len(self.classnames)]
        if bad:
            raise ClassificationDataError(
                f"{self.name}: label {bad[0]} is outside 0..{len(self.classnames) - 1} ({len(self.classnames)} classes)")

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> Image.Image:
        """Item ``index`` as an RGB PIL image."""
        path = self.paths[index]
        if path is not None:
            try:
                with Image.open(path) as handle:
                    return handle.convert("RGB")
            except OSError as exc:
                raise ClassificationDataError(f"{self.name}: cannot read image {path}: {exc}") from exc
        if self.getter is None:
            raise ClassificationDataError(f"{self.name}: item {index} has neither a path nor an image getter")
        return self.getter(index).convert("RGB")

    def subset(self, indices: Sequence[int]) -> "ClassificationDataset":
        """The items at ``indices`` (same class list)."""
        indices = list(indices)
        getter = None if self.getter is None else (lambda i, _g=self.getter, _ix=indices: _g(_ix[i]))
        return ClassificationDataset(list(self.classnames), [self.labels[i] for i in indices],
                                     [self.paths[i] for i in indices], self.name, getter)


def _clean_classname(folder: str, strip_index: bool) -> str:
    name = folder
    if strip_index:
        head, sep, tail = folder.partition("_")
        if sep and head.isdigit():
            name = tail
    return name.replace("_", " ")


def load_image_folder(root: str | Path, strip_index: bool = False) -> ClassificationDataset:
    """``root/<class>/*.png|jpg|...`` → dataset; classes are the sorted sub-folder names (label order).

    Class names are the folder names with ``_`` → space; ``strip_index=True`` also drops a leading
    ``"<digits>_"`` (folders such as ``03_red_circle`` that fix the label order). Errors name the folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ClassificationDataError(f"image folder {root} does not exist or is not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ClassificationDataError(f"image folder {root} has no class sub-folders (expected root/<class>/*.png)")
    classnames, labels, paths = [], [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ClassificationDataError(
                f"class folder {folder} holds no images with a suffix in {IMAGE_EXTENSIONS}")
        classnames.append(_clean_classname(folder.name, strip_index))
        labels.extend([label] * len(files))
        paths.extend(str(p.resolve()) for p in files)
    if len(set(classnames)) != len(classnames):
        raise ClassificationDataError(f"image folder {root}: two folders map to the same class name")
    return ClassificationDataset(classnames, labels, paths, name=str(root))


def load_hf_image_dataset(path: str | Path, split: str | None = None, image_column: str = "image",
                          label_column: str = "label", classnames: Sequence[str] | None = None) -> ClassificationDataset:
    """A ``datasets`` dataset saved with ``save_to_disk`` (image + integer label columns) → dataset.

    Class names come from the label column's ``ClassLabel`` feature (``features[label_column].names``, kept
    verbatim) unless ``classnames`` is given. A ``DatasetDict`` needs ``split``. Errors name the path, split and column.
    """
    from datasets import DatasetDict, load_from_disk

    path = Path(path)
    if not path.is_dir():
        raise ClassificationDataError(f"datasets folder {path} does not exist (expected a save_to_disk folder)")
    try:
        dataset: Any = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise ClassificationDataError(f"{path} is not a datasets save_to_disk folder: {exc}") from exc
    where = str(path)
    if isinstance(dataset, DatasetDict):
        if split is None or split not in dataset:
            raise ClassificationDataError(f"{path} holds splits {list(dataset)}; pass split= one of them, got {split!r}")
        dataset, where = dataset[split], f"{path}[{split}]"
    columns = list(dataset.column_names)
    for column, role in ((image_column, "image"), (label_column, "label")):
        if column not in columns:
            raise ClassificationDataError(f"{where}: no {role} column {column!r}; columns are {columns}")
    if classnames is None:
        feature = dataset.features[label_column]
        names = getattr(feature, "names", None)
        if not names:
            raise ClassificationDataError(
                f"{where}: label column {label_column!r} is {type(feature).__name__}, not a ClassLabel with names; "
                "pass classnames= explicitly")
        classnames = names
    labels = [int(v) for v in dataset[label_column]]
    images = dataset.select_columns([image_column])

    def getter(index: int) -> Image.Image:
        value = images[index][image_column]
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, dict) and value.get("path"):
            return Image.open(value["path"])
        if isinstance(value, str):
            return Image.open(value)
        raise ClassificationDataError(f"{where}: column {image_column!r} row {index} is {type(value).__name__}, "
                                      "expected an Image feature or a file path")

    return ClassificationDataset([str(c) for c in classnames], labels, [None] * len(labels),
                                 name=where, getter=getter)


def load_classification_dataset(source: str | Path, split: str | None = None, **kwargs: Any) -> ClassificationDataset:
    """Dispatch on what ``source`` is: a ``save_to_disk`` folder (has ``dataset_info.json``, ``state.json`` or
    ``dataset_dict.json``) → :func:`load_hf_image_dataset`; another folder → :func:`load_image_folder` of
    ``source/<split>`` if ``split`` is given, else of ``source``."""
    source = Path(source)
    markers = ("dataset_dict.json", "state.json", "dataset_info.json")
    if source.is_dir() and any((source / m).is_file() for m in markers):
        return load_hf_image_dataset(source, split=split, **kwargs)
    folder = source / split if split else source
    return load_image_folder(folder, **kwargs)


__all__ = ["ClassificationDataError", "ClassificationDataset", "IMAGE_EXTENSIONS", "load_classification_dataset",
           "load_hf_image_dataset", "load_image_folder"]
