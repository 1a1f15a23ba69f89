"""Model cards: a ``README.md`` in every model folder mmsft saves (``final/``, each checkpoint's ``model/``, a
pipeline's ``merged/``) with the Hugging Face front matter, the base model, the method (stage, algorithm preset,
objective, advantage estimator, rewards — each with the paper it implements, taken from the component's own
docstring or, for a preset, the comment above its registration), the data, the key metrics, the exact command that
reproduces it and how to load it with transformers.

Everything comes from the run folder (``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``environment.json``)
and the registries; :func:`write_model_card` never raises — a card that cannot be written is a warning, the weights
are saved all the same.
"""

from __future__ import annotations

import inspect
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from mmsft.report.collect import numeric, read_json, read_metrics
from mmsft.report.environment import read_environment

CARD_FILE = "README.md"
ARXIV = re.compile(r"arXiv[:\s]*(\d{4}\.\d{4,5})", re.IGNORECASE)
MAX_METRICS = 16
VL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def arxiv_ids(text: str) -> list[str]:
    return list(dict.fromkeys(ARXIV.findall(text or "")))


def _doc(obj: Any) -> tuple[str, list[str]]:
    """First paragraph of an object's docstring (one line) and the arXiv ids of it, or of its module when it has
    none."""
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    ids = arxiv_ids(doc)
    if not ids:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        ids = arxiv_ids(inspect.getdoc(module) or "") if module is not None else []
    return first, ids


def preset_comment(name: str) -> str:
    """The comment block above ``register_algorithm("name", ...)`` in the module that registered the preset."""
    from mmsft import algorithms

    modules = [m for m in list(sys.modules.values()) if m is not None and "register_algorithm" in vars(m)]
    pattern = re.compile(rf"""register_algorithm\(\s*["']{re.escape(name)}["']""")
    for module in [algorithms, *modules]:
        try:
            lines = inspect.getsource(module).splitlines()
        except (OSError, TypeError):
            continue
        for index, line in enumerate(lines):
            if pattern.search(line):
                comment = []
                for previous in reversed(lines[:index]):
                    if not previous.strip().startswith("#"):
                        break
                    comment.insert(0, previous.strip().lstrip("#").strip())
                return " ".join(comment)
    return ""


def _cite(ids: list[str]) -> str:
    return " — " + ", ".join(f"[arXiv:{i}](https://arxiv.org/abs/{i})" for i in ids) if ids else ""


def method_lines(config: dict[str, Any]) -> list[str]:
    """Markdown bullets describing the method, with paper citations; unknown components are named, not fatal."""
    from mmsft.plugins import load_plugins

    try:
        load_plugins(config.get("plugins") or [])
    except Exception:  # noqa: BLE001 — a plugin that cannot load still leaves the names on the card
        pass
    objective, rl = config.get("objective") or {}, config.get("rl") or {}
    stage = str(config.get("stage", "sft"))
    lines = []
    try:
        from mmsft.train.stage import producer_entry

        first, _ = _doc(producer_entry(stage).fn)
        lines.append(f"- **Stage** `{stage}`: {first}")
    except Exception:  # noqa: BLE001
        lines.append(f"- **Stage** `{stage}`")
    algorithm = str(config.get("algorithm") or "")
    if algorithm:
        comment = preset_comment(algorithm)
        lines.append(f"- **Algorithm preset** `{algorithm}`" + (f": {comment}" if comment else "")
                     + _cite(arxiv_ids(comment)))
    components = [("Objective", "loss", objective.get("name", "sft"))]
    if stage != "sft":
        components.append(("Advantage", "advantage", rl.get("advantage", "")))
    for label, kind, name in components:
        if not name:
            continue
        try:
            from mmsft.objectives import get_advantage, get_loss

            first, ids = _doc((get_loss if kind == "loss" else get_advantage)(str(name)).fn)
            lines.append(f"- **{label}** `{name}`: {first}{_cite(ids)}")
        except Exception:  # noqa: BLE001
            lines.append(f"- **{label}** `{name}`")
    kl = objective.get("kl") or {}
    if numeric(kl.get("coef")) and kl["coef"] > 0:
        lines.append(f"- **KL** coefficient {kl['coef']} ({kl.get('estimator')}, in the {kl.get('placement')})")
    if numeric(objective.get("entropy_coef")) and objective["entropy_coef"] != 0:
        lines.append(f"- **Entropy bonus** {objective['entropy_coef']}")
    rewards = [r.strip() for r in str(rl.get("rewards") or "").split(",") if r.strip()]
    if stage != "sft" and rewards:
        described = []
        for reward in rewards:
            try:
                from mmsft.rewards import get_reward

                fn = get_reward(reward)
                first, ids = _doc(getattr(fn, "fn", fn))
                described.append(f"`{reward}` ({first.rstrip('.')}){_cite(ids)}" if first else f"`{reward}`")
            except Exception:  # noqa: BLE001
                described.append(f"`{reward}`")
        lines.append("- **Rewards**: " + "; ".join(described))
    if rl.get("teacher") and stage != "sft":
        lines.append(f"- **Teacher**: `{rl['teacher']}`")
    if (config.get("lora") or {}).get("enabled"):
        lora = config["lora"]
        lines.append(f"- **LoRA** r={lora.get('r')}, alpha={lora.get('alpha')}, targets {lora.get('target_modules')}")
    return lines


