"""Self-teachers: the policy scoring its own targets, live or through a lagged copy — CurioSFT's teacher (Wang et al.,
arXiv 2602.02244; released recipe: a copy of the policy re-synced every 5 steps by θ_T ← (1 − α)·θ_T + α·θ, α = 0.99).

``rl.teacher=mmsft.train.self_teacher:curio_teacher`` (set by the ``curio_sft`` preset) builds the scorer from the
``curio_sft`` loss arguments: ``teacher_logp`` is then the teacher's label log-prob at CurioSFT's per-token temperature
τ_t (:func:`mmsft.objectives.sft_variants.curio_temperature`). The SFT producer calls ``on_step(step)`` before each
step; the copy syncs when ``step`` is a positive multiple of ``sync_every``. Only the trainable parameters are
averaged (frozen ones are equal in both networks); they and the sync count are the scorer's ``state_dict``, written
with every checkpoint (:mod:`mmsft.train.scorer_state`, safetensors + JSON), so a resumed CurioSFT run is
bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from mmsft.config import build_args
from mmsft.models.adapters import ModelBatch
from mmsft.models.policy import Policy
from mmsft.objectives import get_loss
from mmsft.objectives.sft_variants import CurioArgs, curio_teacher_token_fn


class SelfTeacher:
    """A no-grad scorer over a (lagged) copy of the policy, or over the live policy itself."""

    def __init__(self, policy: Policy, device: Any, vocab_subset: torch.Tensor | None, temperature: float,
                 args: CurioArgs) -> None:
        self.live, self.device, self.vocab_subset, self.temperature, self.args = (policy, device, vocab_subset,
                                                                                   temperature, args)
        self.copy: torch.nn.Module | None = None
        if args.teacher == "lagged_copy":
            self.copy = copy.deepcopy(policy.model).eval()
            for p in self.copy.parameters():
                p.requires_grad_(False)
        self.token_fn = curio_teacher_token_fn(args)
        self.syncs = 0

    @torch.no_grad()
    def on_step(self, step: int) -> None:
        """θ_T ← (1 − mix)·θ_T + mix·θ every ``sync_every`` optimizer steps (lagged copy only)."""
        if self.copy is None or step <= 0 or step % self.args.sync_every:
            return
        live = self._trainable()
        for name, param in self.copy.named_parameters():
            if name in live:
                param.mul_(1.0 - self.args.mix).add_(live[name].detach().to(param.dtype), alpha=self.args.mix)
        self.syncs += 1

    def _trainable(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.live.model.named_parameters() if p.requires_grad}

    def state_dict(self) -> dict[str, Any]:
        """The lagged copy's trainable parameters and the sync count (for the checkpoint)."""
        state: dict[str, Any] = {"syncs": self.syncs, "teacher": self.args.teacher}
        if self.copy is not None:
            live = self._trainable()
            state["params"] = {n: p.detach().cpu().clone() for n, p in self.copy.named_parameters() if n in live}
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a state that does not fit this network raises naming the parameter."""
        if state.get("teacher") != self.args.teacher:
            raise ValueError(f"CurioSFT teacher state was saved for teacher={state.get('teacher')!r}, this run uses "
                             f"{self.args.teacher!r}")
        if self.copy is not None:
            saved = state.get("params")
            own = dict(self.copy.named_parameters())
            expected = set(self._trainable())
            if not isinstance(saved, dict) or set(saved) != expected:
                missing = sorted(expected - set(saved or {}))[:3]
                raise ValueError(f"CurioSFT teacher state does not fit this model (missing or extra parameters, e.g. "
                                 f"{missing}); was it written with another model or LoRA setting?")
            for name, value in saved.items():
                if tuple(value.shape) != tuple(own[name].shape):
                    raise ValueError(f"CurioSFT teacher state: {name} has shape {tuple(value.shape)}, the model "
                                     f"{tuple(own[name].shape)}")
                own[name].copy_(value.to(own[name].device, own[name].dtype))
        self.syncs = int(state.get("syncs", 0))

    @torch.no_grad()
    def __call__(self, batch: ModelBatch) -> torch.Tensor:
        model = self.copy if self.copy is not None else self.live.model
        policy = Policy(model, chunk_size=self.live.chunk_size)
        batch = batch.to(self.device)
        was_training = model.training
        model.eval()
        try:
            out = policy(batch.inputs, batch.loss_mask, vocab_subset=self.vocab_subset, temperature=self.temperature,
                         token_fn=self.token_fn)
        finally:
            model.train(was_training)
        return out.extra["curio_logq"].float()


def curio_teacher(ctx: Any) -> SelfTeacher:
    """Teacher factory for ``rl.teacher``: CurioSFT's self-teacher with the ``curio_sft`` loss's arguments."""
    cfg = ctx.cfg
    entry = get_loss(cfg.objective.name)
    args = build_args(entry, cfg.objective.args, "objective.args")
    if not isinstance(args, CurioArgs):
        raise ValueError(f"rl.teacher=mmsft.train.self_teacher:curio_teacher needs objective.name=curio_sft (its "
                         f"teacher arguments), got {cfg.objective.name!r}")
    temperature = 1.0
    return SelfTeacher(ctx.policy, ctx.device, ctx.vocab_subset, temperature, args)
