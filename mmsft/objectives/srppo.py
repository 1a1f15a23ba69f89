"""Self-Rewarding PPO (SRPPO; Zhang et al., "Self-Rewarding PPO: Aligning Large Language Models with Demonstrations
Only", arXiv 2510.21090; spec ../shared/reference/objectives_rl.md §4) — the zoo's first actor-critic entry.

Coherent reward (no reward model, no preference data): the log-ratio of the SFT policy to its pre-SFT base,

    R(x, y) = Σ_t [log π_SFT(y_t | x, y_<t) − log π_base(y_t | x, y_<t)],   placed at the last response token,

then PPO with a learned critic and GAE (γ, λ):

    r_t = −β·KL_t (KL in reward, optional) + 1[t = last]·(c·R + outcome reward),
    δ_t = r_t + γ·V(s_{t+1}) − V(s_t),   Â_t = Σ_l (γλ)^l δ_{t+l},   G_t = Â_t + V_old(s_t),
    L = PPO-clip(Â_whitened) + c_v · ½·max((V − G)², (V_old + clip(V − V_old, ±ε_v) − G)²).

How it maps onto the core: π_SFT is the **reference** scorer (the run's starting weights, adapter-disabled under
LoRA — the actor is initialised from π_SFT, which doubles as the KL reference); π_base is the **teacher** scorer
(``rl.teacher`` = the pre-SFT base model folder, same tokenizer). The critic is a value head
(:class:`ValueHead`, a linear map of the policy's last hidden state, zero-initialised) attached to the policy as a
trainable module (registry meta ``policy_modules``): it is in the optimizer and in every checkpoint
(``policy_modules.safetensors``), but not in the exported model. By default the critic shares the trunk
(``detach_critic=false``, as TRL's classic ``AutoModelForCausalLMWithValueHead``, value-loss coefficient 0.1); with
``detach_critic=true`` it reads sg(hidden) and the value loss cannot move the policy. A separate critic *network*
(OpenRLHF / verl style) is not provided. V(s_t) for response token t reads the hidden state at t − 1, the state the
token is sampled from. Old values V_old are scored once per rollout batch with no gradient (``old_values``); the
advantage estimator ``srppo_gae`` returns advantages and returns G (``returns``).

Defaults: γ = 1, λ = 0.95, whitened advantages, ε = 0.2, ε_v = 0.2, c_v = 0.1 (TRL PPO defaults; the paper's exact
PPO hyper-parameters could not be verified), c = 1, KL coefficient 0.05 in the reward (k1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from mmsft.objectives.advantages import AdvantageInputs
from mmsft.objectives.batch import TokenBatch
from mmsft.objectives.policy_losses import ClipArgs, masked_mean, ppo_clip_terms
from mmsft.objectives.registry import register_advantage, register_loss


# ---- the critic -----------------------------------------------------------------------------------------------------
class ValueHead(nn.Module):
    """V(s) = w·h + b on the policy's last hidden state (zero-initialised: V ≡ 0 before the first update)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.to(self.linear.weight.dtype)).squeeze(-1)


def hidden_size_of(model: nn.Module) -> int:
    from mmsft.models.policy import unwrap_hf_model

    config = unwrap_hf_model(model).config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    size = getattr(text, "hidden_size", None)
    if not isinstance(size, int):
        raise TypeError(f"{type(model).__name__}: no hidden_size in its (text) config for the value head")
    return size


def token_values(head: nn.Module, last_hidden: torch.Tensor, loss_mask: torch.Tensor, detach: bool) -> torch.Tensor:
    """(B, T) values aligned with the log-probs: position t holds V of the state before token t (hidden at t − 1),
    zero off the loss mask."""
    hidden = last_hidden.detach() if detach else last_hidden
    raw = head(hidden)
    aligned = torch.zeros_like(raw)
    aligned[:, 1:] = raw[:, :-1]
    return aligned * loss_mask.to(aligned.dtype)


