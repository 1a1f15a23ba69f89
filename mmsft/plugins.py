"""Plugins: modules that register losses, advantages, rewards, evaluators, producers, environment tasks or CLI
commands when imported.

Two ways in:

* the ``mmsft.plugins`` entry-point group — task packages (ours under ``tasks/`` and any installed package)
  declare ``[project.entry-points."mmsft.plugins"] name = "pkg.module"``; they are imported the first time a
  registry lookup misses, or when the CLI builds its command list;
* the ``plugins:`` config key (a list of module names), imported before the run starts.

A plugin module registers by side effect (decorators) and may define ``COMMANDS``: a mapping from a command path
(tuple of words) to ``(module name, one-line help)`` for the CLI.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from typing import Any, Iterable

GROUP = "mmsft.plugins"
_loaded: dict[str, Any] = {}
_entry_points_done = False


class PluginError(ImportError):
    """A plugin module could not be imported; the message names it and where it was declared."""


def import_plugin(module_name: str, where: str = "plugins") -> Any:
    if module_name in _loaded:
        return _loaded[module_name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"{where}: cannot import plugin module {module_name!r} ({exc})") from None
    _loaded[module_name] = module
    return module


def load_plugins(names: Iterable[str], where: str = "config key 'plugins'") -> list[Any]:
    """Import each named module (config ``plugins:``); returns the modules."""
    return [import_plugin(str(n).strip(), where) for n in names if str(n).strip()]


def load_entry_points() -> bool:
    """Import every ``mmsft.plugins`` entry point once; True if this call loaded anything new."""
    global _entry_points_done
    if _entry_points_done:
        return False
    _entry_points_done = True
    loaded_any = False
    for ep in entry_points(group=GROUP):
        if ep.value in _loaded:
            continue
        try:
            import_plugin(ep.value, where=f"entry point {ep.name!r} ({GROUP})")
            loaded_any = True
        except PluginError as exc:  # an optional extra missing must not break unrelated commands
            print(f"mmsft: warning: {exc}", file=sys.stderr)
    return loaded_any


def plugin_commands() -> dict[tuple[str, ...], tuple[str, str]]:
    """CLI commands contributed by loaded plugins (``COMMANDS`` mappings)."""
    load_entry_points()
    commands: dict[tuple[str, ...], tuple[str, str]] = {}
    for module in list(_loaded.values()):
        for path, spec in (getattr(module, "COMMANDS", None) or {}).items():
            commands[tuple(path)] = tuple(spec)  # type: ignore[assignment]
    return commands
