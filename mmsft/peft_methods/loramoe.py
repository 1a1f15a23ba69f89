"""LoRAMoE (Dou et al., "LoRAMoE: Alleviate World Knowledge Forgetting in Large Language Models via MoE-Style
Plugin", arXiv 2312.09979) as a peft tuner.

Each targeted Linear gets N LoRA experts (A_e ∈ R^{r×in}, B_e ∈ R^{out×r}, B_e = 0 at init) and a router W_g:
h = W0 x + (α/r) Σ_e g_e(x) B_e A_e x, g(x) = softmax(W_g x) — dense soft routing per token, no top-k.

Localised balancing constraint (:func:`balance_loss`): experts split into two groups (the first
``knowledge_experts`` = world knowledge, the rest = downstream task); sample m has type t_m ∈ {0 knowledge, 1 task}.
Q_{e,m} = Σ_{tokens of m} g_e; I_{e,m} = 1 + δ if e's group matches t_m else 1 − δ; Z = I ∘ Q;
L_lbc = Var(Z) / Mean(Z)² (population variance over all E × M entries), summed over layers; total loss
L = L_NLL + β·Σ L_lbc (δ = ``blc_alpha``, β = ``blc_weight``). The layers keep the gates of their last training
forward for it. Not mergeable: the gates depend on the input (``merge_and_unload`` raises).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import nn

from peft.config import PeftConfig

from mmsft.peft_methods.common import MMLayer, MMTunerModel, tuner_layers
from mmsft.peft_methods.registration import extend_peft_type, register

PEFT_TYPE = extend_peft_type("loramoe")


@dataclass
class LoRAMoEConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default=None, metadata={
        "help": "Linear modules with LoRA experts (the paper: the FFN gate/up/down projections)."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    r: int = field(default=4, metadata={"help": "Rank of each expert."})
    lora_alpha: int = field(default=32, metadata={"help": "Scaling α (the update is scaled by α / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the experts' and router's input."})
    num_experts: int = field(default=8, metadata={"help": "Experts per module."})
    knowledge_experts: int = field(default=-1, metadata={"help": "Size of the world-knowledge group (-1: half)."})
    blc_alpha: float = field(default=0.0, metadata={"help": "δ of the localised balancing constraint."})
    blc_weight: float = field(default=0.0, metadata={"help": "β of the localised balancing loss (0: off)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer pattern."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra fully trained modules."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if self.target_modules is None:
            self.target_modules = ["gate_proj", "up_proj", "down_proj"]
        if self.r < 1 or self.num_experts < 1 or not 0 <= self.lora_dropout < 1:
            raise ValueError("LoRAMoE needs r >= 1, num_experts >= 1 and 0 <= lora_dropout < 1")
        if self.knowledge_experts > self.num_experts:
            raise ValueError(f"LoRAMoE knowledge_experts={self.knowledge_experts} > num_experts={self.num_experts}")

    @property
    def knowledge(self) -> int:
        return self.num_experts // 2 if self.knowledge_experts < 0 else self.knowledge_experts


class LoRAMoELayer(MMLayer):
    adapter_layer_names = ("loramoe_A", "loramoe_B", "loramoe_router")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: LoRAMoEConfig, key: str = "") -> None:
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"LoRAMoE adapts nn.Linear modules; {key!r} is {type(base_layer).__name__}")
        super().__init__(base_layer)
        self.loramoe_A = nn.ParameterDict({})
        self.loramoe_B = nn.ParameterDict({})
        self.loramoe_router = nn.ParameterDict({})
        self.scaling: dict[str, float] = {}
        self.dropout = nn.ModuleDict({})
        self.gates: dict[str, torch.Tensor] = {}  # last training forward's routing weights (…, E)
        self.update_layer(adapter_name, config, key)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: LoRAMoEConfig, key: str = "") -> None:
        base = self.get_base_layer()
        E, r, fan_in, fan_out = config.num_experts, config.r, base.in_features, base.out_features
        a = torch.empty(E, r, fan_in)
        for e in range(E):
            nn.init.kaiming_uniform_(a[e], a=math.sqrt(5))
        router = torch.empty(E, fan_in)
        nn.init.kaiming_uniform_(router, a=math.sqrt(5))
        device = base.weight.device
        self.loramoe_A[adapter_name] = nn.Parameter(a.to(device))
        self.loramoe_B[adapter_name] = nn.Parameter(torch.zeros(E, fan_out, r, device=device))
        self.loramoe_router[adapter_name] = nn.Parameter(router.to(device))
        self.scaling[adapter_name] = config.lora_alpha / config.r
        self.dropout[adapter_name] = nn.Dropout(config.lora_dropout) if config.lora_dropout > 0 else nn.Identity()
        self.set_adapter(self.active_adapters)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        for name in self._adapters_to_apply(self.loramoe_A):
            A, B, W_g = self.loramoe_A[name], self.loramoe_B[name], self.loramoe_router[name]
            xd = self.dropout[name](x.to(A.dtype))
            gates = torch.softmax(xd @ W_g.T, dim=-1)  # (…, E)
            low = torch.einsum("...i,eri->...er", xd, A)
            up = torch.einsum("...er,eor->...eo", low, B)
            result = result + (self.scaling[name] * (gates.unsqueeze(-1) * up).sum(-2)).to(result.dtype)
            if self.training:
                self.gates[name] = gates
        return result

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        raise ValueError("LoRAMoE cannot be merged into the base weights: its router's gates depend on the input")

    def unmerge(self) -> None:
        pass


def balance_loss(gates: torch.Tensor, token_mask: torch.Tensor, task_type: torch.Tensor, knowledge: int,
                 delta: float) -> torch.Tensor:
    """L_lbc of one layer: gates (M, T, E), token_mask (M, T) of real tokens, task_type (M,) ∈ {0, 1}."""
    if gates.dim() != 3 or token_mask.shape != gates.shape[:2] or task_type.shape != gates.shape[:1]:
        raise ValueError(f"balance_loss: gates {tuple(gates.shape)}, token_mask {tuple(token_mask.shape)}, task_type "
                         f"{tuple(task_type.shape)} do not agree on (M, T)")
    if bool(((task_type != 0) & (task_type != 1)).any()):
        raise ValueError("balance_loss: task_type must be 0 (world knowledge) or 1 (downstream task)")
    q = (gates * token_mask.unsqueeze(-1).to(gates.dtype)).sum(1)  # (M, E)
    expert_group = (torch.arange(gates.shape[-1], device=gates.device) >= knowledge).long()  # 0 knowledge, 1 task
    match = expert_group.unsqueeze(0) == task_type.long().unsqueeze(1)  # (M, E)
    z = torch.where(match, 1.0 + delta, 1.0 - delta).to(q.dtype) * q
    return z.var(unbiased=False) / z.mean().pow(2).clamp_min(1e-12)


class LoRAMoEModel(MMTunerModel):
    """LoRAMoE tuner model (``prefix = "loramoe_"``)."""

    prefix: str = "loramoe_"
    tuner_layer_cls = LoRAMoELayer
    target_module_mapping: dict = {}

    def aux_loss(self, attention_mask: torch.Tensor, task_type: torch.Tensor) -> torch.Tensor:
        """β · Σ_layers L_lbc over the gates of the last training forward (0 when β = 0 or nothing was recorded)."""
        config = self.peft_config[self.active_adapters[0]]
        total = None
        if config.blc_weight > 0:
            for _, layer in tuner_layers(self.model, LoRAMoELayer):
                for name in layer.active_adapters:
                    gates = layer.gates.get(name)
                    if gates is not None and gates.dim() == 3:
                        term = balance_loss(gates, attention_mask.to(gates.device), task_type.to(gates.device),
                                            config.knowledge, config.blc_alpha)
                        total = term if total is None else total + term
        if total is None:
            return torch.zeros((), device=attention_mask.device)
        return config.blc_weight * total


register("loramoe", LoRAMoEConfig, LoRAMoEModel)
