"""Tiny offline backbones: complete Hugging Face model folders built from the real config classes, scaled down.

:func:`build_tiny` writes, for each family, a folder that ``from_pretrained`` loads like any hub checkpoint:

* ``text``: ``Qwen2ForCausalLM`` (reload with ``AutoModelForCausalLM``) and its tokenizer (``AutoTokenizer``);
* ``qwen2-vl``: ``Qwen2VLForConditionalGeneration`` and ``Qwen2VLProcessor`` (``AutoProcessor``);
* ``qwen2.5-vl``: ``Qwen2_5_VLForConditionalGeneration`` and ``Qwen2_5_VLProcessor`` (``AutoProcessor``);
* ``vla``: the ``qwen2.5-vl`` model whose last ``n_action_bins`` vocabulary ids are ``<|act_i|>`` tokens, plus
  ``action_tokenizer.json`` (:class:`~mmsft.models.action_tokenizer.ActionTokenizer`).

VL models are reloaded with ``AutoModelForImageTextToText``. Every folder holds ``config.json``,
``generation_config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json`` and
``chat_template.jinja``; VL folders add ``processor_config.json``, ``preprocessor_config.json`` (image) and
``video_preprocessor_config.json``. Nothing in mmsft treats these folders specially.

Builds are deterministic: the same family, seed and overrides give the same files, bit for bit.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mmsft.models.tiny_tokenizer import CHAT_TEMPLATE, train_tiny_backend, wrap_tiny_backend

FAMILIES: tuple[str, ...] = ("text", "qwen2-vl", "qwen2.5-vl", "vla")
"""Families accepted by :func:`build_tiny`."""

MERGED_PATCH = 28
"""Pixels per side of one merged vision token (patch 14 x spatial merge 2)."""

# Defaults of the tiny language model (the text part of every family).
TEXT_DEFAULTS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "initializer_range": 0.02,
    "rope_theta": 10000.0,
}

QWEN2_VL_VISION_DEFAULTS: dict[str, Any] = {
    "depth": 2,
    "embed_dim": 32,
    "mlp_ratio": 2,
    "num_heads": 2,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}

QWEN2_5_VL_VISION_DEFAULTS: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 56,
    "fullatt_block_indexes": [1],
    "tokens_per_second": 2,
}

# Options that are not config fields.
OTHER_DEFAULTS: dict[str, Any] = {
    "vocab_size": 1024,  # target size of the BPE vocabulary, before reserved action tokens
    "tokenizer_seed": 0,  # seed of the tokenizer corpus: kept apart from `seed` so that models built with
    # different weight seeds (a teacher and a student) share one vocabulary
    "tie_word_embeddings": True,
    "min_pixels": 4 * MERGED_PATCH * MERGED_PATCH,  # >= 4 merged tokens per image / video frame pair
    "max_pixels": 64 * MERGED_PATCH * MERGED_PATCH,  # <= 64 merged tokens
    "n_action_bins": 256,  # vla only
    "action_dim": 7,  # vla only
    "action_low": -1.0,  # vla only: initial normalisation range, re-fit on data with ActionTokenizer.fit
    "action_high": 1.0,
}


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies into (temporal, height, width) sections like Qwen2-VL (16/24/24)."""
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def _split_overrides(family: str, overrides: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Sort ``overrides`` into (text config, vision config, other options); unknown keys raise ``ValueError``."""
    from transformers import Qwen2Config

    text_fields = set(Qwen2Config().to_dict()) | set(TEXT_DEFAULTS)
    text_fields -= {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"}
    vision_defaults = QWEN2_VL_VISION_DEFAULTS if family == "qwen2-vl" else QWEN2_5_VL_VISION_DEFAULTS
    text, vision, other = dict(TEXT_DEFAULTS), dict(vision_defaults), dict(OTHER_DEFAULTS)
    valid = sorted(text_fields | set(other) | {f"vision_{k}" for k in vision_defaults})
    for key, value in overrides.items():
        if key in other:
            other[key] = value
        elif key in text_fields:
            text[key] = value
        elif key.startswith("vision_") and family != "text":
            vision[key[len("vision_"):]] = value
        else:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"build_tiny({family!r}): unknown override {key!r}{hint} Valid: text-config fields "
                f"(e.g. hidden_size, num_hidden_layers), 'vision_<field>' for the vision tower, "
                f"or one of {sorted(other)}"
            )
    return text, vision, other


def _tokenizer(vocab_size: int, seed: int, reserved_tokens: int):
    return wrap_tiny_backend(train_tiny_backend(vocab_size, seed, reserved_tokens))


def _text_config_kwargs(text: dict[str, Any], tokenizer) -> dict[str, Any]:
    kwargs = dict(text)
    rope_theta = float(kwargs.pop("rope_theta"))
    head_dim = kwargs["hidden_size"] // kwargs["num_attention_heads"]
    if head_dim * kwargs["num_attention_heads"] != kwargs["hidden_size"] or head_dim % 2:
        raise ValueError(
            f"hidden_size={kwargs['hidden_size']} must be num_attention_heads={kwargs['num_attention_heads']} "
            "times an even head dimension"
        )
    kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": rope_theta}
    kwargs["vocab_size"] = len(tokenizer)
    kwargs["bos_token_id"] = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    kwargs["eos_token_id"] = tokenizer.convert_tokens_to_ids("<|im_end|>")
    kwargs["pad_token_id"] = tokenizer.pad_token_id
    return kwargs


def _build_model(family: str, text: dict, vision: dict, other: dict, tokenizer):
    """Instantiate the randomly initialised model (caller seeds torch)."""
    import torch

    text_kwargs = _text_config_kwargs(text, tokenizer)
    tie = bool(other["tie_word_embeddings"])
    if family == "text":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        config = Qwen2Config(**text_kwargs, tie_word_embeddings=tie)
        return Qwen2ForCausalLM(config).to(torch.float32)

    head_dim = text_kwargs["hidden_size"] // text_kwargs["num_attention_heads"]
    text_kwargs["rope_parameters"]["mrope_section"] = _mrope_section(head_dim)
    ids = {
        name: tokenizer.convert_tokens_to_ids(token)
        for name, token in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        )
    }
    vision = dict(vision)
    if family == "qwen2-vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        vision.setdefault("hidden_size", text_kwargs["hidden_size"])  # Qwen2-VL: merger output = LLM width
        config = Qwen2VLConfig(text_config=text_kwargs, vision_config=vision, tie_word_embeddings=tie, **ids)
        return Qwen2VLForConditionalGeneration(config).to(torch.float32)

    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vision.setdefault("out_hidden_size", text_kwargs["hidden_size"])
    config = Qwen2_5_VLConfig(text_config=text_kwargs, vision_config=vision, tie_word_embeddings=tie, **ids)
    return Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)


def _generation_config(tokenizer):
    from transformers import GenerationConfig

    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return GenerationConfig(
        bos_token_id=endoftext, eos_token_id=[im_end, endoftext], pad_token_id=endoftext, do_sample=False
    )


def _processor(family: str, tokenizer, other: dict[str, Any]):
    """The real Qwen-VL processor with small pixel budgets (``None`` for the text family)."""
    if family == "text":
        return None
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    min_pixels, max_pixels = int(other["min_pixels"]), int(other["max_pixels"])
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(f"expected 0 < min_pixels <= max_pixels, got min_pixels={min_pixels}, max_pixels={max_pixels}")
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels, cap_pixels_per_frame=True)
    if family == "qwen2-vl":
        from transformers import Qwen2VLProcessor as processor_class
    else:
        from transformers import Qwen2_5_VLProcessor as processor_class
    return processor_class(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def _save(model, tokenizer, processor, directory: Path) -> None:
    """``save_pretrained`` everything (without the progress bar)."""
    from transformers.utils import logging as hf_logging

    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(directory)
        if processor is None:
            tokenizer.save_pretrained(directory)
        else:
            processor.save_pretrained(directory)  # processor_config.json nests the image and video processors
            # Stand-alone copies, as hub checkpoints have them, for AutoImageProcessor / AutoVideoProcessor.
            processor.image_processor.save_pretrained(directory)
            processor.video_processor.save_pretrained(directory)
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()


def _install(tmp_dir: Path, out_dir: Path) -> None:
    """Move the finished build into ``out_dir`` (replacing an earlier model folder there, never other content)."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a directory")
        contents = list(out_dir.iterdir())
        if contents and not (out_dir / "config.json").is_file():
            raise FileExistsError(
                f"{out_dir} is not empty and holds no config.json: refusing to replace it with a tiny model folder"
            )
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp_dir, out_dir)


