"""Typed run configuration: defaults ⊕ YAML ⊕ ``key=value`` overrides.

Every field carries help text (``mmsft train --help-config`` prints them; ``docs/config.md`` is generated from them).
An unknown key or a bad value fails at load time, naming the key and the nearest valid names or choices.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsft.config_base import (  # noqa: F401  (re-exported: the public config API lives here)
    ConfigError,
    _apply,
    _choices,
    _f,
    _nearest,
    bounds_text,
    coerce_value,
    parse_overrides,
    validate,
)
from mmsft.rollout.env_config import EnvConfig


@dataclass
class ModelConfig:
    name_or_path: str = _f("", "Local folder or hub id of a HF causal LM or image-text-to-text model.")
    family: str = _f("auto", "Adapter family; auto detects from the config.", ("auto", "text", "qwen2-vl", "qwen2.5-vl", "vla"))
    dtype: str = _f("float32", "Weights dtype when loading.", ("float32", "bfloat16", "float16"))
    attn_implementation: str = _f("", "sdpa, eager, flash_attention_2, ... (empty: transformers' default).")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    trust_remote_code: bool = _f(False, "Allow custom modelling code from the model folder.")
    logprob_chunk_size: int = _f(1024, "Tokens per LM-head chunk when computing log-probs (bounds logits memory).", ge=1)


@dataclass
class LoraConfig:
    enabled: bool = _f(False, "Train LoRA adapters (peft) instead of all weights.")
    r: int = _f(16, "LoRA rank.", ge=1)
    alpha: int = _f(32, "LoRA alpha.", ge=1)
    dropout: float = _f(0.0, "LoRA dropout.", ge=0, lt=1)
    target_modules: str = _f("all-linear", "Comma-separated module names, or all-linear.")
    method: str = _f("lora", "PEFT method (with enabled: true): lora, or any method peft registers (ia3, loha, lokr, "
                             "oft, boft, vera, adalora, ...) plus mmsft's loramoe, ssf, sparse (LT-SFT / SpIEL). See "
                             "docs/peft.md.")
    method_args: dict = _f({}, "The method's own peft config fields (e.g. {use_dora: true} for lora, {num_experts: 8} "
                               "for loramoe, {density: 0.01, mask_path: ...} for sparse).")


@dataclass
class DataConfig:
    train_path: str = _f("", "Training JSONL file or datasets.save_to_disk folder (mmsft schema).")
    eval_path: str = _f("", "Held-out JSONL / folder for evaluation (optional).")
    loader: str = _f("auto", "Dataset loader: auto (a registered format whose detector accepts the path, else JSONL "
                             "/ save_to_disk) or a registered name (mmsft.data.loaders.DATASET_LOADERS, e.g. "
                             "libero_episodes).")
    loader_args: dict = _f({}, "Arguments of the registered loader (e.g. {chunk: 4, proprio: true} for "
                               "libero_episodes).")
    max_length: int = _f(2048, "Maximum tokens per sample (prompt + response, media tokens included).", ge=1)
    overlong: str = _f("drop", "Samples over max_length: drop (counted, logged), truncate the response, or error.",
                       ("drop", "truncate", "error"))
    padding_side: str = _f("right", "Padding side of training batches (results are identical either way).", ("left", "right"))
    shuffle: bool = _f(True, "Shuffle every epoch (seeded; resume continues the same order).")
    packing: bool = _f(False, "SFT, text models: each micro-batch runs as one row without padding (position ids restart "
                              "per sample, attention stays within each sample; docs/benchmarks.md). Token-mean "
                              "objectives without per-row fields only.")
    image_min_pixels: int = _f(4 * 28 * 28, "Minimum pixels per image after resizing.", ge=1, le="image_max_pixels")
    image_max_pixels: int = _f(256 * 28 * 28, "Maximum pixels per image after resizing.", ge=1)
    video_fps: float = _f(2.0, "Frames sampled per second of video.", gt=0)
    video_min_frames: int = _f(2, "Minimum sampled frames per video.", ge=1, le="video_max_frames")
    video_max_frames: int = _f(16, "Maximum sampled frames per video.", ge=1)
    video_min_pixels: int = _f(4 * 28 * 28, "Minimum pixels per video frame.", ge=1, le="video_max_pixels")
    video_max_pixels: int = _f(128 * 28 * 28, "Maximum pixels per video frame.", ge=1)
    media_roots: list[str] = _f([], "Extra folders media paths may point into (a list, or comma-separated); the JSONL's "
                                "own folder (a saved dataset's folder) is always allowed.")
    allow_any_media_path: bool = _f(False, "Open media paths anywhere (absolute, ../, file://, symlinks out of the "
                                           "data root); off: such paths are an error naming the row.")
    selector: str = _f("", "Data selector of the sft stage (mmsft.data.selectors.SELECTORS: s3ft, grape, stat, "
                           "branching_filter, random — offline; uds, q_tuning — online) or 'package.module:function'; "
                           "decisions go to metrics.jsonl (select/*) and <run>/selection/. See docs/data_selection.md.")
    selector_args: dict = _f({}, "The selector's own arguments (its args dataclass).")


def _kl_choices() -> tuple[str, ...]:
    from mmsft.objectives import KL_ESTIMATORS

    return tuple(KL_ESTIMATORS.names())


@dataclass
class KLConfig:
    coef: float = _f(0.0, "β of the KL(π‖π_ref) term (0: no reference model is loaded).", ge=0)
    estimator: str = _f("k3", "Per-token KL estimator (registry KL_ESTIMATORS).", _kl_choices)
    placement: str = _f("loss", "KL as a loss term, or subtracted from the reward (k1 recommended there).",
                        ("loss", "reward"))


@dataclass
class ObjectiveConfig:
    name: str = _f("sft", "Registered loss (mmsft.objectives.LOSSES: sft, dft, ppo_clip, gspo, cispo, chord, ...) "
                          "or 'package.module:function'.")
    args: dict = _f({}, "The loss's own arguments (its args dataclass; e.g. clip_high for ppo_clip). "
                        "`mmsft train --help-config` lists them per loss.")
    loss_agg_mode: str = _f("token-mean", "Aggregation over the whole optimizer step.",
                            ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"))
    max_len_norm: int = _f(0, "T_max for seq-mean-token-sum-norm (0: longest response in the step).", ge=0)
    kl: KLConfig = field(default_factory=KLConfig, metadata={"help": "KL-to-reference term (any loss)."})
    entropy_coef: float = _f(0.0, "Entropy bonus coefficient (computes token entropies when > 0).", ge=0)


@dataclass
class RLConfig:
    group_size: int = _f(4, "Completions sampled per prompt (the GRPO group G).", ge=1)
    prompts_per_step: int = _f(8, "Prompts per rollout batch (all processes together).", ge=1)
    max_new_tokens: int = _f(64, "Generation cap per completion.", ge=1)
    temperature: float = _f(1.0, "Sampling temperature (also applied to the trainer's log-probs).", ge=0)
    top_p: float = _f(1.0, "Nucleus sampling threshold.", gt=0, le=1)
    top_k: int = _f(0, "Top-k sampling (0 disables).", ge=0)
    stop_strings: str = _f("", "Comma-separated strings that end a completion.")
    stop_temperature: float = _f(1.0, "TLDR temperature scaling of the stop decision (arXiv 2505.07961): stop tokens' "
                                      "log-probs divided by T (> 1 stops earlier; 1 = off).", gt=0)
    stop_temperature_tokens: str = _f("", "Comma-separated tokens rl.stop_temperature applies to (e.g. </think>; "
                                          "empty: the model's stop tokens).")
    rewards: str = _f("", "Comma-separated rewards: registered names or 'package.module:function'.")
    reward_weights: str = _f("", "Comma-separated weights, one per reward (empty: all 1).")
    advantage: str = _f("grpo", "Registered advantage estimator (grpo, dr_grpo, rloo, reinforce_pp, "
                                "reinforce_pp_baseline, opd) or 'package.module:function'.")
    advantage_args: dict = _f({}, "The advantage estimator's own arguments (e.g. eps for grpo, coef for opd).")
    teacher: str = _f("", "Teacher for distillation: a model folder / hub id sharing the student's tokenizer, or "
                          "'package.module:function' returning a scorer (e.g. a callable teacher over action bins).")
    ppo_epochs: int = _f(1, "Passes over each rollout batch.", ge=1)
    mini_batches: int = _f(1, "Optimizer steps per rollout batch and epoch.", ge=1)
    dynamic_sampling: bool = _f(False, "Sampling filter: drop groups whose rewards have zero std and refill (DAPO).")
    max_resample: int = _f(3, "Extra generation rounds dynamic sampling may spend to refill the batch.", ge=0)
    overlong_filter: bool = _f(False, "Mask truncated completions (hit max_new_tokens) out of the loss.")
    soft_overlong_cache: int = _f(0, "DAPO soft overlong punishment window L_cache in tokens (0 disables; -1: "
                                     "max_new_tokens // 5, the paper's 4096 of 20480).", ge=-1)
    soft_overlong_penalty: float = _f(1.0, "Maximum soft overlong punishment.", ge=0)
    generation_batch_size: int = _f(64, "Sequences per generate call.", ge=1)
    log_completions: int = _f(4, "Completions per step written to <run>/rollouts/.", ge=0)


@dataclass
class MixConfig:
    expert_path: str = _f("", "Expert demonstrations (JSONL, mmsft schema) mixed into every RL step (stage mix).")
    expert_per_step: int = _f(2, "Expert rows per optimizer step (on top of the rollouts), drawn in a seeded order.", ge=1)


@dataclass
class OptimConfig:
    lr: float = _f(1e-5, "Peak learning rate (AdamW).", ge=0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", ge=0)
    beta1: float = _f(0.9, "AdamW beta1.", ge=0, lt=1)
    beta2: float = _f(0.999, "AdamW beta2.", ge=0, lt=1)
    warmup_ratio: float = _f(0.0, "Fraction of steps of linear warm-up.", ge=0, le=1)
    scheduler: str = _f("cosine", "Learning-rate schedule after warm-up.", ("cosine", "linear", "constant"))
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).", ge=0)


@dataclass
class TrainConfig:
    output_dir: str = _f("runs/default", "Run directory (config, metrics, checkpoints, tables, plots).")
    max_steps: int = _f(0, "Optimizer steps (0: derive from epochs).", ge=0)
    epochs: float = _f(1.0, "Passes over the data when max_steps is 0.", gt=0)
    micro_batch_size: int = _f(4, "Samples per forward/backward.", ge=1)
    grad_accum: int = _f(1, "Micro-batches per optimizer step (per process; SFT stage — the RL stage steps per mini-batch).", ge=1)
    seed: int = _f(0, "Seed for data order, dropout and initialisation.", ge=0, le=2**32 - 1)
    mixed_precision: str = _f("auto", "auto: bf16 autocast (fp32 master weights) on a bf16-capable GPU, and on CPUs with AMX / AVX-512 BF16 when the model's hidden size is ≥ 128; none otherwise (mmsft/train/precision.py).", ("auto", "no", "bf16", "fp16"))
    logging_steps: int = _f(1, "Log metrics every N steps.", ge=1)
    save_steps: int = _f(0, "Checkpoint every N steps (0: only at the end).", ge=0)
    save_total_limit: int = _f(2, "Keep at most N checkpoints (0: all).", ge=0)
    eval_steps: int = _f(0, "Evaluate every N steps (0: only at the end, if eval_path is set).", ge=0)
    resume: str = _f("auto", "auto (latest checkpoint in output_dir, if any), never, or a checkpoint path.")
    torch_threads: int = _f(0, "torch.set_num_threads (0: leave as is; 1 is fastest for tiny models on CPU).", ge=0)
    tensorboard: bool = _f(True, "Write tensorboard events next to metrics.jsonl.")
    report_to: str = _f("tensorboard", "Experiment trackers fed the same scalars as metrics.jsonl, the config and sample "
                                       "completions: a comma list of tensorboard, wandb, mlflow, trackio (none: only "
                                       "metrics.jsonl). Offline by default; see docs/reports.md.")
    progress: bool = _f(True, "Show a rich progress bar.")


@dataclass
class EvalConfig:
    batch_size: int = _f(16, "Prompts per generation batch.", ge=1)
    max_new_tokens: int = _f(16, "Generation cap for evaluation.", ge=1)
    max_samples: int = _f(0, "Evaluate at most N samples (0: all).", ge=0)
    match: str = _f("exact", "Answer match: exact (case-insensitive, stripped) or contains.", ("exact", "contains"))
    evaluator: str = _f("generation_accuracy", "Evaluator `mmsft eval` runs (mmsft.eval.evaluators.EVALUATORS, e.g. "
                                               "calibration, diversity) on data.eval_path.")
    evaluator_args: dict = _f({}, "Arguments of a non-default eval.evaluator (its args dataclass; path is "
                                  "data.eval_path).")


def _stage_choices() -> tuple[str, ...]:
    from mmsft.train.stage import stage_names

    return tuple(stage_names())


def _algorithm_choices() -> tuple[str, ...]:
    from mmsft.algorithms import ALGORITHMS

    return ("", *ALGORITHMS.names())


@dataclass
class RunConfig:
    stage: str = _f("sft", "Training stage = its data producer (sft, rl, mix, env, distill, or a plugin's); rl when an "
                           "algorithm preset is set, env when a task is set.", _stage_choices)
    stage_args: dict = _f({}, "The stage's (producer's) own arguments, validated against its args dataclass (e.g. "
                              "tgrpo for a plugin's video_rl stage).")
    algorithm: str = _f("", "Algorithm preset: a named composition with the paper's defaults (any key can still be "
                            "overridden).", _algorithm_choices)
    task: str = _f("", "Environment task (registered by a task package, e.g. sokoban): train in the environment "
                       "through the agent loop instead of on a dataset.")
    plugins: list = _f([], "Modules to import before the run; they register losses, advantages, rewards, tasks, "
                            "producers or evaluators.")
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Model to train."})
    lora: LoraConfig = field(default_factory=LoraConfig, metadata={"help": "LoRA (peft)."})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Datasets and media budgets."})
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig, metadata={"help": "Loss and regularisers."})
    rl: RLConfig = field(default_factory=RLConfig, metadata={"help": "Rollouts, rewards, advantages (stage rl)."})
    mix: MixConfig = field(default_factory=MixConfig, metadata={"help": "Expert rows mixed into RL steps (stage mix)."})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"help": "Optimizer and schedule."})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "Loop, checkpoints, logging."})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "Generation-based evaluation."})
    env: EnvConfig = field(default_factory=EnvConfig, metadata={"help": "Agent loop of an environment task (with task)."})


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, cls: type = RunConfig) -> Any:
    """Defaults ⊕ algorithm preset ⊕ YAML file ⊕ overrides, validated.

    ``algorithm=NAME`` (in the YAML or on the command line) applies that preset's documented defaults first, so
    every component stays overridable.
    """
    config = cls()
    loaded: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise ConfigError(f"config file {path} is not valid YAML: {detail}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
    parsed = parse_overrides(overrides or [])
    return _build(config, loaded, parsed, str(path) if path else "")


def load_config_dict(values: dict[str, Any], overrides: list[str] | None = None, cls: type = RunConfig,
                     where: str = "<mapping>") -> Any:
    """Like :func:`load_config` for an in-memory mapping (pipelines, the Python API)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of config keys, got {type(values).__name__}")
    return _build(cls(), values, parse_overrides(overrides or []), where)


