"""The script API: train, run pipelines, evaluate and load policies from a Python file you own, launched with
``python my_script.py`` or ``accelerate launch my_script.py`` (as people do with TRL)::

    from mmsft import api

    result = api.train("sft.yaml", train={"max_steps": 100}, **{"optim.lr": 1e-5})
    policy = api.load_policy(result.final_model_dir)
    print(policy.generate(["What colour is the sky?"], max_new_tokens=8))
    metrics = api.evaluate(result.final_model_dir, "eval.jsonl")

Every function returns Python objects (:class:`~mmsft.train.trainer.TrainResult`,
:class:`~mmsft.pipeline.PipelineResult`, a metrics dict, :class:`LoadedPolicy`). Overrides follow the config's
rules — unknown keys fail naming the nearest valid key — and may be given as ``section={"key": value}`` (merged into
that section), ``section__key=value`` or ``**{"section.key": value}``. Under ``accelerate launch`` every process
runs the script; training is data parallel and evaluation runs on the main process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mmsft.config import ConfigError, RunConfig, load_config, load_config_dict, to_dict



def _merge(base: dict[str, Any], key: str, value: Any) -> None:
    parts = key.replace("__", ".").split(".")
    node = base
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for sub_key, sub_value in value.items():
            _merge(node[last], str(sub_key), sub_value)
    else:
        node[last] = value


def _override_strings(overrides: dict[str, Any]) -> list[str]:
    """``key=value`` strings (values as JSON, which the override parser reads as YAML) of nested overrides."""
    import json

    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        _merge(nested, key, value)
    out: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node and not prefix.endswith(("args", "stage_args")):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out.append(f"{prefix}={json.dumps(node, default=str)}")

    walk("", nested)
    return out


def config(config_or_dict: Any = None, **overrides: Any) -> RunConfig:
    """A validated :class:`~mmsft.config.RunConfig` from a YAML path, a mapping, a RunConfig or None (defaults),
    with ``overrides`` applied on top (see the module docstring)."""
    if isinstance(config_or_dict, RunConfig):
        values = to_dict(config_or_dict)
        where = "<RunConfig>"
    elif config_or_dict is None or isinstance(config_or_dict, dict):
        values = dict(config_or_dict or {})
        where = "<mapping>"
    elif isinstance(config_or_dict, (str, Path)):  # the file's own values, then the overrides (presets re-applied)
        return load_config(config_or_dict, _override_strings(overrides))
    else:
        raise ConfigError(f"expected a YAML path, a mapping or a RunConfig, got {type(config_or_dict).__name__}")
    merged: dict[str, Any] = {}
    for key, value in values.items():
        _merge(merged, key, value)
    for key, value in overrides.items():
        _merge(merged, key, value)
    return load_config_dict(merged, where=where)


def train(config_or_dict: Any = None, **overrides: Any) -> Any:
    """Train one stage; returns :class:`~mmsft.train.trainer.TrainResult` (run folder, steps, final model folder,
    last metrics)."""
    from mmsft.train.trainer import Trainer

    return Trainer(config(config_or_dict, **overrides)).train()


def run_pipeline(source: str | Path | dict[str, Any], overrides: Sequence[str] | None = None, quiet: bool = False,
                 **keys: Any) -> Any:
    """Run a multi-stage pipeline (:func:`mmsft.pipeline.run_pipeline`); ``keys`` are extra ``key=value`` overrides
    of the pipeline file (``output_dir="runs/p"``). Returns :class:`~mmsft.pipeline.PipelineResult`."""
    from mmsft.pipeline import run_pipeline as _run

    items = list(overrides or []) + [f"{k.replace('__', '.')}={v}" for k, v in keys.items()]
    return _run(source, items, quiet=quiet)


@dataclass
class LoadedPolicy:
    """A model folder ready to generate: the model (eval mode), its processor, modality adapter and family."""

    path: str
    model: Any
    processor: Any
    adapter: Any
    family: str
    loaded: Any = field(repr=False, default=None)

    def generate(self, prompts: Sequence[Any], max_new_tokens: int = 64, temperature: float = 0.0,
                 batch_size: int = 8, seed: int = 0, **sampling: Any) -> list[str]:
        """Completions of ``prompts``: :class:`~mmsft.data.schema.Sample`s (any media) or plain strings (one user
        turn). ``temperature`` 0 is greedy; above 0 samples with ``seed``."""
        import torch

        from mmsft.data.schema import Message, Part, Sample
        from mmsft.eval.generation import generate

        def as_sample(index: int, prompt: Any) -> Sample:
            if isinstance(prompt, Sample):
                return prompt
            return Sample(f"prompt-{index}", [Message("user", (Part("text", text=str(prompt)),))])

        samples = [as_sample(i, p) for i, p in enumerate(prompts)]
        if temperature > 0:
            torch.manual_seed(seed)
            sampling = {"temperature": temperature, **sampling}
        return generate(self.model, self.adapter, samples, batch_size=batch_size, max_new_tokens=max_new_tokens,
                        do_sample=temperature > 0, **sampling)


def load_policy(path: str | Path, family: str = "auto", dtype: str = "float32", device: str = "auto",
                **budget: Any) -> LoadedPolicy:
    """Load a model folder (or hub id) for generation; ``budget`` sets media limits (``video_max_frames=32``,
    ``video_max_pixels=...``: the fields of :class:`mmsft.data.media.MediaBudget`)."""
    from mmsft.data.media import MediaBudget
    from mmsft.eval.evaluators import ModelSettings, load_eval_model

    settings = ModelSettings(family=family, dtype=dtype, device=device,
                             budget=MediaBudget(**budget) if budget else None)
    loaded, adapter = load_eval_model(str(path), settings)
    return LoadedPolicy(str(path), loaded.model, loaded.processor, adapter, loaded.family, loaded)


def evaluate(model: str | Path | LoadedPolicy, data: str | Path | None = None, evaluator: str = "generation_accuracy",
             out_dir: str | Path | None = None, media_roots: Sequence[str] = (), family: str = "auto",
             dtype: str = "float32", **spec: Any) -> dict[str, float]:
    """Score a model folder with a registered evaluator (``generation_accuracy``, ``reward_mean``, a plugin's such
    as ``videorft_eval``, or ``package.module:function``) on ``data`` (its ``path``); ``spec`` holds the
    evaluator's other arguments. Returns the metrics dict (``out_dir`` gets predictions; default a temporary
    folder)."""
    import tempfile

    from mmsft.data.schema import MediaPolicy
    from mmsft.eval.evaluators import EvalContext, ModelSettings, run_evaluator

    path = model.path if isinstance(model, LoadedPolicy) else str(model)
    if data is not None:
        spec["path"] = str(data)
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="mmsft-eval-"))
    ctx = EvalContext(folder, ModelSettings(family=family, dtype=dtype), eval_set=Path(str(data or "")).stem,
                      media=MediaPolicy.from_config(media_roots) if media_roots else None)
    if isinstance(model, LoadedPolicy):  # reuse the loaded weights
        ctx.cache._key, ctx.cache._value = (path, repr(ctx.settings)), (model.loaded, model.adapter)
    metrics, _ = run_evaluator(evaluator, path, spec, ctx)
    return metrics


__all__ = ["LoadedPolicy", "config", "evaluate", "load_policy", "run_pipeline", "train"]
