"""The one bounded arithmetic evaluator of attnsim (no ``eval``): every number a spec writes as arithmetic.

It reads the derived shapes of a cascade (``M1: M / M0``, turned into sympy by :meth:`Expression.to_sympy`
for the symbolic bounds), the tile sizes and cycle expressions of a mapping file (``P / pe2d.cols``), and
the ``derived:`` entries of a study (``rows * 4096``). The Einsum parser (:mod:`einsum_ir.syntax`) hands
shape expressions to it; only the affine index expressions inside a tensor's brackets (``m1*M0 + m0``)
are read by the Einsum grammar itself, because they mix rank variables into the tensor syntax.

An expression is arithmetic (``+ - * / // % **``, unary ``-``, parentheses) of numbers, parameter names
(dotted keys such as ``arrays.pe2d.rows`` allowed) and calls of :data:`FUNCTIONS`. It is tokenised with
one regular expression (anything else is refused), the token stream is parsed by :func:`ast.parse`
(a parser only: nothing is executed) and the tree is checked node by node against a whitelist, then
evaluated by walking it. Integers and their quotients are exact (:class:`fractions.Fraction`), so
``M / 2`` with an even ``M`` is an int; anything with a float is a float.

Every step is bounded, so no study can hang or exhaust validation: the text (:data:`MAX_TEXT_CHARS`),
the tree (:data:`MAX_NODES`), exponents (:data:`MAX_EXPONENT`), the size of exact results
(:data:`MAX_RESULT_BITS`), and floats must stay finite. ``9**9**9**9`` is refused at once.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

__all__ = ["Expression", "compile_arithmetic", "FUNCTIONS", "MAX_TEXT_CHARS", "MAX_NODES", "MAX_EXPONENT",
           "MAX_RESULT_BITS"]

MAX_TEXT_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 1024
MAX_RESULT_BITS = 4096
"""Largest numerator or denominator of an exact intermediate result, in bits (about 1233 digits)."""

Number = Union[Fraction, float]

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<op>\*\*|//|[-+*/%(),])
""", re.VERBOSE)


def _exact_sqrt(value: Number) -> Number:
    if isinstance(value, Fraction) and value >= 0:
        top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
        if top * top == value.numerator and bottom * bottom == value.denominator:
            return Fraction(top, bottom)
    if value < 0:
        raise ValueError(f"sqrt of {_shown(value)} is not a real number")
    return math.sqrt(value)


def _log(value: Number, base: Number | None = None) -> Number:
    if value <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ValueError(f"log of {_shown(value)} is not a finite real number")
    if value == 1:
        return Fraction(0)
    return math.log(value) if base is None else math.log(value) / math.log(base)


def _exp(value: Number) -> Number:
    if value == 0:
        return Fraction(1)
    if value > 709:
        raise ValueError(f"exp({_shown(value)}) is larger than the largest float")
    return math.exp(value)


def _floor(value: Number) -> Number:
    return Fraction(math.floor(value))


def _ceiling(value: Number) -> Number:
    return Fraction(math.ceil(value))


FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int | None]] = {
    "min": (min, 1, None), "max": (max, 1, None), "floor": (_floor, 1, 1), "ceiling": (_ceiling, 1, 1),
    "ceil": (_ceiling, 1, 1), "sqrt": (_exact_sqrt, 1, 1), "log": (_log, 1, 2), "exp": (_exp, 1, 1),
    "abs": (abs, 1, 1),
}
"""Functions an expression may call: name -> (function, fewest arguments, most arguments or None)."""


def _shown(value: Number) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return repr(value)


def _check_size(value: Number) -> Number:
    if isinstance(value, Fraction):
        if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_RESULT_BITS:
            raise ValueError(f"an intermediate value has more than {MAX_RESULT_BITS} bits")
    elif not math.isfinite(value):
        raise ValueError("an intermediate value is not a finite number")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        n = exponent.numerator
        if abs(n) > MAX_EXPONENT:
            raise ValueError(f"exponent {n} is beyond the limit of {MAX_EXPONENT}")
        if isinstance(base, Fraction):
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if bits * abs(n) > MAX_RESULT_BITS + 64:
                raise ValueError(f"{_shown(base)} ** {n} has more than {MAX_RESULT_BITS} bits")
            if base == 0 and n < 0:
                raise ValueError("0 to a negative power")
            return base ** n
    if abs(float(exponent)) > MAX_EXPONENT:
        raise ValueError(f"exponent {_shown(exponent)} is beyond the limit of {MAX_EXPONENT}")
    try:
        result = math.pow(float(base), float(exponent))
    except OverflowError:
        raise ValueError(f"{_shown(base)} ** {_shown(exponent)} is larger than the largest float") from None
    except ValueError:
        raise ValueError(f"{_shown(base)} ** {_shown(exponent)} is not a real number") from None
    return result


def _binary(op: ast.operator, left: Number, right: Number) -> Number:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Pow):
        return _power(left, right)
    if right == 0:
        raise ValueError("division by zero")
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        result = left // right
        return Fraction(result) if isinstance(result, int) else result
    return left % right  # ast.Mod (the whitelist admits nothing else)


_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_UNARY = (ast.USub, ast.UAdd)


