"""Arithmetic expressions of a study's ``derived`` entries: parsed by :mod:`ast`, evaluated by walking
a whitelist of node types (never ``eval``).

Allowed: numbers, parameter names (dotted keys such as ``arrays.pe2d.rows``, or an alias the caller
gives), ``+ - * / // % **``, unary ``+ -``, parentheses and calls of :data:`FUNCTIONS`. Integers are
exact (:class:`fractions.Fraction`): ``rows * 4096`` is an int, ``M / 3`` a float only when it is not
a whole number; a float anywhere makes the result a float. Bounded: at most :data:`MAX_CHARS`
characters and integer exponents of at most :data:`MAX_EXPONENT` in magnitude.

(The Einsum grammar of :mod:`einsum_ir.syntax` is a different language, of tensors and index
expressions, with its own recursive-descent parser; the two share the operator set, not the code.)
"""
from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

Number = Fraction | float

MAX_CHARS = 1000
"""Longest expression text accepted."""
MAX_EXPONENT = 1024
"""Largest integer exponent magnitude ``**`` accepts (``9 ** 9 ** 9`` is refused, not computed)."""


def _as_float(value: Number) -> float:
    return float(value)


def _sqrt(value: Number) -> Number:
    if isinstance(value, Fraction) and value >= 0:
        num, den = math.isqrt(value.numerator), math.isqrt(value.denominator)
        if num * num == value.numerator and den * den == value.denominator:
            return Fraction(num, den)
    return math.sqrt(_as_float(value))


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(_as_float(value)) if base is None else math.log(_as_float(value), _as_float(base))


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "min": min, "max": max,
    "floor": lambda x: Fraction(math.floor(x)), "ceiling": lambda x: Fraction(math.ceil(x)),
    "ceil": lambda x: Fraction(math.ceil(x)),
    "sqrt": _sqrt, "log": _log, "exp": lambda x: math.exp(_as_float(x)), "abs": abs,
}
"""Functions an expression may call (``log(x)`` natural, ``log(x, base)``)."""

_OPERATORS: dict[type, Callable[[Any, Any], Number]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: Fraction(math.floor(a / b)),
    ast.Mod: lambda a, b: a % b,
}
SYNTAX = f"arithmetic with + - * / // % ** and {', '.join(FUNCTIONS)}"


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree and the parameter keys it reads (first use order)."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]
    aliases: Mapping[str, str]

    def evaluate(self, values: Mapping[str, Any]) -> int | float:
        """The value with parameter key -> number ``values``: an int when it is a whole number from
        integers, else a float. ValueError (one line) for a non-number parameter, a division by zero
        or a result that is not a finite real number."""
        for name in self.names:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                from attnsim.archsim.errors import describe_value

                raise ValueError(f"'{name}' is {describe_value(value)}, not a number")
        try:
            result = self._eval(self.tree, values)
        except ZeroDivisionError:
            raise ValueError(f"'{self.text}' divides by zero") from None
        except (OverflowError, ValueError, TypeError) as exc:
            raise ValueError(f"'{self.text}' is not a finite real number ({exc})") from None
        if isinstance(result, Fraction):
            return int(result) if result.denominator == 1 else float(result)
        if not math.isfinite(result):
            raise ValueError(f"'{self.text}' is {result}, not a finite real number")
        return float(result)

    def _eval(self, node: ast.expr, values: Mapping[str, Any]) -> Number:
        if isinstance(node, ast.Constant):
            return Fraction(node.value) if isinstance(node.value, int) else float(node.value)
        name = _dotted(node)
        if name is not None:
            value = values[self.aliases[name]]
            return Fraction(value) if isinstance(value, int) else float(value)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, values), self._eval(node.right, values)
            if isinstance(node.op, ast.Pow):
                return _power(left, right)
            return _OPERATORS[type(node.op)](left, right)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id](*(self._eval(arg, values) for arg in node.args))


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, Fraction) and exponent.denominator == 1 and isinstance(base, Fraction):
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(f"exponent {exponent} is larger than {MAX_EXPONENT}")
        return base ** int(exponent)
    result = float(base) ** float(exponent)
    if isinstance(result, complex):
        raise ValueError("a negative number to a fractional power")
    return result


def compile_expression(text: str, aliases: Mapping[str, str]) -> Expression:
    """Parse ``text`` whose names are keys of ``aliases`` (name -> parameter key).

    Raises ValueError (one line): too long, not an arithmetic expression, a construct outside the
    whitelist, an unknown name or function.
    """
    if len(text) > MAX_CHARS:
        raise ValueError(f"the expression is {len(text)} characters long, more than {MAX_CHARS}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ValueError(f"cannot read the expression '{text}' (expected {SYNTAX})") from None
    names: list[str] = []
    known = f"known names: {', '.join(sorted(aliases)) or 'none'}; functions: {', '.join(FUNCTIONS)}"

    def check(node: ast.expr) -> None:
        name = _dotted(node)
        if name is not None:
            if name not in aliases:
                raise ValueError(f"unknown name '{name}' in '{text}' ({known})")
            if aliases[name] not in names:
                names.append(aliases[name])
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            pass
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            check(node.operand)
        elif isinstance(node, ast.BinOp) and (type(node.op) in _OPERATORS or isinstance(node.op, ast.Pow)):
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id not in FUNCTIONS:
                raise ValueError(f"unknown function '{node.func.id}' in '{text}' ({known})")
            if not node.args or any(isinstance(arg, ast.Starred) for arg in node.args):
                raise ValueError(f"cannot read the expression '{text}' (expected {SYNTAX})")
            for arg in node.args:
                check(arg)
        else:
            shown = ast.get_source_segment(text.strip(), node) or type(node).__name__
            raise ValueError(f"unexpected '{shown}' at column {node.col_offset + 1} of '{text}' "
                             f"(expected {SYNTAX})")

    try:
        check(tree)
    except RecursionError:
        raise ValueError(f"cannot read the expression '{text}' (nested too deeply)") from None
    return Expression(text=text, tree=tree, names=tuple(names), aliases=dict(aliases))


__all__ = ["FUNCTIONS", "MAX_CHARS", "MAX_EXPONENT", "Expression", "compile_expression"]
