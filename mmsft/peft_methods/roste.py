"""RoSTE — quantisation-aware SFT with rotations (Wei et al., "RoSTE: An Efficient Quantization-Aware Supervised
Fine-Tuning Approach for Large Language Models", ICML 2025, arXiv 2502.09003) as a peft tuner.

Each targeted Linear trains a full-rank delta (W = W0 + ΔW: RoSTE is full-parameter QAT; the base stays frozen so
the adapter saves and loads like any peft adapter) under fake quantisation with a straight-through estimator:
y = Q_a(x R) · Q_w(W R)ᵀ + b, with R an orthogonal randomised Hadamard rotation (diag(±1) · H / √n, block-diagonal
with the largest power-of-two block dividing ``in_features``) — (xR)(WR)ᵀ = xWᵀ, so without quantisation the
rotation changes nothing, and with it outliers are spread before rounding. Q is symmetric round-to-nearest with a
max-abs scale (weights per output channel, activations per token) at ``bits_w`` / ``bits_a`` (0: off); its
gradient is the identity (STE; max-abs scaling never clips).

Adaptive rotation (the paper's bilevel choice, here greedy per layer): a layer is rotated when that lowers its
measured quantisation error ‖Q(WR) − WR‖² + ‖Q(xR) − xR‖² (rotation is orthogonal, so errors compare directly),
decided when the adapter is created (weights only) and, with ``reselect_every > 0``, every that many optimizer steps
on the current weights and the last training activations. ``rotate: always | never`` fixes the choice.
KV-cache quantisation is not implemented. Merging writes Q_w(WR)Rᵀ into the weights — exact only without activation
quantisation (``bits_a: 0``); otherwise merging is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from peft.config import PeftConfig
from peft.tuners._buffer_dict import BufferDict
from peft.tuners.tuners_utils import check_adapters_to_merge

from mmsft.peft_methods.common import MMLayer, MMTunerModel, tuner_layers
from mmsft.peft_methods.registration import extend_peft_type, register

PEFT_TYPE = extend_peft_type("roste")


@dataclass
class RoSTEConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default="all-linear", metadata={
        "help": "Linear modules trained under fake quantisation."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    bits_w: int = field(default=4, metadata={"help": "Weight bits (per output channel; 0: no weight quantisation)."})
    bits_a: int = field(default=4, metadata={"help": "Activation bits (per token; 0: no activation quantisation)."})
    rotate: str = field(default="auto", metadata={"help": "auto (adaptive), always or never."})
    reselect_every: int = field(default=0, metadata={"help": "Re-choose rotations every N optimizer steps (0: once)."})
    seed: int = field(default=0, metadata={"help": "Seed of the Hadamard sign flips."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer pattern."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra fully trained modules."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        for name in ("bits_w", "bits_a"):
            bits = getattr(self, name)
            if bits != 0 and not 2 <= bits <= 16:
                raise ValueError(f"RoSTE {name} must be 0 (off) or in [2, 16], got {bits}")
        if self.rotate not in ("auto", "always", "never"):
            raise ValueError(f"RoSTE rotate must be auto, always or never, got {self.rotate!r}")
        if self.reselect_every < 0:
            raise ValueError(f"RoSTE reselect_every must be >= 0, got {self.reselect_every}")


def fake_quant(t: torch.Tensor, bits: int, dim: int = -1) -> torch.Tensor:
    """Symmetric round-to-nearest with a max-abs scale along ``dim``; straight-through gradient; ``bits == 0``:
    identity."""
    if bits == 0:
        return t
    qmax = 2 ** (bits - 1) - 1
    scale = t.detach().abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / qmax
    q = torch.clamp(torch.round(t / scale), -qmax, qmax) * scale
    return t + (q - t).detach()


def hadamard(n: int, seed: int = 0) -> torch.Tensor:
    """Orthogonal randomised Hadamard (n × n): diag(±1) · blockdiag(H_b / √b), b the largest power of two dividing n."""
    block = n & -n
    h = torch.ones(1, 1)
    while h.shape[0] < block:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    h = h / math.sqrt(block)
    rot = torch.block_diag(*([h] * (n // block)))
    signs = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed)).float() * 2 - 1
    return signs[:, None] * rot


def quant_error(t: torch.Tensor, bits: int, dim: int = -1) -> float:
    return float((fake_quant(t.detach().float(), bits, dim) - t.detach().float()).pow(2).sum())


class RoSTELayer(MMLayer):
    adapter_layer_names = ("roste_delta",)
    other_param_names = ("roste_rotate",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: RoSTEConfig, key: str = "") -> None:
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"RoSTE adapts nn.Linear modules; {key!r} is {type(base_layer).__name__}")
        super().__init__(base_layer)
        self.roste_delta = nn.ParameterDict({})
        self.roste_rotate = BufferDict({}, persistent=True)
        self.configs: dict[str, RoSTEConfig] = {}
        self.last_input: torch.Tensor | None = None
        self.register_buffer("rotation", hadamard(base_layer.in_features, config.seed).to(base_layer.weight.device),
                             persistent=False)
        self.update_layer(adapter_name, config, key)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: RoSTEConfig, key: str = "") -> None:
        weight = self.get_base_layer().weight
        self.configs[adapter_name] = config
        self.roste_delta[adapter_name] = nn.Parameter(torch.zeros(weight.shape, dtype=torch.float32,
                                                                  device=weight.device))
        self.roste_rotate[adapter_name] = torch.tensor(False, device=weight.device)
        self.choose_rotation(adapter_name)
        self.set_adapter(self.active_adapters)

    def weight_of(self, name: str) -> torch.Tensor:
        base = self.get_base_layer()
        return base.weight + self.roste_delta[name].to(base.weight.dtype)

    @torch.no_grad()
    def choose_rotation(self, name: str) -> bool:
        """Set and return whether adapter ``name`` rotates (``auto``: whichever quantises with less error)."""
        config = self.configs[name]
        if config.rotate != "auto":
            choice = config.rotate == "always"
        else:
            w, r = self.weight_of(name).float(), self.rotation
            plain, rotated = quant_error(w, config.bits_w), quant_error(w @ r, config.bits_w)
            if self.last_input is not None:
                x = self.last_input.float()
                plain += quant_error(x, config.bits_a)
                rotated += quant_error(x @ r, config.bits_a)
            choice = rotated < plain
        self.roste_rotate[name].fill_(choice)
        return choice

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        names = self._adapters_to_apply(self.roste_delta)
        if not names:
            return self.base_layer(x, *args, **kwargs)
        if len(names) > 1:
            raise ValueError("RoSTE runs one active adapter at a time")
        name, base = names[0], self.get_base_layer()
        config = self.configs[name]
        w = self.weight_of(name)
        if self.training:
            self.last_input = x.detach().reshape(-1, x.shape[-1])[:64]
        if bool(self.roste_rotate[name]):
            r = self.rotation.to(x.dtype)
            x, w = x @ r, w @ r.to(w.dtype)
        return F.linear(fake_quant(x, config.bits_a), fake_quant(w, config.bits_w).to(x.dtype), base.bias)

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        base = self.get_base_layer()
        for name in check_adapters_to_merge(self, adapter_names):
            if name not in self.roste_delta:
                continue
            config = self.configs[name]
            if config.bits_a:
                raise ValueError(f"RoSTE adapter {name!r} quantises activations ({config.bits_a} bits): that cannot be "
                                 "written into the weights — deploy with a W/A-quantised runtime, or train with "
                                 "bits_a: 0 to merge")
            with torch.no_grad():
                w = self.weight_of(name).float()
                if bool(self.roste_rotate[name]):
                    r = self.rotation.float()
                    merged = fake_quant(w @ r, config.bits_w) @ r.T
                else:
                    merged = fake_quant(w, config.bits_w)
                base.weight.data.copy_(merged.to(base.weight.dtype))
            self.merged_adapters.append(name)

    def unmerge(self) -> None:
        raise ValueError("RoSTE merges are not reversible (the weights were quantised)")


class RoSTEModel(MMTunerModel):
    """RoSTE tuner model (``prefix = "roste_"``)."""

    prefix: str = "roste_"
    tuner_layer_cls = RoSTELayer
    target_module_mapping: dict = {}

    def on_optimizer_step(self, step: int, optimizer: Any = None) -> dict[str, float]:
        config = self.peft_config[self.active_adapters[0]]
        if config.rotate != "auto" or config.reselect_every <= 0 or step % config.reselect_every:
            return {}
        layers = tuner_layers(self.model, RoSTELayer)
        rotated = sum(layer.choose_rotation(self.active_adapters[0]) for _, layer in layers)
        return {"roste/rotated_fraction": rotated / max(len(layers), 1)}


register("roste", RoSTEConfig, RoSTEModel)
