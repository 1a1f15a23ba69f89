"""CLS-RL data side: loaders (image folders, datasets on disk), shapes world, few-shot builder, base model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tasks.image_classification as ic
from mmsft.data import shapes as sw
from mmsft.data.loaders import load_jsonl
from tasks.image_classification.base_model import DEFAULT_PATH, is_complete

REPO = Path(__file__).resolve().parents[1]


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (28, 28), colour).save(path)


# ------------------------------------------------------------------------------------------------ loaders
def test_load_image_folder(tmp_path: Path) -> None:
    for name, colour in (("golden_retriever", (200, 150, 0)), ("cat", (10, 10, 10))):
        for i in range(3):
            _png(tmp_path / name / f"{i}.png", colour)
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    data = ic.load_image_folder(tmp_path)
    assert data.classnames == ["cat", "golden retriever"]
    assert data.labels == [0, 0, 0, 1, 1, 1] and len(data) == 6
    assert data.image(3).getpixel((0, 0)) == (200, 150, 0)
    sub = data.subset([4, 0])
    assert sub.labels == [1, 0] and sub.image(1).getpixel((0, 0)) == (10, 10, 10)


def test_load_image_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ic.ClassificationDataError, match="does not exist"):
        ic.load_image_folder(tmp_path / "missing")
    with pytest.raises(ic.ClassificationDataError, match="no class sub-folders"):
        ic.load_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ic.ClassificationDataError, match="empty_class"):
        ic.load_image_folder(tmp_path)


def test_strip_index_keeps_label_order(tmp_path: Path) -> None:
    sw.write_image_folder(str(tmp_path), per_class=1, seed=0)
    data = ic.load_image_folder(tmp_path, strip_index=True)
    assert data.classnames == list(sw.CLASSNAMES)


def _hf_dataset(tmp_path: Path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as ImageFeature

    images = [Image.new("RGB", (28, 28), (i * 40, 0, 0)) for i in range(6)]
    features = Features({"img": ImageFeature(), "y": ClassLabel(names=["apple", "pear_tree", "plum"])})
    split = Dataset.from_dict({"img": images, "y": [0, 1, 2, 0, 1, 2]}, features=features)
    DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_load_hf_image_dataset(tmp_path: Path) -> None:
    path = _hf_dataset(tmp_path)
    data = ic.load_hf_image_dataset(path, split="train", image_column="img", label_column="y")
    assert data.classnames == ["apple", "pear_tree", "plum"]
    assert data.labels == [0, 1, 2, 0, 1, 2]
    assert data.image(2).getpixel((0, 0)) == (80, 0, 0)
    same = ic.load_classification_dataset(path, split="test", image_column="img", label_column="y")
    assert same.labels == data.labels
    with pytest.raises(ic.ClassificationDataError, match="splits"):
        ic.load_hf_image_dataset(path, image_column="img", label_column="y")
    with pytest.raises(ic.ClassificationDataError, match="'image'"):
        ic.load_hf_image_dataset(path, split="train", label_column="y")
    with pytest.raises(ic.ClassificationDataError, match="columns are"):
        ic.load_hf_image_dataset(path, split="train", image_column="img", label_column="label")


# ------------------------------------------------------------------------------------------------ shapes world
def test_shapes_world_classes_and_split() -> None:
    assert len(sw.CLASSNAMES) >= 20 and len(set(sw.CLASSNAMES)) == len(sw.CLASSNAMES)
    base, new = ic.split_base_new(sw.CLASSNAMES)
    assert tuple(base) == sw.BASE_CLASSES and tuple(new) == sw.NEW_CLASSES
    for half in (base, new):  # compositional split: every colour and every shape occurs in both halves
        assert {c.split()[0] for c in half} == set(sw.COLOURS)
        assert {c.split()[1] for c in half} == set(sw.SHAPES)


def test_shapes_world_is_deterministic() -> None:
    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for image, label, _scene in sw.generate_images(2, seed=seed):
            h.update(np.asarray(image).tobytes() + bytes([label]))
        return h.hexdigest()

    assert digest(0) == digest(0)
    assert digest(0) != digest(1)
    # The shipped base model (assets/shapes_base) was pretrained on these pixels and the study's train/test images
    # come from seeds 0 and 10000: a change here (code or Pillow's rasterizer) means re-pretraining the base.
    assert digest(0) == "d7b338b10de93adc0770ba54a3871d407a4230cb8d459bf73b77767f013f66f5"
    assert digest(10_000) == "0f6c3ee4529ad27e5d0229fb145ee89d26494a9ad26f72ce784b3dc5f69740ec"
    items = sw.generate_images(1, seed=0)
    assert len(items) == len(sw.CLASSNAMES)
    assert all(image.size == (sw.IMAGE_SIZE, sw.IMAGE_SIZE) for image, _, _ in items)
    assert [sw.CLASSNAMES[label] for _, label, _ in items] == [scene.classname for _, _, scene in items]
    with pytest.raises(ValueError, match="multiple of 28"):
        sw.generate_images(1, image_size=50)


# ------------------------------------------------------------------------------------------------ builder
@pytest.fixture(scope="module")
def shapes_splits(tmp_path_factory) -> ic.FewShotSplits:
    source = ic.ShapesWorldSource(train_per_class=6, test_per_class=2, seed=0)
    return ic.build_fewshot_splits(source, tmp_path_factory.mktemp("fewshot"), k_shot=4, seed=0)


def test_build_fewshot_splits_rows(shapes_splits: ic.FewShotSplits) -> None:
    train_base, test_base, test_new = shapes_splits
    n_base = len(sw.BASE_CLASSES)
    think = load_jsonl(train_base["think"])
    assert len(think) == 4 * n_base
    assert len(load_jsonl(test_base["nothink"])) == 2 * n_base
    assert len(load_jsonl(test_new["sft"])) == 2 * len(sw.NEW_CLASSES)
    row = shapes_splits.rows["think"]["train_base"][0]
    assert row["meta"]["split"] == "base" and row["meta"]["prompt_mode"] == "think"
    assert row["messages"][1]["content"][0]["text"] == f"<answer> {row['answer']} </answer>"
    assert row["messages"][0]["content"][1]["text"].endswith("final answer in <answer> </answer> tags.")
    sft = shapes_splits.rows["sft"]["train_base"][0]
    assert sft["messages"][1]["content"][0]["text"] == row["answer"]  # SFT baseline: the plain label
    assert sft["meta"]["options"] == row["meta"]["options"]  # one option list per sample across modes
    new_row = shapes_splits.rows["nothink"]["test_new"][0]
    assert new_row["messages"][0]["content"][1]["text"].endswith("Please directly output the answer name.")
    assert set(new_row["meta"]["options"]) == set(sw.NEW_CLASSES)
    assert all(r["answer"] in sw.BASE_CLASSES for r in shapes_splits.rows["think"]["train_base"])
    assert json.loads((shapes_splits.out_dir / "classes.json").read_text())["k_shot"] == 4


def test_build_fewshot_splits_is_reproducible(shapes_splits: ic.FewShotSplits, tmp_path: Path) -> None:
    again = ic.build_fewshot_splits(ic.ShapesWorldSource(train_per_class=6, test_per_class=2, seed=0), tmp_path,
                                    k_shot=4, seed=0, modes=("think",))
    assert again.rows["think"] == shapes_splits.rows["think"]
    other = ic.build_fewshot_splits(ic.ShapesWorldSource(train_per_class=6, test_per_class=2, seed=0),
                                    tmp_path / "s1", k_shot=4, seed=1, modes=("think",))
    assert other.rows["think"]["train_base"] != shapes_splits.rows["think"]["train_base"]


def test_build_fewshot_splits_from_image_folders(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for name, colour in (("a", (0, 0, 0)), ("b", (80, 0, 0)), ("c", (160, 0, 0)), ("d", (240, 0, 0))):
            for i in range(3):
                _png(tmp_path / "data" / split / name / f"{i}.jpg", colour)
    splits = ic.build_fewshot_splits(tmp_path / "data", tmp_path / "out", k_shot=2, seed=0, modes=("nothink",),
                                     image_size=56, copy_images=True)
    assert splits.base_classes == ["a", "b"] and splits.new_classes == ["c", "d"]
    rows = load_jsonl(splits.train_base["nothink"])
    assert len(rows) == 4 and Image.open(rows[0].media("image")[0]).size == (56, 56)
    with pytest.raises(ValueError, match="test"):
        ic.build_fewshot_splits(tmp_path / "data" / "train", tmp_path / "bad", k_shot=1)


def test_build_fewshot_splits_from_hf_disk(tmp_path: Path) -> None:
    path = _hf_dataset(tmp_path)
    from datasets import load_from_disk

    dd = load_from_disk(str(path))
    dd = dd.rename_columns({"img": "image", "y": "label"})
    dd.save_to_disk(str(tmp_path / "hf2"))
    splits = ic.build_fewshot_splits(tmp_path / "hf2", tmp_path / "out", k_shot=1, seed=0, modes=("sft",))
    assert splits.base_classes == ["apple", "pear_tree"] and splits.new_classes == ["plum"]
    assert [r["answer"] for r in splits.rows["sft"]["train_base"]] == ["apple", "pear_tree"]


# ------------------------------------------------------------------------------------------------ base model
def test_pretraining_data_never_uses_the_classification_prompt(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("pretrain_script", REPO / "scripts" / "pretrain_shapes_base.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.write_pretraining_data(tmp_path, num_train=40, num_eval=8, seed=0)
    rows = [json.loads(line) for line in Path(paths["train"]).read_text().splitlines()]
    assert len(rows) == 40 and {r["meta"]["kind"] for r in rows} <= set(module.QUESTIONS)
    from tasks.image_classification.prompts import DATASET_PREFIXES, DEFAULT_PREFIX

    listed = 0
    for row in rows:
        prompt = row["messages"][0]["content"][1]["text"]
        target = row["messages"][1]["content"][0]["text"]
        assert DEFAULT_PREFIX not in prompt and DATASET_PREFIXES["shapes"] not in prompt
        if "choose one from list" in prompt:  # option lists hold attribute values, never class phrases
            listed += 1
            options = prompt.split("[", 1)[1].split("]", 1)[0]
            assert not any(name in options for name in sw.CLASSNAMES), prompt
        if row["meta"]["class"] in target:  # only the colour-and-shape attribute question names the class phrase
            assert row["meta"]["kind"] == "colour_shape", row
    assert listed > 0


def test_ensure_shapes_base_returns_a_complete_folder_untouched(tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    assert ic.ensure_shapes_base(tmp_path) == tmp_path


def test_shipped_base_model_is_complete_and_small() -> None:
    assert is_complete(DEFAULT_PATH), f"{DEFAULT_PATH} is missing; run scripts/pretrain_shapes_base.py"
    size = sum(p.stat().st_size for p in DEFAULT_PATH.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024
    report = json.loads((DEFAULT_PATH / "pretrain_report.json").read_text())
    assert report["attribute_qa_accuracy"]["accuracy"] > 0.5
