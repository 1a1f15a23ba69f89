"""Algorithms as compositions: a preset names a sampling filter, an advantage estimator, a policy loss with its own
arguments, a KL term and an optional SFT term, with the paper's defaults (Trinity-RFT's ``AlgorithmType`` is the
model; values and sources: ../shared/reference/objectives_rl.md). Every component stays overridable
(``objective.args.clip_high=0.28``, ``objective.kl.coef=0``, ``rl.advantage=rloo``, ``rl.dynamic_sampling=true``).

A plugin adds an algorithm with :func:`register_algorithm`::

    register_algorithm("my_algo", stage="rl", rl={"advantage": "grpo"},
                       objective={"name": "my_loss", "args": {"tau": 0.5}})
"""

from __future__ import annotations

import copy
from typing import Any

from mmsft.config_base import ConfigError
from mmsft.registry import Registry, RegistryError

ALGORITHMS: Registry = Registry("algorithm preset")


def register_algorithm(name: str, stage: str = "rl", **sections: dict[str, Any]) -> None:
    """Register a preset: the config sections it sets (``rl``, ``objective``, ``mix``, ...) and its stage."""
    ALGORITHMS.add(name, {"stage": stage, **sections})


def _clip(low: float, high: float, **extra: Any) -> dict[str, Any]:
    return {"clip_low": low, "clip_high": high, **extra}


def _kl(coef: float, estimator: str = "k3", placement: str = "loss") -> dict[str, Any]:
    return {"coef": coef, "estimator": estimator, "placement": placement}


# GRPO — Shao et al., DeepSeekMath, arXiv 2402.03300: group-normalised advantages, clip 0.2, k3 KL as a loss
# (β 0.04), per-sequence token mean.
register_algorithm("grpo", rl={"advantage": "grpo"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "seq-mean-token-mean", "args": _clip(0.2, 0.2),
                              "kl": _kl(0.04)})
# DAPO — Yu et al., arXiv 2503.14476: clip-higher 0.2/0.28, token-mean over the step, no KL, dynamic sampling,
# overlong filtering and soft overlong punishment.
register_algorithm("dapo", rl={"advantage": "grpo", "dynamic_sampling": True, "overlong_filter": True,
                               "soft_overlong_cache": -1},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean", "args": _clip(0.2, 0.28),
                              "kl": _kl(0.0)})
# Dr.GRPO — Liu et al., arXiv 2503.20783: no std division, constant normaliser B·T_max (T_max = generation cap).
register_algorithm("dr_grpo", rl={"advantage": "dr_grpo"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "seq-mean-token-sum-norm", "args": _clip(0.2, 0.2),
                              "kl": _kl(0.0)})
# GSPO — Zheng et al., arXiv 2507.18071: sequence-level ratio, clip 3e-4/4e-4, 4 mini-batches per rollout batch.
register_algorithm("gspo", rl={"advantage": "grpo", "mini_batches": 4},
                   objective={"name": "gspo", "loss_agg_mode": "seq-mean-token-mean", "args": _clip(3e-4, 4e-4),
                              "kl": _kl(0.0)})
# RLOO — Ahmadian et al., arXiv 2402.14740: leave-one-out baseline, KL in the reward (k1).
register_algorithm("rloo", rl={"advantage": "rloo"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean", "args": _clip(0.2, 0.2),
                              "kl": _kl(0.05, "k1", "reward")})
# REINFORCE++ — Hu et al., arXiv 2501.03262: token-level k1 KL in the reward, returns, global whitening, clip 0.2.
register_algorithm("reinforce_pp", rl={"advantage": "reinforce_pp"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean", "args": _clip(0.2, 0.2),
                              "kl": _kl(0.01, "k1", "reward")})
# REINFORCE++-baseline — same paper: group-mean baseline, global whitening, k2 KL as a loss (1e-3), clip 0.2/0.27.
register_algorithm("reinforce_pp_baseline", rl={"advantage": "reinforce_pp_baseline"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean", "args": _clip(0.2, 0.27),
                              "kl": _kl(1e-3, "k2")})
