"""One training loop on accelerate for every stage. A stage is a registered producer (sft, rl, distill, mix, env, or a
plugin's) plus an objective composition (:class:`mmsft.objectives.Objective`); the trainer checks at start-up that
every TokenBatch field the objective requires is provided by the producer, builds only the scorers (old policy,
reference, teacher) that something declares a need for, and passes every provided field through.

Per optimizer step: the producer yields this process's micro-batches; the step's token and sequence counts are
summed over micro-batches and processes (:class:`StepNormalizer`) so aggregation is invariant to gradient accumulation
and data-parallel size; each micro-batch runs the policy (chunked log-probs), builds a :class:`TokenBatch` with only
the fields the objective requires, and back-propagates its share of the loss. A non-finite loss or gradient stops the
run with a message naming the step and samples; the last good checkpoint is left intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmsft.config import ConfigError, RunConfig, build_args, save_config, to_dict
from mmsft.data.loaders import load_dataset
from mmsft.data.media import MediaBudget
from mmsft.data.schema import MediaPolicy
from mmsft.models.loading import build_adapter
from mmsft.models.policy import Policy
from mmsft.objectives import KLTerm, Objective, StepNormalizer, TokenBatch, get_advantage, get_loss
from mmsft.objectives.registry import TOKEN_BATCH_FIELDS
from mmsft.plugins import load_plugins
from mmsft.report import write_report_safely
from mmsft.train.checkpoint import (clean_stale, export_final, resolve_resume, restore_training_state,
                                    save_checkpoint)
from mmsft.train.logging import MetricsLogger
from mmsft.train.model_setup import load_for_training
from mmsft.train.optim import build_optimizer, build_scheduler
from mmsft.train.peft_hooks import peft_after_step, peft_aux_loss
from mmsft.train.precision import allow_precision_change, model_hidden_size, resolve_mixed_precision
from mmsft.train.scorer_state import (attach_policy_modules, policy_module_states, restore_policy_modules,
                                      restore_scorer_states, scorer_states)
from mmsft.train.stage import TRAINER_FIELDS, StageContext, producer_entry

ON_POLICY_FIELDS = frozenset({"old_logp", "advantages"})


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite loss, ...); the message says where and what is intact."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    final_model_dir: Path
    metrics: dict[str, float]


def media_budget(cfg: RunConfig) -> MediaBudget:
    d = cfg.data
    return MediaBudget(image_min_pixels=d.image_min_pixels, image_max_pixels=d.image_max_pixels,
                       video_min_pixels=d.video_min_pixels, video_max_pixels=d.video_max_pixels, video_fps=d.video_fps,
                       video_min_frames=d.video_min_frames, video_max_frames=d.video_max_frames)


def build_objective(cfg: RunConfig) -> Objective:
    """The configured loss with its own arguments, KL term and entropy bonus."""
    o = cfg.objective
    return Objective(o.name, build_args(get_loss(o.name), o.args, "objective.args"), agg_mode=o.loss_agg_mode,
                     kl=KLTerm(o.kl.coef, o.kl.estimator, o.kl.placement), entropy_coef=o.entropy_coef)


def scorer_needs(cfg: RunConfig, needed: set[str], on_policy: bool) -> dict[str, bool]:
    """Which frozen scorers the objective and the advantage estimator declare a need for."""
    advantage = set(get_advantage(cfg.rl.advantage).requires) if on_policy else set()
    kl_in_reward = on_policy and cfg.objective.kl.coef > 0 and cfg.objective.kl.placement == "reward"
    return {"old": on_policy,
            "ref": bool({"ref_logp", "ref_support_logp"} & needed) or kl_in_reward or "ref_logp" in advantage,
            "teacher": bool({"teacher_logp", "teacher_support_logp"} & needed) or "teacher_logp" in advantage,
            "teacher_dist": "teacher_dist" in needed, "value": "old_values" in needed | advantage}


class Trainer:
    def __init__(self, cfg: RunConfig) -> None:
        load_plugins(cfg.plugins)
        self.producer_entry = producer_entry(cfg.stage)
        if not cfg.model.name_or_path:
            raise ConfigError("config key 'model.name_or_path' is required (a model folder or hub id)")
        if self.producer_entry.meta.get("needs_dataset", True) and not cfg.data.train_path:
            raise ConfigError(f"config key 'data.train_path' is required by stage {cfg.stage!r} (a JSONL file or "
                              "save_to_disk folder)")
        self.cfg = cfg
        self.objective = build_objective(cfg)
        self.needed = set(self.objective.requires)
        self.policy_kwargs_for = self.objective.policy_kwargs  # per micro-batch: token_fn, sub-model exits
        provides = set(self.producer_entry.requires)
        missing = self.needed - provides - TRAINER_FIELDS
        if missing:
            field = sorted(missing)[0]
            raise ConfigError(f"objective {cfg.objective.name!r} needs the TokenBatch field {field!r}"
                              f"{' (and ' + ', '.join(sorted(missing)[1:]) + ')' if len(missing) > 1 else ''}, which "
                              f"stage {cfg.stage!r} does not provide (it provides {sorted(provides) or 'nothing extra'})")
        self.on_policy = bool(ON_POLICY_FIELDS & provides)

    # ------------------------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.cfg
        if cfg.train.torch_threads > 0:
            torch.set_num_threads(cfg.train.torch_threads)
        # cpu=True on GPU-less machines lets torchrun / accelerate launch run data parallel over gloo.
        precision = resolve_mixed_precision(cfg.train.mixed_precision, model_hidden_size(cfg.model.name_or_path))
        allow_precision_change(precision)
        self.accelerator = Accelerator(mixed_precision=precision,
                                       cpu=not torch.cuda.is_available())
        set_seed(cfg.train.seed)
        self.run_dir = Path(cfg.train.output_dir)
        self.is_main = self.accelerator.is_main_process
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            clean_stale(self.run_dir)
            save_config(cfg, self.run_dir / "config.yaml")
        self.checkpoint = resolve_resume(self.run_dir, cfg.train.resume)
        self.loaded = load_for_training(cfg.model, cfg.lora, self.checkpoint)
        media = MediaPolicy.from_config(cfg.data.media_roots, cfg.data.allow_any_media_path)
        d = cfg.data
        self.train_samples = load_dataset(d.train_path, media=media, loader=d.loader, loader_args=d.loader_args,
                                          role="train") if d.train_path else []
        self.eval_samples = load_dataset(d.eval_path, media=media, loader=d.loader, loader_args=d.loader_args,
                                         role="eval") if d.eval_path else []
        budget = media_budget(cfg)
        configure = getattr(self.train_samples, "configure_model", None)
        if configure is not None:  # e.g. robot demonstrations fit the VLA's action statistics (mmsft.data.loaders)
            budget = configure(self.loaded, budget)
        self.adapter = build_adapter(self.loaded, budget, padding_side=cfg.data.padding_side,
                                     max_length=cfg.data.max_length, overlong=cfg.data.overlong)
        if cfg.eval.max_samples and self.eval_samples:
            self.eval_samples = self.eval_samples[: cfg.eval.max_samples]
        self.vocab_subset = self.adapter.vocab_subset()
        if self.vocab_subset is not None:
            self.vocab_subset = self.vocab_subset.to(self.accelerator.device)
        self.temperature = cfg.rl.temperature if self.on_policy and cfg.rl.temperature > 0 else 1.0
        policy = Policy(self.loaded.model, chunk_size=cfg.model.logprob_chunk_size)
        attach_policy_modules(policy, self.objective)  # e.g. a critic's value head (trained, checkpointed)
        self._policy_module = policy
        from mmsft.train.scorers import build_scorers

        needs = scorer_needs(cfg, self.needed, self.on_policy)
        if not cfg.rl.teacher:  # a producer that records teacher values during its rollouts needs no teacher scorer
            for name in self.producer_entry.meta.get("records", ()):
                needs[name.removesuffix("_logp")] = False
        self.scorers = build_scorers(self, policy, needs["old"], needs["ref"], needs["teacher"], needs["teacher_dist"],
                                     needs["value"])
        self.producer = self.producer_entry.fn(self.stage_context())
        per_epoch = self.producer.steps_per_epoch()
        self.total_steps = cfg.train.max_steps or max(1, math.ceil(cfg.train.epochs * per_epoch))
        optimizer = build_optimizer(policy, cfg.optim)
        self.scheduler = build_scheduler(optimizer, cfg.optim, self.total_steps)
        self.policy, self.optimizer = self.accelerator.prepare(policy, optimizer)
        self.start_step = 0
        if self.checkpoint is not None:
            self._restore(self.checkpoint)

    def _restore(self, checkpoint: Path) -> None:
        state = restore_training_state(checkpoint, self.optimizer, self.scheduler)
        self.producer.load_state_dict(state["producer"])
        restore_scorer_states(self.scorers, checkpoint)
        restore_policy_modules(self._policy_module, checkpoint)
        self.start_step = int(state["step"])

    def stage_context(self) -> StageContext:
        return StageContext(cfg=self.cfg, adapter=self.adapter, policy=self._policy_module,
                            scorers=getattr(self, "scorers", None), needed=self.needed, run_dir=self.run_dir,
                            rank=self.accelerator.process_index, world_size=self.accelerator.num_processes,
                            device=self.accelerator.device, samples=self.train_samples, vocab_subset=self.vocab_subset,
                            loaded=self.loaded)

    @property
    def model(self) -> Any:
        return self.accelerator.unwrap_model(self.policy).model

    # ------------------------------------------------------------------------------------------------------------
    def _normalizer(self, batches: list) -> StepNormalizer:
        return self._reduce_normalizer(StepNormalizer.combine([b.loss_mask for b in batches]))

    def _reduce_normalizer(self, local: StepNormalizer) -> StepNormalizer:
        """Sum token / sequence counts and take the longest response over every data-parallel rank."""
        counts = torch.tensor([local.num_tokens, local.num_seqs], device=self.accelerator.device, dtype=torch.float64)
        longest = torch.tensor([local.max_len], device=self.accelerator.device, dtype=torch.float64)
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
            longest = self.accelerator.gather(longest).max().reshape(1)
        cap = self.cfg.objective.max_len_norm or (self.cfg.rl.max_new_tokens if self.on_policy else 0)
        max_len = float(cap or longest.item())
        return StepNormalizer(float(counts[0]), float(counts[1]), max_len, self.accelerator.num_processes)

    def _step(self, step: int) -> dict[str, float]:
        started = time.perf_counter()
        with self.accelerator.autocast():  # rollouts and frozen scorers run in the training forward's precision
            batches = self.producer.next_step()
        norm = self._normalizer(batches)
        row_norms = self._row_normalizers(batches)
        with_entropy = "entropy" in self.needed
        with_dist = "logp_dist" in self.needed
        total_loss, tokens, supervised, sums = 0.0, 0, 0.0, {}
        for index, batch in enumerate(batches):
            batch = batch.to(self.accelerator.device)
            last = index == len(batches) - 1
            context = self.accelerator.no_sync(self.policy) if not last else contextlib.nullcontext()
            with context:
                with self.accelerator.autocast():
                    out = self.policy(batch.inputs, batch.loss_mask, with_entropy=with_entropy,
                                      vocab_subset=self.vocab_subset, temperature=self.temperature,
                                      with_dist=with_dist, **self.policy_kwargs_for(batch.fields))
                    token_batch = self._token_batch(out, batch, norm, step, row_norms)
                    loss, metrics = self.objective(token_batch)
                    loss = loss + peft_aux_loss(self.model, batch, len(batches), metrics)  # e.g. LoRAMoE balancing
                if not torch.isfinite(loss):
                    raise TrainingError(self._nonfinite_message(step, f"loss is {loss.item()}", batch.sample_ids))
                # outside autocast: on CPU the backward runs on this thread, where autocast would re-cast every
                # backward matmul (measured 1.45× slower on the 25M benchmark model)
                self.accelerator.backward(loss)
            total_loss += float(loss.detach())
            tokens += batch.num_tokens
            weight = float(batch.loss_mask.sum())
            supervised += weight
            for key, value in metrics.items():  # token-weighted means over the step's micro-batches
                sums[key] = sums.get(key, 0.0) + value * (1.0 if key == "tokens" else weight)
        if self.accelerator.num_processes > 1:  # each rank holds its share of the step's loss
            total_loss = float(self.accelerator.reduce(torch.tensor(total_loss, device=self.accelerator.device),
                                                       reduction="mean"))
        grad_norm = self._clip()
        if not math.isfinite(grad_norm):
            raise TrainingError(self._nonfinite_message(step, f"gradient norm is {grad_norm}", []))
        self.optimizer.step()
        self.scheduler.step()
        peft_metrics = peft_after_step(self.model, step + 1, self.optimizer)  # e.g. SpIEL drop-and-grow
        self.optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - started
        record = {"train/loss": total_loss, "train/grad_norm": grad_norm, "train/lr": self.scheduler.get_last_lr()[0],
                  "train/tokens_per_s": tokens * self.accelerator.num_processes / elapsed, "train/step_time_s": elapsed}
        record.update({f"train/{k}": v / max(supervised, 1.0) for k, v in sums.items() if k != "tokens"})
        record["train/supervised_tokens"] = supervised
        record.update(self.producer.pop_metrics())
        record.update(peft_metrics)
        return record

    def _token_batch(self, out: Any, batch: Any, norm: StepNormalizer, step: int,
                     row_norms: dict[str, StepNormalizer]) -> TokenBatch:
        fields = {k: v for k, v in batch.fields.items() if k in TOKEN_BATCH_FIELDS}
        extra = getattr(out, "extra", None) or {}
        fields.update({k: v for k, v in extra.items() if k in TOKEN_BATCH_FIELDS})
        fields["extras"] = {k: v for k, v in extra.items() if k not in TOKEN_BATCH_FIELDS}
        if "old_logp" in self.needed and "old_logp" not in fields:
            fields["old_logp"] = out.logp.detach()  # on-policy: one update per rollout batch, ratio 1
        return TokenBatch(logp=out.logp, loss_mask=batch.loss_mask, normalizer=norm, entropy=out.entropy,
                          logp_dist=getattr(out, "dist", None), step=step, total_steps=self.total_steps,
                          row_normalizers=row_norms, **fields)

    def _row_normalizers(self, batches: list) -> dict[str, StepNormalizer]:
        """Step-wide counts over expert rows and over on-policy rows separately (mixed batches, e.g. CHORD)."""
        if not all("expert_mask" in b.fields for b in batches):
            return {}
        out = {}
        for name, pick in (("expert", True), ("policy", False)):
            masks = [b.loss_mask & (b.fields["expert_mask"].to(torch.bool) == pick).view(-1, 1).to(b.loss_mask.device)
                     for b in batches]
            out[name] = self._reduce_normalizer(StepNormalizer.combine(masks))
        return out

    def _at_boundary(self) -> bool:
        """Checkpoints are taken between rollout batches, so a resumed RL run regenerates nothing twice."""
        return getattr(self.producer, "at_rollout_boundary", lambda: True)()

    def _clip(self) -> float:
        if self.cfg.optim.max_grad_norm > 0:
            return float(self.accelerator.clip_grad_norm_(self.policy.parameters(), self.cfg.optim.max_grad_norm))
        grads = [p.grad.detach().norm() for p in self.policy.parameters() if p.grad is not None]
        return float(torch.stack(grads).norm()) if grads else 0.0

    def _nonfinite_message(self, step: int, what: str, sample_ids: list[str]) -> str:
        from mmsft.train.checkpoint import list_checkpoints

        found = list_checkpoints(self.run_dir)
        intact = f"last good checkpoint: {found[-1]}" if found else "no checkpoint was written yet"
        ids = f" (samples {sample_ids[:8]})" if sample_ids else ""
        return (f"training stopped at step {step + 1}: {what}{ids}; the update was not applied and {intact}. "
                "Lower optim.lr, check the data, or use model.dtype=float32.")

    def _save(self, step: int) -> Path | None:
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return None
        state = {"producer": self.producer.state_dict(), "total_steps": self.total_steps}
        if self.loaded.action_tokenizer is not None:
            state["_action_tokenizer"] = self.loaded.action_tokenizer
        return save_checkpoint(self.run_dir, step, self.model, self.loaded.processor, self.optimizer, self.scheduler,
                               state, keep=self.cfg.train.save_total_limit, extra_states={**scorer_states(self.scorers),
                                                                   **policy_module_states(self._policy_module)})

    def evaluate(self) -> dict[str, float]:
        from mmsft.eval.generation import accuracy_by, evaluate_accuracy

        if hasattr(self.producer, "evaluate") and self.is_main:  # environment tasks: held-out episodes
            self.policy.eval()
            metrics = self.producer.evaluate()
            self.policy.train()
            return metrics
        if not self.eval_samples or not self.is_main:
            return {}
        self.policy.eval()
        result = evaluate_accuracy(self.model, self.adapter, self.eval_samples, batch_size=self.cfg.eval.batch_size,
                                   max_new_tokens=self.cfg.eval.max_new_tokens, match=self.cfg.eval.match)
        self.policy.train()
        metrics = {"eval/accuracy": result.accuracy}
        metrics.update({f"eval/accuracy_{k}": v for k, v in accuracy_by(result.predictions).items() if k != "None"})
        return metrics

    # ------------------------------------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        self._setup()
        cfg = self.cfg
        logger = MetricsLogger(self.run_dir, self.total_steps, self.start_step, cfg.train.tensorboard,
                               cfg.train.progress, enabled=self.is_main, report_to=cfg.train.report_to,
                               config=to_dict(cfg))
        last_metrics: dict[str, float] = {}
        try:
            for step in range(self.start_step, self.total_steps):
                record = self._step(step)
                done = step + 1
                if cfg.train.eval_steps and done % cfg.train.eval_steps == 0 and done < self.total_steps:
                    record.update(self.evaluate())
                if done % cfg.train.logging_steps == 0 or done == self.total_steps:
                    logger.log(done, record)
                last_metrics = record
                if cfg.train.save_steps and done % cfg.train.save_steps == 0 and done < self.total_steps:
                    self._pending_save = True
                if getattr(self, "_pending_save", False) and self._at_boundary():
                    self._save(done)
                    self._pending_save = False
            final_eval = self.evaluate()
            if final_eval:
                logger.log(self.total_steps, final_eval)
                last_metrics.update(final_eval)
            self._save(self.total_steps)
            final_dir = self._export_final()
        finally:
            logger.close()
        summary = {k: v for k, v in last_metrics.items() if isinstance(v, (int, float))}
        if self.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps({"steps": self.total_steps, **summary}, indent=2))
            logger.summary_table(f"mmsft {cfg.stage} · {self.total_steps} steps · {self.run_dir}", summary)
            write_report_safely(self.run_dir)  # report.html; a failure is a warning, the run is already saved
        return TrainResult(self.run_dir, self.total_steps, final_dir, summary)

    def _export_final(self) -> Path:
        final = self.run_dir / "final"
        if self.is_main:
            export_final(self.run_dir, self.model, self.loaded.processor, self.loaded.action_tokenizer)
        self.accelerator.wait_for_everyone()
        return final

