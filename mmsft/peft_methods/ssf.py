"""SSF — Scale and Shift Features (Lian et al., "Scaling & Shifting Your Features: A New Baseline for Efficient
Model Tuning", NeurIPS 2022, arXiv 2210.08823) as a peft tuner.

After each targeted module (Linear, LayerNorm / RMSNorm): y = γ ⊙ f(x) + β with γ, β ∈ R^d per output channel
(γ ~ N(1, init_std), β ~ N(0, init_std); ``init_std: 0`` starts as the identity). 2·d trainable parameters per
module. Re-parameterisation: when f is linear (x ↦ W x + b, or a norm's affine weight), γ and β merge into W and b:
W' = diag(γ) W, b' = γ ⊙ b + β — ``merge_and_unload`` does it; a module without a bias can absorb β only when β = 0
(otherwise merging fails, naming the module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import nn

from peft.config import PeftConfig
from peft.tuners.tuners_utils import check_adapters_to_merge

from mmsft.peft_methods.common import MMLayer, MMTunerModel, out_features
from mmsft.peft_methods.registration import extend_peft_type, register

PEFT_TYPE = extend_peft_type("ssf")


@dataclass
class SSFConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default="all-linear", metadata={
        "help": "Module names / regex to scale-and-shift (Linear, LayerNorm, RMSNorm); 'all-linear' for every linear."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    init_std: float = field(default=0.02, metadata={"help": "Std of the init noise of γ (around 1) and β (around 0)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer pattern."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra fully trained modules."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if self.init_std < 0:
            raise ValueError(f"SSF init_std must be >= 0, got {self.init_std}")


class SSFLayer(MMLayer):
    adapter_layer_names = ("ssf_scale", "ssf_shift")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: SSFConfig, key: str = "") -> None:
        super().__init__(base_layer)
        self.width = out_features(base_layer)
        self.ssf_scale = nn.ParameterDict({})
        self.ssf_shift = nn.ParameterDict({})
        self.update_layer(adapter_name, config, key)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: SSFConfig, key: str = "") -> None:
        weight = getattr(self.get_base_layer(), "weight")
        scale = torch.ones(self.width, dtype=torch.float32)
        shift = torch.zeros(self.width, dtype=torch.float32)
        if config.init_std > 0:
            scale += torch.randn(self.width) * config.init_std
            shift += torch.randn(self.width) * config.init_std
        self.ssf_scale[adapter_name] = nn.Parameter(scale.to(weight.device))
        self.ssf_shift[adapter_name] = nn.Parameter(shift.to(weight.device))
        self.set_adapter(self.active_adapters)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        for name in self._adapters_to_apply(self.ssf_scale):
            result = result * self.ssf_scale[name].to(result.dtype) + self.ssf_shift[name].to(result.dtype)
        return result

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        names = check_adapters_to_merge(self, adapter_names)
        base = self.get_base_layer()
        for name in names:
            if name not in self.ssf_scale:
                continue
            scale, shift = self.ssf_scale[name].detach(), self.ssf_shift[name].detach()
            weight = base.weight.data
            bias = getattr(base, "bias", None)
            if bias is None and bool(shift.any()):
                raise ValueError(f"SSF adapter {name!r} cannot merge into {type(base).__name__} without a bias: its "
                                 "shift β is non-zero (keep the adapter unmerged, or target modules with a bias)")
            new_weight = weight * scale.to(weight.dtype).view(-1, *([1] * (weight.dim() - 1)))
            if safe_merge and not torch.isfinite(new_weight).all():
                raise ValueError(f"SSF adapter {name!r}: merging produces non-finite weights")
            weight.copy_(new_weight)
            if bias is not None:
                bias.data.copy_(bias.data * scale.to(bias.dtype) + shift.to(bias.dtype))
            self.merged_adapters.append(name)

    def unmerge(self) -> None:
        base = self.get_base_layer()
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            scale, shift = self.ssf_scale[name].detach(), self.ssf_shift[name].detach()
            if getattr(base, "bias", None) is not None:
                base.bias.data.copy_((base.bias.data - shift.to(base.bias.dtype)) / scale.to(base.bias.dtype))
            w = base.weight.data
            w.copy_(w / scale.to(w.dtype).view(-1, *([1] * (w.dim() - 1))))


class SSFModel(MMTunerModel):
    """SSF tuner model (``prefix = "ssf_"``)."""

    prefix: str = "ssf_"
    tuner_layer_cls = SSFLayer
    target_module_mapping: dict = {}

    def _create_and_replace(self, peft_config: Any, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, **kwargs: Any) -> None:
        if not isinstance(target, SSFLayer):
            out_features(target)  # fails naming the module type when it cannot be scaled per channel
        super()._create_and_replace(peft_config, adapter_name, target, target_name, parent, current_key, **kwargs)


register("ssf", SSFConfig, SSFModel)
