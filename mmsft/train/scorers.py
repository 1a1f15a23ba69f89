"""Scorers built from what the objective and the advantage declare: the old policy, the frozen reference and the
teacher. Nothing is loaded that nothing asks for.

* **reference** — the *starting* weights, also after a resume: with LoRA, the same network with the adapter disabled
  (no extra memory); otherwise a frozen copy loaded from ``model.name_or_path`` (never from the resumed checkpoint,
  which would move the KL anchor).
* **teacher** — a model folder / hub id that shares the student's tokenizer (checked; for VLAs also the action
  tokenizer's statistics), or ``'package.module:function'``: a factory ``fn(ctx) -> scorer`` whose scorer is a
  callable ``ModelBatch -> (B, T) log-probs`` and may define ``dist(batch) -> (B, T, V_sub)`` over the restricted
  vocabulary (e.g. a weight-free teacher built on a scripted oracle) and ``support(batch, k, ids=None)`` (top-k
  distillation, see :class:`PolicyScorer`), or a ``.yaml``/``.json`` routing file: one teacher per task or domain
  (:mod:`mmsft.train.teacher_router`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from mmsft.models.adapters import ModelBatch
from mmsft.models.policy import Policy
from mmsft.train.stage import Scorers


def check_same_tokenizer(student: Any, teacher: Any, teacher_name: str) -> None:
    a = getattr(student, "tokenizer", student).get_vocab()
    b = getattr(teacher, "tokenizer", teacher).get_vocab()
    if a != b:
        only = sorted(set(a.items()) ^ set(b.items()))[:5]
        raise ValueError(f"rl.teacher {teacher_name!r} does not share the student's tokenizer "
                         f"({len(a)} vs {len(b)} entries; first differences {only}); on-policy distillation scores "
                         "the student's tokens with the teacher, so the vocabularies must be identical")


MAX_FULL_SUPPORT = 4096  # k = 0 ("every id") is allowed up to this many ids; beyond it a top-k must be chosen


class PolicyScorer:
    """A no-grad scorer over ``policy`` (optionally inside ``context``, e.g. peft's ``disable_adapter``):
    ``scorer(batch)`` → (B, T) log-probs of the batch's tokens (``dist=True``: (B, T, V_sub) distributions), and
    ``scorer.support(batch, k, ids=None)`` → ``(ids, logp)`` (B, T, K): its top-``k`` ids and their log-probs at every
    supervised position (k = 0: all ids of the vocabulary), or its log-probs at the given ``ids``."""

    def __init__(self, policy: Policy, device: Any, vocab_subset: torch.Tensor | None, temperature: float,
                 context: Callable[[], Any] | None = None, dist: bool = False) -> None:
        self.policy, self.device, self.vocab_subset = policy, device, vocab_subset
        self.temperature, self.context, self.dist = temperature, context, dist

    def _run(self, batch: ModelBatch, **kwargs: Any) -> Any:
        batch = batch.to(self.device)
        with self.context() if self.context is not None else contextlib.nullcontext():
            return self.policy(batch.inputs, batch.loss_mask, vocab_subset=self.vocab_subset,
                               temperature=self.temperature, **kwargs)

    @torch.no_grad()
    def __call__(self, batch: ModelBatch) -> torch.Tensor:
        out = self._run(batch, with_dist=self.dist)
        return out.dist if self.dist else out.logp

    @torch.no_grad()
    def support(self, batch: ModelBatch, k: int, ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._run(batch, token_fn=support_token_fn(k, ids))
        return out.extra["support_ids"].cpu(), out.extra["support_logp"].float().cpu()


def support_token_fn(k: int, ids: torch.Tensor | None) -> Callable[..., dict[str, torch.Tensor]]:
    """Token function for :meth:`PolicyScorer.support`: top-``k`` (k = 0: all) ids, or log-probs at ``ids``."""

    def fn(log_probs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
           ) -> dict[str, torch.Tensor]:
        vocab = log_probs.shape[-1]
        if ids is not None:
            chosen = ids[rows, cols].to(log_probs.device)
            return {"support_ids": chosen, "support_logp": log_probs.gather(-1, chosen)}
        if k <= 0 or k >= vocab:
            if vocab > MAX_FULL_SUPPORT:
                raise ValueError(f"a full-vocabulary support of {vocab} ids per token would materialise B×T×V; set "
                                 f"the objective's topk argument (e.g. objective.args.topk=256)")
            everything = torch.arange(vocab, device=log_probs.device).expand(len(targets), vocab)
            return {"support_ids": everything, "support_logp": log_probs}
        values, chosen = log_probs.topk(k, dim=-1)
        return {"support_ids": chosen, "support_logp": values}

    return fn


def policy_scorer(policy: Policy, device: Any, vocab_subset: torch.Tensor | None, temperature: float,
                  context: Callable[[], Any] | None = None, dist: bool = False) -> PolicyScorer:
    """A no-grad :class:`PolicyScorer` over ``policy``."""
    return PolicyScorer(policy, device, vocab_subset, temperature, context, dist)


def build_scorers(trainer: Any, policy: Policy, needs_old: bool, needs_ref: bool, needs_teacher: bool,
                  needs_teacher_dist: bool, needs_value: bool = False) -> Scorers:
    cfg, device = trainer.cfg, trainer.accelerator.device
    subset, temperature = trainer.vocab_subset, trainer.temperature
    scorers = Scorers()
    if needs_old:
        scorers.old = policy_scorer(policy, device, subset, temperature)
    if needs_ref:
        if cfg.lora.enabled:
            scorers.ref = policy_scorer(policy, device, subset, temperature, context=lambda: policy.model.disable_adapter())
        else:
            from mmsft.models.loading import load_model

            reference = load_model(cfg.model.name_or_path, family=cfg.model.family, dtype=cfg.model.dtype,
                                   attn_implementation=cfg.model.attn_implementation or None,
                                   trust_remote_code=cfg.model.trust_remote_code).model.to(device).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
            scorers.ref = policy_scorer(Policy(reference, chunk_size=policy.chunk_size), device, subset, temperature)
    if needs_teacher or needs_teacher_dist:
        scorers.teacher, scorers.teacher_dist = _teacher(trainer, policy, needs_teacher_dist)
    if needs_value:  # the critic's V_old on the policy's value head (mmsft.objectives.srppo)
        from mmsft.objectives.srppo import ValueScorer

        scorers.value = ValueScorer(policy, device)
    return scorers


def _teacher(trainer: Any, policy: Policy, needs_dist: bool) -> tuple[Any, Any]:
    cfg = trainer.cfg
    name = cfg.rl.teacher
    if not name:
        raise ValueError(f"objective {cfg.objective.name!r} with advantage {cfg.rl.advantage!r} needs rl.teacher: a "
                         "model folder or 'package.module:function'")
    if name.endswith((".yaml", ".yml", ".json")):
        from mmsft.train.teacher_router import routed_teacher

        return routed_teacher(trainer, policy, name, needs_dist)
    return load_teacher(trainer, policy, name, needs_dist)


def load_teacher(trainer: Any, policy: Policy, name: str, needs_dist: bool) -> tuple[Any, Any]:
    """One teacher: a model folder / hub id or ``'package.module:function'`` → (scorer, dist scorer or None)."""
    cfg, device = trainer.cfg, trainer.accelerator.device
    if ":" in name and not name.startswith(("/", ".")) and not (len(name) > 1 and name[1] == ":"):
        from mmsft.registry import import_object

        teacher = import_object(name, "teacher")(trainer.stage_context())
        dist = getattr(teacher, "dist", None)
        if needs_dist and dist is None:
            raise ValueError(f"rl.teacher {name!r} returns no distribution (define dist(batch)); the objective "
                             "needs the teacher's distribution over the restricted vocabulary")
        return teacher, dist
    from mmsft.models.loading import load_model

    loaded = load_model(name, dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code)
    check_same_tokenizer(trainer.loaded.processor, loaded.processor, name)
    if trainer.loaded.action_tokenizer is not None:
        if loaded.action_tokenizer is None:
            raise ValueError(f"rl.teacher {name!r} has no action_tokenizer.json; a VLA teacher must use the student's "
                             "action tokenizer statistics")
        trainer.loaded.action_tokenizer.check_compatible(loaded.action_tokenizer)
    loaded.model.to(device).eval()
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    teacher_policy = Policy(loaded.model, chunk_size=policy.chunk_size)
    subset, temperature = trainer.vocab_subset, trainer.temperature
    dist = policy_scorer(teacher_policy, device, subset, temperature, dist=True) if needs_dist else None
    return policy_scorer(teacher_policy, device, subset, temperature), dist
