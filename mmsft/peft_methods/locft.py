"""LocFT-BF's localised full-rank update (Yang et al., "Fine-tuning Done Right in Model Editing", arXiv 2509.22072)
as a peft tuner: exactly the targeted weight matrices get a dense, full-rank trainable delta ΔW (zero at init),
everything else is frozen: W_eff = W0 + ΔW. The paper edits one tensor (e.g. Llama-3-8B layer 22 ``mlp.down_proj``;
Qwen2.5-7B layer 6), selected with ``target_modules`` + ``layers_to_transform``. Merging is exact.

The breadth-first part of LocFT-BF is the training schedule, not the parameterisation: all edits shuffled every
epoch and trained in mini-batches (the SFT producer's default), Adam lr 5e-4. The paper's skip-a-batch-below-1e-2
and stop-below-1e-2 rules are not implemented (use ``train.max_steps`` / ``train.epochs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from peft.config import PeftConfig
from peft.tuners.tuners_utils import check_adapters_to_merge

from mmsft.peft_methods.common import MMLayer, MMTunerModel
from mmsft.peft_methods.registration import extend_peft_type, register

PEFT_TYPE = extend_peft_type("locft")


@dataclass
class LocFTConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default=None, metadata={
        "help": "The Linear module(s) to edit, e.g. ['down_proj'] with layers_to_transform: [6]."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer pattern."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra fully trained modules."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if not self.target_modules:
            raise ValueError("LocFT needs target_modules (the tensor to edit, e.g. ['down_proj']) — it never "
                             "defaults to every layer")


class LocFTLayer(MMLayer):
    adapter_layer_names = ("locft_delta",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: LocFTConfig, key: str = "") -> None:
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"LocFT edits nn.Linear weights; {key!r} is {type(base_layer).__name__}")
        super().__init__(base_layer)
        self.locft_delta = nn.ParameterDict({})
        self.update_layer(adapter_name, config, key)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: LocFTConfig, key: str = "") -> None:
        weight = self.get_base_layer().weight
        self.locft_delta[adapter_name] = nn.Parameter(torch.zeros(weight.shape, dtype=torch.float32,
                                                                  device=weight.device))
        self.set_adapter(self.active_adapters)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        names = self._adapters_to_apply(self.locft_delta)
        if not names:
            return self.base_layer(x, *args, **kwargs)
        base = self.get_base_layer()
        weight = base.weight + sum(self.locft_delta[n] for n in names).to(base.weight.dtype)
        return F.linear(x, weight, base.bias)

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        weight = self.get_base_layer().weight
        for name in check_adapters_to_merge(self, adapter_names):
            if name in self.locft_delta:
                weight.data += self.locft_delta[name].detach().to(weight.dtype)
                self.merged_adapters.append(name)

    def unmerge(self) -> None:
        weight = self.get_base_layer().weight
        while self.merged_adapters:
            weight.data -= self.locft_delta[self.merged_adapters.pop()].detach().to(weight.dtype)


class LocFTModel(MMTunerModel):
    """LocFT tuner model (``prefix = "locft_"``)."""

    prefix: str = "locft_"
    tuner_layer_cls = LocFTLayer
    target_module_mapping: dict = {}


register("locft", LocFTConfig, LocFTModel)
