"""Chunked response log-probs equal the naive full-logits computation, values and gradients."""

from __future__ import annotations

import pytest
import torch

from mmsft.models.logprobs import head_logprobs, naive_logprobs


def _setup(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 7, 8, generator=g)
    head = torch.nn.Linear(8, 11, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(11, 8, generator=g))
    ids = torch.randint(0, 11, (3, 7), generator=g)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, 3:6] = True
    mask[1, 1:7] = True
    mask[2, 5] = True
    return hidden, head, ids, mask


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_matches_naive(chunk_size: int, recompute: bool, monkeypatch) -> None:
    import mmsft.models.logprobs as module

    monkeypatch.setattr(module, "_RECOMPUTE_ABOVE_BYTES", -1 if recompute else 2**62)
    hidden, head, ids, mask = _setup()
    h1 = hidden.clone().requires_grad_(True)
    ours = head_logprobs(h1, ids, mask, head, chunk_size=chunk_size, with_entropy=True)
    h2 = hidden.clone().requires_grad_(True)
    logits = head(h2)
    ref = naive_logprobs(logits, ids, mask)
    torch.testing.assert_close(ours.logp, ref, rtol=1e-5, atol=1e-6)
    log_probs = torch.log_softmax(logits[:, :-1], -1)
    entropy = torch.zeros(3, 7)
    entropy[:, 1:] = -(log_probs.exp() * log_probs).sum(-1)
    torch.testing.assert_close(ours.entropy, entropy * mask, rtol=1e-5, atol=1e-6)
    ours.logp.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-6)


def test_vocab_subset_and_temperature() -> None:
    hidden, head, ids, mask = _setup(1)
    subset = torch.tensor([2, 5, 7, 9])
    ids = subset[torch.randint(0, 4, ids.shape, generator=torch.Generator().manual_seed(3))]
    out = head_logprobs(hidden, ids, mask, head, vocab_subset=subset, temperature=2.0)
    logits = head(hidden)[..., subset] / 2.0
    lookup = {int(v): i for i, v in enumerate(subset)}
    targets = torch.tensor([[lookup[int(v)] for v in row] for row in ids])
    expected = torch.log_softmax(logits[:, :-1], -1).gather(-1, targets[:, 1:].unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out.logp[:, 1:], expected * mask[:, 1:], rtol=1e-5, atol=1e-6)
    bad = ids.clone()
    bad[0, 4] = 0
    with pytest.raises(ValueError, match="outside vocab_subset"):
        head_logprobs(hidden, bad, mask, head, vocab_subset=subset)


def test_rejects_position_zero() -> None:
    hidden, head, ids, mask = _setup()
    mask[0, 0] = True
    with pytest.raises(ValueError, match="position 0"):
        head_logprobs(hidden, ids, mask, head)
