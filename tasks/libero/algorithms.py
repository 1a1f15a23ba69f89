"""Algorithm presets for VLAs in LIBERO (``algorithm: NAME`` with ``task: libero``); every key stays overridable.

* ``vla_grpo`` — SimpleVLA-RL (Li et al., arXiv 2509.09674): GRPO on the binary success reward, groups of episodes
  from one init state, dynamic sampling (groups whose episodes all succeed or all fail are dropped: no signal),
  clip-higher 0.2 / 0.28, no KL, token-mean, rollout temperature 1.6.
* ``vla_opd`` — VLA-OPD (Zhong et al., arXiv 2603.26666) as RLinf runs it with PPO-clip: the per-token advantage
  −(log π_old(a) − log π_T(a)) of the student's own action tokens, frozen at rollout; teacher from
  ``env.task_args.teacher`` (oracle or VLA folders, routed by task) through ``tasks.libero.teacher:libero_teacher``.
* ``vla_opd_reinforce`` — the REINFORCE variant: the same advantage recomputed with the current student at every
  update (loss ``opd_reinforce``).
* ``vla_opd_exact`` — exact reverse KL over the action vocabulary at every visited position (``reverse_kl_exact``).
* ``vla_dagger`` — the supervised control: cross-entropy to the teacher's distribution in the states the student
  visits (``teacher_ce_exact``; DAgger, Ross et al., arXiv 1011.0686, with the oracle as the expert).

Every preset trains each turn as its own sequence (``env.concat_turns: false``), as VLAs are trained.
"""

from __future__ import annotations

from mmsft.algorithms import register_algorithm

_ENV = {"concat_turns": False}
_NO_KL = {"coef": 0.0, "estimator": "k3", "placement": "loss"}
_TEACHER = "tasks.libero.teacher:libero_teacher"

register_algorithm("vla_grpo", rl={"advantage": "grpo", "dynamic_sampling": True, "temperature": 1.6},
                   env={**_ENV, "episode_reward": "success"},
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean",
                              "args": {"clip_low": 0.2, "clip_high": 0.28}, "kl": _NO_KL})
register_algorithm("vla_opd", rl={"advantage": "opd", "advantage_args": {"coef": 1.0}, "teacher": _TEACHER,
                                  "temperature": 1.6},
                   env=dict(_ENV),
                   objective={"name": "ppo_clip", "loss_agg_mode": "token-mean",
                              "args": {"clip_low": 0.2, "clip_high": 0.2}, "kl": _NO_KL})
register_algorithm("vla_opd_reinforce", rl={"advantage": "grpo", "teacher": _TEACHER, "temperature": 1.6},
                   env=dict(_ENV), objective={"name": "opd_reinforce", "loss_agg_mode": "token-mean", "kl": _NO_KL})
register_algorithm("vla_opd_exact", rl={"advantage": "grpo", "teacher": _TEACHER, "temperature": 1.6},
                   env=dict(_ENV), objective={"name": "reverse_kl_exact", "loss_agg_mode": "token-mean",
                                              "kl": _NO_KL})
register_algorithm("vla_dagger", rl={"advantage": "grpo", "teacher": _TEACHER, "temperature": 1.0},
                   env=dict(_ENV), objective={"name": "teacher_ce_exact", "loss_agg_mode": "token-mean",
                                              "kl": _NO_KL})
