"""Golden values of the objective zoo (issue 14) on hand-computed tensors: ASFT, OTR (exact and Monte Carlo),
CurioSFT (loss and per-token temperature), PoFT, GKD's generalised JSD and forward top-k KL, the support/tail
divergences, the masked-reconstruction transform. Gradient-accumulation invariance of every loss runs in
tests/test_objectives.py from the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmsft.objectives import Objective, StepNormalizer, TokenBatch, args_type, get_loss
from mmsft.objectives.sft_variants import CurioArgs, curio_temperature
from mmsft.objectives.support import generalized_jsd, kl, with_tail
from tests.test_objectives import token_fn_outputs

P1, R1 = [0.5, 0.3, 0.2], [0.6, 0.2, 0.2]  # policy / reference (teacher) at token 1 (target id 0)
P2, R2 = [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]  # token 2 (target id 2): identical distributions


def _dist_batch(**fields) -> tuple[TokenBatch, torch.Tensor]:
    """One sequence of two supervised tokens over V = 3, full support; logits are the leaf."""
    logits = torch.tensor([[P1, P2]]).log().requires_grad_(True)
    log_probs = torch.log_softmax(logits, -1)
    targets = torch.tensor([[0, 2]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    support = torch.arange(3).expand(1, 2, 3)
    other = torch.tensor([[R1, R2]]).log()
    batch = TokenBatch(logp=log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1), loss_mask=mask,
                       support_ids=support, logp_support=log_probs.gather(-1, support), ref_support_logp=other,
                       teacher_support_logp=other, **fields)
    return batch, logits


def _call(name: str, batch: TokenBatch, **args):
    entry = get_loss(name)
    return entry.fn(batch, args_type(entry)(**args))


# ---- support divergences ---------------------------------------------------------------------------------------------
def test_full_support_kl_is_exact_and_has_no_spurious_tail_gradient():
    p = torch.tensor([R1]).log()
    q_logits = torch.tensor([P1]).log().requires_grad_(True)
    a, b, live = with_tail(p, torch.log_softmax(q_logits, -1))
    value = kl(a, b, live)
    exact = sum(r * math.log(r / s) for r, s in zip(R1, P1))
    assert value.item() == pytest.approx(exact, abs=1e-6) and value.item() == pytest.approx(0.028300, abs=1e-6)
    value.sum().backward()
    # d/dz KL(R‖softmax z) = softmax z − R exactly: a tail bucket of rounding noise must add nothing
    torch.testing.assert_close(q_logits.grad, torch.tensor([P1]) - torch.tensor([R1]), atol=1e-6, rtol=0)


def test_topk_support_with_tail_is_a_lower_bound_that_keeps_the_rest():
    p_full, q_full = torch.tensor([0.5, 0.3, 0.15, 0.05]), torch.tensor([0.25, 0.25, 0.25, 0.25])
    ids = torch.tensor([0, 1])
    a, b, live = with_tail(p_full[ids].log().view(1, 1, 2), q_full[ids].log().view(1, 1, 2))
    bucketed = kl(a, b, live).item()
    expected = 0.5 * math.log(2) + 0.3 * math.log(1.2) + 0.2 * math.log(0.2 / 0.5)
    assert bucketed == pytest.approx(expected, abs=1e-6)
    full = float((p_full * (p_full / q_full).log()).sum())
    assert bucketed <= full + 1e-9


def test_generalized_jsd_golden_and_limits():
    teacher, student = torch.tensor([[R1]]).log(), torch.tensor([[P1]]).log()
    t, s, live = with_tail(teacher, student)
    mixture = [0.55, 0.25, 0.2]
    kl_tm = sum(a * math.log(a / m) for a, m in zip(R1, mixture))
    kl_sm = sum(a * math.log(a / m) for a, m in zip(P1, mixture))
    assert generalized_jsd(t, s, live, 0.5).item() == pytest.approx(0.5 * kl_tm + 0.5 * kl_sm, abs=1e-6)
    assert generalized_jsd(t, s, live, 0.5).item() == pytest.approx(0.0073101, abs=1e-6)
    assert generalized_jsd(t, s, live, 0.0).item() == pytest.approx(0.028300, abs=1e-6)  # forward KL(T‖S)
    assert generalized_jsd(t, s, live, 1.0).item() == pytest.approx(0.030479, abs=1e-6)  # reverse KL(S‖T)


# ---- ASFT -------------------------------------------------------------------------------------------------------------
def test_asft_golden_value_and_anchor_gradient():
    batch, logits = _dist_batch()
    loss, metrics = _call("asft", batch, kl_weight=0.05, topk=0)
    dft = -(0.5 * math.log(0.5) + 0.8 * math.log(0.8))
    anchor = sum(r * math.log(r / p) for r, p in zip(R1, P1))  # token 2: identical distributions, KL 0
    assert loss.item() == pytest.approx((dft + 0.05 * anchor) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.263252, abs=1e-6)
    assert metrics["asft/kl_ref"] == pytest.approx(anchor / 2, abs=1e-6)
    loss.backward()
    # token 1: DFT grad wrt logits = −(1/N)·p_y·(e_y − p)·… ; anchor grad = (λ/N)·(p − r)
    p, r = torch.tensor(P1), torch.tensor(R1)
    dft_grad = -0.5 * (torch.tensor([1.0, 0.0, 0.0]) - p) * 0.5  # −sg(p_y)·∇log p_y / N, ∇_z log p_y = e_y − p
    torch.testing.assert_close(logits.grad[0, 0], dft_grad + 0.05 * (p - r) / 2, atol=1e-6, rtol=0)


# ---- OTR --------------------------------------------------------------------------------------------------------------
def _otr_batch(tau: float, beta: float, mode: str = "exact", samples: int = 256):
    logits = torch.tensor([[P1]]).log().requires_grad_(True)
    log_probs = torch.log_softmax(logits, -1)
    targets, mask = torch.tensor([[0]]), torch.ones(1, 1, dtype=torch.bool)
    entry = get_loss("otr")
    args = args_type(entry)(mode=mode, tau=tau, beta=beta, num_samples=samples)
    objective = Objective("otr", args)
    fields = token_fn_outputs(objective, {}, log_probs, targets, mask)
    batch = TokenBatch(logp=log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1), loss_mask=mask, **fields)
    return entry.fn(batch, args), logits


def test_otr_exact_golden():
    (loss, _), _ = _otr_batch(tau=2.0, beta=-0.1)
    q = np.sqrt(P1) / np.sqrt(P1).sum()  # softmax(log p / 2)
    term = 1.1 * q[0] * math.log(0.5) - 0.1 * float((q * np.log(P1)).sum())
    assert loss.item() == pytest.approx(-term, abs=1e-6)
    assert loss.item() == pytest.approx(0.206937, abs=1e-5)


def test_otr_at_tau_one_has_the_gradient_of_scaled_dft():
    (loss, _), logits = _otr_batch(tau=1.0, beta=-0.1)
    loss.backward()
    p = torch.tensor(P1)
    dft_grad = -0.5 * (torch.tensor([1.0, 0.0, 0.0]) - p)  # −sg(p_y)·(e_y − p)
    torch.testing.assert_close(logits.grad[0, 0], 1.1 * dft_grad, atol=1e-6, rtol=0)


def test_otr_monte_carlo_is_unbiased_for_the_exact_form():
    torch.manual_seed(0)
    k = 20_000
    (mc, _), _ = _otr_batch(tau=2.0, beta=-0.1, mode="mc", samples=k)
    (exact, _), _ = _otr_batch(tau=2.0, beta=-0.1)
    q = np.sqrt(P1) / np.sqrt(P1).sum()
    values = np.array([math.log(0.5), -0.1 * math.log(0.3), -0.1 * math.log(0.2)])  # r(a)·log π(a)
    std = math.sqrt(float((q * values ** 2).sum() - (q * values).sum() ** 2))
    assert abs(mc.item() - exact.item()) < 5 * std / math.sqrt(k)  # 5 standard errors (σ = 0.41, SE = 0.0029)


# ---- CurioSFT ---------------------------------------------------------------------------------------------------------
def test_curio_sft_golden_value_and_gradient():
    logp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    batch = TokenBatch(logp=logp, loss_mask=torch.ones(1, 1, dtype=torch.bool),
                       teacher_logp=torch.tensor([[math.log(0.4)]]))
    loss, metrics = _call("curio_sft", batch, alpha=1.0)
    assert loss.item() == pytest.approx(math.log(2) + 0.5 * math.log(1.25) ** 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.718044, abs=1e-6)
    loss.backward()
    assert logp.grad.item() == pytest.approx(-1 + math.log(1.25), abs=1e-6)  # −[1 − α(log π − log q)]


def test_curio_temperature_bisection_targets_the_boosted_entropy():
    args = CurioArgs()
    uniform = torch.zeros(1, 8)  # entropy is maximal already: no τ reaches the target → clamped at τ_max
    peaked = torch.tensor([[30.0, 0, 0, 0, 0, 0, 0, 0]])  # H0 ≈ 0 ≤ 0.03 → τ_min
    middle = torch.tensor([[3.0, 2.0, 1.0, 0.5, 0, 0, -1.0, -2.0]])
    tau = curio_temperature(torch.cat([uniform, peaked, middle]), args)
    assert tau[0].item() == pytest.approx(args.tau_max, abs=1e-6)
    assert tau[1].item() == pytest.approx(args.tau_min)
    log_p = torch.log_softmax(middle, -1)
    h0 = float(-(log_p.exp() * log_p).sum())
    target = h0 + 0.5 / (1 + math.exp(-2.0 * (h0 - 1.2)))
    heated = torch.log_softmax(middle / tau[2], -1)
    assert float(-(heated.exp() * heated).sum()) == pytest.approx(target, abs=1e-5)
    assert args.tau_min < tau[2].item() < args.tau_max


# ---- PoFT -------------------------------------------------------------------------------------------------------------
def test_poft_golden_value_and_gradient():
    logp = torch.tensor([[math.log(0.5), math.log(0.25)], [math.log(0.8), 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True], [True, False]])
    batch = TokenBatch(logp=logp, loss_mask=mask, ref_score=torch.tensor([-1.0, -0.5]),
                       normalizer=StepNormalizer.from_mask(mask))
    loss, _ = _call("poft", batch, beta=1.0, gamma=0.0)
    r1, r2 = (math.log(0.5) + math.log(0.25)) / 2, math.log(0.8)
    m1, m2 = r1 + 1.0, r2 + 0.5
    softplus = lambda x: math.log1p(math.exp(-x))  # noqa: E731  (−log σ(x))
    assert loss.item() == pytest.approx((softplus(m1) + softplus(m2)) / 2, abs=1e-6)
    loss.backward()
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = [[-sig(-m1) / 2 / 2, -sig(-m1) / 2 / 2], [-sig(-m2) / 1 / 2, 0.0]]
    torch.testing.assert_close(logp.grad, torch.tensor(expected), atol=1e-6, rtol=0)


def test_poft_ignores_rows_without_supervised_tokens():
    mask = torch.tensor([[True], [False]])
    batch = TokenBatch(logp=torch.zeros(2, 1), loss_mask=mask, ref_score=torch.tensor([0.0, float("nan")]),
                       normalizer=StepNormalizer.from_mask(mask))
    loss, _ = _call("poft", batch)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)


# ---- GKD / top-k KD ---------------------------------------------------------------------------------------------------
def test_gkd_and_topk_kl_golden():
    batch, _ = _dist_batch()
    loss, _ = _call("gkd", batch, beta=0.5, topk=0)
    assert loss.item() == pytest.approx(0.0073101 / 2, abs=1e-6)  # token 2: identical distributions
    batch, logits = _dist_batch()
    loss, _ = _call("distill_topk_kl", batch, topk=0)
    assert loss.item() == pytest.approx(0.028300 / 2, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logits.grad[0, 0], (torch.tensor(P1) - torch.tensor(R1)) / 2, atol=1e-6, rtol=0)


# ---- masked reconstruction -------------------------------------------------------------------------------------------
class _WordTokenizer:
    """Whitespace tokenizer: one id per word (decode joins with spaces)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]}

    def decode(self, ids):
        inverse = {v: k for k, v in self.vocab.items()}
        return "".join(inverse[i] + " " for i in ids)


