"""Exact, safe evaluation of General Points formulas (no ``eval``), total and linear-time on any string.

Grammar: ``expr := term (('+'|'-') term)*``, ``term := factor (('*'|'/') factor)*``,
``factor := INT | '(' expr ')'``. ``x``, ``X``, ``×`` and ``·`` mean ``*``; ``÷`` means ``/``; ``[]`` and ``{}`` are
brackets. Unary minus, decimals and any other symbol make the formula illegal, as does division by zero. Values are
``Fraction``s, so ``8/(3-8/3)`` is exactly 24 (arXiv 2501.17161 checks formulas the same way).

Formulas are model output, so the evaluator is built for hostile text: only ASCII ``0-9`` are digits (full-width or
Arabic-Indic digits are illegal symbols), a formula longer than :data:`MAX_FORMULA_CHARS` or a number longer than
:data:`MAX_NUMBER_DIGITS` is illegal before any arithmetic, and the parser is an operator-precedence loop with
explicit stacks (no recursion), so bracket depth costs no stack and the work is linear in the length. Every
failure is a :class:`FormulaError` whose ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

from fractions import Fraction

MAX_FORMULA_CHARS = 1_000
"""Longest formula evaluated (a 6-card answer needs under 60 characters)."""
MAX_NUMBER_DIGITS = 64
"""Longest number literal; far below Python's 4,300-digit ``int()`` limit, so conversion never raises."""

REASONS = ("not_text", "too_long", "empty", "symbol", "non_ascii_digit", "number_too_long", "syntax",
           "unbalanced", "division_by_zero")
_ALIASES = {"x": "*", "X": "*", "×": "*", "·": "*", "÷": "/", "[": "(", "]": ")", "{": "(", "}": ")"}
_OPERATORS = frozenset("+-*/()")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_ASCII_DIGITS = frozenset("0123456789")


class FormulaError(ValueError):
    """The formula is not a legal arithmetic expression over integers; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def tokenize(formula: str) -> list[str]:
    """Split a formula into integer and operator tokens, normalising operator aliases."""
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}", "not_text")
    if len(formula) > MAX_FORMULA_CHARS:
        raise FormulaError(f"formula has {len(formula)} characters; at most {MAX_FORMULA_CHARS} are read",
                           "too_long")
    tokens: list[str] = []
    number: list[str] = []
    for ch in formula:
        if ch in _ASCII_DIGITS:
            number.append(ch)
            if len(number) > MAX_NUMBER_DIGITS:
                raise FormulaError(f"formula has a number longer than {MAX_NUMBER_DIGITS} digits",
                                   "number_too_long")
            continue
        if number:
            tokens.append("".join(number))
            number = []
        if ch.isspace():
            continue
        sym = _ALIASES.get(ch, ch)
        if sym in _OPERATORS:
            tokens.append(sym)
        elif ch.isdigit() or ch.isnumeric():
            raise FormulaError(f"formula has the non-ASCII digit {ch!r}; only 0-9 are numbers", "non_ascii_digit")
        else:
            raise FormulaError(f"formula has symbol {ch!r}; allowed: integers, + - * / and brackets", "symbol")
    if number:
        tokens.append("".join(number))
    if not tokens:
        raise FormulaError("formula is empty", "empty")
    return tokens


def _apply(values: list[Fraction], op: str) -> None:
    rhs = values.pop()
    lhs = values.pop()
    if op == "+":
        values.append(lhs + rhs)
    elif op == "-":
        values.append(lhs - rhs)
    elif op == "*":
        values.append(lhs * rhs)
    elif rhs == 0:
        raise FormulaError("formula divides by zero", "division_by_zero")
    else:
        values.append(lhs / rhs)


def evaluate(formula: str) -> tuple[Fraction, list[int]]:
    """Evaluate a formula exactly; returns ``(value, numbers used in order)`` or raises :class:`FormulaError`."""
    tokens = tokenize(formula)
    values: list[Fraction] = []
    ops: list[str] = []  # operators and open brackets, lowest precedence at the bottom
    numbers: list[int] = []
    want_operand = True
    for tok in tokens:
        if want_operand:
            if tok == "(":
                ops.append(tok)
            elif tok[0] in _ASCII_DIGITS:
                numbers.append(int(tok))
                values.append(Fraction(numbers[-1]))
                want_operand = False
            else:
                raise FormulaError(f"formula has {tok!r} where a number or '(' was expected", "syntax")
        elif tok in _PRECEDENCE:
            while ops and ops[-1] != "(" and _PRECEDENCE[ops[-1]] >= _PRECEDENCE[tok]:
                _apply(values, ops.pop())
            ops.append(tok)
            want_operand = True
        elif tok == ")":
            while ops and ops[-1] != "(":
                _apply(values, ops.pop())
            if not ops:
                raise FormulaError("formula has a ')' without a matching '('", "unbalanced")
            ops.pop()
        else:
            raise FormulaError(f"formula has {tok!r} where an operator or ')' was expected", "syntax")
    if want_operand:
        raise FormulaError("formula ends unexpectedly", "syntax")
    while ops:
        op = ops.pop()
        if op == "(":
            raise FormulaError("formula has an unclosed bracket", "unbalanced")
        _apply(values, op)
    return values[0], numbers