def _count_lines(path: Path, limit: int = 50 * 2**20) -> int | None:
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def _data_lines(config: dict[str, Any]) -> list[str]:
    data, mix = config.get("data") or {}, config.get("mix") or {}
    out = []
    for label, value in (("training data", data.get("train_path")), ("evaluation data", data.get("eval_path")),
                         ("expert data", mix.get("expert_path"))):
        if value:
            count = _count_lines(Path(str(value)))
            out.append(f"- {label}: `{value}`" + (f" ({count} rows)" if count is not None else ""))
    if config.get("task"):
        out.append(f"- environment task: `{config['task']}`")
    return out or ["- (none recorded)"]


def _metrics(run_dir: Path, step: int | None = None) -> dict[str, Any]:
    """Last logged value of each metric from ``metrics.jsonl`` (up to ``step``), else ``summary.json``."""
    records, _ = read_metrics(run_dir / "metrics.jsonl")
    values: dict[str, Any] = {}
    for record in records:
        if step is None or record["step"] <= step:
            values.update(record)
            values["steps"] = record["step"]
    if not values:
        summary = read_json(run_dir / "summary.json")
        values = dict(summary) if isinstance(summary, dict) else {}
    return {k: v for k, v in values.items() if numeric(v) and k not in ("time", "step")}


def _load_snippet(model_dir: Path, base: str, location: Path) -> str:
    config = read_json(model_dir / "config.json") or {}
    adapter = (model_dir / "adapter_config.json").is_file()
    vl = isinstance(config, dict) and config.get("model_type") in VL_TYPES
    if adapter:
        adapter_config = read_json(model_dir / "adapter_config.json") or {}
        base = str(adapter_config.get("base_model_name_or_path") or base)
    model_cls, proc_cls = ("AutoModelForImageTextToText", "AutoProcessor") if vl else ("AutoModelForCausalLM",
                                                                                         "AutoTokenizer")
    path = str(location)  # where the folder ends up (it is written under a temporary name first)
    if adapter:
        code = (f"from peft import PeftModel\nfrom transformers import {model_cls}, {proc_cls}\n\n"
                f"base = {model_cls}.from_pretrained({base!r})\nmodel = PeftModel.from_pretrained(base, {path!r})\n"
                f"processor = {proc_cls}.from_pretrained({path!r})")
    else:
        code = (f"from transformers import {model_cls}, {proc_cls}\n\nmodel = {model_cls}.from_pretrained({path!r})\n"
                f"processor = {proc_cls}.from_pretrained({path!r})")
    if (model_dir / "action_tokenizer.json").is_file():
        code += ("\n\n# VLA: actions are the last 256 vocabulary ids; mmsft loads the action tokenizer with the model\n"
                 f"from mmsft.models.loading import load_model\nloaded = load_model({path!r})  # .model, .processor, "
                 ".action_tokenizer")
    return code


