"""Shared pieces of mmsft's peft tuners: the tuner-model base (module replacement, unload / merge) and helpers."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer, _get_submodules


class MMTunerModel(BaseTuner):
    """``BaseTuner`` for layer-wrapping tuners: ``layer_cls(base_layer, adapter_name, config, key)`` wraps each
    targeted module; a module already wrapped gets the new adapter added (multi-adapter composition)."""

    layer_cls: type = nn.Module
    target_module_mapping: dict = {}

    def _create_and_replace(self, peft_config: Any, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, **kwargs: Any) -> None:
        if isinstance(target, self.tuner_layer_cls):
            target.update_layer(adapter_name, peft_config, current_key)
            return
        new_module = self.tuner_layer_cls(target, adapter_name, peft_config, current_key)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    def _unload_and_optionally_merge(self, merge: bool = True, progressbar: bool = False, safe_merge: bool = False,
                                     adapter_names: Optional[list[str]] = None) -> nn.Module:
        keys = [key for key, _ in self.model.named_modules() if self.prefix not in key]
        for key in keys:
            try:
                parent, target, target_name = _get_submodules(self.model, key)
            except AttributeError:
                continue
            if isinstance(target, self.tuner_layer_cls):
                if merge:
                    target.merge(safe_merge=safe_merge, adapter_names=adapter_names)
                self._replace_module(parent, target_name, target.get_base_layer(), target)
        if hasattr(self.model, "peft_config"):
            del self.model.peft_config
        return self.model


def tuner_layers(model: nn.Module, cls: type) -> list[tuple[str, Any]]:
    """(module name, layer) of every ``cls`` tuner layer inside ``model`` (a PeftModel or the tuner model)."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, cls)]


def out_features(layer: nn.Module) -> int:
    """Output width of a Linear, or the channel count of a module with a 1-D weight (LayerNorm, RMSNorm)."""
    if isinstance(layer, nn.Linear):
        return layer.out_features
    weight = getattr(layer, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 1:
        return weight.shape[0]
    raise ValueError(f"cannot adapt {type(layer).__name__}: expected nn.Linear or a module with a 1-D weight")


class MMLayer(nn.Module, BaseTunerLayer):
    """Common state of a wrapping tuner layer."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self._disable_adapters = False
        self.merged_adapters: list[str] = []

    def _adapters_to_apply(self, table: Any) -> list[str]:
        if self.disable_adapters or self.merged:
            return []
        return [a for a in self.active_adapters if a in table]
