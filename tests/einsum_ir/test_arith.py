"""einsum_ir.arith: the bounded, whitelisted evaluator of derived entries (never eval)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.einsum_ir.arith import MAX_TEXT_CHARS as MAX_CHARS, compile_arithmetic as compile_expression

ALIASES = {"rows": "arrays.pe2d.rows", "arrays.pe2d.rows": "arrays.pe2d.rows", "M": "M", "clock_hz": "clock_hz"}


def value(text: str, **params: object) -> object:
    point = {"arrays.pe2d.rows": 64, "M": 1000, "clock_hz": 1.0e9, **params}
    return compile_expression(text, ALIASES).evaluate(point)


@pytest.mark.parametrize("text, expected", [
    ("rows * 4096", 64 * 4096),
    ("arrays.pe2d.rows // 5", 12),
    ("M / 8", 125),                      # a whole quotient of integers stays an int
    ("M / 3", 1000 / 3),                 # ... else a float
    ("2 ** 10 - 1", 1023),
    ("-rows % 7", (-64) % 7),
    ("max(rows // 2, 6) + ceiling(M / 100) + floor(7 / 2)", 32 + 10 + 3),
    ("sqrt(rows)", 8),
    ("sqrt(2)", math.sqrt(2)),
    ("log(M, 10)", math.log(1000, 10)),
    ("exp(0)", 1),                       # exact where the result is an integer
    ("clock_hz * 2.5 / 3", 1.0e9 * 2.5 / 3),
    ("abs(-3) + min(1, 2, 0)", 3),
])
def test_values(text: str, expected: object) -> None:
    result = value(text)
    assert result == pytest.approx(expected, rel=1e-15) and type(result) is type(expected)


@settings(max_examples=60, deadline=None)
@given(a=st.integers(-10**6, 10**6), b=st.integers(1, 10**6), c=st.integers(-10**6, 10**6))
def test_integer_arithmetic_matches_python(a: int, b: int, c: int) -> None:
    aliases = {"a": "a", "b": "b", "c": "c"}
    result = compile_expression("(a * c + b) // b - c % b + a ** 2", aliases).evaluate({"a": a, "b": b, "c": c})
    assert result == (a * c + b) // b - c % b + a ** 2


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "unexpected"),
    ("open('x')", "unexpected \"'\" at column 6"),
    ("rows.bit_length()", "unknown function 'rows.bit_length'"),
    ("(lambda: 1)()", "unexpected"),
    ("[1, 2]", "unexpected '[' at column 1"),
    ("'text'", "unexpected"),
    ("rows if M else 1", "unknown name 'if'"),
    ("M *", ""),
    ("rowz + 1", "unknown name 'rowz'"),
    ("max()", "max() takes 1 or more argument"),
    ("min(x=1)", ""),
    ("x" * (MAX_CHARS + 1), f"more than the limit of {MAX_CHARS}"),
])
def test_refused_before_anything_runs(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]").replace("*", r"\*")):
        compile_expression(text, ALIASES)


@pytest.mark.parametrize("text, params, message", [
    ("9 ** 9 ** 9", {}, "exponent 387420489 is beyond the limit of 1024"),     # refused, not computed
    ("M / (rows - 64)", {}, "division by zero"),
    ("(-1) ** 0.5", {}, "is not a real number"),
    ("exp(M)", {}, "larger than the largest float"),
])
def test_evaluation_errors_are_one_line(text: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        value(text, **params)
