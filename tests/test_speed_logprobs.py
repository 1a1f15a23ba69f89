"""Chunked / fused log-probs equal the full-logits computation (values, entropy, gradients of hidden states, head
weight and bias), and positions without supervised tokens never reach the LM head.

Tolerances: the same fp32 arithmetic in a different order (chunked log-sum-exp, gradients accumulated chunk by chunk),
so agreement to fp32 rounding: rtol 1e-5 / atol 1e-6 on O(1) values.
"""

from __future__ import annotations

import pytest
import torch

import mmsft.models.logprobs as module
from mmsft.models.logprobs import head_logprobs


def _case(seed: int, vocab: int = 50, hidden: int = 12, bias: bool = True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(3, 9, hidden, generator=g)
    head = torch.nn.Linear(hidden, vocab, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=g))
        if bias:
            head.bias.copy_(torch.randn(vocab, generator=g))
    ids = torch.randint(0, vocab, (3, 9), generator=g)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 2:9] = True
    mask[2, 4:6] = True  # row 1 has no supervised token
    return h, head, ids, mask


def _full(h, head, ids, mask, temperature, softcap):
    logits = head(h).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    log_probs = torch.log_softmax(logits[:, :-1] / temperature, -1)
    logp = torch.zeros(ids.shape)
    logp[:, 1:] = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = torch.zeros(ids.shape)
    entropy[:, 1:] = -(log_probs.exp() * log_probs).sum(-1)
    return logp * mask, entropy * mask


@pytest.mark.parametrize("temperature,softcap,bias", [(1.0, None, True), (0.7, None, False), (1.3, 5.0, True)])
def test_fused_head_equals_full_logits(monkeypatch, temperature, softcap, bias):
    monkeypatch.setattr(module, "_RECOMPUTE_ABOVE_BYTES", -1)  # take the fused path at a small vocabulary
    monkeypatch.setattr(module, "_CHUNK_LOGITS_BYTES", 3 * 50 * 4)  # 3-token chunks: several per batch
    h, head, ids, mask = _case(0, bias=bias)
    ref_head = torch.nn.Linear(12, 50, bias=bias)
    ref_head.load_state_dict(head.state_dict())
    h1, h2 = h.clone().requires_grad_(True), h.clone().requires_grad_(True)
    out = head_logprobs(h1, ids, mask, head, temperature=temperature, softcap=softcap, with_entropy=True)
    logp, entropy = _full(h2, ref_head, ids, mask, temperature, softcap)
    torch.testing.assert_close(out.logp, logp, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.entropy, entropy, rtol=1e-5, atol=1e-6)
    weights = torch.linspace(-1, 1, ids.numel()).view(ids.shape)  # arbitrary upstream gradients, both outputs
    ((out.logp * weights).sum() + 0.3 * out.entropy.sum()).backward()
    ((logp * weights).sum() + 0.3 * entropy.sum()).backward()
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.weight.grad, ref_head.weight.grad, rtol=1e-5, atol=1e-6)
    if bias:
        torch.testing.assert_close(head.bias.grad, ref_head.bias.grad, rtol=1e-5, atol=1e-6)


def test_fused_path_is_taken_for_a_large_vocabulary(monkeypatch):
    calls = []
    from mmsft.models import fused_head

    real = fused_head.FusedHeadLogprob.apply
    monkeypatch.setattr(fused_head.FusedHeadLogprob, "apply", lambda *a: calls.append(a[0].shape) or real(*a))
    g = torch.Generator().manual_seed(1)
    vocab = 152_000  # Qwen-sized: 64 MB of logits per chunk → 110-token chunks, recomputed
    head = torch.nn.Linear(8, vocab, bias=False)
    h = torch.randn(2, 6, 8, generator=g, requires_grad=True)
    ids = torch.randint(0, vocab, (2, 6), generator=g)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 3:] = True
    out = head_logprobs(h, ids, mask, head)
    assert calls == [torch.Size([3, 8])]  # only the 3 supervised positions reach the head
    ref, _ = _full(h, head, ids, mask, 1.0, None)
    torch.testing.assert_close(out.logp, ref, rtol=1e-5, atol=1e-5)


def test_unsupervised_positions_never_reach_the_head():
    h, head, ids, mask = _case(2)
    rows = []
    hook = head.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    head_logprobs(h, ids, mask, head, chunk_size=4)
    hook.remove()
    assert sum(rows) == int(mask.sum()) and max(rows) <= 4