@dataclass(frozen=True)
class Expression:
    """A checked expression: ``text``, its tree, and the parameter keys it uses (``names``)."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]
    _slots: Mapping[str, str]

    def evaluate(self, values: Mapping[str, int | float]) -> int | float:
        """The value for ``values`` (parameter key -> number): an int when exact and whole, else a float.

        Raises ValueError (one line) for a division by zero, a bound exceeded, or a non-finite result.
        """
        result = _check_size(self._eval(self.tree, values))
        if isinstance(result, Fraction):
            if result.denominator == 1:
                return int(result)
            value = float(result)
            if not math.isfinite(value):
                raise ValueError(f"'{self.text}' is too large for a float")
            return value
        return float(result)

    def to_sympy(self, symbols: Mapping[str, object]) -> object:
        """The expression as a sympy expression, each name replaced by ``symbols[name]`` (a sympy
        symbol or number): ``/`` exact, ``//`` floor, ``%`` Mod, calls as sympy's Min, Max, floor,
        ceiling, sqrt, log, exp, Abs. For symbolic sizes (the cascade's derived shapes)."""
        import sympy

        binary = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
                  ast.FloorDiv: lambda a, b: sympy.floor(a / b), ast.Mod: sympy.Mod, ast.Pow: operator.pow}
        calls = {"min": sympy.Min, "max": sympy.Max, "floor": sympy.floor, "ceiling": sympy.ceiling,
                 "ceil": sympy.ceiling, "sqrt": sympy.sqrt, "log": sympy.log, "exp": sympy.exp, "abs": sympy.Abs}

        def walk(node: ast.expr) -> object:
            if isinstance(node, ast.Constant):
                return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
            if isinstance(node, ast.Name):
                return symbols[self._slots[node.id]]
            if isinstance(node, ast.UnaryOp):
                operand = walk(node.operand)
                return -operand if isinstance(node.op, ast.USub) else operand
            if isinstance(node, ast.BinOp):
                return binary[type(node.op)](walk(node.left), walk(node.right))
            assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            return calls[node.func.id](*(walk(arg) for arg in node.args))

        return walk(self.tree)

    def _eval(self, node: ast.expr, values: Mapping[str, int | float]) -> Number:
        if isinstance(node, ast.Constant):
            return Fraction(node.value) if isinstance(node.value, int) else float(node.value)
        if isinstance(node, ast.Name):
            value = values[self._slots[node.id]]
            return Fraction(value) if isinstance(value, int) else float(value)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, values), self._eval(node.right, values)
            try:
                return _check_size(_binary(node.op, left, right))
            except OverflowError:  # e.g. a huge exact value meeting a float
                raise ValueError("an intermediate value is larger than the largest float") from None
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        function = FUNCTIONS[node.func.id][0]
        try:
            return _check_size(function(*(self._eval(arg, values) for arg in node.args)))
        except OverflowError:
            raise ValueError(f"{node.func.id}(...) is larger than the largest float") from None


def _refuse(text: str) -> ValueError:
    return ValueError(f"cannot read the expression '{text}' (expected arithmetic with + - * / // % ** "
                      f"and {', '.join(FUNCTIONS)})")


def _check_tree(tree: ast.expr, text: str, slots: Mapping[str, str]) -> None:
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise ValueError(f"the expression '{text[:60]}...' has more than {MAX_NODES} parts")
        if isinstance(node, (ast.operator, ast.unaryop, ast.Load)):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name) and node.id in slots:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
            continue
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            _, fewest, most = FUNCTIONS[node.func.id]
            if len(node.args) < fewest or (most is not None and len(node.args) > most):
                raise ValueError(f"{node.func.id}() takes {fewest}" + ("" if most == fewest else
                                 f" to {most}" if most else " or more") + f" argument(s), in '{text}'")
            continue
        if isinstance(node, ast.Name) and node.id in FUNCTIONS:  # the callee of a checked call
            continue
        raise _refuse(text)


def compile_arithmetic(text: str, aliases: Mapping[str, str] | None = None) -> Expression:
    """Check ``text`` whose names are keys of ``aliases`` (name -> parameter key).

    ``aliases=None`` admits any name, each standing for itself (the caller checks :attr:`Expression.names`
    once it knows which names exist, e.g. a mapping file read before its cascade). Raises ValueError (one line) on a bad character, an unknown name, bad syntax, a call of anything
    but :data:`FUNCTIONS`, or an expression over the size bounds.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the expression is {len(text)} characters long, more than the limit of "
                         f"{MAX_TEXT_CHARS}")
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise ValueError(f"unexpected {text[position]!r} at column {position + 1} of '{text}'")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup or "", match.group()))
    pieces: list[str] = []
    slots: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for index, (group, token) in enumerate(tokens):
        if group != "name":
            pieces.append(token)
            continue
        is_call = index + 1 < len(tokens) and tokens[index + 1][1] == "("
        if is_call and token in FUNCTIONS:
            pieces.append(token)
            continue
        if aliases is not None and token not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            what = "function" if is_call else "name"
            raise ValueError(f"unknown {what} '{token}' in '{text}' (known names: {known}; "
                             f"functions: {', '.join(FUNCTIONS)})")
        key = token if aliases is None else aliases[token]
        if key not in by_key:
            by_key[key] = f"attnsim_p{len(by_key)}"
            slots[by_key[key]] = key
        pieces.append(by_key[key])
    source = " ".join(pieces)
    try:
        tree = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refuse(text) from None
    _check_tree(tree, text, slots)
    return Expression(text=text, tree=tree, names=tuple(by_key), _slots=slots)