# On-policy distillation — Agarwal et al. arXiv 2306.13649; Lu et al. (Thinking Machines, 2025); VLA-OPD
# arXiv 2603.26666: per-token reverse-KL advantage against a teacher, importance-sampled policy gradient.
register_algorithm("opd", rl={"advantage": "opd", "advantage_args": {"coef": 1.0}},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean", "args": _clip(0.2, 0.2),
                              "kl": _kl(0.0)})
# CISPO — MiniMax-M1, arXiv 2506.13585: clipped, detached importance weight; never zeroes a token's gradient.
register_algorithm("cispo", rl={"advantage": "grpo"},
                   objective={"name": "cispo", "loss_agg_mode": "token-mean", "args": {"clip_high": 4.0},
                              "kl": _kl(0.0)})
# CHORD-φ — Zhang et al., arXiv 2508.11408 (Trinity-RFT mix_chord.yaml): GRPO on rollouts + φ-weighted SFT on expert
# rows mixed into every step (stage mix), constant μ = 0.1, PPO clip 0.2, no KL, token-mean.
register_algorithm("chord", stage="mix", rl={"advantage": "grpo"},
                   objective={"name": "chord", "loss_agg_mode": "token-mean", "kl": _kl(0.0),
                              "args": {"mu_peak": 0.1, "mu_valley": 0.1, "mu_warmup_steps": 0, "mu_decay_steps": 0,
                                       "phi": True, "clip_low": 0.2, "clip_high": 0.2}})
# CHORD-μ — same paper: μ decays from 0.9 to 0.05 over 200 steps (cosine), φ off (plain NLL on expert tokens).
register_algorithm("chord_mu", stage="mix", rl={"advantage": "grpo"},
                   objective={"name": "chord", "loss_agg_mode": "token-mean", "kl": _kl(0.0),
                              "args": {"mu_peak": 0.9, "mu_valley": 0.05, "mu_warmup_steps": 0,
                                       "mu_decay_steps": 200, "phi": False, "clip_low": 0.2, "clip_high": 0.2}})


def preset(name: str) -> dict[str, Any]:
    """The nested config values of an algorithm preset (``stage`` and ``algorithm`` included)."""
    try:
        values = copy.deepcopy(ALGORITHMS.get(name).fn)
    except RegistryError as exc:
        raise ConfigError(f"config key 'algorithm': {exc}") from None
    return {"algorithm": name, **values}


# ---- the objective zoo (issue 14; specs: ../shared/reference/objectives_sft.md, objectives_rl.md) -----------------
# ASFT — Zhu et al., arXiv 2509.23753 (ICLR 2026): DFT + λ·KL(π_ref‖π_θ) to the frozen base, λ = 0.05 (paper).
register_algorithm("asft", stage="sft", objective={"name": "asft", "loss_agg_mode": "token-mean",
                                                   "args": {"kl_weight": 0.05, "topk": 256}})
# ASFT's cheap label-only variant (Palmyra x6 report): DFT + k3 KL on the target token as a loss.
register_algorithm("asft_k3", stage="sft", objective={"name": "dft", "loss_agg_mode": "token-mean",
                                                      "kl": _kl(0.05, "k3", "loss")})
# OTR — Ming et al., arXiv 2509.26313: exact closed form; τ and β unverified (τ > 1, β slightly negative).
register_algorithm("otr", stage="sft", objective={"name": "otr", "loss_agg_mode": "token-mean",
                                                  "args": {"mode": "exact", "tau": 1.2, "beta": -0.1}})
# CurioSFT — Wang et al., arXiv 2602.02244: CE + K2 to a lagged self-teacher (sync every 5 steps, α 0.99) heated to
# τ_t ∈ [1.1, 1.5] per token.
register_algorithm("curio_sft", stage="sft", rl={"teacher": "mmsft.train.self_teacher:curio_teacher"},
                   objective={"name": "curio_sft", "loss_agg_mode": "token-mean",
                              "args": {"alpha": 1.0, "tau_min": 1.1, "tau_max": 1.5, "sync_every": 5, "mix": 0.99}})
