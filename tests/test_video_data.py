"""Released VideoRFT / Video-R1 formats → mmsft samples (tasks/video/loaders.py), the papers' prompts, and the video
reasoning world (tasks/video/world.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsft.data.loaders import load_jsonl
from mmsft.data.schema import DataError
from mmsft.data.shapes import write_mp4
from tasks.video.loaders import convert_released, load_released
from tasks.video.prompts import QUESTION_TEMPLATE, R1_SYSTEM_PROMPT, TYPE_TEMPLATE, user_prompt

PROCESS = "<think>Let me think. The clip shows a red circle.</think>"


def _media(root):
    (root / "clips").mkdir(parents=True)
    (root / "images").mkdir()
    write_mp4(root / "clips" / "a.mp4", np.full((4, 28, 28, 3), 200, dtype=np.uint8))
    Image.new("RGB", (28, 28), (10, 20, 30)).save(root / "images" / "b.png")


def _rows():
    common = {"process": PROCESS, "data_source": "unit/test", "extra_field": [1, 2]}
    return [
        {"problem_id": 1, "problem": "Which colour is shown?", "data_type": "video", "problem_type": "multiple choice",
         "options": ["A. red", "B. blue"], "solution": "<answer>A</answer>", "path": "./clips/a.mp4", **common},
        {"problem_id": 2, "problem": "How many shapes?", "data_type": "image", "problem_type": "numerical",
         "options": [], "solution": "<answer>3</answer>", "path": "./images/b.png", **common},
        {"problem_id": 3, "problem": "Read the sign.", "data_type": "image", "problem_type": "OCR", "options": [],
         "solution": "<answer>stop here</answer>", "path": "./images/b.png", **common},
        {"problem_id": 4, "problem": "What happens?", "data_type": "video", "problem_type": "free-form",
         "options": [], "solution": "<answer>the circle moves left</answer>", "path": "./clips/a.mp4", **common},
        {"problem_id": 5, "problem": "How far, in metres?", "data_type": "video", "problem_type": "regression",
         "options": [], "solution": "<answer>2.5</answer>", "path": "./clips/a.mp4", **common},
        {"problem_id": 6, "problem": "Broken", "data_type": "video", "problem_type": "essay", "options": [],
         "solution": "<answer>x</answer>", "path": "./clips/a.mp4", **common},
        {"problem_id": 7, "problem": "No tags", "data_type": "image", "problem_type": "OCR", "options": [],
         "solution": "stop", "path": "./images/b.png", **common},
        "not an object",
    ]


@pytest.fixture()
def released(tmp_path):
    root = tmp_path / "data"
    _media(root)
    json_path = root / "Video-R1-COT-165k.json"
    json_path.write_text(json.dumps(_rows()))
    jsonl_path = root / "VideoRFT-RL.jsonl"
    jsonl_path.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n")
    return root, json_path, jsonl_path


def test_video_r1_cot_rows_become_sft_samples(released):
    root, json_path, _ = released
    loaded = load_released(json_path, root, "video-r1-cot")
    report = loaded.report
    assert report.rows == 8 and report.loaded == 5
    assert set(report.skipped) == {"6", "7", "row7"}
    assert "essay" in report.skipped["6"] and "<answer>" in report.skipped["7"] and "object" in report.skipped["row7"]
    assert report.by_problem_type == {"OCR": 1, "free-form": 1, "multiple choice": 1, "numerical": 1, "regression": 1}
    assert report.by_data_type == {"image": 2, "video": 3}
    mc = loaded.samples[0]
    assert [m.role for m in mc.messages] == ["system", "user", "assistant"]
    assert mc.messages[0].text == "You are a helpful assistant"
    assert mc.media("video") == [str((root / "clips" / "a.mp4").resolve())]
    question = "Which colour is shown?Options:\nA. red\nB. blue\n"
    assert mc.messages[1].text == QUESTION_TEMPLATE.format(Question=question) + TYPE_TEMPLATE["multiple choice"]
    assert mc.target.text == PROCESS + "\n<answer>A</answer>"
    assert mc.answer == "A" and mc.meta["data_source"] == "unit/test" and mc.meta["extra_field"] == [1, 2]
    assert mc.meta["problem_type"] == "multiple choice" and mc.meta["solution"] == "<answer>A</answer>"
    image = loaded.samples[1]
    assert image.media("image") and not image.media("video") and image.answer == "3"
    assert "5 of 8 rows loaded, 3 unreadable rows skipped" in report.summary()


def test_videorft_rl_rows_are_prompts_without_options_appended(released):
    root, _, jsonl_path = released
    loaded = load_released(jsonl_path, root, "videorft-rl")
    mc = loaded.samples[0]
    assert [m.role for m in mc.messages] == ["user"] and mc.target is None
    assert mc.messages[0].text == QUESTION_TEMPLATE.format(Question="Which colour is shown?") + \
        TYPE_TEMPLATE["multiple choice"]
    assert mc.source.endswith("VideoRFT-RL.jsonl:1")
    cot = load_released(jsonl_path, root, "videorft-cot")
    assert cot.samples[0].messages[0].text == R1_SYSTEM_PROMPT


def test_prompt_text_is_the_papers(released):
    text = user_prompt("Q?", "OCR")
    assert text.startswith("Q?\nPlease think about this question as if you were a human pondering deeply. ")
    assert "natural language thought expressions It's encouraged" in text
    assert text.endswith(" Please transcribe text from the image/video clearly and provide your text answer within "
                         "the <answer> </answer> tags.")
    with pytest.raises(ValueError, match="problem_type"):
        user_prompt("Q?", "essay")


def test_missing_media_names_row_and_path(released):
    root, json_path, _ = released
    (root / "clips" / "a.mp4").unlink()
    with pytest.raises(DataError, match=r"\[0\] \(row id '1'\): video file .*a\.mp4 does not exist \(path "
                                        r"'\./clips/a\.mp4'"):
        load_released(json_path, root, "video-r1-cot")


def test_strict_mode_and_media_containment(released, tmp_path):
    root, json_path, _ = released
    with pytest.raises(DataError, match=r"\[5\] \(row id '6'\): problem_type 'essay'"):
        load_released(json_path, root, "video-r1-cot", strict=True)
    rows = _rows()[:1]
    rows[0]["path"] = "../outside.mp4"
    (tmp_path / "outside.mp4").write_bytes(b"")
    bad = root / "bad.json"
    bad.write_text(json.dumps(rows))
    with pytest.raises(DataError, match="outside the data root"):
        load_released(bad, root, "video-r1")
    assert load_released(bad, root, "video-r1", media_roots=[str(tmp_path)], check_media=False).report.loaded == 1


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_released(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[{\"problem\": ")
    with pytest.raises(DataError, match="invalid JSON"):
        load_released(broken)
    with pytest.raises(DataError, match="unknown released format"):
        load_released(broken, format="llava")


def test_duplicate_ids_are_renamed_and_counted(released):
    root, _, _ = released
    rows = _rows()[:2]
    rows[1]["problem_id"] = 1
    path = root / "dups.json"
    path.write_text(json.dumps(rows))
    loaded = load_released(path, root, "video-r1")
    assert [s.id for s in loaded.samples] == ["1@0", "1@1"] and loaded.report.renamed_duplicates == 2


def test_converted_jsonl_loads_with_the_core_loader(released, tmp_path):
    root, json_path, _ = released
    out = tmp_path / "out" / "train.jsonl"
    report = convert_released(json_path, out, root, "video-r1-cot")
    assert report.loaded == 5 and json.loads((tmp_path / "out" / "train.jsonl.report.json").read_text())["loaded"] == 5
    from mmsft.data.schema import MediaPolicy

    samples = load_jsonl(out, media=MediaPolicy.from_config([str(root)]))
    assert [s.id for s in samples] == ["1", "2", "3", "4", "5"]
    assert samples[0].target.text.endswith("<answer>A</answer>") and samples[0].meta["problem_type"] == \
        "multiple choice"


def test_world_is_deterministic_and_readable(tmp_path):
    from tasks.video.world import KINDS, generate_world

    first = generate_world(tmp_path / "a", 14, 7, seed=3)
    second = generate_world(tmp_path / "b", 14, 7, seed=3)
    assert (tmp_path / "a" / "train.json").read_text() == (tmp_path / "b" / "train.json").read_text()
    clip = Path("videos") / "000003.mp4"
    assert (tmp_path / "a" / clip).read_bytes() == (tmp_path / "b" / clip).read_bytes()
    assert first["counts"]["train"] == {k: 2 for k in KINDS} and first["counts"] == second["counts"]
    loaded = load_released(first["train"], format="video-r1-cot")
    assert loaded.report.loaded == 14 and not loaded.report.skipped
    assert loaded.report.by_problem_type == {"OCR": 2, "free-form": 2, "multiple choice": 6, "numerical": 2,
                                             "regression": 2}
    rows = json.loads((tmp_path / "a" / "train.json").read_text())
    for row in rows:
        assert row["process"].startswith("<think>Let me think about what the video shows. The video shows ")
        answer = row["solution"][len("<answer>"):-len("</answer>")]
        assert row["process"].endswith(f"So the answer is {answer}.</think>")
    train_ids = {r["path"] for r in rows}
    eval_rows = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert not train_ids & {r["path"] for r in eval_rows}


def test_world_facts_match_the_pixels():
    from tasks.video.world import Clip, Mover

    mover = Mover("red", "circle", x=10.0, y=30.0, direction="right", speed="fast", start_frame=2)
    still = Mover("blue", "square", x=45.0, y=45.0, direction="still", speed="slowly", start_frame=1)
    clip = Clip((mover, still))
    xs = [x for x, _ in mover.positions()]
    assert xs[:3] == [10.0, 10.0, 10.0] and xs[3] == 17.0 and mover.crossings() == 1
    frames = clip.frames()
    assert frames.dtype == np.uint8 and frames.shape == (8, 56, 56, 3)
    red = np.array([215, 35, 35])
    columns = [np.nonzero((np.abs(f.astype(int) - red).sum(-1) < 10).any(0))[0].mean() for f in frames]
    assert columns[0] == pytest.approx(10.0, abs=1) and columns[3] == pytest.approx(17.0, abs=1)