def test_masked_reconstruction_masks_round_ratio_tokens_and_keeps_the_target(mm_dataset):
    from types import SimpleNamespace

    from mmsft.data.loaders import load_dataset
    from mmsft.data.transforms import MaskedReconstructionArgs, masked_reconstruction
    from mmsft.data.schema import Message, Part, Sample

    adapter = SimpleNamespace(tokenizer=_WordTokenizer())
    target = "one two three four five six seven eight nine ten"
    sample = Sample("s", [Message("user", (Part("text", text="Recite."),)),
                          Message("assistant", (Part("text", text=target),))])
    args = MaskedReconstructionArgs(ratio_min=0.3, ratio_max=0.3, mask_token="<m>", template="{masked}")
    out = masked_reconstruction(sample, np.random.default_rng(0), adapter, args)
    assert out.target.text == target and out.messages[0].parts[0].text == "Recite."
    masked = out.messages[0].parts[1].text.strip()
    assert masked.count("<m>") == 3  # round(0.3 · 10)
    pieces = masked.replace("<m>", " <m> ").split()  # one mask string per masked token, the rest in place
    assert len(pieces) == 10 and all(p in ("<m>", w) for p, w in zip(pieces, target.split()))
    again = masked_reconstruction(sample, np.random.default_rng(0), adapter, args)
    other = masked_reconstruction(sample, np.random.default_rng(1), adapter, args)
    assert again.messages[0].parts[1].text == out.messages[0].parts[1].text  # seeded
    assert other.messages[0].parts[1].text != out.messages[0].parts[1].text  # a new mask for a new epoch seed
    image_sample = load_dataset(mm_dataset)[0]
    rewritten = masked_reconstruction(image_sample, np.random.default_rng(0), adapter, args)
    assert rewritten.media("image") == image_sample.media("image")  # images are never touched


