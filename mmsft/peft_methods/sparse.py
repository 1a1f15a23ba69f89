"""Sparse fine-tuning as a peft tuner: LT-SFT (Ansell et al., "Composable Sparse Fine-Tuning for Cross-Lingual
Transfer", ACL 2022, arXiv 2110.07560) and SpIEL (Ansell et al., "Scaling Sparse Fine-Tuning to Large Language
Models", arXiv 2401.16405).

Each targeted Linear keeps a fixed-size index set η (k = ⌈density · #weights⌉ flat positions of W) and trainable
deltas φ: W_eff = W0 + scatter(η, φ). Only φ (k values per module) is trained; η is a saved buffer.

* LT-SFT: after a full fine-tune θ0 → θ1, :func:`lottery_ticket_masks` picks the global top-K entries of |θ1 − θ0|
  (ties: lower flat index first); saved with :func:`save_masks` and passed as ``mask_path``, the sparse run trains
  only those entries from θ0.
* SpIEL-AG: with ``regrow_every > 0`` the layers accumulate |∂L/∂W_eff| (the dense weight gradient, taken through a
  tensor hook on W_eff — no extra backward) and every ``regrow_every`` optimizer steps :func:`spiel_reselect` drops
  the fraction ζ_t of active indices with the smallest |φ| and grows as many unused positions with the largest
  accumulated gradient, with φ = 0 and zeroed Adam moments at the new positions. ζ_t decays as a cosine from
  ``regrow_rate`` to 0 over ``regrow_until`` steps. The accumulator is a saved buffer, so a resumed run is exact.
* Composition: load two sparse adapters into one ``PeftModel`` and activate both (``set_adapter([a, b])``): W_eff =
  W0 + φ_a + φ_b (θ0 + φ_language + φ_task); ``merge_and_unload`` writes it into the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from peft.config import PeftConfig
from peft.tuners._buffer_dict import BufferDict
from peft.tuners.tuners_utils import check_adapters_to_merge

from mmsft.peft_methods.common import MMLayer, MMTunerModel, tuner_layers
from mmsft.peft_methods.registration import extend_peft_type, register

PEFT_TYPE = extend_peft_type("sparse")


@dataclass
class SparseConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default="all-linear", metadata={
        "help": "Linear modules with sparse deltas ('all-linear': every linear but the output head)."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    density: float = field(default=0.01, metadata={"help": "Fraction of each module's weights that get a delta."})
    mask_path: Optional[str] = field(default=None, metadata={
        "help": "safetensors of flat indices per module name (LT-SFT masks); None: random indices (seed)."})
    seed: int = field(default=0, metadata={"help": "Seed of the random initial indices."})
    regrow_every: int = field(default=0, metadata={"help": "SpIEL reselection period in optimizer steps (0: fixed η)."})
    regrow_rate: float = field(default=0.2, metadata={"help": "Initial fraction ζ_0 of indices replaced."})
    regrow_until: int = field(default=1000, metadata={"help": "Steps over which ζ_t decays (cosine) to 0."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer pattern."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra fully trained modules."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if not 0 < self.density <= 1:
            raise ValueError(f"sparse density must be in (0, 1], got {self.density}")
        if not 0 <= self.regrow_rate <= 1 or self.regrow_every < 0 or self.regrow_until < 1:
            raise ValueError("sparse regrow_rate must be in [0, 1], regrow_every >= 0 and regrow_until >= 1")


def _mask_for(config: SparseConfig, key: str, numel: int) -> torch.Tensor:
    k = max(1, math.ceil(config.density * numel))
    if config.mask_path:
        from safetensors.torch import load_file

        masks = load_file(config.mask_path)
        if key not in masks:
            raise ValueError(f"sparse mask_path {config.mask_path}: no indices for module {key!r} "
                             f"(has {sorted(masks)[:5]}...)")
        idx = masks[key].long().flatten()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= numel or idx.unique().numel() != idx.numel()):
            raise ValueError(f"sparse mask for {key!r}: indices must be distinct and in [0, {numel})")
        return idx
    seed = (config.seed * 1_000_003 + sum(key.encode())) % (2**31)
    return torch.randperm(numel, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def _accumulator(acc: torch.Tensor) -> Any:
    def hook(grad: torch.Tensor) -> None:  # returns None: the gradient itself is left unchanged
        acc.add_(grad.detach().abs().flatten().float())
    return hook


class SparseLayer(MMLayer):
    adapter_layer_names = ("sparse_values",)
    other_param_names = ("sparse_indices", "sparse_grad_acc")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: SparseConfig, key: str = "") -> None:
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"sparse fine-tuning adapts nn.Linear modules; {key!r} is {type(base_layer).__name__}")
        super().__init__(base_layer)
        self.sparse_values = nn.ParameterDict({})
        self.sparse_indices = BufferDict({}, persistent=True)
        self.sparse_grad_acc = BufferDict({}, persistent=True)
        self.update_layer(adapter_name, config, key)
        self._active_adapter = adapter_name

    def update_layer(self, adapter_name: str, config: SparseConfig, key: str = "") -> None:
        weight = self.get_base_layer().weight
        idx = _mask_for(config, key, weight.numel()).to(weight.device)
        self.sparse_indices[adapter_name] = idx
        self.sparse_values[adapter_name] = nn.Parameter(torch.zeros(len(idx), dtype=torch.float32,
                                                                    device=weight.device))
        if config.regrow_every > 0:
            self.sparse_grad_acc[adapter_name] = torch.zeros(weight.numel(), dtype=torch.float32, device=weight.device)
        self.set_adapter(self.active_adapters)

    def delta(self, name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        flat = torch.zeros(weight.numel(), dtype=self.sparse_values[name].dtype, device=weight.device)
        return flat.index_add(0, self.sparse_indices[name], self.sparse_values[name]).view_as(weight)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        base = self.get_base_layer()
        names = self._adapters_to_apply(self.sparse_values)
        if not names:
            return self.base_layer(x, *args, **kwargs)
        weight = base.weight + sum(self.delta(n) for n in names).to(base.weight.dtype)
        if torch.is_grad_enabled() and weight.requires_grad:
            for n in names:
                if n in self.sparse_grad_acc and self.sparse_values[n].requires_grad:
                    weight.register_hook(_accumulator(self.sparse_grad_acc[n]))
        return F.linear(x, weight, base.bias)

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        weight = self.get_base_layer().weight
        for name in check_adapters_to_merge(self, adapter_names):
            if name in self.sparse_values:
                weight.data += self.delta(name).detach().to(weight.dtype)
                self.merged_adapters.append(name)

    def unmerge(self) -> None:
        weight = self.get_base_layer().weight
        while self.merged_adapters:
            weight.data -= self.delta(self.merged_adapters.pop()).detach().to(weight.dtype)

    @torch.no_grad()
    def reselect(self, name: str, fraction: float, optimizer: Any = None) -> int:
        """SpIEL drop-and-grow on one adapter; returns the number of replaced indices."""
        idx, values = self.sparse_indices[name], self.sparse_values[name]
        acc = self.sparse_grad_acc[name] if name in self.sparse_grad_acc else None
        n = min(int(fraction * len(idx)), self.get_base_layer().weight.numel() - len(idx))
        if n <= 0 or acc is None:
            return 0
        drop = torch.argsort(values.abs(), stable=True)[:n]  # smallest |φ|, earlier slot first on ties
        score = acc.clone()
        score[idx] = -1.0  # active positions are not candidates
        grow = torch.argsort(-score, stable=True)[:n]
        idx[drop] = grow
        values[drop] = 0.0
        acc.zero_()
        if optimizer is not None:  # new slots start with zero Adam moments
            state = optimizer.state.get(values, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][drop] = 0.0
        return n


class SparseModel(MMTunerModel):
    """Sparse fine-tuning tuner model (``prefix = "sparse_"``)."""

    prefix: str = "sparse_"
    tuner_layer_cls = SparseLayer
    target_module_mapping: dict = {}

    def on_optimizer_step(self, step: int, optimizer: Any = None) -> dict[str, float]:
        """Called by the trainer after each optimizer step (``step`` = steps done): SpIEL reselection when due."""
        config = self.peft_config[self.active_adapters[0]]
        if config.regrow_every <= 0 or step % config.regrow_every:
            return {}
        return {"sparse/replaced": float(spiel_reselect(self.model, spiel_rate(config, step), optimizer))}


def spiel_rate(config: SparseConfig, step: int) -> float:
    """ζ_t = regrow_rate · ½(1 + cos(π·min(step, until)/until))."""
    t = min(step, config.regrow_until) / config.regrow_until
    return config.regrow_rate * 0.5 * (1 + math.cos(math.pi * t))


def spiel_reselect(model: nn.Module, fraction: float, optimizer: Any = None) -> int:
    """Drop-and-grow on every active sparse adapter of ``model``; returns the total number of replaced indices."""
    total = 0
    for _, layer in tuner_layers(model, SparseLayer):
        for name in layer.active_adapters:
            if name in layer.sparse_values and layer.sparse_values[name].requires_grad:
                total += layer.reselect(name, fraction, optimizer)
    return total


def lottery_ticket_masks(theta0: Mapping[str, torch.Tensor], theta1: Mapping[str, torch.Tensor],
                         density: float | None = None, k: int | None = None,
                         names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """LT-SFT masks: the global top-K of |θ1 − θ0| over the 2-D weights ``names`` (default: every 2-D ``*.weight``
    in both) → {module name: sorted flat indices}. Give exactly one of ``density`` (K = ⌈density·total⌉) or ``k``."""
    keys = names or [n for n, t in theta0.items() if n.endswith(".weight") and t.dim() == 2 and n in theta1]
    if (density is None) == (k is None):
        raise ValueError("give exactly one of density or k")
    diffs = []
    for name in keys:
        if theta0[name].shape != theta1[name].shape:
            raise ValueError(f"lottery_ticket_masks: {name} has shape {tuple(theta0[name].shape)} in θ0 but "
                             f"{tuple(theta1[name].shape)} in θ1")
        diffs.append((theta1[name].detach().double() - theta0[name].detach().double()).abs().flatten())
    flat = torch.cat(diffs)
    count = k if k is not None else math.ceil(density * flat.numel())
    chosen = torch.argsort(-flat, stable=True)[:count]
    out: dict[str, torch.Tensor] = {}
    start = 0
    for name, d in zip(keys, diffs):
        mine = chosen[(chosen >= start) & (chosen < start + d.numel())] - start
        out[name.removesuffix(".weight")] = mine.sort().values
        start += d.numel()
    return out


def save_masks(masks: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous().long() for k, v in masks.items()}, str(path))
    return Path(path)


register("sparse", SparseConfig, SparseModel)
