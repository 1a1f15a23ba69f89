"""Model preparation for training: LoRA and the other PEFT methods (lora.method) through peft, gradient checkpointing, resume from a checkpoint folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsft.config import LoraConfig, ModelConfig
from mmsft.models.loading import LoadedModel, load_model


def load_for_training(model_cfg: ModelConfig, lora_cfg: LoraConfig, checkpoint: Path | None) -> LoadedModel:
    """Load the model to train; with a checkpoint, its weights (full) or its adapter (LoRA) are restored exactly."""
    source = str(checkpoint / "model") if checkpoint is not None and not lora_cfg.enabled else model_cfg.name_or_path
    loaded = load_model(source, family=model_cfg.family, dtype=model_cfg.dtype,
                        attn_implementation=model_cfg.attn_implementation or None,
                        trust_remote_code=model_cfg.trust_remote_code)
    if lora_cfg.enabled:
        loaded.model = _apply_lora(loaded.model, lora_cfg, checkpoint)
    if model_cfg.gradient_checkpointing:
        loaded.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora_cfg.enabled and hasattr(loaded.model, "enable_input_require_grads"):
            loaded.model.enable_input_require_grads()
    loaded.model.train()
    return loaded


def _apply_lora(model: Any, cfg: LoraConfig, checkpoint: Path | None) -> Any:
    from peft import PeftModel, get_peft_model

    from mmsft.peft_methods import build_peft_config  # also registers mmsft's tuners (loramoe, ssf, sparse) with peft

    if checkpoint is not None:
        return PeftModel.from_pretrained(model, str(checkpoint / "model"), is_trainable=True)
    peft_cfg = build_peft_config(cfg.method, dict(cfg.method_args), cfg.r, cfg.alpha, cfg.dropout, cfg.target_modules)
    return get_peft_model(model, peft_cfg)
