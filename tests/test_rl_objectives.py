"""Golden values for every advantage estimator and policy loss (hand-computed), permutation invariance in a group."""

from __future__ import annotations

import math
import pytest
import torch

from mmsft.objectives import AdvantageInputs, KLTerm, Objective, TokenBatch, args_type, get_advantage, get_loss


def _adv_args(name: str):
    return args_type(get_advantage(name))()
# groups: 0 = [1, 0, 0, 1], 1 = singleton [2], 2 = all equal [1, 1]
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 1.0, 1.0])
GROUPS = torch.tensor([0, 0, 0, 0, 1, 2, 2])
MASK = torch.ones(7, 1, dtype=torch.bool)


def _adv(name: str, **kw) -> torch.Tensor:
    return get_advantage(name).fn(AdvantageInputs(rewards=REWARDS, group_id=GROUPS, mask=MASK, **kw), _adv_args(name))[:, 0]


def test_grpo_golden():
    a = 0.5 / math.sqrt(1 / 3)
    assert _adv("grpo").tolist() == pytest.approx([a, -a, -a, a, 2.0, 0.0, 0.0], abs=1e-5)


def test_dr_grpo_golden():
    assert _adv("dr_grpo").tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5, 2.0, 0.0, 0.0], abs=1e-6)


def test_rloo_golden():
    assert _adv("rloo").tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 2.0, 0.0, 0.0], abs=1e-6)


def test_reinforce_pp_baseline_golden():
    inputs = AdvantageInputs(rewards=torch.tensor([1.0, 0.0]), group_id=torch.tensor([0, 0]),
                             mask=torch.tensor([[True, True], [True, False]]))
    out = get_advantage("reinforce_pp_baseline").fn(inputs, _adv_args("reinforce_pp_baseline"))
    assert out[0].tolist() == pytest.approx([0.57735, 0.57735], abs=1e-4)
    assert out[1, 0].item() == pytest.approx(-1.15470, abs=1e-4) and out[1, 1].item() == 0.0


def test_reinforce_pp_golden_with_kl_in_reward():
    inputs = AdvantageInputs(rewards=torch.tensor([1.0, 0.0]), group_id=torch.tensor([0, 1]),
                             mask=torch.tensor([[True, True], [True, False]]),
                             token_penalty=torch.tensor([[0.1, 0.2], [0.3, 0.0]]))
    out = get_advantage("reinforce_pp").fn(inputs, _adv_args("reinforce_pp"))
    assert [out[0, 0].item(), out[0, 1].item(), out[1, 0].item()] == pytest.approx([0.49320, 0.65760, -1.15079], abs=1e-4)


def test_opd_golden_and_requirements():
    inputs = AdvantageInputs(rewards=torch.zeros(1), group_id=torch.zeros(1, dtype=torch.long),
                             mask=torch.ones(1, 2, dtype=torch.bool), old_logp=torch.tensor([[-1.0, -2.0]]),
                             teacher_logp=torch.tensor([[-0.5, -3.0]]))
    # A = −(log π_student − log π_teacher): the teacher prefers token 0 (+0.5), the student over-weights token 1 (−1)
    assert get_advantage("opd").fn(inputs, _adv_args("opd"))[0].tolist() == pytest.approx([0.5, -1.0])
    with pytest.raises(ValueError, match="teacher"):
        get_advantage("opd").fn(AdvantageInputs(REWARDS, GROUPS, MASK), _adv_args("opd"))


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_permutation_invariance_within_groups(name):
    perm = torch.tensor([3, 1, 0, 2, 4, 6, 5])
    base = _adv(name)
    permuted = get_advantage(name).fn(AdvantageInputs(REWARDS[perm], GROUPS[perm], MASK), _adv_args(name))[:, 0]
    torch.testing.assert_close(permuted, base[perm])


def _loss(name, batch, mode="token-mean", **args):
    entry = get_loss(name)
    values = {"clip_low": 0.2, "clip_high": 0.28} if name != "cispo" else {}
    values.update(args)
    batch.agg_mode = mode
    return entry.fn(batch, args_type(entry)(**values))


def _batch(ratios, adv, **kw):
    logp = torch.log(torch.tensor([ratios])).clone().requires_grad_(True)
    return TokenBatch(logp=logp, loss_mask=torch.ones(1, len(ratios), dtype=torch.bool),
                      old_logp=torch.zeros(1, len(ratios)), advantages=torch.tensor([adv]), **kw)


def test_ppo_clip_golden():
    batch = _batch([1.5, 0.5, 1.1], [1.0, 1.0, -1.0])
    loss, metrics = _loss("ppo_clip", batch)
    assert loss.item() == pytest.approx((-1.28 - 0.5 + 1.1) / 3, abs=1e-5)
    assert metrics["clipfrac"] == pytest.approx(1 / 3)
    loss.backward()
    # clipped token has no gradient; others: d(−A r)/dlogp = −A r / N
    assert batch.logp.grad[0].tolist() == pytest.approx([0.0, -0.5 / 3, 1.1 / 3], abs=1e-5)


def test_dual_clip_golden():
    batch = _batch([5.0], [-1.0])
    loss, _ = _loss("ppo_clip", batch, dual_clip=3.0)
    assert loss.item() == pytest.approx(3.0)
    loss_plain, _ = _loss("ppo_clip", _batch([5.0], [-1.0]))
    assert loss_plain.item() == pytest.approx(5.0)


def test_gspo_golden():
    batch = _batch([1.5, 0.5], [1.0, 1.0])
    loss, _ = _loss("gspo", batch, "seq-mean-token-mean")
    s = math.exp((math.log(1.5) + math.log(0.5)) / 2)
    assert loss.item() == pytest.approx(-s, abs=1e-5)
    loss.backward()
    assert batch.logp.grad[0].tolist() == pytest.approx([-s / 2, -s / 2], abs=1e-5)


def test_cispo_golden():
    batch = _batch([1.5, 6.0], [1.0, 1.0])
    loss, metrics = _loss("cispo", batch, clip_high=4.0)
    assert loss.item() == pytest.approx(-(1.5 * math.log(1.5) + 5.0 * math.log(6.0)) / 2, abs=1e-5)
    assert metrics["clipfrac"] == pytest.approx(0.5)
    loss.backward()
    assert batch.logp.grad[0].tolist() == pytest.approx([-0.75, -2.5], abs=1e-5)


def test_kl_and_entropy_terms_golden():
    ref = torch.log(torch.tensor([[0.5, 2.0]]))
    entropy = torch.tensor([[1.0, 3.0]])
    batch = _batch([1.0, 1.0], [0.0, 0.0], ref_logp=ref, entropy=entropy)
    loss, metrics = Objective("ppo_clip", args_type(get_loss("ppo_clip"))(0.2, 0.28), kl=KLTerm(0.5, "k3", "loss"), entropy_coef=0.1)(batch)
    k3 = [(0.5 - 1 - math.log(0.5)), (2.0 - 1 - math.log(2.0))]
    assert loss.item() == pytest.approx(0.5 * sum(k3) / 2 - 0.1 * 2.0, abs=1e-5)
    assert metrics["kl"] == pytest.approx(sum(k3) / 2, abs=1e-5) and metrics["entropy"] == pytest.approx(2.0)