def _build(config: Any, loaded: dict[str, Any], parsed: dict[str, Any], where: str) -> Any:
    if isinstance(config, RunConfig):
        from mmsft.plugins import load_plugins

        plugins = parsed.get("plugins", loaded.get("plugins")) or []
        if isinstance(plugins, str):
            plugins = [p for p in plugins.split(",") if p.strip()]
        if not isinstance(plugins, list):
            raise ConfigError(f"config key 'plugins': expected a list of module names, got {plugins!r}")
        from mmsft.plugins import PluginError

        try:
            load_plugins(plugins)
        except PluginError as exc:
            raise ConfigError(str(exc)) from None
    algorithm = parsed.get("algorithm", loaded.get("algorithm"))
    if algorithm and hasattr(config, "algorithm"):
        from mmsft.algorithms import preset

        _apply(config, preset(str(algorithm)))
    if loaded:
        try:
            _apply(config, loaded)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    _apply(config, parsed)
    validate(config)
    if isinstance(config, RunConfig):
        if config.task and config.stage in ("sft", "rl"):
            config.stage = "env"
        validate_components(config)
    return config


def build_args(entry: Any, values: dict[str, Any] | None, key: str) -> Any:
    """A component's own argument dataclass from config values; unknown names fail naming ``key``, the component
    and the nearest valid argument."""
    from mmsft.objectives.registry import args_type

    cls = args_type(entry)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for name, value in (values or {}).items():
        if name not in fields:
            valid = ", ".join(fields) or "none"
            close = difflib.get_close_matches(str(name), list(fields), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"config key '{key}.{name}': {entry.name!r} has no argument {name!r}.{hint} "
                              f"Its arguments: {valid}")
        out[name] = coerce_value(value, fields[name], f"{key}.{name}", cls)
    return cls(**out)


