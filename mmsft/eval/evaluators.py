"""Evaluators: named functions that score one model folder on one evaluation set.

An evaluator is ``fn(model_dir: Path, spec: dict, ctx: EvalContext) -> dict[str, float]``. ``spec`` holds the
evaluation set's own arguments from the YAML (``path``, ``max_samples``, ``batch_size``, ...); ``ctx`` says where
the evaluator may write files (predictions, reports) and how to load a model (family, dtype, media budget), with a
cache so several evaluation sets on one stage load the model once. The returned dict holds the main metric, named
at registration, plus any others::

    @EVALUATORS.register("my_eval", metric="accuracy", args=MyArgs)   # MyArgs: a dataclass of the spec's keys
    def my_eval(model_dir, spec, ctx): ...

``args`` lets a pipeline reject a bad key before any stage trains (unknown keys fail with "did you mean").
An evaluator is named by its registered name or ``package.module:function``. Built in: ``generation_accuracy``
(greedy answers compared with ``answer``), ``reward_mean`` (generations scored by named rewards) and ``transfer_q``
(Transfer Q* value-guided decoding with a baseline model, :mod:`mmsft.objectives.transfer_q`). Task packages
register more; ``mmsft.eval.metrics.evaluators`` adds ``calibration`` and ``diversity``
(task packages: ``tasks.puzzles.evaluators``: ``puzzle_success``; ``tasks.libero.evaluators``: ``libero_success``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mmsft.errors import register_user_error
from mmsft.registry import Entry, Registry

EvaluatorFn = Callable[[Path, dict[str, Any], "EvalContext"], dict[str, float]]
EVALUATORS: Registry[EvaluatorFn] = Registry("evaluator")


@register_user_error
class EvaluatorError(RuntimeError):
    """An evaluator failed or returned something unusable; the message names the evaluator and the set."""


@dataclass
class ModelSettings:
    """How evaluators load a model folder (taken from the stage's ``model.*`` and ``data.*`` media keys)."""

    family: str = "auto"
    dtype: str = "float32"
    attn_implementation: str = ""
    trust_remote_code: bool = False
    budget: Any = None  # mmsft.data.media.MediaBudget or None (the adapter's defaults)
    device: str = "auto"  # auto: the first CUDA device when there is one, else CPU

    @classmethod
    def from_config(cls, cfg: Any, budget: Any = None) -> "ModelSettings":
        """The evaluation settings of a run config (``model.*``; ``budget`` built from its ``data.*`` keys)."""
        m = cfg.model
        return cls(family=m.family, dtype=m.dtype, attn_implementation=m.attn_implementation,
                   trust_remote_code=m.trust_remote_code, budget=budget)


def load_eval_model(name_or_path: str | Path, settings: ModelSettings | None = None) -> tuple[Any, Any]:
    """(LoadedModel in eval mode on ``settings.device``, its ModalityAdapter) for generation; shared by ``mmsft eval``
    and the evaluators."""
    from mmsft.models.loading import build_adapter, load_model

    settings = settings or ModelSettings()
    loaded = load_model(str(name_or_path), family=settings.family, dtype=settings.dtype,
                        attn_implementation=settings.attn_implementation or None,
                        trust_remote_code=settings.trust_remote_code)
    device = settings.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded.model.to(device).eval()
    return loaded, build_adapter(loaded, settings.budget, max_length=None)


class ModelCache:
    """Holds the last loaded model, so the evaluation sets of one stage share one load; ``clear`` frees it."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._value: tuple[Any, Any] | None = None

    def get(self, name_or_path: str | Path, settings: ModelSettings) -> tuple[Any, Any]:
        key = (str(name_or_path), repr(settings))
        if self._key != key:
            self.clear()
            self._value = load_eval_model(name_or_path, settings)
            self._key = key
        assert self._value is not None
        return self._value

    def clear(self) -> None:
        self._key, self._value = None, None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass
class EvalContext:
    """What an evaluator gets besides the model folder and its arguments."""

    out_dir: Path
    settings: ModelSettings = field(default_factory=ModelSettings)
    stage: str = ""
    eval_set: str = ""
    cache: ModelCache = field(default_factory=ModelCache)
    media: Any = None  # mmsft.data.schema.MediaPolicy for reading datasets (None: the loader's default)

    def model(self, model_dir: str | Path) -> tuple[Any, Any]:
        """(LoadedModel, adapter) of ``model_dir``, loaded once per context cache."""
        return self.cache.get(model_dir, self.settings)

    @property
    def where(self) -> str:
        name = f"evaluation set {self.eval_set!r}" if self.eval_set else "evaluation"
        return f"{name} (stage {self.stage!r})" if self.stage else name


def parse_args(cls: type, spec: dict[str, Any], where: str) -> Any:
    """Validate ``spec`` against the dataclass ``cls`` (types, choices, unknown keys with "did you mean")."""
    from mmsft.config import load_config_dict

    return load_config_dict(dict(spec), cls=cls, where=where)


def describe(entry: Entry[EvaluatorFn]) -> tuple[str | None, type | None]:
    """(main metric, argument dataclass) declared for an evaluator; a ``module:function`` evaluator inherits the
    declaration of its registration, else reads ``fn.metric`` / ``fn.args``."""
    meta = dict(entry.meta)
    if not meta:
        for name in list(EVALUATORS):
            registered = EVALUATORS.get(name)
            if registered.fn is entry.fn:
                meta = dict(registered.meta)
                break
    metric = meta.get("metric", getattr(entry.fn, "metric", None))
    return metric, meta.get("args", getattr(entry.fn, "args", None))


def check_spec(evaluator: str, spec: dict[str, Any], where: str) -> Entry[EvaluatorFn]:
    """Resolve the evaluator and validate its arguments now (before any training); returns its entry."""
    entry = EVALUATORS.get(evaluator)
    if not callable(entry.fn):
        raise EvaluatorError(f"{where}: evaluator {evaluator!r} is a {type(entry.fn).__name__}, not a function")
    _, args_cls = describe(entry)
    if args_cls is not None:
        parse_args(args_cls, spec, where)
    return entry


def run_evaluator(evaluator: str, model_dir: str | Path, spec: dict[str, Any],
                  ctx: EvalContext) -> tuple[dict[str, float], str]:
    """Run one evaluator; returns (metrics, main metric name). Every value must be a finite number.

    The main metric is the one declared at registration; an evaluator without a declaration uses the first key it
    returns (documented in docs/pipeline.md).
    """
    entry = check_spec(evaluator, spec, ctx.where)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    raw = entry.fn(Path(model_dir), dict(spec), ctx)
    if not isinstance(raw, dict) or not raw:
        raise EvaluatorError(f"{ctx.where}: evaluator {evaluator!r} returned {raw!r}; expected a non-empty dict of "
                             "metric name -> number")
    metrics: dict[str, float] = {}
    for key, value in raw.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise EvaluatorError(f"{ctx.where}: evaluator {evaluator!r} returned {key!r}={value!r}; expected a "
                                 "number") from None
        if not math.isfinite(number):
            raise EvaluatorError(f"{ctx.where}: evaluator {evaluator!r} returned {key!r}={number}")
        metrics[str(key)] = number
    declared, _ = describe(entry)
    main = declared or next(iter(metrics))
    if main not in metrics:
        raise EvaluatorError(f"{ctx.where}: evaluator {evaluator!r} declares main metric {main!r} but returned "
                             f"{sorted(metrics)}")
    return metrics, main


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def load_samples(path: str, max_samples: int, ctx: EvalContext) -> list[Any]:
    """The first ``max_samples`` samples (0: all) of a JSONL file or ``save_to_disk`` folder, media read under
    ``ctx.media`` (the stage's ``data.media_roots`` / ``data.allow_any_media_path``)."""
    from mmsft.data.loaders import load_dataset

    if not path:
        raise EvaluatorError(f"{ctx.where}: key 'path' is required (a JSONL file or save_to_disk folder)")
    samples = load_dataset(path, media=ctx.media)
    return samples[:max_samples] if max_samples > 0 else samples


def arg_field(default: Any, text: str, choices: tuple | None = None) -> Any:
    """A documented evaluator argument (``choices`` are checked when the arguments are parsed)."""
    return field(default=default, metadata={"help": text, "choices": choices})


# --- built-in evaluators --------------------------------------------------------------------------------------
@dataclass
class GenerationArgs:
    path: str = arg_field("", "JSONL file or save_to_disk folder with an 'answer' per sample.")
    max_samples: int = arg_field(0, "Evaluate the first N samples (0: all).")
    batch_size: int = arg_field(16, "Prompts per generation batch.")
    max_new_tokens: int = arg_field(16, "Generation cap.")
    match: str = arg_field("exact", "exact (normalised) or contains.", ("exact", "contains"))


@EVALUATORS.register("generation_accuracy", metric="accuracy", args=GenerationArgs)
def generation_accuracy(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Greedy generation compared with each sample's ``answer``; also ``accuracy/<meta.kind>`` per kind.
    Writes ``predictions.jsonl`` to ``ctx.out_dir``."""
    from mmsft.eval.generation import accuracy_by, evaluate_accuracy

    args = parse_args(GenerationArgs, spec, ctx.where)
    samples = load_samples(args.path, args.max_samples, ctx)
    loaded, adapter = ctx.model(model_dir)
    result = evaluate_accuracy(loaded.model, adapter, samples, args.batch_size, args.max_new_tokens, args.match)
    write_jsonl(ctx.out_dir / "predictions.jsonl", result.predictions)
    metrics = {"accuracy": result.accuracy, "correct": float(result.correct), "total": float(result.total)}
    if any(row.get("kind") is not None for row in result.predictions):
        metrics.update({f"accuracy/{kind}": acc for kind, acc in accuracy_by(result.predictions).items()})
    return metrics


@dataclass
class RewardArgs:
    path: str = arg_field("", "JSONL file or save_to_disk folder of prompts (with whatever the rewards read).")
    rewards: str = arg_field("", "Comma-separated reward names (registered or module:function).")
    reward_weights: str = arg_field("", "Comma-separated weights, one per reward (empty: all 1).")
    max_samples: int = arg_field(0, "Evaluate the first N prompts (0: all).")
    batch_size: int = arg_field(16, "Prompts per generation batch.")
    max_new_tokens: int = arg_field(64, "Generation cap.")
    temperature: float = arg_field(0.0, "0: greedy (deterministic); > 0: sampling with 'seed'.")
    top_p: float = arg_field(1.0, "Nucleus threshold when sampling.")
    n: int = arg_field(1, "Completions per prompt.")
    seed: int = arg_field(0, "torch seed when sampling.")


@EVALUATORS.register("reward_mean", metric="reward_mean", args=RewardArgs)
def reward_mean(model_dir: Path, spec: dict[str, Any], ctx: EvalContext) -> dict[str, float]:
    """Mean weighted reward of the model's completions, plus each reward's mean (``reward/<name>``).
    Writes ``completions.jsonl`` (text and total reward per completion) to ``ctx.out_dir``."""
    import torch

    from mmsft.eval.generation import generate
    from mmsft.rewards import compute_rewards

    args = parse_args(RewardArgs, spec, ctx.where)
    names = [n.strip() for n in args.rewards.split(",") if n.strip()]
    if not names:
        raise EvaluatorError(f"{ctx.where}: key 'rewards' is required (e.g. rewards: puzzle_success,puzzle_format)")
    try:
        weights = [float(w) for w in args.reward_weights.split(",") if w.strip()] or None
    except ValueError:
        raise EvaluatorError(f"{ctx.where}: reward_weights {args.reward_weights!r}: expected comma-separated "
                             "numbers") from None
    if args.n < 1:
        raise EvaluatorError(f"{ctx.where}: n={args.n}; expected >= 1")
    prompts = load_samples(args.path, args.max_samples, ctx)
    samples = [s for s in prompts for _ in range(args.n)]
    loaded, adapter = ctx.model(model_dir)
    sampling: dict[str, Any] = {}
    if args.temperature > 0:
        torch.manual_seed(args.seed)
        sampling = {"temperature": args.temperature, "top_p": args.top_p}
    texts = generate(loaded.model, adapter, samples, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                     do_sample=args.temperature > 0, **sampling)
    result = compute_rewards(names, weights, samples, texts)
    write_jsonl(ctx.out_dir / "completions.jsonl",
                [{"id": s.id, "completion": t, "reward": r} for s, t, r in zip(samples, texts, result.total)])
    means = result.means()
    return {"reward_mean": means.pop("reward/total"), **means}


from mmsft.objectives import transfer_q as _transfer_q  # noqa: E402,F401  (registers transfer_q, arXiv 2405.20495)
# calibration (ECE, self-ensembling, reliability diagram) and diversity (distinct-n, EAD, embedding cosine)
from mmsft.eval.metrics import evaluators as _metric_evaluators  # noqa: E402,F401  (registers them)
