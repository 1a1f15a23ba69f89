"""Load any Hugging Face causal LM or image-text-to-text model, by local path or hub id, with its adapter.

Nothing here knows about tiny models: the offline builders write ordinary HF folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mmsft.data.media import MediaBudget
from mmsft.errors import one_line
from mmsft.models.adapters import ADAPTERS, ModalityAdapter

ACTION_TOKENIZER_FILE = "action_tokenizer.json"
DATASET_STATISTICS_FILE = "dataset_statistics.json"  # OpenVLA's per-dataset action statistics (q01 / q99)
_VL_TYPES = {"qwen2_vl": "qwen2-vl", "qwen2_5_vl": "qwen2.5-vl"}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    family: str
    action_tokenizer: Any = None


def detect_family(name_or_path: str, config: Any) -> str:
    """``text``, ``qwen2-vl``, ``qwen2.5-vl`` or ``vla`` (a VL model folder that carries action statistics:
    ``action_tokenizer.json``, or OpenVLA's ``dataset_statistics.json``)."""
    model_type = getattr(config, "model_type", "")
    if model_type in _VL_TYPES:
        folder = Path(name_or_path)
        is_vla = (folder / ACTION_TOKENIZER_FILE).is_file() or (folder / DATASET_STATISTICS_FILE).is_file()
        return "vla" if is_vla else _VL_TYPES[model_type]
    return "text"


class ModelLoadError(ValueError):
    """A model folder or hub id that cannot be used as configured; the message names it and what is missing."""


def _check_tokenizer(name_or_path: str, processor: Any) -> None:
    """A folder without tokenizer files loads an empty tokenizer that encodes text to nothing; refuse it here."""
    tokenizer = getattr(processor, "tokenizer", processor)
    try:
        ids = tokenizer("a b c 1", add_special_tokens=False)["input_ids"]
    except Exception as exc:  # a broken tokenizer raises all kinds of errors
        raise ModelLoadError(f"model.name_or_path {name_or_path!r}: the tokenizer cannot encode text "
                             f"({type(exc).__name__}: {one_line(exc)})") from exc
    if not ids:
        raise ModelLoadError(f"model.name_or_path {name_or_path!r}: no usable tokenizer (it encodes text to no tokens); "
                             "the folder needs its tokenizer files (tokenizer.json, or vocab/merges or "
                             "tokenizer.model, with tokenizer_config.json)")


def load_model(name_or_path: str, family: str = "auto", dtype: str = "float32", attn_implementation: str | None = None,
               trust_remote_code: bool = False) -> LoadedModel:
    """Model + processor (tokenizer for text models) + family; an unknown family or dtype, a folder without a
    usable tokenizer (checked before the weights are read) or without safetensors weights fails naming the model."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    if dtype not in DTYPES:
        raise ModelLoadError(f"model.dtype {dtype!r} is not one of {sorted(DTYPES)}")
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"model.name_or_path {name_or_path!r}: not a model folder or reachable hub id "
                                f"({one_line(exc)})") from exc
    if family == "auto":
        family = detect_family(name_or_path, config)
    if family not in ADAPTERS:
        raise ModelLoadError(f"model.family {family!r} is not one of {['auto', *ADAPTERS]}")
    # safetensors only: pickled weights (pytorch_model.bin) are never unpickled, even by transformers' restricted loader.
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype], "trust_remote_code": trust_remote_code, "use_safetensors": True}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    processor_cls = AutoTokenizer if family == "text" else AutoProcessor
    try:
        processor = processor_cls.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"model.name_or_path {name_or_path!r}: cannot load its "
                             f"{'tokenizer' if family == 'text' else 'processor'} ({type(exc).__name__}: {one_line(exc)})") from exc
    _check_tokenizer(name_or_path, processor)
    model_cls = AutoModelForCausalLM if family == "text" else AutoModelForImageTextToText
    try:
        model = model_cls.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        hint = ""
        if Path(name_or_path).is_dir() and any(Path(name_or_path).glob("*.bin")):
            hint = ("; the folder has only pickled *.bin weights, which mmsft never loads: convert them to safetensors "
                    "(load once in a trusted session and save_pretrained(..., safe_serialization=True))")
        raise ModelLoadError(f"model.name_or_path {name_or_path!r}: cannot load the weights "
                             f"({type(exc).__name__}: {one_line(exc)}){hint}") from exc
    action_tokenizer = None
    if family == "vla":  # None when the folder has no statistics yet (fitted later on demonstrations)
        from mmsft.models.action_tokenizer import load_model_action_tokenizer

        action_tokenizer = load_model_action_tokenizer(name_or_path, model, processor)
    return LoadedModel(model, processor, family, action_tokenizer)


def build_adapter(loaded: LoadedModel, budget: MediaBudget | None = None, padding_side: str = "right",
                  max_length: int | None = None, overlong: str = "drop") -> ModalityAdapter:
    cls = ADAPTERS[loaded.family]
    extra = {"action_tokenizer": loaded.action_tokenizer} if loaded.family == "vla" else {}
    return cls(loaded.processor, budget, padding_side=padding_side, max_length=max_length, overlong=overlong, **extra)