def build_tiny(family: str, out_dir: str | os.PathLike[str], seed: int = 0, **overrides: Any) -> Path:
    """Write a tiny, randomly initialised model folder for ``family`` into ``out_dir`` and return its path.

    Args:
        family: one of :data:`FAMILIES` (``text``, ``qwen2-vl``, ``qwen2.5-vl``, ``vla``).
        out_dir: destination; created if missing. An existing model folder (one with ``config.json``) is
            replaced; any other non-empty directory is refused with ``FileExistsError``.
        seed: seeds the weight initialisation (the global torch RNG is left as it was). The tokenizer depends
            only on ``vocab_size``, ``tokenizer_seed`` and ``n_action_bins``, so folders built with different seeds
            or sizes share one vocabulary (teacher and student in distillation).
        **overrides: text-config fields (``hidden_size``, ``num_hidden_layers``, ``intermediate_size``,
            ``num_attention_heads``, ``num_key_value_heads``, ``max_position_embeddings``, ``rope_theta``, ...),
            vision-tower fields prefixed with ``vision_`` (``vision_depth=1``), or the options of
            :data:`OTHER_DEFAULTS` (``vocab_size``, ``tokenizer_seed``, ``tie_word_embeddings``, ``min_pixels``,
            ``max_pixels``, ``n_action_bins``, ``action_dim``, ``action_low``, ``action_high``).

    Returns:
        ``Path(out_dir)``.

    The ``vla`` family appends ``n_action_bins`` ``<|act_i|>`` tokens as the last vocabulary ids and saves an
    :class:`~mmsft.models.action_tokenizer.ActionTokenizer` (``action_tokenizer.json``) over the range
    ``[action_low, action_high]`` per dimension; fit it on the dataset's actions and save it into the folder
    before training (teacher and student must share it).
    """
    import torch

    if family not in FAMILIES:
        close = difflib.get_close_matches(str(family), FAMILIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown tiny model family {family!r}{hint}; expected one of {', '.join(FAMILIES)}")
    text, vision, other = _split_overrides(family, overrides)
    reserved = int(other["n_action_bins"]) if family == "vla" else 0
    if family == "vla" and reserved <= 0:
        raise ValueError(f"n_action_bins must be positive for the vla family, got {reserved}")

    tokenizer = _tokenizer(int(other["vocab_size"]), int(other["tokenizer_seed"]), reserved)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model(family, text, vision, other, tokenizer)
    model.generation_config = _generation_config(tokenizer)
    processor = _processor(family, tokenizer, other)

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _save(model, tokenizer, processor, tmp_dir)
        if family == "vla":
            from mmsft.models.action_tokenizer import ActionTokenizer

            dim = int(other["action_dim"])
            ActionTokenizer.from_bounds(
                low=[float(other["action_low"])] * dim,
                high=[float(other["action_high"])] * dim,
                vocab_size=len(tokenizer),
                n_bins=reserved,
            ).save(tmp_dir)
        _install(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return out_dir


__all__ = ["FAMILIES", "build_tiny"]
