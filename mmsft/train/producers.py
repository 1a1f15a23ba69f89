"""Data producers: what a training stage feeds the loop each optimizer step.

The SFT producer walks a seeded permutation of the dataset (a new one each epoch), encodes samples through the
modality adapter and groups them into micro-batches. Its position (epoch, cursor) is part of every checkpoint, so a
resumed run sees exactly the samples it would have seen. Samples over ``max_length`` under the ``drop`` policy are
skipped and counted (``data/dropped_overlong``); every other bad sample raises with its file, line and id.

Beyond targets and token weights it provides what frozen scorers compute on the same micro-batch when the objective
needs it (reference / teacher log-probs and top-k supports, :mod:`mmsft.train.scored_fields` — ASFT, CurioSFT,
supervised top-k distillation), PoFT's per-sample ``ref_score`` (``meta.ref_score``), the live policy's greedy guesses
``policy_argmax`` (IFT), and applies the loss's declared
per-epoch sample transform (``sample_transform`` registry meta, e.g. masked fine-tuning; reseeded every epoch).
A loss with registry meta ``aux_batch=True`` (LfU) gets ``fields["aux_batch"]`` on every micro-batch: a second
micro-batch drawn at random from the training set by a stream seeded by (seed, step, rank, micro-batch), so it is the
same on resume and does not move the data position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import torch

from mmsft.data.schema import DataError, Sample
from mmsft.models.adapters import Encoded, ModalityAdapter, ModelBatch, OverlongSample
from mmsft.train.scored_fields import SCORED_FIELDS, attach_scored_fields, policy_argmax, support_k
from mmsft.train.stage import StageContext, register_producer

SFT_FIELDS = ("token_weights", "ref_score", "policy_argmax", *SCORED_FIELDS)
SampleTransform = Callable[[Sample, np.random.Generator, ModalityAdapter], Sample]


@dataclass
class ProducerState:
    epoch: int = 0
    cursor: int = 0
    dropped_overlong: int = 0
    truncated: int = 0
    samples_seen: int = 0
    steps: int = 0
    dropped_ids: list[str] = field(default_factory=list)


def token_weights_of(sample: Sample, encoded: Encoded) -> torch.Tensor | None:
    """Per-supervised-token weights of a sample (``token_weights`` × ``weight``), validated against its tokens."""
    if sample.weight is None and sample.token_weights is None:
        return None
    count = int(encoded.loss_mask.sum())
    weights = torch.ones(count)
    if sample.token_weights is not None:
        if len(sample.token_weights) != count and not (encoded.truncated and len(sample.token_weights) > count):
            raise DataError(f"{sample.where()}: 'token_weights' has {len(sample.token_weights)} values but the target "
                            f"has {count} supervised tokens")
        weights = torch.tensor(sample.token_weights[:count], dtype=torch.float32)
    if sample.weight is not None:
        weights = weights * sample.weight
    return weights


class SFTProducer:
    """Yields the micro-batches of one optimizer step for this process."""

    provides = frozenset(SFT_FIELDS)

    def __init__(self, samples: list[Sample], adapter: ModalityAdapter, micro_batch_size: int, grad_accum: int,
                 seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1, cache: bool = True,
                 scorers: Any = None, needed: set[str] | frozenset[str] = frozenset(), topk: int = 0,
                 transform: SampleTransform | None = None, live: tuple[Any, Any, Any] | None = None,
                 aux_batch: bool = False, selector: Any = None,
                 selection_counts: dict[str, float] | None = None, pack: bool = False) -> None:
        if not samples:
            raise DataError("the training dataset is empty")
        self.samples, self.adapter = samples, adapter
        self.micro_batch_size, self.grad_accum = micro_batch_size, grad_accum
        self.seed, self.shuffle, self.rank, self.world_size = seed, shuffle, rank, world_size
        self.scorers, self.needed, self.topk, self.transform = scorers, set(needed), topk, transform
        self.live = live  # (policy, device, vocab_subset): the live policy, for fields taken from it (IFT)
        self.pack = pack  # padding-free: each micro-batch is one packed row (data.packing)
        self.aux_batch = aux_batch  # attach a random second micro-batch per micro-batch (LfU)
        self.state = ProducerState()
        # data selection (mmsft.data.selectors.hook): an online runner and / or the offline selector's counts
        self.selector, self.selection_counts = selector, dict(selection_counts or {})
        self._cache: dict[int, Encoded] | None = {} if cache and transform is None else None
        self._order = self._permutation(0)

    @property
    def samples_per_step(self) -> int:
        return self.micro_batch_size * self.grad_accum * self.world_size

    def steps_per_epoch(self) -> int:
        drawn = self.selector.pool_size(self.samples_per_step) if self.selector is not None else self.samples_per_step
        return max(1, len(self.samples) // drawn)  # online selection: an epoch is a pass over the drawn pools

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.samples))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.samples))

    def _next_index(self) -> int:
        if self.state.cursor >= len(self._order):
            self.state.epoch += 1
            self.state.cursor = 0
            self._order = self._permutation(self.state.epoch)
        index = int(self._order[self.state.cursor])
        self.state.cursor += 1
        return index

    def _encode(self, index: int) -> Encoded:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self.samples[index]
        if self.transform is not None:  # reseeded per (epoch, sample): a new mask every epoch, same on resume
            sample = self.transform(sample, np.random.default_rng([self.seed, self.state.epoch, index]), self.adapter)
        encoded = self.adapter.encode(sample, with_target=True)
        if not bool(encoded.loss_mask.any()):
            raise DataError(f"{self.samples[index].where()}: the sample has no supervised tokens")
        encoded.token_weights = token_weights_of(sample, encoded)
        if self._cache is not None:
            self._cache[index] = encoded
        return encoded

    def _draw(self) -> tuple[int, Encoded]:
        """Next usable sample (index, encoding); overlong ones are dropped and counted (bounded so an all-overlong
        set fails)."""
        for _ in range(len(self.samples) + 1):
            index = self._next_index()
            try:
                encoded = self._encode(index)
            except OverlongSample:
                self.state.dropped_overlong += 1
                if len(self.state.dropped_ids) < 20:
                    self.state.dropped_ids.append(self.samples[index].id)
                continue
            self.state.samples_seen += 1
            self.state.truncated += int(encoded.truncated)
            return index, encoded
        raise DataError("every training sample exceeds data.max_length under the drop policy; raise max_length")

    def next_step(self) -> list[ModelBatch]:
        """Micro-batches of one optimizer step for this rank (all ranks draw the same global order)."""
        notify_step(self.scorers, self.state.steps)
        pool = self.selector.pool_size(self.samples_per_step) if self.selector is not None else self.samples_per_step
        drawn = [self._draw() for _ in range(pool)]
        if self.selector is not None:  # online selection: keep part of the pool, maybe with pruned token masks
            drawn = self.selector.select(drawn, self.state.steps, [self.samples[i].id for i, _ in drawn])
        mine = drawn[self.rank::self.world_size]
        chunks = [mine[i:i + self.micro_batch_size] for i in range(0, len(mine), self.micro_batch_size)]
        batches = []
        for chunk_index, chunk in enumerate(chunks):
            items = [e for _, e in chunk]
            batch = self._with_weights(self.adapter.pack(items) if self.pack else self.adapter.collate(items), items)
            task_types = [self.samples[i].meta.get("task_type") for i, _ in chunk]
            if any(t is not None for t in task_types):  # LoRAMoE's localised balancing (mmsft.train.peft_hooks)
                batch.fields["task_type"] = self._task_types([i for i, _ in chunk])
            if "ref_score" in self.needed:
                batch.fields["ref_score"] = self._ref_scores([i for i, _ in chunk])
            if self.scorers is not None:
                attach_scored_fields(batch, self.scorers, self.needed, self.topk)
            if "policy_argmax" in self.needed:
                if self.live is None:
                    raise ValueError("the objective needs policy_argmax but the producer has no live policy")
                batch.fields["policy_argmax"] = policy_argmax(*self.live[:1], batch, *self.live[1:])
            if self.aux_batch:
                batch.fields["aux_batch"] = self._aux(len(chunk), chunk_index)  # type: ignore[assignment]
            batches.append(batch)
        self.state.steps += 1
        return batches

    def _task_types(self, indices: list[int]) -> torch.Tensor:
        """``meta.task_type`` per sample (0: world knowledge, 1: downstream task), all present or none."""
        values = []
        for index in indices:
            value = self.samples[index].meta.get("task_type")
            if value not in (0, 1) or isinstance(value, bool):
                raise DataError(f"{self.samples[index].where()}: meta.task_type must be 0 (world knowledge) or 1 "
                                f"(downstream task) when any sample sets it, got {value!r}")
            values.append(int(value))
        return torch.tensor(values, dtype=torch.long)

    def _aux(self, size: int, chunk_index: int) -> ModelBatch:
        """``size`` random training samples (with replacement; overlong ones skipped, bounded tries) as a micro-batch,
        from a stream seeded by (seed, step, rank, micro-batch): the data position and counters are untouched."""
        rng = np.random.default_rng([self.seed, 0x1F0, self.state.steps, self.rank, chunk_index])
        picked: list[Encoded] = []
        for _ in range(20 * size + len(self.samples)):
            try:
                picked.append(self._encode(int(rng.integers(len(self.samples)))))
            except OverlongSample:
                continue
            if len(picked) == size:
                return self.adapter.collate(picked)
        raise DataError("could not draw an auxiliary batch: nearly every training sample exceeds data.max_length")

    def _ref_scores(self, indices: list[int]) -> torch.Tensor:
        """PoFT's offline reference score r̄ per sample (``meta.ref_score``, see :mod:`mmsft.data.transforms_poft`)."""
        values = []
        for index in indices:
            value = self.samples[index].meta.get("ref_score")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise DataError(f"{self.samples[index].where()}: the objective needs a finite number in "
                                f"meta.ref_score (PoFT's reference score), got {value!r}; compute it with "
                                "mmsft.data.transforms_poft.add_reference_scores")
            values.append(float(value))
        return torch.tensor(values, dtype=torch.float32)

    def _with_weights(self, batch: ModelBatch, chunk: list[Encoded]) -> ModelBatch:
        """Attach ``token_weights`` (B, T) when any sample of the micro-batch carries weights (others get 1)."""
        from mmsft.train.rollout_batches import scatter_to_mask

        weights = [e.token_weights for e in chunk]
        if any(w is not None for w in weights):
            rows = [w if w is not None else torch.ones(int(e.loss_mask.sum())) for w, e in zip(weights, chunk)]
            if self.pack:  # one row holding every sample's supervised tokens in order
                rows = [torch.cat(rows)]
            batch.fields["token_weights"] = scatter_to_mask(rows, batch.loss_mask)
        return batch

    def pop_metrics(self) -> dict[str, float]:
        metrics = {"data/dropped_overlong": self.state.dropped_overlong, "data/truncated": self.state.truncated,
                   "data/epoch": self.state.epoch, **self.selection_counts}
        return {**metrics, **self.selector.metrics()} if self.selector is not None else metrics

    def state_dict(self) -> dict:
        state = dict(self.state.__dict__)
        if self.selector is not None:
            state["selector"] = self.selector.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        selector = state.pop("selector", None)
        self.state = ProducerState(**state)
        if self.selector is not None and selector is not None:
            self.selector.load_state_dict(selector, self.state.steps)
        self._order = self._permutation(self.state.epoch)


