"""Self-Rewarding PPO (arXiv 2510.21090): GAE, the coherent reward at the last token and the actor-critic loss on
hand-computed values; the value head's alignment; one real optimizer step on the tiny text model and the tiny Qwen2-VL
with every parameter (value head included) moving; its value head in the checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from mmsft.objectives import AdvantageInputs, TokenBatch, get_advantage, get_loss
from mmsft.objectives.srppo import SrppoArgs, SrppoGaeArgs, ValueHead, gae, token_rewards, token_values
from mmsft.rewards import register_reward
from tests.test_rl_trainer import _rl_config
from tests.test_trainer import _Probe, _trainable_changed


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Differently initialised tiny models with the students' tokenizers: the "pre-SFT base" π_base."""
    from mmsft.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("bases")
    return {family: build_tiny(family, root / family, seed=1) for family in ("text", "qwen2.5-vl")}


@register_reward("test_srppo_zero")
def _zero(samples, completions, **_):
    return [0.0] * len(completions)


def test_gae_golden() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.2, 0.1], [1.0, 0.5, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    adv, returns = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    # row 0: δ = (0 + 0.2 − 0.5, 0 + 0.1 − 0.2, 1 − 0.1) = (−0.3, −0.1, 0.9); Â2 = 0.9, Â1 = −0.1 + 0.45, Â0 = −0.3 + 0.175
    # row 1 (length 2; the padded slot's reward and value are ignored): δ = (0 + 0.5 − 1, 2 − 0.5); Â1 = 1.5, Â0 = 0.25
    torch.testing.assert_close(adv, torch.tensor([[-0.125, 0.35, 0.9], [0.25, 1.5, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[0.375, 0.55, 1.0], [1.25, 2.0, 0.0]]))
    adv_g, _ = gae(rewards[:1], values[:1], mask[:1], gamma=0.5, lam=1.0)  # δ = (−0.4, −0.15, 0.9)
    torch.testing.assert_close(adv_g, torch.tensor([[-0.4 + 0.5 * (-0.15 + 0.45), -0.15 + 0.45, 0.9]]))


def test_coherent_reward_at_the_last_token() -> None:
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    ref = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, 0.0]])
    base = torch.tensor([[-1.5, -1.0, -1.0], [-3.0, -1.0, 0.0]])
    inputs = AdvantageInputs(rewards=torch.tensor([0.5, 0.0]), group_id=torch.tensor([0, 0]), mask=mask,
                             ref_logp=ref, teacher_logp=base, token_penalty=torch.full((2, 3), 0.1))
    # R = Σ(ref − base): row 0: 0.5 − 1 + 0.5 = 0; row 1: 2 + 0 = 2; plus outcome rewards 0.5 / 0
    expected = torch.tensor([[-0.1, -0.1, -0.1 + 0.5], [-0.1, -0.1 + 2.0, 0.0]])
    torch.testing.assert_close(token_rewards(inputs, coef=1.0), expected)
    inputs.values = torch.zeros(2, 3)
    out = get_advantage("srppo_gae").fn(inputs, SrppoGaeArgs(gamma=1.0, lam=1.0, whiten=False))
    torch.testing.assert_close(out["advantages"], torch.tensor([[0.2, 0.3, 0.4], [1.8, 1.9, 0.0]]))
    torch.testing.assert_close(out["returns"], out["advantages"])
    white = get_advantage("srppo_gae").fn(inputs, SrppoGaeArgs(lam=1.0))["advantages"]
    assert float(white[mask].mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(white[mask].std()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="teacher_logp"):
        token_rewards(AdvantageInputs(rewards=torch.zeros(2), group_id=torch.zeros(2), mask=mask), coef=1.0)


def test_srppo_loss_golden() -> None:
    mask = torch.tensor([[1, 1]], dtype=torch.bool)
    logp = torch.log(torch.tensor([[0.5, 0.5]]))
    values = torch.tensor([[0.5, 1.0]], requires_grad=True)
    batch = TokenBatch(logp=logp, loss_mask=mask, old_logp=logp.clone(), advantages=torch.tensor([[1.0, -2.0]]),
                       values=values, old_values=torch.tensor([[0.0, 0.7]]), returns=torch.tensor([[1.0, 0.0]]))
    loss, metrics = get_loss("srppo").fn(batch, SrppoArgs(vf_coef=0.5, cliprange_value=0.2))
    # ratio 1: pg = (−1·1 + 1·2)/2 = 0.5; value (V_clip = V_old + clip(V − V_old, ±0.2)):
    # token 0: V_clip = 0.2, max((0.5 − 1)², (0.2 − 1)²)/2 = 0.32; token 1: V_clip = 0.9, max(1², 0.9²)/2 = 0.5
    assert metrics["pg_loss"] == pytest.approx(0.5)
    assert metrics["vf_loss"] == pytest.approx((0.32 + 0.5) / 2)
    assert loss.item() == pytest.approx(0.5 + 0.5 * 0.41)
    loss.backward()
    # token 0: the clipped term wins and its V is saturated → no gradient; token 1: the unclipped term wins →
    # d/dV ½(V − G)² = V − G = 1, × 1/2 tokens × c_v 0.5
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 0.25]]))


def test_value_head_alignment() -> None:
    head = ValueHead(2)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 10.0]]))
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])
    out = token_values(head, hidden, torch.tensor([[0, 1, 1]], dtype=torch.bool), detach=False)
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 10.0]]))  # V at t reads the hidden state at t − 1


@pytest.mark.parametrize("family,dataset", [("text", "text_dataset"), ("qwen2.5-vl", "mm_dataset")])
def test_srppo_one_step_changes_every_parameter(tiny_models, bases, request, tmp_path, family, dataset):
    data = request.getfixturevalue(dataset)
    cfg = _rl_config(tiny_models[family], data, tmp_path / "run", "algorithm=srppo", f"rl.teacher={bases[family]}",
                     "rl.rewards=test_srppo_zero", "train.save_steps=1", "train.max_steps=2")
    trainer = _Probe(cfg)
    trainer.train()
    changed, unchanged = _trainable_changed(trainer, trainer.before)
    assert changed and not unchanged, unchanged[:8]
    head = trainer._policy_module.value_head.linear.weight
    assert float(head.detach().abs().sum()) > 0  # the critic learned (it starts at zero)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("train/vf_loss" in r for r in records if "train/loss" in r)
    assert records[0]["train/return_mean"] != 0.0  # the coherent reward: base ≠ SFT model
    assert (tmp_path / "run" / "checkpoints" / "step-000001" / "policy_modules.safetensors").is_file()