# ---- Prefix-RFT ------------------------------------------------------------------------------------------------------
def test_prefix_rft_trains_continuations_and_only_high_entropy_prefix_tokens():
    from mmsft.objectives.hybrid import top_entropy_tokens

    entropy = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.2, 0.0], [0.4, 0.4, 0.1, 0.0, 0.0, 0.0]])
    prefix = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    chosen = top_entropy_tokens(entropy, prefix, 0.2)  # ceil(0.2·5) = 1, ceil(0.2·3) = 1
    assert chosen.nonzero().tolist() == [[0, 1], [1, 0]]  # ties keep the earlier position
    logp = torch.zeros(2, 6, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    batch = TokenBatch(logp=logp, loss_mask=mask, old_logp=torch.zeros(2, 6), advantages=torch.tensor([1.0, -2.0]),
                       entropy=entropy, prefix_mask=prefix.float(), normalizer=StepNormalizer.combine([mask]))
    loss, metrics = _call("prefix_rft", batch)
    trained = torch.tensor([[0, 1, 0, 0, 0, 1], [1, 0, 0, 1, 1, 0]], dtype=torch.bool)
    # ratio 1: per-token loss −A; token-mean over the step's 11 supervised tokens (the normaliser of the batch)
    assert loss.item() == pytest.approx((-1.0 * 2 + 2.0 * 3) / 11, abs=1e-6)
    loss.backward()
    expected = torch.where(trained, -torch.tensor([[1.0], [-2.0]]).expand(2, 6) / 11, torch.zeros(2, 6))
    torch.testing.assert_close(logp.grad, expected)
    assert metrics["prefix_rft/selected_tokens"] == 2.0


def test_prefix_fraction_decays_by_cosine_from_max_to_min():
    from types import SimpleNamespace

    from mmsft.objectives.hybrid import PrefixRFTArgs
    from mmsft.train.prefix_producer import PrefixRFTProducer

    fake = SimpleNamespace(args=PrefixRFTArgs(), total_steps=8, state={"rollout_batches": 0},
                           builder=SimpleNamespace(steps_per_rollout=lambda: 2))
    values = []
    for batches in (0, 1, 2, 4, 9):
        fake.state["rollout_batches"] = batches
        values.append(PrefixRFTProducer.prefix_fraction(fake))
    mid = 0.05 + 0.9 * 0.5 * (1 + math.cos(math.pi * 2 / 8))
    assert values == pytest.approx([0.95, mid, 0.5, 0.05, 0.05])


def test_soft_is_the_mean_ce_over_exits():
    exits = torch.tensor([[[math.log(0.5), math.log(0.25)], [math.log(0.8), math.log(0.4)]]], requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    batch = TokenBatch(logp=exits[..., -1], loss_mask=mask, extras={"exit_logp": exits})
    loss, metrics = _call("soft", batch)
    nll = [-(math.log(0.5) + math.log(0.8)) / 2, -(math.log(0.25) + math.log(0.4)) / 2]
    assert loss.item() == pytest.approx(sum(nll) / 2, abs=1e-6)
    assert [metrics["soft/nll_exit0"], metrics["soft/nll_exit1"]] == pytest.approx(nll, abs=1e-6)


# ---- IFT --------------------------------------------------------------------------------------------------------------
def test_ift_propagated_weights_golden():
    logp = torch.tensor([[-2.0, -1.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    batch = TokenBatch(logp=logp, loss_mask=mask, normalizer=StepNormalizer.from_mask(mask),
                       policy_argmax=torch.zeros(1, 3, dtype=torch.long))
    loss, metrics = _call("ift", batch, gamma=0.5)
    # c = nll / L = [1, 0.5]; w = [1 + 0.5·0.5, 0.5] = [1.25, 0.5], rescaled to sum L = 2: [1.428571, 0.571429]
    assert loss.item() == pytest.approx((2 * 1.25 / 1.75 * 2 + 1 * 0.5 / 1.75 * 2) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(1.714286, abs=1e-6)
    assert metrics["ift/weight_max"] == pytest.approx(2 * 1.25 / 1.75, abs=1e-6)
    plain, _ = _call("ift", TokenBatch(logp=logp, loss_mask=mask, normalizer=StepNormalizer.from_mask(mask),
                                       policy_argmax=torch.zeros(1, 3, dtype=torch.long)), gamma=0.0)
    assert plain.item() == pytest.approx(1.5)  # γ = 0: uniform weights, the mean NLL