def notify_step(scorers: Any, step: int) -> None:
    """Tell stateful scorers (a lagged self-teacher that re-syncs every few steps) which step is being produced."""
    for name in ("ref", "teacher"):
        hook = getattr(getattr(scorers, name, None), "on_step", None)
        if hook is not None:
            hook(step)


def loss_transform(cfg: Any) -> SampleTransform | None:
    """The configured loss's per-epoch sample transform (registry meta ``sample_transform``: a factory
    ``fn(args) -> transform``), or None."""
    from mmsft.config import build_args
    from mmsft.objectives import get_loss

    entry = get_loss(cfg.objective.name)
    factory = entry.meta.get("sample_transform")
    return factory(build_args(entry, cfg.objective.args, "objective.args")) if factory is not None else None


@register_producer("sft", provides=SFT_FIELDS)
def sft_producer(ctx: StageContext) -> SFTProducer:
    """Supervised fine-tuning on a dataset (targets from the data; optional per-token weights; reference / teacher
    fields from frozen scorers when the objective needs them)."""
    from mmsft.data.selectors.hook import build_selection

    cfg = ctx.cfg
    if cfg.data.packing:
        check_packing(cfg, ctx)
    samples, selector, counts = build_selection(ctx)  # data.selector: offline decisions now, online per step
    return SFTProducer(samples, ctx.adapter, cfg.train.micro_batch_size, cfg.train.grad_accum, cfg.train.seed,
                       cfg.data.shuffle, ctx.rank, ctx.world_size, scorers=ctx.scorers, needed=ctx.needed,
                       topk=support_k(cfg), transform=loss_transform(cfg),
                       live=(ctx.policy, ctx.device, ctx.vocab_subset), aux_batch=loss_wants_aux_batch(cfg),
                       selector=selector, selection_counts=counts, pack=cfg.data.packing)


