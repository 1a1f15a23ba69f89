"""Data transforms of the objective zoo: FAIT and TL-Training token weights aligned with the model's own encoding,
MAE turn splitting, PoFT reference scores, and their CLI commands (through the objective_study plugin)."""

from __future__ import annotations

import json
import math

import pytest

from mmsft.data.schema import DataError, sample_from_dict
from mmsft.data.transforms_weights import (FaitArgs, PktArgs, fait_weights, fault_masks, mae_split, pkt_weights,
                                           token_char_spans)

CODE = "def f(x):\n    return x + 1\n"
WRONG = "def f(x):\n    return x - 1\n"
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


@pytest.fixture(scope="module")
def adapter(tiny_models):
    from mmsft.models.loading import build_adapter, load_model

    return build_adapter(load_model(str(tiny_models["text"])))


def _sample(target: str, **meta):
    return sample_from_dict({"id": "s", "messages": [{"role": "user", "content": "go"},
                                                     {"role": "assistant", "content": target}], "meta": meta}, "d.jsonl:1")


def test_fault_masks_mark_the_changed_line_and_character():
    line, char = fault_masks(CODE, WRONG)
    changed = CODE.index("    return")
    assert not any(line[:changed]) and all(line[changed:])
    assert [i for i, m in enumerate(char) if m] == [CODE.index("+")]


def test_token_spans_cover_the_target_once(adapter):
    spans, count = token_char_spans(adapter, _sample(CODE))
    encoded = adapter.encode(_sample(CODE))
    assert count == int(encoded.loss_mask.sum())
    covered = sorted(i for lo, hi in spans for i in range(lo, hi))
    assert covered == list(range(len(CODE)))  # every target character in exactly one token, in order


def test_fait_weights_upweight_exactly_the_error_sensitive_tokens(adapter):
    sample = _sample(CODE, negative=WRONG)
    spans, _ = token_char_spans(adapter, sample)
    weights = fait_weights(sample, adapter, FaitArgs(line_weight=0.5, token_weight=2.0, normalize=False))
    line_start, plus = CODE.index("    return"), CODE.index("+")
    for (lo, hi), w in zip(spans, weights):
        expected = 1.0 + (0.5 if lo < hi and hi > line_start else 0.0) + (2.0 if lo <= plus < hi else 0.0)
        assert w == pytest.approx(expected)
    normalized = fait_weights(sample, adapter, FaitArgs(line_weight=0.5, token_weight=2.0))
    assert sum(normalized) / len(normalized) == pytest.approx(1.0)


def test_fait_needs_the_negative_variant(adapter):
    with pytest.raises(DataError, match=r"sample id 's'.*meta.negative"):
        fait_weights(_sample(CODE), adapter, FaitArgs())


def test_pkt_weights_key_tool_tokens_with_the_capped_ratio(adapter):
    sample = _sample(CALL, tool_name="get_weather", tools=["get_weather", "get_time", "search"],
                     tool_args={"city": "Paris"})
    spans, count = token_char_spans(adapter, sample)
    weights = pkt_weights(sample, adapter, PktArgs(normalize=False, param_weight=2.0))
    at = CALL.index("get_weather")
    key_chars = {at, at + len("get_")}  # first char of the name; divergence from get_time ("get_" + w/t)
    key = [any(lo <= c < hi for c in key_chars) for lo, hi in spans]
    ratio = min((count - sum(key)) / sum(key), 9.0)
    param_end = CALL.index("Paris") + len("Paris") - 1
    for (lo, hi), is_key, w in zip(spans, key, weights):
        expected = ratio if is_key else (2.0 if lo <= param_end < hi else 1.0)
        assert w == pytest.approx(expected)
    assert ratio == 9.0  # capped: many more other tokens than key tokens


def test_mae_split_drops_turns_followed_by_tool_errors():
    sample = sample_from_dict({"id": "traj", "messages": [
        {"role": "user", "content": "find the weather"},
        {"role": "assistant", "content": "call get_wether(city='Paris')"},
        {"role": "user", "content": "NameError: name 'get_wether' is not defined"},
        {"role": "assistant", "content": "call get_weather(city='Paris')"},
        {"role": "user", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."}]}, "t.jsonl:1")
    kept, dropped = mae_split(sample)
    assert dropped == 1
    assert [s.target.text for s in kept] == ["call get_weather(city='Paris')", "It is sunny."]
    assert [s.id for s in kept] == ["traj#turn3", "traj#turn5"]


def test_poft_reference_scores_are_the_mean_length_normalised_loglik(tiny_models, text_dataset, tmp_path):
    import torch

    from mmsft.data.loaders import load_dataset
    from mmsft.data.transforms_poft import add_reference_scores, mean_target_logprob
    from mmsft.models.loading import build_adapter, load_model
    from mmsft.models.logprobs import naive_logprobs

    samples = load_dataset(str(text_dataset))[:3]
    one = mean_target_logprob(str(tiny_models["text"]), samples, batch_size=2)
    loaded = load_model(str(tiny_models["text"]))
    adapter = build_adapter(loaded)
    for sample, score in zip(samples, one):
        enc = adapter.encode(sample)
        with torch.no_grad():
            logits = loaded.model(input_ids=enc.input_ids[None]).logits
        logp = naive_logprobs(logits, enc.input_ids[None], enc.loss_mask[None])
        assert score == pytest.approx(float(logp.sum() / enc.loss_mask.sum()), abs=1e-5)
    out = text_dataset.parent / f"{tmp_path.name}-scored.jsonl"
    assert add_reference_scores(text_dataset, out, [str(tiny_models["text"])] * 2, batch_size=4) == 16
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["meta"]["ref_score"] for r in rows[:3]] == pytest.approx(one, abs=1e-5)  # mean of 2 equal models
    assert all(math.isfinite(r["meta"]["ref_score"]) for r in rows)


def test_token_weight_cli_writes_weights_the_trainer_accepts(tiny_models, tmp_path):
    from mmsft.cli import main
    from mmsft.plugins import import_plugin
    from mmsft.train.trainer import Trainer
    from tests.test_trainer import _config

    import_plugin("tasks.objective_study.plugin")
    data = tmp_path / "code.jsonl"
    rows = [{"id": f"c{i}", "messages": [{"role": "user", "content": f"write f{i}"},
                                          {"role": "assistant", "content": CODE}], "meta": {"negative": WRONG}}
            for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "weighted.jsonl"
    assert main(["data", "token-weights", str(data), str(out), "--method", "fait", "--model",
                 str(tiny_models["text"])]) == 0
    weighted = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(max(r["token_weights"]) > min(r["token_weights"]) for r in weighted)
    Trainer(_config(tiny_models["text"], out, tmp_path / "run")).train()  # lengths match the supervised tokens
