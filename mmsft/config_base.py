"""Config machinery shared by every config dataclass: field declaration with help text, choices and bounds
(:func:`_f`), coercion and checking of values, application of nested mappings with "did you mean" errors, and
``key=value`` override parsing. :mod:`mmsft.config` declares the run config with it; component argument dataclasses
(losses, advantages) and task sections are checked by the same code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import field
from typing import Any

import yaml

class ConfigError(ValueError):
    """A bad config key or value; the message names the key and what was expected."""


def _f(default: Any, help: str, choices: tuple | None = None, *, ge: Any = None, gt: Any = None, le: Any = None,
       lt: Any = None) -> Any:
    """Declare a config field: its default, help text and what values are valid.

    ``choices``: the allowed values (string fields). ``ge``/``gt``/``le``/``lt``: bounds of a numeric field
    (>=, >, <=, <), each a number or the name of a sibling field of the same section (``le="image_max_pixels"``:
    at most that field's value). Every float field also rejects NaN and ±inf. Numeric bounds are checked as each
    layer (preset, YAML, overrides) is applied, so the error names the YAML file; sibling bounds once all layers are
    in. Messages read ``config key 'train.micro_batch_size': expected an integer >= 1, got 0``, and the bounds are
    listed in docs/config.md. A new section declares its fields with ``_f`` and gets all of this for free.
    """
    meta = {"help": help, "choices": choices}
    meta.update({k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None})
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default.copy(), metadata=meta)
    return field(default=default, metadata=meta)



def _nearest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else f" Valid keys: {', '.join(options)}."


_YAML_BOOLS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}
_BOOL_HINT = "YAML reads unquoted yes/no/on/off/true/false as booleans; quote the value"


def _coerce(value: Any, tp: Any, key: str, choices: tuple | None = None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], key, choices)
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (str,)
        if value is None:
            return []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list (or a comma-separated string), got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp in (int, float):
        kind = "an integer" if tp is int else "a number"
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected {kind}, got {value!r}")
        try:
            if isinstance(value, str):
                text = value.strip()
                number: Any = int(text) if tp is int and text.lstrip("+-").isdigit() else float(text)
            else:
                number = value
            if not isinstance(number, (int, float)):
                raise TypeError
            if tp is int:
                if isinstance(number, float) and not number.is_integer():
                    raise TypeError
                return int(number)
            number = float(number)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"config key {key!r}: expected {kind}, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, bool):
            for word in _YAML_BOOLS[value]:
                if choices and word in choices:
                    return word
            wanted = f"one of {list(choices)}" if choices else "a string"
            raise ConfigError(f"config key {key!r}: expected {wanted}, got {value!r} ({_BOOL_HINT})")
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    return value


_OPS = {"ge": (">=", lambda a, b: a >= b), "gt": (">", lambda a, b: a > b),
        "le": ("<=", lambda a, b: a <= b), "lt": ("<", lambda a, b: a < b)}


def _bounds(f: dataclasses.Field) -> dict[str, Any]:
    return {op: f.metadata[op] for op in _OPS if f.metadata.get(op) is not None}


def bounds_text(f: dataclasses.Field, prefix: str = "", obj: Any = None) -> str:
    """``>= 1``, ``>= 0 and < 1``, ``<= data.image_max_pixels``: a field's declared bounds in words (with ``obj``,
    a sibling bound also shows that sibling's current value)."""
    words = []
    for op, bound in _bounds(f).items():
        if isinstance(bound, str):
            shown = f"{prefix}{bound}" + (f" ({getattr(obj, bound)!r})" if obj is not None else "")
        else:
            shown = repr(bound)
        words.append(f"{_OPS[op][0]} {shown}")
    return " and ".join(words)


def _check_bounds(obj: Any, f: dataclasses.Field, value: Any, key: str, siblings: bool) -> None:
    """Raise when ``value`` breaks a numeric bound (and, with ``siblings``, a bound naming another field)."""
    bounds = _bounds(f)
    if not bounds or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    for op, bound in bounds.items():
        if isinstance(bound, str) and not siblings:
            continue
        limit = getattr(obj, bound) if isinstance(bound, str) else bound
        if not _OPS[op][1](value, limit):
            kind = "an integer" if isinstance(value, int) else "a number"
            raise ConfigError(f"config key {key!r}: expected {kind} {bounds_text(f, section, obj)}, got {value!r}")


def _apply(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {full!r}.{_nearest(key, list(fields))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {full!r} is a section; expected a mapping of its keys, got {value!r}")
            _apply(current, value, prefix=f"{full}.")
            continue
        if isinstance(current, dict) and isinstance(value, dict):  # component args merge over preset values
            setattr(obj, key, {**current, **value})
            continue
        choices = _choices(fields[key])
        coerced = _coerce(value, hints[key], full, choices)
        if choices and coerced not in choices:
            hint = f" ({_BOOL_HINT})" if isinstance(value, bool) else _nearest(str(coerced), list(choices))
            raise ConfigError(f"config key {full!r}: {coerced!r} is not one of {list(choices)}.{hint}")
        _check_bounds(obj, fields[key], coerced, full, siblings=False)
        setattr(obj, key, coerced)


def validate(config: Any, prefix: str = "") -> None:
    """Check every field's bounds, sibling bounds included (``image_min_pixels <= image_max_pixels``)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{f.name}.")
        else:
            _check_bounds(config, f, value, f"{prefix}{f.name}", siblings=True)


def _choices(f: dataclasses.Field) -> tuple | None:
    choices = f.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def coerce_value(value: Any, f: dataclasses.Field, key: str, owner: type) -> Any:
    """Coerce and check one value for field ``f`` of dataclass ``owner`` (component argument dataclasses too: their
    ``metadata`` may hold ``choices`` and numeric ``ge``/``gt``/``le``/``lt`` bounds, as :func:`_f` writes them)."""
    choices = _choices(f)
    coerced = _coerce(value, typing.get_type_hints(owner)[f.name], key, choices)
    if choices and coerced not in choices:
        raise ConfigError(f"config key {key!r}: {coerced!r} is not one of {list(choices)}.{_nearest(str(coerced), list(choices))}")
    _check_bounds(None, f, coerced, key, siblings=False)
    return coerced


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", "lora.enabled=true"]`` → nested dict (values parsed as YAML scalars)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.lr=1e-4)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is set both as a value and as a section")
        node[parts[-1]] = value
    return nested
