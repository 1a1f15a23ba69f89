"""Registering mmsft's tuners with ``peft`` so ``get_peft_model``, ``save_pretrained``, ``PeftModel.from_pretrained``,
``merge_and_unload`` and multi-adapter loading work for them as for peft's own methods.

peft's extension point is :func:`peft.utils.register_peft_method`, which requires the method's name to be a member
of the :class:`peft.utils.PeftType` enum. ``PeftType`` is a closed ``str`` enum, so :func:`extend_peft_type` adds a
member the way ``enum`` itself stores them (member map, value map, member names, class attribute); the value is the
upper-case name, which is what ``adapter_config.json`` stores as ``peft_type``.
"""

from __future__ import annotations

from typing import Any

from peft.utils import PeftType, register_peft_method


def extend_peft_type(name: str) -> Any:
    """The ``PeftType`` member ``name.upper()``, added if missing (idempotent)."""
    key = name.upper()
    if key in PeftType.__members__:
        return PeftType[key]
    member = str.__new__(PeftType, key)
    member._name_ = key
    member._value_ = key
    member.__objclass__ = PeftType
    PeftType._member_map_[key] = member
    PeftType._value2member_map_[key] = member
    PeftType._member_names_.append(key)
    type.__setattr__(PeftType, key, member)
    return member


def register(name: str, config_cls: type, model_cls: type) -> None:
    """Register a tuner with peft once (re-imports are no-ops)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    peft_type = extend_peft_type(name)
    if peft_type in PEFT_TYPE_TO_CONFIG_MAPPING:
        return
    register_peft_method(name=name, config_cls=config_cls, model_cls=model_cls, prefix=f"{name}_")