class ValueFn:
    """The policy pass's ``hidden_fn``: ``{"values": (B, T)}`` from the policy's ``value_head``."""

    def __init__(self, detach: bool) -> None:
        self.detach = detach

    def __call__(self, policy: Any, model_inputs: dict, loss_mask: torch.Tensor,
                 hidden_states: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        head = getattr(policy, "value_head", None)
        if head is None:
            raise ValueError("the policy has no value_head; the srppo loss attaches one (registry meta "
                             "policy_modules) when the trainer builds the policy")
        return {"values": token_values(head, hidden_states[-1], loss_mask, self.detach)}


class ValueScorer:
    """No-grad V_old(s_t) of a batch (``old_values``), scored once per rollout batch."""

    def __init__(self, policy: Any, device: Any) -> None:
        self.policy, self.device = policy, device

    @torch.no_grad()
    def __call__(self, batch: Any) -> torch.Tensor:
        batch = batch.to(self.device)
        out = self.policy(batch.inputs, batch.loss_mask, hidden_fn=ValueFn(detach=True))
        return out.extra["values"].float()


# ---- advantages: coherent reward + GAE ------------------------------------------------------------------------------
@dataclass
class SrppoGaeArgs:
    """GAE over SRPPO's coherent reward (TRL PPO defaults γ = 1, λ = 0.95, whitened advantages)."""

    gamma: float = field(default=1.0, metadata={"help": "Discount γ.", "ge": 0, "le": 1})
    lam: float = field(default=0.95, metadata={"help": "GAE λ.", "ge": 0, "le": 1})
    coherent_coef: float = field(default=1.0, metadata={"help": "c: weight of the coherent reward Σ(log π_SFT − log "
                                                                "π_base) at the last token (0: outcome rewards only).",
                                                        "ge": 0})
    whiten: bool = field(default=True, metadata={"help": "Whiten advantages over the rollout batch's tokens."})
    eps: float = field(default=1e-8, metadata={"help": "ε in the whitening.", "gt": 0})


def coherent_reward(ref_logp: torch.Tensor, base_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) R = Σ_t (log π_SFT − log π_base) over each response."""
    return ((ref_logp.float() - base_logp.float()) * mask.to(torch.float32)).sum(-1)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) of left-aligned responses (N, L): δ_t = r_t + γV_{t+1} − V_t, Â_t = δ_t + γλÂ_{t+1},
    G = Â + V; rewards and values are zeroed off the mask, so padding contributes nothing."""
    m = mask.to(torch.float32)
    r, v = rewards.float() * m, values.float() * m
    adv = torch.zeros_like(r)
    running = torch.zeros(r.shape[0], dtype=r.dtype)
    for t in range(r.shape[1] - 1, -1, -1):
        next_v = v[:, t + 1] if t + 1 < r.shape[1] else torch.zeros_like(running)
        delta = r[:, t] + gamma * next_v - v[:, t]
        running = (delta + gamma * lam * running) * m[:, t]
        adv[:, t] = running
    return adv, (adv + v) * m


def token_rewards(inputs: AdvantageInputs, coef: float) -> torch.Tensor:
    """r_t: −penalty_t everywhere, plus c·R + outcome reward at each response's last token."""
    mask = inputs.mask.to(torch.float32)
    out = torch.zeros_like(mask)
    if inputs.token_penalty is not None:
        out = out - inputs.token_penalty.float() * mask
    final = inputs.rewards.float().clone()
    if coef > 0:
        if inputs.ref_logp is None or inputs.teacher_logp is None:
            raise ValueError("srppo_gae needs ref_logp (π_SFT: the starting weights) and teacher_logp (π_base: "
                             "rl.teacher = the pre-SFT base model)")
        final = final + coef * coherent_reward(inputs.ref_logp, inputs.teacher_logp, mask)
    lengths = mask.sum(-1).long()
    rows = torch.nonzero(lengths > 0, as_tuple=True)[0]
    out[rows, lengths[rows] - 1] += final[rows]
    return out


@register_advantage("srppo_gae", requires=("ref_logp", "teacher_logp", "old_values"), args=SrppoGaeArgs)
def srppo_gae_advantage(inputs: AdvantageInputs, args: SrppoGaeArgs) -> dict[str, torch.Tensor]:
    """SRPPO (arXiv 2510.21090): the coherent reward Σ(log π_SFT − log π_base) at the last token (+ any outcome reward,
    − KL-in-reward penalties per token), GAE(γ, λ) with the critic's old values; returns ``{"advantages",
    "returns"}`` (N, L)."""
    if inputs.values is None:
        raise ValueError("srppo_gae needs the critic's old values (old_values)")
    adv, returns = gae(token_rewards(inputs, args.coherent_coef), inputs.values, inputs.mask, args.gamma, args.lam)
    if args.whiten:
        from mmsft.objectives.advantages import _whiten

        adv = _whiten(adv, inputs.mask, args.eps)
    return {"advantages": adv, "returns": returns}


# ---- the actor-critic loss ------------------------------------------------------------------------------------------
@dataclass
class SrppoArgs(ClipArgs):
    """PPO-clip actor + clipped value loss (TRL PPO defaults: c_v 0.1, ε_v 0.2)."""

    vf_coef: float = field(default=0.1, metadata={"help": "c_v: weight of the value loss.", "ge": 0})
    cliprange_value: float = field(default=0.2, metadata={"help": "ε_v: clip of V around V_old in the value loss.",
                                                          "ge": 0})
    detach_critic: bool = field(default=False, metadata={"help": "Critic on sg(hidden): the value loss does not "
                                                                 "move the shared trunk."})


def _value_modules(args: SrppoArgs, policy: Any) -> dict[str, nn.Module]:
    return {"value_head": ValueHead(hidden_size_of(policy.model))}


def _value_inputs(args: SrppoArgs, fields: dict) -> dict:
    return {"hidden_fn": ValueFn(args.detach_critic)}


@register_loss("srppo", requires=("logp", "old_logp", "advantages", "values", "old_values", "returns"),
               args=SrppoArgs, policy_modules=_value_modules, policy_inputs=_value_inputs)
def srppo_loss(batch: TokenBatch, args: SrppoArgs) -> tuple[torch.Tensor, dict[str, float]]:
    """Self-Rewarding PPO's actor-critic loss (arXiv 2510.21090; module docstring): PPO-clip on the GAE advantages
    plus c_v·½·max((V − G)², (V_old + clip(V − V_old, ±ε_v) − G)²), both aggregated with ``loss_agg_mode``."""
    batch.require("values", "old_values", "returns")
    pg, metrics = ppo_clip_terms(batch, args)
    values, old, returns = batch.values.float(), batch.old_values.float(), batch.returns.float()
    clipped = old + (values - old).clamp(-args.cliprange_value, args.cliprange_value)
    vf = 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    pg_loss, vf_loss = batch.aggregate(pg), batch.aggregate(vf)
    metrics.update({"pg_loss": float(pg_loss.detach()), "vf_loss": float(vf_loss.detach()),
                    "value_mean": masked_mean(values, batch.loss_mask),
                    "return_mean": masked_mean(returns, batch.loss_mask),
                    "vf_clipfrac": masked_mean(((values - old).abs() > args.cliprange_value).float(),
                                               batch.loss_mask)})
    return pg_loss + args.vf_coef * vf_loss, metrics