def validate_components(config: RunConfig) -> None:
    """Resolve the configured loss, advantage, KL estimator and rewards now, so a typo fails at load time."""
    from mmsft.objectives import get_advantage, get_loss
    from mmsft.registry import RegistryError
    from mmsft.rewards import get_reward

    try:
        build_args(get_loss(config.objective.name), config.objective.args, "objective.args")
        build_args(get_advantage(config.rl.advantage), config.rl.advantage_args, "rl.advantage_args")
        from mmsft.train.stage import producer_entry

        build_args(producer_entry(config.stage), config.stage_args, "stage_args")
        if config.lora.enabled and (config.lora.method != "lora" or config.lora.method_args):
            from mmsft.peft_methods import build_peft_config

            c = config.lora
            try:
                build_peft_config(c.method, dict(c.method_args), c.r, c.alpha, c.dropout, c.target_modules)
            except (KeyError, ValueError, TypeError) as exc:
                raise ConfigError(f"config key 'lora.method' / 'lora.method_args': {str(exc).strip(chr(39))}") from None
        if config.data.selector:
            from mmsft.data.selectors import SELECTORS

            build_args(SELECTORS.get(config.data.selector), config.data.selector_args, "data.selector_args")
        for name in reward_names(config):
            get_reward(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    if config.task and reward_names(config):
        raise ConfigError(f"config key 'rl.rewards': task {config.task!r} gets its reward from the environment "
                          "(env.episode_reward); rl.rewards applies to prompt datasets only — remove it")
    from mmsft.train.logging import parse_report_to

    parse_report_to(config.train.report_to)  # an unknown tracker or a missing client fails at load time
    weights = [w for w in config.rl.reward_weights.split(",") if w.strip()]
    if weights and len(weights) != len(reward_names(config)):
        raise ConfigError(f"config key 'rl.reward_weights': {len(weights)} weights for "
                          f"{len(reward_names(config))} rewards {reward_names(config)}")


def reward_names(config: RunConfig) -> list[str]:
    return [r.strip() for r in config.rl.rewards.split(",") if r.strip()]


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def config_reference(cls: type = RunConfig) -> str:
    """Markdown table of every key, default, choices or bounds, and help (docs/config.md is generated from this)."""
    lines = ["| key | default | valid values | help |", "| --- | --- | --- | --- |"]

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            valid = ", ".join(map(str, _choices(f) or ())) or bounds_text(f, prefix)
            lines.append(f"| `{prefix}{f.name}` | `{value!r}` | {valid} | {f.metadata.get('help', '')} |")

    walk(cls(), "")
    return "\n".join(lines) + "\n"


def component_reference() -> str:
    """Markdown tables of every registered loss's and advantage estimator's own arguments (``objective.args``,
    ``rl.advantage_args``) and the algorithm presets."""
    import mmsft.objectives  # noqa: F401  (registers the built-ins)
    from mmsft.algorithms import ALGORITHMS
    from mmsft.objectives import ADVANTAGES, LOSSES, args_type

    lines: list[str] = []
    for title, key, registry in (("Losses", "objective.args", LOSSES), ("Advantage estimators", "rl.advantage_args",
                                                                        ADVANTAGES)):
        lines += [f"### {title} (`{key}`)", "", "| name | requires | argument | default | help |",
                  "| --- | --- | --- | --- | --- |"]
        for name in registry.names():
            if name.startswith("test_"):
                continue
            entry = registry.get(name)
            fields = dataclasses.fields(args_type(entry))
            needs = ", ".join(sorted(entry.requires))
            if not fields:
                lines.append(f"| `{name}` | {needs} | — | | |")
            for f in fields:
                lines.append(f"| `{name}` | {needs} | `{f.name}` | `{f.default!r}` | {f.metadata.get('help', '')} |")
        lines.append("")
    lines += ["### Algorithm presets (`algorithm`)", "", "| preset | stage | values |", "| --- | --- | --- |"]
    for name in ALGORITHMS.names():
        values = dict(ALGORITHMS.get(name).fn)
        stage = values.pop("stage")
        lines.append(f"| `{name}` | {stage} | `{yaml.safe_dump(values, default_flow_style=True, width=10**6).strip()}` |")
    return "\n".join(lines) + "\n"
