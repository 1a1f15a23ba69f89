"""Exhaustive exact solver for General Points (24-game family; arXiv 2501.17161).

Repeatedly combines two of the remaining numbers with + - * / (both orders for - and /) using ``Fraction``
arithmetic, so every bracketing and permutation is covered. Multisets already shown to be unsolvable are memoised,
which keeps 5- and 6-card hands fast.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Sequence


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _operand(value: Fraction) -> str:
    return _fmt(value) if value.denominator == 1 else f"({_fmt(value)})"


def _search(items: list[tuple[Fraction, str]], target: Fraction, failed: set, steps: list[str]) -> str | None:
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
            options = [(a + b, f"({ea}+{eb})", a, "+", b), (a * b, f"{ea}*{eb}", a, "*", b),
                       (a - b, f"({ea}-{eb})", a, "-", b), (b - a, f"({eb}-{ea})", b, "-", a)]
            if b != 0:
                options.append((a / b, f"{ea}/{eb}", a, "/", b))
            if a != 0:
                options.append((b / a, f"{eb}/{ea}", b, "/", a))
            for value, expr, x, op, y in options:
                steps.append(f"{_operand(x)} {op} {_operand(y)} = {_fmt(value)}")
                found = _search(rest + [(value, f"({expr})" if expr[0] != "(" else expr)], target, failed, steps)
                if found is not None:
                    return found
                steps.pop()
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


@lru_cache(maxsize=65536)
def _solve_cached(values: tuple[int, ...], target: int) -> tuple[str, tuple[str, ...]] | None:
    items = [(Fraction(v), str(v)) for v in values]
    steps: list[str] = []
    found = _search(items, Fraction(target), set(), steps)
    return None if found is None else (_strip_outer(found), tuple(steps))


def solve_with_steps(values: Sequence[int], target: int = 24) -> tuple[str, list[str]] | None:
    """``(formula, steps)`` where steps are the solver's combinations (``"9 * 11 = 99"``), or ``None``.

    Results are memoised per multiset of values (there are only 1,820 four-card multisets of 1..13).
    """
    if not values:
        raise ValueError("solve needs at least one value")
    found = _solve_cached(tuple(sorted(int(v) for v in values)), int(target))
    return None if found is None else (found[0], list(found[1]))


def solve(values: Sequence[int], target: int = 24) -> str | None:
    """A formula over ``values`` (each used once) equal to ``target``, or ``None`` if there is none."""
    found = solve_with_steps(values, target)
    return None if found is None else found[0]
