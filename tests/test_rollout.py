"""Rollout engine: batched, seeded and reproducible; sampler log-probs match the policy; no vision tokens."""

from __future__ import annotations

import torch

from mmsft.data.loaders import load_jsonl
from mmsft.models.loading import build_adapter, load_model
from mmsft.models.policy import Policy
from mmsft.rollout import HFGenerateEngine, SamplingParams


def _engine(path):
    loaded = load_model(str(path))
    adapter = build_adapter(loaded)
    return loaded, adapter, HFGenerateEngine(lambda: loaded.model, adapter, batch_size=6)


def test_reproducible_grouped_and_no_vision_tokens(tiny_models, mm_dataset):
    loaded, adapter, engine = _engine(tiny_models["qwen2.5-vl"])
    prompts = [adapter.encode(s, with_target=False) for s in load_jsonl(mm_dataset)[:3]]
    params = SamplingParams(n=4, max_new_tokens=10, temperature=1.0, seed=7)
    first, second = engine.generate(prompts, params), engine.generate(prompts, params)
    assert len(first) == 12 and [r.prompt_index for r in first] == [0] * 4 + [1] * 4 + [2] * 4
    assert all(torch.equal(a.completion_ids, b.completion_ids) for a, b in zip(first, second))
    other = engine.generate(prompts, SamplingParams(n=4, max_new_tokens=10, temperature=1.0, seed=8))
    assert any(not torch.equal(a.completion_ids, b.completion_ids) for a, b in zip(first, other))
    tokens = torch.cat([r.completion_ids for r in first])
    assert not torch.isin(tokens, torch.tensor(adapter.suppressed_token_ids)).any()
    assert all(r.prompt.mm["pixel_values"] is prompts[r.prompt_index].mm["pixel_values"] for r in first)
    for r in first:
        assert r.truncated == (len(r.completion_ids) == 10 and int(r.completion_ids[-1]) not in adapter.stop_token_ids)


def test_sampler_logprobs_match_policy_at_temperature(tiny_models, text_dataset):
    loaded, adapter, engine = _engine(tiny_models["text"])
    prompts = [adapter.encode(s, with_target=False) for s in load_jsonl(text_dataset)[:2]]
    rollouts = engine.generate(prompts, SamplingParams(n=3, max_new_tokens=8, temperature=0.7, seed=1))
    batch = adapter.collate([r.as_encoded() for r in rollouts])
    with torch.no_grad():
        out = Policy(loaded.model)(batch.inputs, batch.loss_mask, temperature=0.7)
    for row, rollout in enumerate(rollouts):
        torch.testing.assert_close(out.logp[row][batch.loss_mask[row]], rollout.sampler_logp, atol=1e-4, rtol=0)


def test_greedy_when_temperature_zero(tiny_models, text_dataset):
    loaded, adapter, engine = _engine(tiny_models["text"])
    prompts = [adapter.encode(s, with_target=False) for s in load_jsonl(text_dataset)[:1]]
    rollouts = engine.generate(prompts, SamplingParams(n=3, max_new_tokens=6, temperature=0.0, seed=1))
    assert all(torch.equal(rollouts[0].completion_ids, r.completion_ids) for r in rollouts)
