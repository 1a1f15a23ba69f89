"""Exhaustive exact solver for General Points (24-game family; arXiv 2501.17161).

Repeatedly combines two of the remaining numbers with + - * / (both orders for - and /) using ``Fraction``
arithmetic, so every bracketing and permutation is covered. Multisets already shown to be unsolvable are memoised,
which keeps 5- and 6-card hands fast.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence


def _search(items: list[tuple[Fraction, str]], target: Fraction, failed: set) -> str | None:
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    key = tuple(sorted(v for v, _ in items))
    if key in failed:
        return None
    n = len(items)
    for i in range(n):
        a, ea = items[i]
        for j in range(i + 1, n):
            b, eb = items[j]
            rest = [items[k] for k in range(n) if k != i and k != j]
            options = [(a + b, f"({ea}+{eb})"), (a * b, f"{ea}*{eb}"), (a - b, f"({ea}-{eb})"),
                       (b - a, f"({eb}-{ea})")]
            if b != 0:
                options.append((a / b, f"{ea}/{eb}"))
            if a != 0:
                options.append((b / a, f"{eb}/{ea}"))
            for value, expr in options:
                found = _search(rest + [(value, f"({expr})" if expr[0] != "(" else expr)], target, failed)
                if found is not None:
                    return found
    failed.add(key)
    return None


def _strip_outer(expr: str) -> str:
    """Remove redundant outer brackets, e.g. ``((1+2)*8)`` -> ``(1+2)*8``."""
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for k, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(expr) - 1:
                return expr
        expr = expr[1:-1]
    return expr


def solve(values: Sequence[int], target: int = 24) -> str | None:
    """A formula over ``values`` (each used once) equal to ``target``, or ``None`` if there is none."""
    if not values:
        raise ValueError("solve needs at least one value")
    items = [(Fraction(int(v)), str(int(v))) for v in values]
    found = _search(items, Fraction(target), set())
    return None if found is None else _strip_outer(found)
