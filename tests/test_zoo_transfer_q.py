"""Transfer Q* (arXiv 2405.20495): the selection rule's golden values (direct and indirect transfer), α = 0 reduces to
the policy's greedy decoding, a reward steers the choice to the candidate it favours, VLM prompts keep their images,
and the ``transfer_q`` evaluator runs from a spec."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mmsft.data.loaders import load_dataset
from mmsft.eval.evaluators import EvalContext, EvaluatorError, run_evaluator
from mmsft.eval.generation import generate
from mmsft.models.loading import build_adapter, load_model
from mmsft.objectives.transfer_q import TransferQArgs, transfer_q_decode, transfer_q_scores
from mmsft.rewards import register_reward


@register_reward("test_tq_short")
def _short(samples, completions, **_):
    return [-len(c) / 10 for c in completions]


def test_transfer_q_scores_golden() -> None:
    logp = torch.tensor([math.log(0.5), math.log(0.3), math.log(0.2)])
    r = torch.tensor([0.0, 1.0, 2.0])
    direct = transfer_q_scores(logp, r, TransferQArgs(alpha=0.5))
    assert direct.tolist() == pytest.approx([math.log(0.5), math.log(0.3) + 0.5, math.log(0.2) + 1.0], rel=1e-6)
    assert int(direct.argmax()) == 2  # log 0.2 + 1 = −0.609 > log 0.5 = −0.693 > log 0.3 + 0.5 = −0.704
    r_bl = torch.tensor([1.0, 1.0, 0.0])
    indirect = transfer_q_scores(logp, r, TransferQArgs(alpha=1.0, mode="indirect", beta=2.0), r_bl)
    expected = [math.log(0.5) + math.exp(-0.5) * 0.0, math.log(0.3) + 1.0, math.log(0.2) + math.exp(1.0) * 2.0]
    assert indirect.tolist() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="r_BL"):
        transfer_q_scores(logp, r, TransferQArgs(mode="indirect"))


@pytest.fixture(scope="module")
def text(tiny_models):
    loaded = load_model(str(tiny_models["text"]))
    return loaded.model.eval(), build_adapter(loaded, max_length=None)


def test_alpha_zero_is_the_policys_greedy_decoding(text, text_dataset) -> None:
    model, adapter = text
    samples = load_dataset(str(text_dataset))[:2]
    calls = []

    def score(batch, texts):
        calls.append(len(texts))
        return [0.0] * len(texts)

    results = transfer_q_decode(model, model, adapter, samples, score, TransferQArgs(k=3, alpha=0.0,
                                                                                      continuation_tokens=2),
                                max_new_tokens=4)
    greedy = generate(model, adapter, samples, max_new_tokens=4)
    assert [r.text for r in results] == greedy
    assert calls and all(n == 3 for n in calls)  # k candidates scored per step


def test_reward_steers_the_choice(text, text_dataset) -> None:
    """A reward that pays only for one candidate of the first step's top-k (not the greedy one) picks it."""
    model, adapter = text
    sample = load_dataset(str(text_dataset))[0]
    probe = transfer_q_decode(model, model, adapter, [sample], lambda b, t: [0.0] * len(t),
                              TransferQArgs(k=4, alpha=0.0, continuation_tokens=0), max_new_tokens=1)[0]
    candidates = probe.steps[0]["candidates"]
    texts = [adapter.decode([c], skip_special_tokens=True) for c in candidates]
    target = next(i for i in range(len(candidates) - 1, 0, -1)
                  if texts[i] and sum(t.startswith(texts[i]) for t in texts) == 1)

    def score(batch, completions):
        return [10.0 if c.startswith(texts[target]) else 0.0 for c in completions]

    steered = transfer_q_decode(model, model, adapter, [sample], score,
                                TransferQArgs(k=4, alpha=1.0, continuation_tokens=3), max_new_tokens=2)[0]
    assert steered.token_ids[0] == candidates[target] != candidates[0]
    assert steered.steps[0]["rewards"][target] == 10.0


def test_vlm_prompts_keep_their_images(tiny_models, mm_dataset) -> None:
    loaded = load_model(str(tiny_models["qwen2-vl"]))
    adapter = build_adapter(loaded, max_length=None)
    model = loaded.model.eval()
    samples = load_dataset(str(mm_dataset))[:1]
    results = transfer_q_decode(model, model, adapter, samples, lambda b, t: [0.0] * len(t),
                                TransferQArgs(k=2, alpha=0.0, continuation_tokens=2), max_new_tokens=3)
    assert [r.text for r in results] == generate(model, adapter, samples, max_new_tokens=3)


def test_transfer_q_evaluator(tiny_models, text_dataset, tmp_path) -> None:
    ctx = EvalContext(out_dir=tmp_path / "eval")
    spec = {"path": str(text_dataset), "baseline": str(tiny_models["text"]), "rewards": "test_tq_short", "k": 3,
            "continuation_tokens": 2, "max_new_tokens": 3, "max_samples": 2}
    metrics, main = run_evaluator("transfer_q", tiny_models["text"], spec, ctx)
    assert main == "reward_mean" and metrics["reward_mean"] <= 0 and 1 <= metrics["tokens_mean"] <= 3
    rows = [json.loads(x) for x in (tmp_path / "eval" / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(s["candidates"]) == 3 for s in rows[0]["steps"])
    indirect = {**spec, "mode": "indirect", "baseline_rewards": "test_tq_short"}
    assert run_evaluator("transfer_q", tiny_models["text"], indirect, ctx)[0]["reward_mean"] <= 0
    with pytest.raises(EvaluatorError, match="baseline"):
        run_evaluator("transfer_q", tiny_models["text"], {**spec, "baseline": ""}, ctx)
    with pytest.raises(EvaluatorError, match="baseline_rewards"):
        run_evaluator("transfer_q", tiny_models["text"], {**spec, "mode": "indirect"}, ctx)
