"""Few-shot base-to-new datasets for CLS-RL, No-Thinking-CLS-RL and the SFT baseline, as mmsft JSONL files.

Protocol (CoOp, Zhou et al. IJCV 2022; CLS-RL, Li et al. arXiv 2503.16188): the classes are split into base and
new halves (:func:`~tasks.image_classification.sampling.split_base_new`); the training set is ``k_shot`` images per
*base* class (:func:`~tasks.image_classification.sampling.sample_k_shot`); evaluation uses the test images of the
base classes and of the new classes, each with options drawn from its own half's classes. Accuracy on both halves
and their harmonic mean is the summary (:func:`~tasks.image_classification.rewards.evaluate_predictions`).

Row schema (:mod:`mmsft.data.schema`)::

    {"id": "train_base-00003",
     "messages": [{"role": "user", "content": [{"type": "image", "image": "images/train-00003.png"},
                                               {"type": "text", "text": <prompt>}]},
                  {"role": "assistant", "content": [{"type": "text", "text": <target>}]}],
     "answer": "red circle",
     "meta": {"class": "red circle", "label": 0, "split": "base" | "new", "prompt_mode": "think" | "nothink" | "sft",
              "stage": "train" | "eval", "options": [...], "solution": "<answer> red circle </answer>"}}

Prompt modes and targets:

* ``think``: CLS-RL's thinking prompts (train / eval variants); target = CLS-RL's ``solution``
  ``"<answer> label </answer>"`` (RL uses only the prompt and ``answer``; the target is kept for reference).
* ``nothink``: the no-thinking prompts; same ``solution`` target.
* ``sft``: the SFT baseline. The paper's SFT trains on the label, so the prompt is the no-thinking prompt and the
  target is the **plain label** (``"red circle"``), with no ``<think>`` / ``<answer>`` tags.

Options are drawn once per sample (seeded by the seed and the row id), so all three modes show the same list.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from mmsft.data import shapes as sw
from tasks.image_classification.loaders import ClassificationDataset, load_classification_dataset
from tasks.image_classification.prompts import DEFAULT_PREFIX, build_question, format_prompt, solution
from tasks.image_classification.sampling import build_options, sample_k_shot, split_base_new

PROMPT_MODES: tuple[str, ...] = ("think", "nothink", "sft")
SPLIT_NAMES: tuple[str, ...] = ("train_base", "test_base", "test_new")


@dataclass
class ShapesWorldSource:
    """The shapes world as a source for :func:`build_fewshot_splits` (train pool and test set per class).

    Train and test images come from different seeds (``seed`` and ``seed + 10_000``), so they never coincide.
    """

    train_per_class: int = 16
    test_per_class: int = 10
    seed: int = 0
    image_size: int = sw.IMAGE_SIZE

    def dataset(self, split: str) -> ClassificationDataset:
        if split not in ("train", "test"):
            raise ValueError(f"shapes world split must be 'train' or 'test', got {split!r}")
        count = self.train_per_class if split == "train" else self.test_per_class
        seed = self.seed if split == "train" else self.seed + 10_000
        items = sw.generate_images(count, seed=seed, image_size=self.image_size)
        images = [image for image, _label, _scene in items]
        return ClassificationDataset(list(sw.CLASSNAMES), [label for _i, label, _s in items], [None] * len(items),
                                     name=f"shapes-world[{split}, seed {seed}]", getter=lambda i: images[i])


@dataclass
class FewShotSplits:
    """What :func:`build_fewshot_splits` wrote. Unpacks as ``train_base, test_base, test_new`` (each a
    ``{prompt_mode: jsonl path}`` dict); ``rows[mode][split]`` holds the rows themselves."""

    out_dir: Path
    train_base: dict[str, Path]
    test_base: dict[str, Path]
    test_new: dict[str, Path]
    rows: dict[str, dict[str, list[dict[str, Any]]]]
    base_classes: list[str]
    new_classes: list[str]
    k_shot: int
    seed: int
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[dict[str, Path]]:
        return iter((self.train_base, self.test_base, self.test_new))


def make_row(row_id: str, image_ref: str, label: str, label_index: int, options: Sequence[str], mode: str,
             stage: str, half: str, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """One JSONL row for ``mode`` in :data:`PROMPT_MODES` and ``stage`` in {train, eval} (see the module doc)."""
    if mode not in PROMPT_MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; expected one of {PROMPT_MODES}")
    question = build_question(options, prefix)
    prompt = format_prompt(question, "nothink" if mode == "sft" else mode, stage)
    target = label if mode == "sft" else solution(label)
    return {"id": row_id,
            "messages": [{"role": "user", "content": [{"type": "image", "image": image_ref},
                                                      {"type": "text", "text": prompt}]},
                         {"role": "assistant", "content": [{"type": "text", "text": target}]}],
            "answer": label,
            "meta": {"class": label, "label": label_index, "split": half, "prompt_mode": mode, "stage": stage,
                     "options": list(options), "solution": solution(label)}}


def _resolve_source(source: Any) -> tuple[ClassificationDataset, ClassificationDataset]:
    if isinstance(source, ShapesWorldSource):
        return source.dataset("train"), source.dataset("test")
    if isinstance(source, tuple) and len(source) == 2 and all(isinstance(s, ClassificationDataset) for s in source):
        return source
    if isinstance(source, (str, os.PathLike)):
        if str(source) == "shapes":
            return _resolve_source(ShapesWorldSource())
        root = Path(source)
        train = load_classification_dataset(root, split="train")
        try:
            test = load_classification_dataset(root, split="test")
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{root}: needs a 'test' split next to 'train' (image folders root/train/<class>/ and "
                             f"root/test/<class>/, or a DatasetDict with both): {exc}") from exc
        if train.classnames != test.classnames:
            raise ValueError(f"{root}: train and test splits have different class lists")
        return train, test
    raise TypeError("source must be 'shapes', a ShapesWorldSource, a path (image folder with train/ and test/ or a "
                    f"datasets DatasetDict on disk), or a (train, test) pair of ClassificationDataset; got {source!r}")


def _image_ref(dataset: ClassificationDataset, index: int, out_dir: Path, name: str, image_size: int | None,
               relative_images: bool) -> str:
    path = dataset.paths[index]
    if path is not None and image_size is None and not relative_images:
        return path
    image = dataset.image(index)
    if image_size is not None and image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    relative = f"images/{name}.png"
    image.save(out_dir / relative, format="PNG")
    return relative


def build_fewshot_splits(source: Any, out_dir: str | os.PathLike[str], k_shot: int = 4, seed: int = 0,
                         prefix: str = DEFAULT_PREFIX, modes: Sequence[str] = PROMPT_MODES,
                         test_per_class: int | None = None, image_size: int | None = None,
                         copy_images: bool = False) -> FewShotSplits:
    """Write base-to-new few-shot JSONL files for each prompt mode and return them (see the module doc).

    Args:
        source: ``"shapes"`` or a :class:`ShapesWorldSource`; a folder with ``train/`` and ``test/`` image folders;
            a ``datasets`` DatasetDict on disk with ``train`` and ``test``; or a ``(train, test)`` pair of
            :class:`ClassificationDataset`.
        out_dir: destination; gets ``{split}.{mode}.jsonl`` for split in :data:`SPLIT_NAMES`, ``images/`` and
            ``classes.json``.
        k_shot: training images per base class (CoOp's ``num_shots``; CLS-RL uses 4).
        seed: seeds the k-shot draw and every option list.
        prefix: question prefix (CLS-RL's per-dataset prefixes are in :data:`~.prompts.DATASET_PREFIXES`).
        modes: subset of :data:`PROMPT_MODES`.
        test_per_class: cap on test images per class (seeded draw); ``None`` keeps all.
        image_size: resize to a square of this side with LANCZOS (CLS-RL uses 384); ``None`` keeps sizes.
        copy_images: copy image-folder files into ``out_dir/images`` (default: rows point at the originals).
    """
    bad = [m for m in modes if m not in PROMPT_MODES]
    if bad or not modes:
        raise ValueError(f"unknown prompt modes {bad or list(modes)}; expected a non-empty subset of {PROMPT_MODES}")
    train, test = _resolve_source(source)
    base_classes, new_classes = split_base_new(train.classnames)
    half_of = {name: ("base" if i < len(base_classes) else "new") for i, name in enumerate(train.classnames)}
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)

    train_idx = [i for i in sample_k_shot(train.labels, k_shot, seed)
                 if half_of[train.classnames[train.labels[i]]] == "base"]
    test_idx = (sample_k_shot(test.labels, test_per_class, seed + 1) if test_per_class
                else list(range(len(test))))
    plan = {
        "train_base": (train, train_idx, "train", "base", base_classes),
        "test_base": (test, [i for i in test_idx if half_of[test.classnames[test.labels[i]]] == "base"], "eval",
                      "base", base_classes),
        "test_new": (test, [i for i in test_idx if half_of[test.classnames[test.labels[i]]] == "new"], "eval",
                     "new", new_classes),
    }
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {m: {s: [] for s in SPLIT_NAMES} for m in modes}
    for split, (dataset, indices, stage, half, candidates) in plan.items():
        if not indices:
            raise ValueError(f"{dataset.name}: split {split} is empty (no images of the {half} classes)")
        for n, index in enumerate(indices):
            row_id = f"{split}-{n:05d}"
            label_index = dataset.labels[index]
            label = dataset.classnames[label_index]
            ref = _image_ref(dataset, index, out, row_id, image_size, copy_images)
            options = build_options(label, candidates, f"{seed}-{row_id}")
            for mode in modes:
                rows[mode][split].append(make_row(row_id, ref, label, label_index, options, mode, stage, half, prefix))
    paths: dict[str, dict[str, Path]] = {s: {} for s in SPLIT_NAMES}
    for mode in modes:
        for split in SPLIT_NAMES:
            path = out / f"{split}.{mode}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[mode][split]),
                            encoding="utf-8")
            paths[split][mode] = path
    info = {"source": train.name, "classnames": list(train.classnames), "base_classes": base_classes,
            "new_classes": new_classes, "k_shot": k_shot, "seed": seed, "prefix": prefix,
            "counts": {s: len(plan[s][1]) for s in SPLIT_NAMES}}
    (out / "classes.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return FewShotSplits(out, paths["train_base"], paths["test_base"], paths["test_new"], rows, base_classes,
                         new_classes, k_shot, seed, info)


__all__ = ["FewShotSplits", "PROMPT_MODES", "SPLIT_NAMES", "ShapesWorldSource", "build_fewshot_splits", "make_row"]
