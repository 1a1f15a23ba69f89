"""Calling the VGRP engineer's API (``tasks.vgrp.api``) with only the keyword arguments it accepts.

The puzzle CLIs own the command line for every world; VGRP puzzles (``vgrp-<name>``) are built and scored by
``tasks.vgrp.api.build_dataset`` / ``evaluate_predictions``. Options are passed by keyword, filtered to the
function's signature (everything when it takes ``**kwargs``), so both sides can evolve independently.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

VGRP_PREFIX = "vgrp-"


def is_vgrp(world: str) -> bool:
    return world.startswith(VGRP_PREFIX) and len(world) > len(VGRP_PREFIX)


def vgrp_puzzle(world: str) -> str:
    """``vgrp-trees-and-tents`` -> ``trees_and_tents``, checked against ``tasks.vgrp.api.PUZZLES`` when listed."""
    if not is_vgrp(world):
        raise ValueError(f"world={world!r} is not a VGRP world (expected 'vgrp-<puzzle>')")
    name = world[len(VGRP_PREFIX):].replace("-", "_").lower()
    known = getattr(importlib.import_module("tasks.vgrp.api"), "PUZZLES", None) if _has_vgrp() else None
    if known is not None and name not in known:
        raise ValueError(f"VGRP puzzle {name!r} is unknown; expected one of {sorted(known)}")
    return name


def _has_vgrp() -> bool:
    try:
        importlib.import_module("tasks.vgrp.api")
    except ModuleNotFoundError:
        return False
    return True


def vgrp_function(name: str):
    """``tasks.vgrp.api.<name>``; raises a clear error when the VGRP task layer is not installed."""
    try:
        module = importlib.import_module("tasks.vgrp.api")
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"VGRP worlds need tasks.vgrp.api (not importable: {exc})") from exc
    fn = getattr(module, name, None)
    if fn is None:
        raise RuntimeError(f"tasks.vgrp.api has no function {name!r}")
    return fn


def call_with_accepted(fn, options: dict[str, Any]) -> Any:
    """Call ``fn`` with the subset of ``options`` its signature accepts; missing required parameters raise."""
    sig = inspect.signature(fn)
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in options.items() if v is not None}
    else:
        kwargs = {k: v for k, v in options.items() if k in params and v is not None}
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in kwargs]
    if missing:
        raise TypeError(f"{fn.__module__}.{fn.__name__} needs {missing}, which the puzzle CLI does not provide "
                        f"(it provides {sorted(k for k, v in options.items() if v is not None)})")
    return fn(**kwargs)
