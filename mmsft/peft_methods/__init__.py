"""Parameter-efficient and structural fine-tuning methods registered with ``peft`` (custom tuners; see
:mod:`mmsft.peft_methods.registration`): ``loramoe`` (arXiv 2312.09979), ``ssf`` (arXiv 2210.08823), ``sparse``
(LT-SFT, arXiv 2110.07560, and SpIEL, arXiv 2401.16405), ``locft`` (LocFT-BF's localised full-rank edit,
arXiv 2509.22072), ``roste`` (quantisation-aware SFT with rotations, arXiv 2502.09003), plus every method peft
ships (``lora`` with DoRA / rsLoRA / PiSSA options, ``ia3``, ``loha``, ``lokr``, ``oft``, ``boft``, ``vera``,
``adalora``, ...), selected with ``lora.enabled: true`` + ``lora.method`` + ``lora.method_args``. See docs/peft.md.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from mmsft.peft_methods import locft, loramoe, roste, sparse, ssf  # noqa: F401  (register the tuners with peft)
from mmsft.peft_methods.locft import LocFTConfig, LocFTLayer, LocFTModel
from mmsft.peft_methods.loramoe import LoRAMoEConfig, LoRAMoELayer, LoRAMoEModel, balance_loss
from mmsft.peft_methods.roste import RoSTEConfig, RoSTELayer, RoSTEModel, fake_quant, hadamard
from mmsft.peft_methods.sparse import (SparseConfig, SparseLayer, SparseModel, lottery_ticket_masks, save_masks,
                                       spiel_reselect)
from mmsft.peft_methods.ssf import SSFConfig, SSFLayer, SSFModel

OURS = ("locft", "loramoe", "roste", "ssf", "sparse")
_BASE_FIELDS = {"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping"}

__all__ = ["LoRAMoEConfig", "LoRAMoELayer", "LoRAMoEModel", "LocFTConfig", "LocFTLayer", "LocFTModel", "RoSTEConfig",
           "RoSTELayer", "RoSTEModel", "SSFConfig", "SSFLayer", "SSFModel", "SparseConfig", "SparseLayer",
           "SparseModel",
           "balance_loss", "build_peft_config", "config_class", "fake_quant", "hadamard", "lottery_ticket_masks",
           "method_names", "save_masks", "spiel_reselect"]


def method_names() -> list[str]:
    """Every method ``lora.method`` accepts: peft's registered PEFT types (lower case) and ours."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return sorted({str(t.value if hasattr(t, "value") else t).lower() for t in PEFT_TYPE_TO_CONFIG_MAPPING})


def config_class(method: str) -> type:
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    for key, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        if str(getattr(key, "value", key)).lower() == method:
            return cls
    close = difflib.get_close_matches(method, method_names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise KeyError(f"unknown PEFT method {method!r}.{hint} Known: {', '.join(method_names())}")


def build_peft_config(method: str, args: dict[str, Any], r: int = 16, alpha: int = 32, dropout: float = 0.0,
                      target_modules: str = "all-linear") -> Any:
    """The peft config of ``method`` with ``args`` (its own config fields). ``lora`` takes ``r``, ``alpha``,
    ``dropout`` and ``target_modules`` from the ``lora.*`` keys; other methods take ``target_modules`` from them unless
    ``args`` sets it (LoRAMoE defaults to the FFN projections; LocFT requires its own ``target_modules``). Unknown
    arguments fail naming the nearest field."""
    cls = config_class(method)
    fields = {f.name for f in dataclasses.fields(cls)} - _BASE_FIELDS
    for name in args:
        if name not in fields:
            close = difflib.get_close_matches(str(name), sorted(fields), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"lora.method_args.{name}: PEFT method {method!r} has no argument {name!r}.{hint}")
    targets: Any = target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    values: dict[str, Any] = {}
    if method == "lora":
        values = {"r": r, "lora_alpha": alpha, "lora_dropout": dropout}
    if "target_modules" in fields and method not in ("loramoe", "locft"):  # these name their own targets
        values["target_modules"] = targets
    values.update(args)
    return cls(task_type="CAUSAL_LM", **values)
