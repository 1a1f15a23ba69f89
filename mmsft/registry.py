"""One registry implementation for every pluggable kind: losses, advantage and KL estimators, rewards, evaluators,
producers, environment tasks and CLI commands.

A name is either a registered name (``"grpo"``) or an import path ``"my_pkg.module:attribute"``; unknown names fail
with a "did you mean" hint and the list of registered names. Task packages and user packages add entries through
the ``mmsft.plugins`` entry-point group or the ``plugins:`` config key (:mod:`mmsft.plugins`); ``mmsft`` itself never
imports ``tasks``.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or conflicting registry name; the message names the kind, the name and the nearest choices."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its declared metadata (e.g. ``requires`` for losses)."""

    name: str
    fn: T
    requires: frozenset[str] = frozenset()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def import_object(path: str, kind: str = "object") -> Any:
    """``"pkg.module:attr.sub"`` → the object; errors name the path and what failed."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RegistryError(f"{kind} {path!r}: expected 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"{kind} {path!r}: cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"{kind} {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A named table with helpful errors; ``get`` also accepts ``module:function`` paths."""

    def __init__(self, kind: str, validate: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._validate = validate

    def register(self, name: str, requires: tuple[str, ...] | frozenset[str] = (), **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name", requires=(...), key=value)``."""
        if self._validate is not None:
            self._validate(name, {"requires": frozenset(requires), **meta})

        def decorator(fn: T) -> T:
            self.add(name, fn, requires, **meta)
            return fn

        return decorator

    def add(self, name: str, fn: T, requires: tuple[str, ...] | frozenset[str] = (), **meta: Any) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing.fn is not fn and _qualname(existing.fn) != _qualname(fn):
            raise RegistryError(f"{self.kind} {name!r} is already registered by {_qualname(existing.fn)}")
        self._entries[name] = Entry(name, fn, frozenset(requires), dict(meta))

    def get(self, name: str) -> Entry[T]:
        """The entry for a registered name (loading plugins on a miss) or a ``module:function`` path."""
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            obj = import_object(name, self.kind)
            declared = getattr(obj, "requires", ())
            return Entry(name, obj, frozenset(declared))
        from mmsft.plugins import load_entry_points

        if load_entry_points() and name in self._entries:
            return self._entries[name]
        raise RegistryError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        registered = ", ".join(sorted(self._entries)) or "none"
        return (f"unknown {self.kind} {name!r}.{hint} Registered: {registered} "
                "(or give 'package.module:function')")

    def names(self) -> list[str]:
        from mmsft.plugins import load_entry_points

        load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
