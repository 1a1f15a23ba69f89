"""UDS — Utility-Diversity Sampling, online batch selection (Zou et al., arXiv 2510.16882).

For a candidate pool with logits L_i ∈ R^{T_i×V} at the supervised positions (no-grad pass of the current model):

* utility u_i = ‖L_i‖_* (nuclear norm), computed as Σ sqrt(eig(L_i L_iᵀ)) through the T×T Gram (V ≫ T);
* embedding e_i = FJLT(L_i): rows zero-padded to ``t_max`` (longer ones truncated — for the embedding only), a
  random ±1 sign flip on V, orthonormal FFT along V, ``r2`` random columns scaled √(V/r2), a sign flip on T,
  orthonormal FFT along T, ``r1`` random rows scaled √(t_max/r1); real and imaginary parts flattened (2·r1·r2);
* inter-sample diversity d_i = mean_q ‖e_i − e_q‖₂ over a FIFO memory of previously *selected* embeddings (0 when
  empty); score s_i = u_i + α·d_i (``normalize``: z-score u and d within the pool first);
* keep the top ``keep`` of each pool (ties → earlier candidate); push their embeddings into the memory.

Deviation from the released code (documented in the spec): only supervised positions are scored (the code scores the
padded prompt too). The memory is part of the producer state (checkpoints; resume is exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from mmsft.config_base import _f
from mmsft.data.selectors.base import OnlineDecision, SelectionEnv, TokenStats, register_selector


@dataclass
class UDSArgs:
    pool: int = _f(4, "Candidates scored per kept sample (the paper's micro-batch of 4 with keep 1: 25 % budget).",
                   ge=1)
    alpha: float = _f(2.5e-3, "Weight α of the diversity term.", ge=0)
    queue: int = _f(1024, "FIFO memory of selected embeddings.", ge=1)
    r1: int = _f(128, "FJLT rows kept along T.", ge=1)
    r2: int = _f(8, "FJLT columns kept along V.", ge=1)
    t_max: int = _f(512, "Sequence length the logits are padded / truncated to for the embedding.", ge=1)
    normalize: bool = _f(False, "z-normalise utility and diversity within each pool before adding them.")
    start_step: int = _f(0, "Steps trained on the first drawn samples before selection starts.", ge=0)


def nuclear_norm(logits: torch.Tensor) -> float:
    """‖L‖_* through the smaller Gram matrix (float64)."""
    m = logits.double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    return float(torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().sum())


class FJLT:
    """The fixed random projection (seeded once per run)."""

    def __init__(self, vocab: int, t_max: int, r1: int, r2: int, seed: int) -> None:
        if r1 > t_max or r2 > vocab:
            raise ValueError(f"UDS needs r1 <= t_max and r2 <= vocab size, got r1={r1}, t_max={t_max}, r2={r2}, "
                             f"V={vocab}")
        g = torch.Generator().manual_seed(seed)
        self.sign_v = torch.randint(0, 2, (vocab,), generator=g).double() * 2 - 1
        self.sign_t = torch.randint(0, 2, (t_max,), generator=g).double() * 2 - 1
        self.cols = torch.randperm(vocab, generator=g)[:r2]
        self.rows = torch.randperm(t_max, generator=g)[:r1]
        self.vocab, self.t_max, self.r1, self.r2 = vocab, t_max, r1, r2

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        m = logits.double()[: self.t_max]
        if m.shape[1] != self.vocab:
            raise ValueError(f"UDS: logits have {m.shape[1]} columns, the projection was built for {self.vocab}")
        padded = torch.zeros(self.t_max, self.vocab, dtype=torch.float64)
        padded[: m.shape[0]] = m
        x = torch.fft.fft(padded * self.sign_v, dim=1, norm="ortho")[:, self.cols] * math.sqrt(self.vocab / self.r2)
        x = torch.fft.fft(x * self.sign_t[:, None], dim=0, norm="ortho")[self.rows] * math.sqrt(self.t_max / self.r1)
        return torch.view_as_real(x).flatten()


def uds_scores(utility: torch.Tensor, embeddings: torch.Tensor, memory: torch.Tensor, alpha: float,
               normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(score, diversity) of a pool: s = u + α·d with d the mean distance to the memory rows (0 if empty)."""
    if memory.numel():
        diversity = torch.cdist(embeddings.double(), memory.double()).mean(-1)
    else:
        diversity = torch.zeros(len(utility), dtype=torch.float64)
    u = utility.double()
    if normalize:
        def z(x: torch.Tensor) -> torch.Tensor:
            return (x - x.mean()) / x.std(unbiased=False) if len(x) > 1 and float(x.std()) > 0 else x * 0
        return z(u) + alpha * z(diversity), diversity
    return u + alpha * diversity, diversity


def top_k(scores: torch.Tensor, k: int) -> list[int]:
    """Indices of the k largest scores, ties broken by the earlier index, returned in pool order."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])


class UDSSelector:
    needs_logits = True

    def __init__(self, args: UDSArgs, env: SelectionEnv) -> None:
        self.args, self.seed = args, env.seed
        self.memory: list[list[float]] = []
        self._fjlt: FJLT | None = None

    def pool_size(self, samples_per_step: int) -> int:
        return samples_per_step * self.args.pool

    def select(self, stats: list[TokenStats], step: int) -> OnlineDecision:
        keep_n = max(1, len(stats) // self.args.pool)
        if step < self.args.start_step:
            return OnlineDecision(keep=list(range(keep_n)), reasons={"kept_warmup": keep_n,
                                                                     "dropped_warmup": len(stats) - keep_n})
        if self._fjlt is None:
            self._fjlt = FJLT(stats[0].logits.shape[1], self.args.t_max, self.args.r1, self.args.r2, self.seed)
        utility = torch.tensor([nuclear_norm(s.logits) for s in stats], dtype=torch.float64)
        embeddings = torch.stack([self._fjlt(s.logits) for s in stats])
        memory = torch.tensor(self.memory, dtype=torch.float64) if self.memory else torch.zeros(0)
        scores, diversity = uds_scores(utility, embeddings, memory, self.args.alpha, self.args.normalize)
        keep = top_k(scores, keep_n)
        self.memory = (self.memory + [embeddings[i].tolist() for i in keep])[-self.args.queue:]
        return OnlineDecision(keep=keep, reasons={"kept_top_score": len(keep),
                                                  "dropped_low_score": len(stats) - len(keep)},
                              scores={"utility_kept": float(utility[keep].mean()),
                                      "utility_pool": float(utility.mean()),
                                      "diversity_kept": float(diversity[keep].mean())})

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory = [list(map(float, row)) for row in state.get("memory", [])]


@register_selector("uds", kind="online", args=UDSArgs)
def uds(args: UDSArgs, env: SelectionEnv) -> UDSSelector:
    """UDS online batch selection (arXiv 2510.16882): keep the pool's top utility + α·diversity candidates."""
    return UDSSelector(args, env)
