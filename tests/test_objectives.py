"""Golden values and gradient-accumulation invariance for every registered loss, aggregation mode and KL estimator."""

from __future__ import annotations

import math
import pytest
import torch

from mmsft.objectives import (AGG_MODES, LOSSES, KLTerm, Objective, StepNormalizer, TokenBatch, agg_loss, args_type,
                              get_kl, get_loss)

P = torch.tensor([[0.5, 0.25, 0.8, 1.0], [0.1, 0.9, 1.0, 1.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)


def token_fn_outputs(objective: Objective, fields: dict, log_probs: torch.Tensor, targets: torch.Tensor,
                     mask: torch.Tensor) -> dict:
    """What the trainer's policy pass adds for ``objective``: its token function run on the supervised positions'
    log-softmax (as inside the LM-head chunks), scattered to (B, T, ...); non-field outputs go to ``extras``."""
    from mmsft.objectives.registry import TOKEN_BATCH_FIELDS

    fn = objective.token_fn(fields)
    if fn is None:
        return {}
    rows, cols = mask.nonzero(as_tuple=True)
    out = fn(log_probs[rows, cols], targets[rows, cols], rows, cols)
    scattered = {k: v.new_zeros((*mask.shape, *v.shape[1:])).index_put((rows, cols), v) for k, v in out.items()}
    extras = {k: v for k, v in scattered.items() if k not in TOKEN_BATCH_FIELDS}
    return {**{k: v for k, v in scattered.items() if k in TOKEN_BATCH_FIELDS}, "extras": extras}


def run(name: str, batch: TokenBatch, mode: str = "token-mean", **args):
    """Call a registered loss with its own argument dataclass and the batch's aggregation mode."""
    entry = get_loss(name)
    batch.agg_mode = mode
    return entry.fn(batch, args_type(entry)(**args))


def test_agg_modes_golden() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 6.0, 100.0, 100.0]])
    assert agg_loss(values, MASK, "token-mean").item() == pytest.approx(16 / 5)
    assert agg_loss(values, MASK, "seq-mean-token-mean").item() == pytest.approx((2.0 + 5.0) / 2)
    assert agg_loss(values, MASK, "seq-mean-token-sum").item() == pytest.approx((6 + 10) / 2)
    assert agg_loss(values, MASK, "seq-mean-token-sum-norm").item() == pytest.approx(16 / (2 * 3))
    norm = StepNormalizer(num_tokens=5, num_seqs=2, max_len=8)
    assert agg_loss(values, MASK, "seq-mean-token-sum-norm", norm).item() == pytest.approx(16 / 16)
    with pytest.raises(ValueError, match="loss_agg_mode"):
        agg_loss(values, MASK, "token_mean")


def test_sft_golden() -> None:
    batch = TokenBatch(logp=P.log(), loss_mask=MASK)
    loss, metrics = run("sft", batch)
    expected = -(math.log(0.5) + math.log(0.25) + math.log(0.8) + math.log(0.1) + math.log(0.9)) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(0.942106, abs=1e-5)
    assert metrics["tokens"] == 5


