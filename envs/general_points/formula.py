"""Exact, safe evaluation of General Points formulas (no ``eval``).

Grammar: ``expr := term (('+'|'-') term)*``, ``term := factor (('*'|'/') factor)*``,
``factor := INT | '(' expr ')'``. ``x``, ``X``, ``×`` and ``·`` mean ``*``; ``÷`` means ``/``; ``[]`` and ``{}`` are
brackets. Unary minus, decimals and any other symbol make the formula illegal, as does division by zero. Values are
``Fraction``s, so ``8/(3-8/3)`` is exactly 24 (arXiv 2501.17161 checks formulas the same way).
"""

from __future__ import annotations

import re
from fractions import Fraction

_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")
_ALIASES = {"x": "*", "X": "*", "×": "*", "·": "*", "÷": "/", "[": "(", "]": ")", "{": "(", "}": ")"}


class FormulaError(ValueError):
    """The formula is not a legal arithmetic expression over integers."""


def tokenize(formula: str) -> list[str]:
    """Split a formula into integer and operator tokens, normalising operator aliases."""
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    tokens = []
    for number, other in _TOKEN.findall(formula.strip()):
        if number:
            tokens.append(number)
            continue
        sym = _ALIASES.get(other, other)
        if sym not in "+-*/()":
            raise FormulaError(f"formula has symbol {other!r}; allowed: integers, + - * / and brackets")
        tokens.append(sym)
    if not tokens:
        raise FormulaError("formula is empty")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.numbers: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise FormulaError("formula ends unexpectedly")
        self.pos += 1
        return tok

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.factor()
            if op == "*":
                value = value * rhs
            elif rhs == 0:
                raise FormulaError("formula divides by zero")
            else:
                value = value / rhs
        return value

    def factor(self) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise FormulaError("formula has an unclosed bracket")
            return value
        if tok.isdigit():
            self.numbers.append(int(tok))
            return Fraction(int(tok))
        raise FormulaError(f"formula has {tok!r} where a number or '(' was expected")


def evaluate(formula: str) -> tuple[Fraction, list[int]]:
    """Evaluate a formula exactly; returns ``(value, numbers used in order)`` or raises :class:`FormulaError`."""
    parser = _Parser(tokenize(formula))
    value = parser.expr()
    if parser.pos != len(parser.tokens):
        raise FormulaError(f"formula has trailing token {parser.tokens[parser.pos]!r}")
    return value, parser.numbers
