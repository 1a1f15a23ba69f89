"""TLDR's stop-token temperature scaling (arXiv 2505.07961) as a logits processor: golden values, edge cases, the
rollout engine (shorter completions, recorded sampler log-probs of the modified distribution) and the RL config."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmsft.data.schema import Message, Part, Sample
from mmsft.models.loading import build_adapter, load_model
from mmsft.objectives.decoding import StopTokenTemperature, resolve_stop_ids, stop_temperature_processor
from mmsft.rollout.engine import HFGenerateEngine, SamplingParams
from mmsft.train.trainer import Trainer
from tests.test_rl_trainer import _rl_config


def test_stop_temperature_golden() -> None:
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    out = StopTokenTemperature([3], 2.0)(torch.zeros(1, 1, dtype=torch.long), scores)
    p = torch.softmax(scores, -1)[0].tolist()
    z = p[0] + p[1] + p[2] + math.sqrt(p[3])  # p_s^{1/T} with T = 2
    expected = [p[0] / z, p[1] / z, p[2] / z, math.sqrt(p[3]) / z]
    assert torch.softmax(out, -1)[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert torch.softmax(out, -1)[0, 3].item() == pytest.approx(0.156103, abs=1e-6)  # from 0.032059


def test_stop_temperature_is_monotone_and_keeps_masked_ids() -> None:
    scores = torch.tensor([[0.5, -2.0, float("-inf"), 3.0]])
    probs = [torch.softmax(StopTokenTemperature([1, 2], t)(None, scores), -1)[0] for t in (0.5, 1.0, 2.0, 8.0)]
    stop = [float(p[1]) for p in probs]
    assert stop == sorted(stop) and stop[1] == pytest.approx(torch.softmax(scores, -1)[0, 1].item(), rel=1e-6)
    assert all(float(p[2]) == 0.0 for p in probs)  # an id masked to −inf stays impossible
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            StopTokenTemperature([1], bad)
    with pytest.raises(ValueError, match="at least one"):
        StopTokenTemperature([], 2.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        StopTokenTemperature([9], 2.0)(None, scores)


@pytest.fixture(scope="module")
def text_policy(tiny_models):
    loaded = load_model(str(tiny_models["text"]))
    return loaded, build_adapter(loaded)


def test_resolve_stop_ids(text_policy) -> None:
    _, adapter = text_policy
    assert resolve_stop_ids(adapter.tokenizer, "", (7, 8)) == (7, 8)
    token = next(iter(adapter.tokenizer.get_vocab()))
    assert resolve_stop_ids(adapter.tokenizer, f" {token} ", ()) == (adapter.tokenizer.get_vocab()[token],)
    with pytest.raises(ValueError, match="not single tokens"):
        resolve_stop_ids(adapter.tokenizer, "</definitely-not-a-token>", ())
    assert stop_temperature_processor(adapter, 3.0).stop_ids.tolist() == sorted(set(adapter.stop_token_ids))


def test_engine_stops_earlier_and_records_the_modified_distribution(text_policy) -> None:
    loaded, adapter = text_policy
    engine = HFGenerateEngine(lambda: loaded.model, adapter)
    prompt = adapter.encode(Sample("p", [Message("user", (Part("text", text="Say something."),))]), with_target=False)
    plain = engine.generate([prompt], SamplingParams(n=8, max_new_tokens=12, seed=3))
    scaled = engine.generate([prompt], SamplingParams(n=8, max_new_tokens=12, seed=3, stop_temperature=50.0))
    mean = lambda rs: sum(len(r.completion_ids) for r in rs) / len(rs)  # noqa: E731
    assert mean(scaled) < mean(plain)
    stops = set(adapter.stop_token_ids)
    assert sum(int(r.completion_ids[-1]) in stops for r in scaled) > sum(int(r.completion_ids[-1]) in stops for r in plain)
    # the recorded sampler log-prob of the first token is that of the modified distribution
    with torch.no_grad():
        logits = loaded.model(input_ids=prompt.input_ids.unsqueeze(0)).logits[:, -1].float()
    modified = torch.log_softmax(StopTokenTemperature(adapter.stop_token_ids, 50.0)(None, logits), -1)[0]
    for rollout in scaled:
        assert rollout.sampler_logp[0].item() == pytest.approx(modified[rollout.completion_ids[0]].item(), abs=1e-4)


def test_rl_step_with_stop_temperature(tiny_models, text_dataset, tmp_path) -> None:
    cfg = _rl_config(tiny_models["text"], text_dataset, tmp_path / "run", "rl.stop_temperature=50",
                     "rl.max_new_tokens=8")
    assert cfg.rl.stop_temperature == 50.0
    Trainer(cfg).train()
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])["train/loss"] is not None
    bad = _rl_config(tiny_models["text"], text_dataset, tmp_path / "bad", "rl.stop_temperature=2",
                     "rl.stop_temperature_tokens=</nope>")
    with pytest.raises(ValueError, match="rl.stop_temperature_tokens"):
        Trainer(bad).train()