def _front_matter(config: dict[str, Any], model_dir: Path) -> str:
    model_config = read_json(model_dir / "config.json") or {}
    base = str((config.get("model") or {}).get("name_or_path") or "")
    tags = ["mmsft", str(config.get("stage") or "sft")]
    tags += [str(v) for v in (config.get("algorithm"), (config.get("objective") or {}).get("name")) if v]
    meta: dict[str, Any] = {"library_name": "peft" if (model_dir / "adapter_config.json").is_file() else "transformers",
                            "tags": list(dict.fromkeys(tags))}
    if re.fullmatch(r"[\w.-]+/[\w.-]+", base) and not Path(base).exists():  # a hub id, not a local folder
        meta["base_model"] = base
    if (model_dir / "action_tokenizer.json").is_file():
        meta["pipeline_tag"] = "robotics"
    elif isinstance(model_config, dict) and model_config.get("model_type") in VL_TYPES:
        meta["pipeline_tag"] = "image-text-to-text"
    else:
        meta["pipeline_tag"] = "text-generation"
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def model_card(model_dir: Path, run_dir: Path, kind: str = "final", step: int | None = None,
               location: Path | None = None) -> str:
    """The card's Markdown for ``model_dir`` saved by the run in ``run_dir`` (``kind``: final, checkpoint, merged;
    ``location``: the folder's final path when ``model_dir`` is a temporary name)."""
    from mmsft.report.figures import metric_keys

    model_dir, run_dir = Path(model_dir), Path(run_dir)
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = {}
    config = config if isinstance(config, dict) else {}
    base = str((config.get("model") or {}).get("name_or_path") or "(unknown)")
    what = {"final": "final model", "checkpoint": f"checkpoint at step {step}",
            "merged": "LoRA adapter merged into its base weights"}.get(kind, kind)
    lines = [_front_matter(config, model_dir), f"# {run_dir.resolve().name} — {what}", "",
             f"Trained with mmsft from base model `{base}`"
             + (f" (stage `{config.get('stage')}`)" if config.get("stage") else "") + ".", "",
             "## Method", "", *method_lines(config), "", "## Data", "", *_data_lines(config), ""]
    metrics = _metrics(run_dir, step)
    if metrics:
        lines += ["## Metrics", "", "Last logged values" + (f" (up to step {step})" if step is not None else "")
                  + f"; every step is in `{run_dir / 'metrics.jsonl'}`.", "", "| metric | value |", "| --- | --- |"]
        keys = ["steps", *(k for k in metric_keys([metrics]) if k != "steps")]
        lines += [f"| {k} | {metrics[k]:.4g} |" for k in keys if k in metrics][:MAX_METRICS + 1]
        lines.append("")
    environment = read_environment(run_dir) or {}
    lines += ["## Reproduce", "", "```bash"]
    if environment.get("command"):
        lines += ["# the command that trained it", str(environment["command"])]
    lines += ["# exactly this run's resolved config (saved with the run), into a fresh folder",
              shlex.join(["mmsft", "train", str(run_dir / "config.yaml"), "train.output_dir=runs/reproduce",
                          "train.resume=never"]), "```", ""]
    lines += ["## Load with transformers", "", "```python", _load_snippet(model_dir, base, location or model_dir), "```",
              ""]
    versions = environment.get("versions") or {}
    if versions:
        device = environment.get("device") or ("cuda" if environment.get("cuda") else "cpu")
        shown = ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("mmsft", "torch", "transformers", "peft"))
        lines += ["## Environment", "", f"{shown}; device {device}; dtype {environment.get('dtype')}; "
                  f"mixed precision {environment.get('mixed_precision', environment.get('mixed_precision_setting'))}.",
                  ""]
    return "\n".join(lines)


def write_model_card(model_dir: Path, run_dir: Path, kind: str = "final", step: int | None = None,
                     location: Path | None = None) -> Path | None:
    """Write ``<model_dir>/README.md``; a failure is a warning (the model folder is complete without it)."""
    try:
        path = Path(model_dir) / CARD_FILE
        path.write_text(model_card(model_dir, run_dir, kind, step, location), encoding="utf-8")
        return path
    except Exception as exc:  # noqa: BLE001 — never lose saved weights over a card
        print(f"mmsft: warning: could not write the model card in {model_dir} ({type(exc).__name__}: {exc})",
              file=sys.stderr, flush=True)
        return None


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a card (for tests and tools)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    loaded = yaml.safe_load(text[4:end]) if end > 0 else None
    return loaded if isinstance(loaded, dict) else {}


__all__ = ["CARD_FILE", "model_card", "write_model_card", "read_front_matter", "method_lines"]
