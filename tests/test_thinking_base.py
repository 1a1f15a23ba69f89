"""The thinking-capable tiny base (``assets/thinking_base``, ``scripts/pretrain_thinking_base.py``): pretraining data
in both formats on both worlds, never the studies' evaluation prompts, images or clips; the shipped model loads and
answers zero-shot in both formats on held-out seeds."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from mmsft.data import shapes as sw
from tasks.image_classification.base_model import THINKING_PATH, ensure_thinking_base, is_complete
from tasks.image_classification.rewards import is_think_answer_format

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("pretrain_thinking_base", REPO / "scripts" /
                                                  "pretrain_thinking_base.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pretraining_data_has_both_formats_on_both_worlds(tmp_path: Path, script) -> None:
    path = script.write_pretraining_data(tmp_path, num_images=80, num_clips=36, seed=0)
    rows = _rows(path)
    assert len(rows) == 116 and script.check_prompts(path) == 116
    seen = set()
    for row in rows:
        prompt = row["messages"][0]["content"][1]["text"]
        target = row["messages"][1]["content"][0]["text"]
        media = row["messages"][0]["content"][0]
        assert (tmp_path / media[media["type"]]).is_file()
        world, fmt = row["meta"]["world"], row["meta"]["format"]
        seen.add((world, fmt))
        if fmt == "think":
            assert "<think>" in prompt and is_think_answer_format(target), row["id"]
            assert f"<answer> {row['answer']} </answer>" in target or f"<answer>{row['answer']}</answer>" in target
        else:
            assert "<" not in target and target == row["answer"], row["id"]
        if world == "image" and row["meta"]["kind"] == "name":
            assert row["answer"] == row["meta"]["class"] and row["answer"] in sw.CLASSNAMES
    assert seen == {("image", "think"), ("image", "answer"), ("video", "think"), ("video", "answer")}
    again = script.write_pretraining_data(tmp_path / "again", num_images=80, num_clips=36, seed=0)
    assert again.read_text() == path.read_text()  # deterministic


def test_check_prompts_rejects_the_study_evaluation_prompt(tmp_path: Path, script) -> None:
    from tasks.image_classification.prompts import THINK_EVAL

    good = {"messages": [{"role": "user", "content": [{"type": "image", "image": "a.png"},
                                                      {"type": "text", "text": "What shape is shown?"}]}]}
    bad = json.loads(json.dumps(good))
    bad["messages"][0]["content"][1]["text"] = THINK_EVAL.format(Question="What shape?")
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"rows\.jsonl:2: .*First output the thinking process"):
        script.check_prompts(path)


def test_pretraining_images_and_clips_are_disjoint_from_the_studies(script, monkeypatch) -> None:
    report = script.check_disjoint(num_images=600, num_clips=300, seed=0, seeds=(0,), video_sizes=(140, 35))
    assert report["overlapping_images"] == 0 and report["overlapping_clips"] == 0
    assert report["pretraining_scenes"] == 600 + script.HELD_OUT_IMAGES
    # the check can fail: a pretraining stream that draws a study image is refused
    study_scene = sw.class_scenes(sw.CLASSNAMES[0], 1, 10_000)[0]  # a test image of study seed 0
    original = script.image_scenes
    monkeypatch.setattr(script, "image_scenes", lambda n, s, split: [study_scene, *original(n - 1, s, split)])
    with pytest.raises(ValueError, match="overlaps the studies' data: 1 images, 0 clips"):
        script.check_disjoint(num_images=10, num_clips=5, seed=0, seeds=(0,), video_sizes=(7, 7))
    monkeypatch.setattr(script, "image_scenes", original)
    study_clip = next(iter(script.study_clips((0,), 7, 7)))
    clips = script.video_clips
    monkeypatch.setattr(script, "video_clips", lambda n, s, split, **k: [(study_clip,), *clips(n - 1, s, split, **k)]
                        if split == "train" else clips(n, s, split, **k))
    with pytest.raises(ValueError, match="overlaps the studies' data: 0 images, 1 clips"):
        script.check_disjoint(num_images=10, num_clips=5, seed=0, seeds=(0,), video_sizes=(7, 7))


def test_ensure_thinking_base_returns_a_complete_folder_untouched(tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    assert ensure_thinking_base(tmp_path) == tmp_path


def test_shipped_thinking_base_is_small_and_its_report_is_complete() -> None:
    assert is_complete(THINKING_PATH), f"{THINKING_PATH} is missing; run scripts/pretrain_thinking_base.py"
    size = sum(p.stat().st_size for p in THINKING_PATH.rglob("*") if p.is_file())
    assert size <= 10 * 1024 * 1024
    report = json.loads((THINKING_PATH / "pretrain_report.json").read_text())
    assert report["disjointness"]["overlapping_images"] == 0 and report["disjointness"]["overlapping_clips"] == 0
    assert set(report["disjointness"]["study_seeds"]) >= {0, 1, 2}
    for mode in ("think", "answer"):
        assert report["zero_shot"]["classification"][mode]["hm"] > 0.0
        assert report["zero_shot"]["video"][mode]["accuracy"] > 0.0


def _lower_bound(rate: float, n: int, sigmas: float = 4.0) -> float:
    """``rate − sigmas·√(p(1−p)/n)`` with p floored at 0.05 of failures (a rate measured as 1.0 still allows some)."""
    p = min(rate, 0.95)
    return p - sigmas * math.sqrt(p * (1 - p) / n)


@pytest.mark.slow
def test_shipped_thinking_base_answers_zero_shot_in_both_formats(tmp_path: Path) -> None:
    """On a held-out seed (not a study seed, not the report's), greedy zero-shot with the study's evaluation prompts:
    the think prompt gets think-then-answer outputs, the direct prompt untagged answers, at rates no lower than the
    report's held-out rates minus four standard errors of this sample size."""
    if not is_complete(THINKING_PATH):
        pytest.skip("shipped thinking base missing")
    from mmsft.models.loading import build_adapter, load_model
    from tasks.image_classification.builder import ShapesWorldSource, build_fewshot_splits
    from tasks.image_classification.evaluation import evaluate_base_new
    from tasks.image_classification.prompts import question_prefix

    report = json.loads((THINKING_PATH / "pretrain_report.json").read_text())["zero_shot"]["classification"]
    loaded = load_model(str(THINKING_PATH))
    adapter = build_adapter(loaded)
    splits = build_fewshot_splits(ShapesWorldSource(train_per_class=1, test_per_class=2, seed=4242), tmp_path,
                                  k_shot=1, seed=4242, modes=("think", "nothink"), prefix=question_prefix("shapes"))
    for mode, key, tokens in (("think", "think", 48), ("nothink", "answer", 12)):
        result = evaluate_base_new(loaded.model, adapter, splits.test_base[mode], splits.test_new[mode],
                                   batch_size=48, max_new_tokens=tokens)
        outputs = [r["prediction"].strip() for r in result["predictions"]]
        ok = [is_think_answer_format(o) if mode == "think" else bool(o) and "<" not in o for o in outputs]
        rate, n = sum(ok) / len(ok), len(ok)
        assert n == 48
        assert rate >= _lower_bound(report[key]["format"], n), (mode, rate, outputs[:4])
        assert result["hm"] > 0.0, (mode, outputs[:4])  # some held-out classes named right in both formats
