"""Evaluation metrics: ECE / reliability bins on a fixed table, EAD and distinct-n on fixed strings, the
self-ensemble combinations, embedding diversity, and the calibration / diversity evaluators on a tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmsft.eval.metrics import (combine, distinct_n, ead, ead_average, ece, embedding_diversity, reliability_bins,
                                reliability_diagram)

CONF = [0.95, 0.85, 0.85, 0.62, 0.55, 0.30, 0.0, 1.0]
RIGHT = [1, 1, 0, 1, 0, 0, 0, 1]


def test_ece_golden_table():
    # bins (m/10, (m+1)/10]: 9 ← {.95 ✓, 1.0 ✓}, 8 ← {.85 ✓, .85 ✗}, 6 ← .62 ✓, 5 ← .55 ✗, 2 ← .30 ✗, 0 ← 0.0 ✗
    # ECE = (2·|1 − .975| + 2·|.5 − .85| + |1 − .62| + .55 + .30 + 0) / 8 = 1.98 / 8
    assert ece(CONF, RIGHT) == pytest.approx(0.2475, abs=1e-12)
    bins = reliability_bins(CONF, RIGHT)
    assert [b.count for b in bins] == [1, 0, 1, 0, 0, 1, 1, 0, 2, 2]
    assert bins[8].accuracy == 0.5 and bins[9].confidence == pytest.approx(0.975)
    assert ece([], []) == 0.0
    assert ece([0.7, 0.7], [1, 0], n_bins=1) == pytest.approx(0.2)  # one bin: |0.5 − 0.7|


def test_ece_rejects_bad_input():
    with pytest.raises(ValueError, match="confidence #1"):
        ece([0.5, 1.5], [1, 0])
    with pytest.raises(ValueError, match="2 confidences but 1"):
        ece([0.5, 0.5], [1])
    with pytest.raises(ValueError, match="confidence #0"):
        ece([float("nan")], [1])


def test_reliability_diagram_png(tmp_path):
    path = reliability_diagram(CONF, RIGHT, tmp_path / "r" / "rel.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_distinct_and_ead_golden():
    texts = ["a b a", "b c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == pytest.approx(1.0)
    assert distinct_n(texts, 3) == pytest.approx(1.0)  # only "a b a"
    # n=1: C = 5, 3 unique → 3 / (10·(1 − 0.9⁵)); n=2: C = 3, 3 unique → 3 / (10·(1 − 0.9³))
    assert ead(texts, 1, vocab_size=10) == pytest.approx(3 / 4.0951, rel=1e-12)
    assert ead(texts, 2, vocab_size=10) == pytest.approx(3 / 2.71, rel=1e-12)
    assert ead_average(texts, max_n=2, vocab_size=10) == pytest.approx((3 / 4.0951 + 3 / 2.71) / 2, rel=1e-12)
    assert ead(["", "   "], 1) == 0.0 and distinct_n([], 2) == 0.0
    assert ead([["x", "y"], ["x"]], 1, vocab_size=10) == pytest.approx(2 / (10 * (1 - 0.9 ** 3)))  # token lists
    # EAD corrects distinct-n's length bias: for C ≪ V it tends to distinct-n
    assert ead(["a b c d"], 1, vocab_size=10**9) == pytest.approx(1.0, rel=1e-6)


def test_ead_is_linear_on_hostile_text():
    import time

    text = ("x " * 200_000) + "\x00" * 1000
    start = time.perf_counter()
    ead([text], 3)
    assert time.perf_counter() - start < 5


def test_self_ensemble_golden():
    probs = [[[0.6, 0.3, 0.1]], [[0.2, 0.7, 0.1]], [[0.5, 0.4, 0.1]]]
    assert combine(probs, "mean")[0].tolist() == pytest.approx([1.3 / 3, 1.4 / 3, 0.1])
    assert combine(probs, "max")[0].tolist() == pytest.approx([0.6 / 1.4, 0.7 / 1.4, 0.1 / 1.4])
    assert combine(probs, "vote")[0].tolist() == pytest.approx([0.55, 0.35, 0.1])  # votes 0,1,0 → mean of 1st, 3rd
    tie = [[[0.6, 0.4]], [[0.3, 0.7]]]
    assert combine(tie, "vote")[0].tolist() == pytest.approx([0.6, 0.4])  # tie → lowest label index
    with pytest.raises(ValueError, match="unknown method"):
        combine(probs, "median")
    with pytest.raises(ValueError, match="shaped"):
        combine([[0.5, 0.5]], "mean")


def test_embedding_diversity_golden():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pair cosines 0, 1/√2, 1/√2 → mean √2/3
    assert embedding_diversity(emb) == pytest.approx(1 - math.sqrt(2) / 3)
    assert embedding_diversity(torch.ones(4, 3)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="n >= 2"):
        embedding_diversity(torch.ones(1, 3))


def _label_data(tmp_path):
    words = ["red", "blue", "green"]
    rows = [{"id": f"c{i}", "messages": [{"role": "user", "content": f"Colour number {i}?"}],
             "answer": words[i % 3], "meta": {"choices": words}} for i in range(6)]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_calibration_evaluator(tiny_models, tmp_path):
    from mmsft.eval.evaluators import EvalContext, run_evaluator
    from mmsft.eval.metrics.calibration import ece as ece_fn

    ctx = EvalContext(tmp_path / "out")
    spec = {"path": str(_label_data(tmp_path)), "templates": ["{prompt}", "Q: {prompt} A:"], "combine": "vote"}
    metrics, main = run_evaluator("calibration", tiny_models["text"], spec, ctx)
    assert main == "ece" and metrics["templates"] == 2 and metrics["total"] == 6
    rows = [json.loads(line) for line in (tmp_path / "out" / "calibration.jsonl").read_text().splitlines()]
    for row in rows:
        assert sum(row["ensemble"]) == pytest.approx(1.0) and len(row["per_template"]) == 2
    conf = [max(r["ensemble"]) for r in rows]
    right = [r["labels"][r["ensemble"].index(max(r["ensemble"]))] == r["answer"] for r in rows]
    assert metrics["ece"] == pytest.approx(ece_fn(conf, right))
    assert metrics["accuracy"] == pytest.approx(sum(right) / 6)
    assert (tmp_path / "out" / "reliability.png").is_file()


def test_calibration_evaluator_bad_input(tiny_models, tmp_path):
    from mmsft.eval.evaluators import EvalContext, EvaluatorError, run_evaluator

    ctx = EvalContext(tmp_path / "out")
    path = _label_data(tmp_path)
    with pytest.raises(EvaluatorError, match="not one of its labels"):
        run_evaluator("calibration", tiny_models["text"], {"path": str(path), "labels": "cat,dog"}, ctx)
    with pytest.raises(EvaluatorError, match="placeholder"):
        run_evaluator("calibration", tiny_models["text"], {"path": str(path), "templates": ["no slot"]}, ctx)


def test_diversity_evaluator(tiny_models, tmp_path):
    from mmsft.eval.evaluators import EvalContext, run_evaluator

    ctx = EvalContext(tmp_path / "out")
    spec = {"path": str(_label_data(tmp_path)), "n": 3, "max_new_tokens": 6, "max_n": 2, "max_samples": 3,
            "encoder": str(tiny_models["text"])}
    metrics, main = run_evaluator("diversity", tiny_models["text"], spec, ctx)
    assert main == "ead_per_input"
    groups = [json.loads(line)["completions"] for line in (tmp_path / "out" / "completions.jsonl").read_text()
              .splitlines()]
    assert [len(g) for g in groups] == [3, 3, 3]
    assert metrics["distinct_1_per_input"] == pytest.approx(sum(distinct_n(g, 1) for g in groups) / 3)
    assert metrics["ead_across_input"] == pytest.approx(ead_average([g[0] for g in groups], 2))
    assert 0.0 <= metrics["embedding_diversity_per_input"] <= 2.0
    again, _ = run_evaluator("diversity", tiny_models["text"], spec, EvalContext(tmp_path / "out2"))
    assert again == metrics  # seeded sampling


def test_mmsft_eval_runs_a_named_evaluator(tiny_models, tmp_path):
    from mmsft.cli import main

    path = _label_data(tmp_path)
    code = main(["eval", f"model.name_or_path={tiny_models['text']}", f"data.eval_path={path}",
                 f"train.output_dir={tmp_path / 'run'}", "eval.evaluator=calibration",
                 "eval.evaluator_args={n_bins: 5}"])
    assert code == 0
    result = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())
    assert result["evaluator"] == "calibration" and result["main"] == "ece" and 0 <= result["ece"] <= 1


def test_pipeline_stage_with_selector_sparse_peft_and_metric_evaluators(tiny_models, tmp_path):
    """Calibration and diversity evaluate a pipeline stage that trains a sparse adapter on q_tuning-selected data."""
    from mmsft.pipeline import run_pipeline

    labels = _label_data(tmp_path)
    train = tmp_path / "train.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    for row in rows:
        row["messages"].append({"role": "assistant", "content": row["answer"]})
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = {"output_dir": str(tmp_path / "run"), "evaluate_base": False,
           "defaults": {"model": {"name_or_path": str(tiny_models["text"])},
                        "train": {"torch_threads": 1, "progress": False, "tensorboard": False, "micro_batch_size": 2,
                                  "max_steps": 2}},
           "stages": [{"name": "s", "recipe": {"data": {"train_path": str(train), "selector": "q_tuning",
                                                        "selector_args": {"pool": 2}},
                                               "lora": {"enabled": True, "method": "sparse",
                                                        "method_args": {"density": 0.05}}}}],
           "evaluators": [{"name": "calib", "evaluator": "calibration", "path": str(labels)},
                          {"name": "div", "evaluator": "diversity", "path": str(labels), "n": 2, "max_samples": 2,
                           "max_new_tokens": 4}]}
    result = run_pipeline(doc, quiet=True)
    assert 0.0 <= result.matrix.main("s", "calib") <= 1.0 and result.matrix.main("s", "div") >= 0.0
    assert (tmp_path / "run" / "stages" / "1-s" / "merged" / "config.json").is_file()  # the sparse deltas merged
