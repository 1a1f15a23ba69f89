"""Assembles the RL stage: rollout engine, reference and teacher scorers, and the :class:`RLProducer`.

A reference model is built only if a KL term needs it: with LoRA it is the same network with the adapter disabled
(no extra memory); otherwise a frozen copy of the initial weights. A teacher (on-policy distillation) is any model
that scores given tokens and shares the student's tokenizer (checked).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch

from mmsft.models.adapters import ModelBatch
from mmsft.models.loading import load_model
from mmsft.models.policy import Policy
from mmsft.rollout import HFGenerateEngine
from mmsft.train.rl_producer import RLProducer


def check_same_tokenizer(student: Any, teacher: Any, teacher_name: str) -> None:
    a = getattr(student, "tokenizer", student).get_vocab()
    b = getattr(teacher, "tokenizer", teacher).get_vocab()
    if a != b:
        only = sorted(set(a.items()) ^ set(b.items()))[:5]
        raise ValueError(f"rl.teacher {teacher_name!r} does not share the student's tokenizer "
                         f"({len(a)} vs {len(b)} entries; first differences {only}); on-policy distillation scores "
                         "the student's tokens with the teacher, so the vocabularies must be identical")


def _scorer(policy: Policy, trainer: Any, context: Any = None):
    device = trainer.accelerator.device

    @torch.no_grad()
    def score(batch: ModelBatch) -> torch.Tensor:
        batch = batch.to(device)
        with context() if context is not None else contextlib.nullcontext():
            out = policy(batch.inputs, batch.loss_mask, vocab_subset=trainer.vocab_subset, temperature=trainer.temperature)
        return out.logp

    return score


def build_rl_producer(trainer: Any, policy: Policy) -> RLProducer:
    cfg = trainer.cfg
    device = trainer.accelerator.device
    engine = HFGenerateEngine(lambda: policy.model, trainer.adapter, batch_size=cfg.rl.generation_batch_size)
    needs_ref = "ref_logp" in trainer.needed or (cfg.objective.kl_coef > 0 and cfg.objective.kl_placement == "reward")
    ref_fn = None
    if needs_ref:
        if cfg.lora.enabled:
            ref_fn = _scorer(policy, trainer, context=lambda: policy.model.disable_adapter())
        else:
            reference = copy.deepcopy(policy.model).to(device).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
            ref_fn = _scorer(Policy(reference, chunk_size=policy.chunk_size), trainer)
    teacher_fn = None
    if cfg.rl.advantage == "opd":
        if not cfg.rl.teacher:
            raise ValueError("rl.advantage=opd needs rl.teacher: a model folder or hub id")
        teacher = load_model(cfg.rl.teacher, dtype=cfg.model.dtype)
        check_same_tokenizer(trainer.loaded.processor, teacher.processor, cfg.rl.teacher)
        if trainer.loaded.action_tokenizer is not None and teacher.action_tokenizer is not None:
            trainer.loaded.action_tokenizer.check_compatible(teacher.action_tokenizer)
        teacher.model.to(device).eval()
        teacher_fn = _scorer(Policy(teacher.model, chunk_size=policy.chunk_size), trainer)
    old_fn = _scorer(policy, trainer)
    return RLProducer(trainer.train_samples, trainer.adapter, engine, cfg, trainer.needed, old_fn, ref_fn, teacher_fn,
                      run_dir=trainer.run_dir, rank=trainer.accelerator.process_index,
                      world_size=trainer.accelerator.num_processes)
