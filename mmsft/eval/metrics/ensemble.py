"""Self-ensembling over input variants of one model (Li et al., "On Task Performance and Model Calibration with
Supervised and Self-Ensembled In-Context Learning", arXiv 2312.13772): each component is the label distribution the
model gives one prompt variant (template / in-context set) of the same input; the ensemble combines them.

* ``mean``: average the distributions.
* ``max``: per label, the maximum probability over components, renormalised (the paper's best-calibrated choice).
* ``vote``: majority vote of the components' argmax labels (ties → the lowest label index); the distributions of the
  components that agree with the vote are averaged.
"""

from __future__ import annotations

from typing import Sequence

import torch

COMBINE_METHODS = ("max", "mean", "vote")


def combine(probs: torch.Tensor | Sequence[Sequence[Sequence[float]]], method: str = "max") -> torch.Tensor:
    """(K components, N inputs, L labels) probabilities → (N, L) ensemble distribution."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.dim() != 3 or p.shape[0] < 1 or p.shape[2] < 1:
        raise ValueError(f"combine: expected probabilities shaped (components, inputs, labels), got {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError("combine: probabilities must be finite and non-negative")
    if method == "mean":
        return p.mean(0)
    if method == "max":
        top = p.max(0).values
        return top / top.sum(-1, keepdim=True).clamp_min(1e-300)
    if method == "vote":
        votes = p.argmax(-1)  # (K, N)
        counts = torch.nn.functional.one_hot(votes, p.shape[2]).sum(0)  # (N, L)
        winner = counts.argmax(-1)  # first maximal index on ties
        agree = (votes == winner.unsqueeze(0)).to(p.dtype)  # (K, N)
        return (p * agree.unsqueeze(-1)).sum(0) / agree.sum(0).unsqueeze(-1)
    raise ValueError(f"combine: unknown method {method!r}; expected one of {', '.join(COMBINE_METHODS)}")