# PoFT — Fan et al., arXiv 2412.12865: −log σ(β(r_θ − r̄) + γ), β = 1, γ = 0; r̄ offline in meta.ref_score.
register_algorithm("poft", stage="sft", objective={"name": "poft", "args": {"beta": 1.0, "gamma": 0.0}})
# Masked fine-tuning — Pan et al., arXiv 2510.09885: CE on masked-reconstruction rewrites, r ~ U(0.05, 0.95).
register_algorithm("masked_ft", stage="sft", objective={"name": "masked_ft", "loss_agg_mode": "token-mean",
                                                        "args": {"ratio_min": 0.05, "ratio_max": 0.95}})
# GKD — Agarwal et al., arXiv 2306.13649 (TRL GKDTrainer defaults): λ 0.5, β 0.5, temperature 0.9, 128 new tokens.
register_algorithm("gkd", stage="gkd", rl={"temperature": 0.9, "max_new_tokens": 128},
                   objective={"name": "gkd", "loss_agg_mode": "token-mean",
                              "args": {"beta": 0.5, "lmbda": 0.5, "topk": 256}})
# Supervised forward top-k KD on dataset targets (Hinton et al. arXiv 1503.02531; Kim & Rush arXiv 1606.07947).
register_algorithm("kd_topk", stage="sft", objective={"name": "distill_topk_kl", "loss_agg_mode": "token-mean",
                                                      "args": {"topk": 64}})
# Prefix-RFT — Huang et al., arXiv 2507.01679: demonstration-prefixed rollouts in every group (prefix fraction cosine
# 0.95 → 0.05), top-20 % entropy prefix tokens trained, Dr.GRPO advantages with a constant normaliser.
register_algorithm("prefix_rft", stage="prefix_rft", rl={"advantage": "dr_grpo"},
                   objective={"name": "prefix_rft", "loss_agg_mode": "seq-mean-token-sum-norm", "kl": _kl(0.0),
                              "args": {"entropy_ratio": 0.2, "prefix_max": 0.95, "prefix_min": 0.05,
                                       "num_prefixed": 1, "clip_low": 0.2, "clip_high": 0.2}})
# SoFT / Sorted LLaMA — Kavehzadeh et al., arXiv 2309.08968: mean CE over sub-model exits (shared norm + head).
register_algorithm("soft", stage="sft", objective={"name": "soft", "loss_agg_mode": "token-mean", "args": {"exits": ""}})
# IFT — Hua et al., arXiv 2405.11870: temporal residual λ 0.2 on the inputs, discounted loss propagation γ 0.95.
register_algorithm("ift", stage="sft", objective={"name": "ift", "args": {"lam": 0.2, "gamma": 0.95}})
# LfU — Nam et al., arXiv 2511.13052 (AAAI 2026): CE + λ·hidden-state consistency under a normalised gradient-ascent
# parameter step of norm α on a second random batch; released LoRA-mode scripts: α 0.1, λ 5, every layer.
register_algorithm("lfu", stage="sft", objective={"name": "lfu", "loss_agg_mode": "token-mean",
                                                  "args": {"lam": 5.0, "alpha": 0.1}})
# Self-Rewarding PPO — Zhang et al., arXiv 2510.21090: coherent reward Σ(log π_SFT − log π_base) at the last token,
# PPO with a value head and GAE (TRL PPO defaults: γ 1, λ 0.95, clip 0.2, value clip 0.2, c_v 0.1, KL 0.05 k1 in the
# reward). Set rl.teacher to the pre-SFT base model; the run's starting model is π_SFT (the reference).
register_algorithm("srppo", rl={"advantage": "srppo_gae", "advantage_args": {"gamma": 1.0, "lam": 0.95}},
                   objective={"name": "srppo", "loss_agg_mode": "token-mean", "kl": _kl(0.05, "k1", "reward"),
                              "args": {"clip_low": 0.2, "clip_high": 0.2, "vf_coef": 0.1, "cliprange_value": 0.2}})