def loss_wants_aux_batch(cfg: Any) -> bool:
    """Whether the configured loss declares ``aux_batch=True`` (a second random micro-batch per micro-batch, LfU)."""
    from mmsft.objectives import get_loss

    return bool(get_loss(cfg.objective.name).meta.get("aux_batch"))


PACKABLE_FIELDS = frozenset({"logp", "token_weights", "entropy"})


def check_packing(cfg: Any, ctx: StageContext) -> None:
    """``data.packing`` needs a text model and an objective that sees only tokens (a packed micro-batch is one row, so
    per-row fields and per-sequence aggregation would mix samples); switches the model to per-sample attention."""
    from mmsft.config import ConfigError
    from mmsft.models import varlen_attention

    if type(ctx.adapter).pack is ModalityAdapter.pack:
        raise ConfigError(f"config key 'data.packing': the {ctx.adapter.family} family has no packed batches; "
                          "set data.packing=false")
    extra = sorted(set(ctx.needed) - PACKABLE_FIELDS)
    if cfg.objective.loss_agg_mode != "token-mean" or extra or cfg.objective.kl.coef:
        why = (f"loss_agg_mode {cfg.objective.loss_agg_mode!r}" if cfg.objective.loss_agg_mode != "token-mean"
               else f"fields {extra}" if extra else "a KL term")
        raise ConfigError(f"config key 'data.packing': objective {cfg.objective.name!r} uses {why}, which needs one row "
                          "per sample; packing supports token-mean objectives over log-probs (and token weights) only")
    varlen_attention.enable(ctx.loaded.model)
