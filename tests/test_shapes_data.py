"""Shapes-world QA generator: schema, determinism, train/eval disjointness, media files, tokenizer fit, and that the
QA set and the classification images are drawn from one world (same palette, shapes and renderer)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from mmsft.data.shapes import (
    ANSWERS, BACKGROUND, CLASSNAMES, COLOURS, KINDS, QUESTIONS, SHAPES, Scene, generate_shapes_qa, render, sample_scene,
)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return generate_shapes_qa(tmp_path_factory.mktemp("shapes") / "a", num_train=60, num_eval=30, seed=7)


def test_schema(dataset: dict) -> None:
    root = Path(dataset["out_dir"])
    assert dataset["num_train"] == 60 and dataset["num_eval"] == 30
    train, evaluation = _rows(dataset["train"]), _rows(dataset["eval"])
    assert len(train) == 60 and len(evaluation) == 30
    assert sum(dataset["counts"]["train"].values()) == 60
    assert set(dataset["counts"]["train"]) == set(KINDS)  # 60 draws over 5 kinds hit every kind
    ids = [row["id"] for row in train + evaluation]
    assert len(set(ids)) == len(ids)
    for row in train + evaluation:
        assert set(row) == {"id", "messages", "answer", "meta"}
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        media, question = user["content"]
        assert question == {"type": "text", "text": question["text"]}
        kind = row["meta"]["kind"]
        assert question["text"] in QUESTIONS[kind]
        assert assistant["content"] == [{"type": "text", "text": row["answer"]}]
        assert row["answer"] in ANSWERS[kind] and row["meta"]["choices"] == list(ANSWERS[kind])
        modality = "image" if kind.startswith("image-") else "video"
        assert media["type"] == modality and set(media) == {"type", modality}
        assert not Path(media[modality]).is_absolute() and (root / media[modality]).is_file()


def test_media_content(dataset: dict) -> None:
    import av
    from PIL import Image

    root = Path(dataset["out_dir"])
    rows = _rows(dataset["train"])
    image_row = next(r for r in rows if r["meta"]["kind"] == "image-colour")
    image = np.asarray(Image.open(root / image_row["messages"][0]["content"][0]["image"]))
    assert image.shape == (56, 56, 3) and image.dtype == np.uint8
    assert (image == COLOURS[image_row["answer"]]).all(axis=-1).sum() > 20  # the shape is drawn in its colour

    video_row = next(r for r in rows if r["meta"]["kind"] == "video-direction")
    with av.open(str(root / video_row["messages"][0]["content"][0]["video"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (56, 56, 3)
    # The centroid of non-background pixels moves in the answered direction.
    centroids = []
    for frame in (frames[0], frames[-1]):
        ys, xs = np.nonzero(np.abs(frame.astype(int) - 245).sum(axis=-1) > 120)
        centroids.append((xs.mean(), ys.mean()))
    dx, dy = centroids[1][0] - centroids[0][0], centroids[1][1] - centroids[0][1]
    moved = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
    assert moved == video_row["answer"]


def test_deterministic_and_seeded(tmp_path: Path, dataset: dict) -> None:
    again = generate_shapes_qa(tmp_path / "b", num_train=60, num_eval=30, seed=7)
    assert _tree_digest(Path(again["out_dir"])) == _tree_digest(Path(dataset["out_dir"]))
    other = generate_shapes_qa(tmp_path / "c", num_train=60, num_eval=0, seed=8)
    assert _rows(other["train"]) != _rows(dataset["train"])
    assert _rows(other["eval"]) == []


def test_eval_disjoint_from_train(tmp_path: Path) -> None:
    info = generate_shapes_qa(tmp_path / "d", num_train=80, num_eval=80, seed=1, kinds=["image-count", "image-shape"])
    root = Path(info["out_dir"])

    def pixels(row: dict) -> bytes:
        from PIL import Image

        return np.asarray(Image.open(root / row["messages"][0]["content"][0]["image"])).tobytes()

    train = {pixels(row) for row in _rows(info["train"])}
    assert not any(pixels(row) in train for row in _rows(info["eval"]))
    assert set(info["counts"]["eval"]) == {"image-count", "image-shape"}
    assert not (root / "videos").exists()


def test_answers_are_single_tokens() -> None:
    from mmsft.models.tiny_tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    for kind, answers in ANSWERS.items():
        for answer in answers:
            assert len(tokenizer(answer, add_special_tokens=False)["input_ids"]) == 1, (kind, answer)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image-colur"):
        generate_shapes_qa(tmp_path, 1, 1, kinds=["image-colur"])
    with pytest.raises(ValueError, match="image_size"):
        generate_shapes_qa(tmp_path, 1, 1, image_size=55)
    with pytest.raises(ValueError, match="unknown colour 'teal'"):
        Scene("teal", "circle", 5.0, ((10.0, 10.0),))
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        Scene("red", "hexagon", 5.0, ((10.0, 10.0),))
    with pytest.raises(ValueError, match="unknown texture 'dotted'"):
        Scene("red", "star", 5.0, ((10.0, 10.0),), texture="dotted")


def test_one_world_for_qa_and_classification(dataset: dict) -> None:
    """QA answers and class names use the same colours and shapes; a plain scene is the classification scene
    without the nuisance draws (same size bucket and position), rendered by the same function."""
    rows = _rows(dataset["train"]) + _rows(dataset["eval"])
    assert set(ANSWERS["image-shape"]) == set(SHAPES) == {name.split()[1] for name in CLASSNAMES}
    assert set(ANSWERS["image-colour"]) == set(COLOURS) == {name.split()[0] for name in CLASSNAMES}
    assert {row["meta"]["shape"] for row in rows} == set(SHAPES)
    plain = sample_scene(random.Random("x"), "blue", "star", 56, nuisance=False)
    full = sample_scene(random.Random("x"), "blue", "star", 56)
    assert (plain.radius, plain.centres, plain.size) == (full.radius, full.centres, full.size)
    assert plain.fill == COLOURS["blue"] and plain.background == BACKGROUND and plain.texture == "solid"
    pixels = np.asarray(render(plain, 56))
    assert (pixels == COLOURS["blue"]).all(axis=-1).sum() > 20 and (pixels == BACKGROUND).all(axis=-1).sum() > 1000
    # Stripes blank every other 3-row band of the filled pixels (and only those).
    striped = np.asarray(render(Scene("red", "square", 20.0, ((28.0, 28.0),), texture="striped"), 56))
    solid = np.asarray(render(Scene("red", "square", 20.0, ((28.0, 28.0),)), 56))
    filled = (solid == COLOURS["red"]).all(axis=-1)
    bands = ((np.arange(56) // 3) % 2 == 1)[:, None]
    assert np.array_equal((striped == COLOURS["red"]).all(axis=-1), filled & ~bands)


def test_video_frames_reach_the_encoder_without_uninitialised_padding() -> None:
    """The yuv420p frames given to x264 carry the swscale conversion of the RGB frame and zero row padding (the
    uninitialised padding of a converted frame made the same clip encode to different bytes within one process)."""
    import av

    from mmsft.data.shapes import _yuv420p_frame

    rgb = np.asarray(render(Scene("yellow", "triangle", 15.0, ((20.0, 30.0),)), 56))
    frame = _yuv420p_frame(rgb)
    expected = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert np.array_equal(frame.to_ndarray(), expected)
    for plane, width in zip(frame.planes, (56, 28, 28)):
        rows = np.frombuffer(bytes(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        assert plane.line_size > width and not rows[:, width:].any()
