"""Q-Tuning — joint sample and token pruning on the Error-Uncertainty plane (Wang et al., arXiv 2509.23873).

Per candidate pool (no-grad pass of the current model), over the supervised positions of each sample:
PPL = exp(mean −log p_t), Ent = mean H(p(·|s_t)). With quantile levels α (PPL) and β (Ent):

* Q1 high PPL & high Ent (noise) → drop;  Q3 low PPL & low Ent (redundant) → drop;
* Q2 high PPL & low Ent (confident errors) → keep, token-pruned;  Q4 low PPL & high Ent (calibration) → keep whole;
* anything between the quantiles → drop (``dropped_middle``).

"high" = strictly above the (1−α) quantile, "low" = strictly below the α quantile (linear interpolation). α = β are
bisected jointly in [0, 0.5] for ``iterations`` rounds, moving toward smaller quantiles when the kept fraction
|Q2 ∪ Q4| / |pool| exceeds ``sample_ratio`` and toward larger ones otherwise; the last midpoint's partition is used.
Token pruning (Q2 only): PPL_i = 1/p_i, s_i = (1−λ)·PPL_i + λ·(PPL_{i−1} + PPL_{i+1}) (edge tokens use their one
neighbour); keep the ⌊token_ratio·n⌋ (at least 1) *lowest* s_i — the paper's figure, reversed-PPL ablation and both
re-implementations keep the low-score tokens. Pruned tokens keep their context; only their loss is masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mmsft.config_base import _f
from mmsft.data.selectors.base import OnlineDecision, SelectionEnv, TokenStats, register_selector


@dataclass
class QTuningArgs:
    sample_ratio: float = _f(0.25, "Target kept fraction r_sample of each pool.", gt=0, le=1)
    token_ratio: float = _f(0.5, "Kept fraction r_token of a Q2 sample's supervised tokens.", gt=0, le=1)
    smoothing: float = _f(0.5, "λ of the neighbour-smoothed token score.", ge=0, le=1)
    iterations: int = _f(10, "Bisection rounds on the quantile level.", ge=1)
    pool: int = _f(4, "Candidates drawn per trained sample slot (pool = pool × samples per step).", ge=1)


def quadrants(ppl: torch.Tensor, ent: torch.Tensor, level: float) -> list[str]:
    """Quadrant of each sample at quantile level α = β = ``level``: q1 / q2 / q3 / q4 / middle."""
    p, e = ppl.double(), ent.double()
    p_lo, p_hi = torch.quantile(p, level), torch.quantile(p, 1 - level)
    e_lo, e_hi = torch.quantile(e, level), torch.quantile(e, 1 - level)
    out = []
    for pi, ei in zip(p.tolist(), e.tolist()):
        high_p, low_p, high_e, low_e = pi > p_hi, pi < p_lo, ei > e_hi, ei < e_lo
        out.append("q1" if high_p and high_e else "q2" if high_p and low_e else "q3" if low_p and low_e
                   else "q4" if low_p and high_e else "middle")
    return out


def bisect_quadrants(ppl: torch.Tensor, ent: torch.Tensor, sample_ratio: float,
                     iterations: int = 10) -> tuple[list[str], float]:
    """(quadrant per sample, level) after bisecting α = β in [0, 0.5] toward ``sample_ratio`` kept."""
    lo, hi = 0.0, 0.5
    labels, level = [], 0.25
    for _ in range(iterations):
        level = (lo + hi) / 2
        labels = quadrants(ppl, ent, level)
        kept = sum(q in ("q2", "q4") for q in labels) / len(labels)
        if kept > sample_ratio:
            hi = level
        else:
            lo = level
    return labels, level


def prune_tokens(logp: torch.Tensor, token_ratio: float, smoothing: float) -> torch.Tensor:
    """Bool mask over a sample's target tokens: the ⌊ratio·n⌋ (≥ 1) lowest neighbour-smoothed PPL scores."""
    ppl = torch.exp(-logp.double())
    neighbours = torch.zeros_like(ppl)
    neighbours[1:] += ppl[:-1]
    neighbours[:-1] += ppl[1:]
    score = (1 - smoothing) * ppl + smoothing * neighbours
    n = len(score)
    keep_n = max(1, math.floor(token_ratio * n))
    order = sorted(range(n), key=lambda i: (float(score[i]), i))[:keep_n]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order] = True
    return mask


class QTuningSelector:
    needs_logits = False

    def __init__(self, args: QTuningArgs, env: SelectionEnv) -> None:
        self.args = args

    def pool_size(self, samples_per_step: int) -> int:
        return samples_per_step * self.args.pool

    def select(self, stats: list[TokenStats], step: int) -> OnlineDecision:
        ppl = torch.stack([torch.exp(-s.logp.double().mean()) for s in stats])
        ent = torch.stack([s.entropy.double().mean() for s in stats])
        labels, level = bisect_quadrants(ppl, ent, self.args.sample_ratio, self.args.iterations)
        keep = [i for i, q in enumerate(labels) if q in ("q2", "q4")]
        token_keep = {i: prune_tokens(stats[i].logp, self.args.token_ratio, self.args.smoothing)
                      for i in keep if labels[i] == "q2"}
        names = {"q1": "dropped_q1_noise", "q2": "kept_q2_pruned", "q3": "dropped_q3_redundant",
                 "q4": "kept_q4_calibration", "middle": "dropped_middle"}
        reasons: dict[str, int] = {}
        for q in labels:
            reasons[names[q]] = reasons.get(names[q], 0) + 1
        pruned = sum(int((~m).sum()) for m in token_keep.values())
        return OnlineDecision(keep=keep, reasons=reasons, token_keep=token_keep,
                              scores={"quantile_level": level, "tokens_pruned": float(pruned)})

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@register_selector("q_tuning", kind="online", args=QTuningArgs)
def q_tuning(args: QTuningArgs, env: SelectionEnv) -> QTuningSelector:
    """Q-Tuning (arXiv 2509.23873): keep Q2 (token-pruned) and Q4 of the error-uncertainty plane."""
    return QTuningSelector(args, env)
