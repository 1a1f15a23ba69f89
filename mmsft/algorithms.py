"""RL algorithm presets: a name expands to the paper's defaults; every key can still be overridden.

Each preset is a composition — advantage estimator, policy loss, aggregation, clip range, KL placement, sampling
strategy — in the spirit of Trinity-RFT's algorithm package. Values and sources: ../shared/reference/objectives_rl.md.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # GRPO — Shao et al., DeepSeekMath, arXiv 2402.03300: group-normalised advantages, clip 0.2, k3 KL as a loss
    # (β 0.04), per-sequence token mean.
    "grpo": {"rl": {"advantage": "grpo"},
             "objective": {"name": "ppo_clip", "loss_agg_mode": "seq-mean-token-mean", "clip_low": 0.2, "clip_high": 0.2,
                           "kl_coef": 0.04, "kl_estimator": "k3", "kl_placement": "loss"}},
    # DAPO — Yu et al., arXiv 2503.14476: clip-higher 0.2/0.28, token-mean over the step, no KL, dynamic sampling,
    # overlong filtering and soft overlong punishment.
    "dapo": {"rl": {"advantage": "grpo", "dynamic_sampling": True, "overlong_filter": True, "soft_overlong_cache": -1},
             "objective": {"name": "ppo_clip", "loss_agg_mode": "token-mean", "clip_low": 0.2, "clip_high": 0.28,
                           "kl_coef": 0.0}},
    # Dr.GRPO — Liu et al., arXiv 2503.20783: no std division, constant normaliser B·T_max (T_max = generation cap).
    "dr_grpo": {"rl": {"advantage": "dr_grpo"},
                "objective": {"name": "ppo_clip", "loss_agg_mode": "seq-mean-token-sum-norm", "clip_low": 0.2,
                              "clip_high": 0.2, "kl_coef": 0.0}},
    # GSPO — Zheng et al., arXiv 2507.18071: sequence-level ratio, clip 3e-4/4e-4, 4 mini-batches per rollout batch.
    "gspo": {"rl": {"advantage": "grpo", "mini_batches": 4},
             "objective": {"name": "gspo", "loss_agg_mode": "seq-mean-token-mean", "clip_low": 3e-4, "clip_high": 4e-4,
                           "kl_coef": 0.0}},
    # RLOO — Ahmadian et al., arXiv 2402.14740: leave-one-out baseline, KL in the reward (k1).
    "rloo": {"rl": {"advantage": "rloo"},
             "objective": {"name": "ppo_clip", "loss_agg_mode": "token-mean", "clip_low": 0.2, "clip_high": 0.2,
                           "kl_coef": 0.05, "kl_estimator": "k1", "kl_placement": "reward"}},
    # REINFORCE++ — Hu et al., arXiv 2501.03262: token-level k1 KL in the reward, returns, global whitening, clip 0.2.
    "reinforce_pp": {"rl": {"advantage": "reinforce_pp"},
                     "objective": {"name": "ppo_clip", "loss_agg_mode": "token-mean", "clip_low": 0.2, "clip_high": 0.2,
                                   "kl_coef": 0.01, "kl_estimator": "k1", "kl_placement": "reward"}},
    # REINFORCE++-baseline — same paper: group-mean baseline, global whitening, k2 KL as a loss (1e-3), clip 0.2/0.27.
    "reinforce_pp_baseline": {"rl": {"advantage": "reinforce_pp_baseline"},
                              "objective": {"name": "ppo_clip", "loss_agg_mode": "token-mean", "clip_low": 0.2,
                                            "clip_high": 0.27, "kl_coef": 1e-3, "kl_estimator": "k2",
                                            "kl_placement": "loss"}},
    # On-policy distillation — Agarwal et al. arXiv 2306.13649; Lu et al. (Thinking Machines, 2025); VLA-OPD
    # arXiv 2603.26666: per-token reverse-KL advantage against a teacher, importance-sampled policy gradient.
    "opd": {"rl": {"advantage": "opd", "opd_coef": 1.0},
            "objective": {"name": "ppo_clip", "loss_agg_mode": "token-mean", "clip_low": 0.2, "clip_high": 0.2,
                          "kl_coef": 0.0}},
    # CISPO — MiniMax-M1, arXiv 2506.13585: clipped, detached importance weight; never zeroes a token's gradient.
    "cispo": {"rl": {"advantage": "grpo"},
              "objective": {"name": "cispo", "loss_agg_mode": "token-mean", "clip_high": 4.0, "kl_coef": 0.0}},
}


def preset(name: str) -> dict[str, Any]:
    """The nested config values of an algorithm preset (``stage: rl`` included)."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        from mmsft.config import ConfigError

        raise ConfigError(f"config key 'algorithm': unknown preset {name!r}.{hint} Choices: {sorted(PRESETS)}")
    values = {"stage": "rl", "algorithm": name}
    for section, entries in PRESETS[name].items():
        values[section] = dict(entries)
    return values