def test_sft_token_weights_golden() -> None:
    weights = torch.tensor([[2.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    batch = TokenBatch(logp=P.log(), loss_mask=MASK, token_weights=weights)
    loss, _ = run("sft", batch)
    expected = -(2 * math.log(0.5) + math.log(0.8) + math.log(0.1) + math.log(0.9)) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_dft_golden_and_gradient() -> None:
    logp = P.log().clone().requires_grad_(True)
    batch = TokenBatch(logp=logp, loss_mask=MASK)
    loss, _ = run("dft", batch)
    expected = -(0.5 * math.log(0.5) + 0.25 * math.log(0.25) + 0.8 * math.log(0.8) + 0.1 * math.log(0.1)
                 + 0.9 * math.log(0.9)) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(0.239348, abs=1e-5)
    loss.backward()
    # d/dlogp of −sg(p)·logp is −p / N on supervised tokens and 0 elsewhere.
    expected_grad = torch.where(MASK, -P / 5, torch.zeros_like(P))
    torch.testing.assert_close(logp.grad, expected_grad)


@pytest.mark.parametrize("name", ["k1", "k2", "k3", "abs"])
def test_kl_golden(name: str) -> None:
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    log_ratio = torch.tensor([math.log(0.5), math.log(2.0)])  # ref − logp
    expected = {"k1": -log_ratio, "k2": 0.5 * log_ratio ** 2, "k3": log_ratio.exp() - 1 - log_ratio,
                "abs": log_ratio.abs()}[name]
    torch.testing.assert_close(get_kl(name).fn(logp, ref), expected)
    golden = {"k1": [0.693147, -0.693147], "k2": [0.240227, 0.240227], "k3": [0.193147, 0.306853],
              "abs": [0.693147, 0.693147]}[name]
    assert get_kl(name).fn(logp, ref).tolist() == pytest.approx(golden, abs=1e-5)


def test_kl_is_clamped_for_far_tokens() -> None:
    value = get_kl("k3").fn(torch.tensor([0.0]), torch.tensor([-1000.0]))
    assert torch.isfinite(value).all()


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("loss_name", [n for n in LOSSES.names() if not n.startswith("test_")])
def test_gradient_accumulation_invariance(loss_name: str, mode: str) -> None:
    """One step of 8 sequences as 1×8 or 8×1 micro-batches: same loss, same gradients."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 6, 5, generator=generator)
    targets = torch.randint(0, 5, (8, 6), generator=generator)
    lengths = torch.tensor([1, 6, 3, 2, 5, 4, 6, 1])
    mask = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)
    objective = Objective(loss_name, agg_mode=mode, kl=KLTerm(0.1, "k3", "loss"), entropy_coef=0.01)
    expert = torch.tensor([0, 1, 0, 0, 1, 0, 0, 1], dtype=torch.bool)

    def run(splits: int) -> tuple[float, torch.Tensor]:
        params = logits.clone().requires_grad_(True)
        log_probs = torch.log_softmax(params, -1)
        logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        micro_masks = list(mask.chunk(splits))
        norm = StepNormalizer.combine(micro_masks)
        rows_norm = {"expert": StepNormalizer.combine([m & e.view(-1, 1) for m, e in zip(micro_masks, expert.chunk(splits))]),
                     "policy": StepNormalizer.combine([m & ~e.view(-1, 1) for m, e in zip(micro_masks, expert.chunk(splits))])}
        old = logp.detach() + 0.3 * torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
        ref = logp.detach() - 0.2
        adv = torch.randn(8, generator=torch.Generator().manual_seed(2))
        entropy = torch.rand(8, 6, generator=torch.Generator().manual_seed(3))
        teacher = torch.log_softmax(torch.randn(8, 6, 5, generator=torch.Generator().manual_seed(4)), -1)
        ref_dist = torch.log_softmax(torch.randn(8, 6, 5, generator=torch.Generator().manual_seed(5)), -1)
        support = teacher.topk(3, dim=-1).indices
        ref_score = torch.randn(8, generator=torch.Generator().manual_seed(6))
        prefix = torch.rand(8, 6, generator=torch.Generator().manual_seed(7)) < 0.4
        total = 0.0
        for rows, micro_mask in zip(torch.arange(8).chunk(splits), micro_masks):
            fields = {"support_ids": support[rows], "teacher_support_logp": teacher[rows].gather(-1, support[rows]),
                      "ref_support_logp": ref_dist[rows].gather(-1, support[rows])}
            fields.update(token_fn_outputs(objective, fields, log_probs[rows], targets[rows], micro_mask))
            if objective.entry.meta.get("policy_exits") is not None:  # SoFT: two sub-model exits
                shallow = torch.log_softmax(params[rows] / 2, -1).gather(-1, targets[rows].unsqueeze(-1)).squeeze(-1)
                fields.setdefault("extras", {})["exit_logp"] = torch.stack([shallow, logp[rows]], -1)
            if objective.entry.meta.get("aux_batch"):  # LfU: the policy pass's per-token consistency MSE
                fields.setdefault("extras", {})["lfu_mse"] = params[rows].pow(2).mean(-1) * micro_mask
            batch = TokenBatch(logp=logp[rows], loss_mask=micro_mask, normalizer=norm, old_logp=old[rows],
                               ref_logp=ref[rows], advantages=adv[rows], entropy=entropy[rows],
                               expert_mask=expert[rows], logp_dist=log_probs[rows], teacher_dist=teacher[rows],
                               teacher_logp=teacher[rows].gather(-1, targets[rows].unsqueeze(-1)).squeeze(-1),
                               token_weights=torch.ones(len(rows), 6), row_normalizers=rows_norm, step=3,
                               ref_score=ref_score[rows], prefix_mask=prefix[rows],
                               policy_argmax=torch.zeros(len(rows), 6, dtype=torch.long), values=params[rows].mean(-1),
                               old_values=old[rows], returns=ref[rows] + adv[rows].unsqueeze(-1), **fields)
            loss, _ = objective(batch)
            loss.backward(retain_graph=True)
            total += loss.item()
        return total, params.grad.clone()

    loss_1, grad_1 = run(1)
    loss_8, grad_8 = run(8)
    assert loss_1 == pytest.approx(loss_8, rel=1e-6, abs=1e-7)
    torch.testing.assert_close(grad_1, grad_8, rtol=1e-5, atol=1e-7)


def test_registry_unknown_name_suggests() -> None:
    with pytest.raises(KeyError, match="Did you mean 'sft'"):
        get_loss("sfft")


def test_token_batch_validates_shapes() -> None:
    with pytest.raises(ValueError, match="loss_mask shape"):
        TokenBatch(logp=torch.zeros(2, 3), loss_mask=torch.zeros(2, 4, dtype=torch.bool))
    batch = TokenBatch(logp=torch.zeros(2, 3), loss_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="ref_logp"):
        batch.require("ref_logp")
