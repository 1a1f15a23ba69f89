"""Scorers built from what the objective and the advantage declare: the old policy, the frozen reference and the
teacher. Nothing is loaded that nothing asks for.

* **reference** — the *starting* weights, also after a resume: with LoRA, the same network with the adapter disabled
  (no extra memory); otherwise a frozen copy loaded from ``model.name_or_path`` (never from the resumed checkpoint,
  which would move the KL anchor).
* **teacher** — a model folder / hub id that shares the student's tokenizer (checked; for VLAs also the action
  tokenizer's statistics), or ``'package.module:function'``: a factory ``fn(ctx) -> scorer`` whose scorer is a
  callable ``ModelBatch -> (B, T) log-probs`` and may define ``dist(batch) -> (B, T, V_sub)`` over the restricted
  vocabulary (e.g. a weight-free teacher built on a scripted oracle).
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


def policy_scorer(policy: Policy, device: Any, vocab_subset: torch.Tensor | None, temperature: float,
                  context: Callable[[], Any] | None = None, dist: bool = False) -> Callable[[ModelBatch], torch.Tensor]:
    """A no-grad scorer over ``policy`` (optionally inside ``context``, e.g. peft's ``disable_adapter``)."""

    @torch.no_grad()
    def score(batch: ModelBatch) -> torch.Tensor:
        batch = batch.to(device)
        with context() if context is not None else contextlib.nullcontext():
            out = policy(batch.inputs, batch.loss_mask, vocab_subset=vocab_subset, temperature=temperature,
                         with_dist=dist)
        return out.dist if dist else out.logp

    return score


def build_scorers(trainer: Any, policy: Policy, needs_old: bool, needs_ref: bool, needs_teacher: bool,
                  needs_teacher_dist: bool) -> Scorers:
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
    return scorers


def _teacher(trainer: Any, policy: Policy, needs_dist: bool) -> tuple[Any, Any]:
    cfg, device = trainer.cfg, trainer.accelerator.device
    name = cfg.rl.teacher
    if not name:
        raise ValueError(f"objective {cfg.objective.name!r} with advantage {cfg.rl.advantage!r} needs rl.teacher: a "
                         "model folder or 'package.module:function'")
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
