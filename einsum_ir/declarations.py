"""Functions and reduce operators declared in a cascade file, built from the built-in primitives.

::

    functions:
      mish: "x * tanh(softplus(x))"                          # arguments: the free names, first seen first
      hinge: {args: [a, b], expr: "max(a - b, 0)"}           # explicit arguments
      smax: {args: [a, b], expr: "log(exp(a) + exp(b))", merge: union, identity: -inf}
    reduce_ops:
      lse: {combine: logaddexp, identity: -inf}              # a function of 2 arguments
      prod: {combine: "a * b", identity: 1}                  # or an expression of 2 free names

A definition is parsed with the Einsum expression grammar (einsum_ir.syntax.parse_function_body): numbers,
``inf``, ``+ - * /``, parentheses and calls of built-in functions or functions declared above it; no
Python is evaluated. The cost of a declared function is derived from its expression
(einsum_ir.functions.primitive_cost). A reduce operator's combine must be associative and its identity
neutral; both are checked on sample values when the file is loaded.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from attnsim.einsum_ir import functions
from attnsim.einsum_ir.errors import cascade_error
from attnsim.einsum_ir.model import Expr
from attnsim.einsum_ir.syntax import function_body_names, parse_function_body

__all__ = ["FunctionSpec", "ReduceSpec", "declare_functions", "declare_reduce_ops", "parse_number"]


@dataclass(frozen=True)
class FunctionSpec:
    """One ``functions:`` entry as read from the file (``args`` None: the expression's free names)."""

    name: str
    expr: str
    line: int
    args: tuple[str, ...] | None = None
    merge: str = "intersection"
    identity: str | float | None = None


@dataclass(frozen=True)
class ReduceSpec:
    """One ``reduce_ops:`` entry as read from the file."""

    name: str
    combine: str
    identity: str | float
    line: int


def parse_number(value: object, *, source: str, line: int, what: str) -> float:
    """A number from YAML: an int, a float, or ``inf`` / ``-inf`` / ``+inf`` / ``.inf`` / ``-.inf``."""
    if isinstance(value, bool):
        raise cascade_error(source, line, f"{what} must be a number", value, "a number, inf or -inf")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower().replace(".inf", "inf")
    try:
        number = float(text)
    except ValueError:
        raise cascade_error(source, line, f"{what} must be a number", value, "a number, inf or -inf") from None
    if math.isnan(number):
        raise cascade_error(source, line, f"{what} must be a number", value, "a number, inf or -inf")
    return number


def _check_name(name: str, kind: str, taken: Mapping[str, object], builtin: bool, *, source: str, line: int) -> None:
    if not name.isidentifier() or not name[0].isalpha() or name in functions.RESERVED_WORDS:
        raise cascade_error(source, line, f"bad {kind} name", name,
                            f"an identifier that is not one of {', '.join(sorted(functions.RESERVED_WORDS))}")
    if builtin:
        raise cascade_error(source, line, f"{kind} already built in", name, f"a new name for a declared {kind}")
    if name in taken:
        raise cascade_error(source, line, f"{kind} declared twice", name, f"each {kind} once")


def _evaluator(expr: Expr, params: tuple[str, ...],
               local: Mapping[str, functions.MapFunction]) -> Callable[..., np.ndarray]:
    def apply(*args: np.ndarray) -> np.ndarray:
        return functions.evaluate_definition(expr, dict(zip(params, args)), local)
    return apply


def declare_functions(specs: list[FunctionSpec], *, source: str) -> dict[str, functions.MapFunction]:
    """The :class:`~einsum_ir.functions.MapFunction` of each declaration, in file order (a
    definition may call built-ins and functions declared before it)."""
    declared: dict[str, functions.MapFunction] = {}
    for spec in specs:
        _check_name(spec.name, "function", declared, functions.get_function(spec.name) is not None,
                    source=source, line=spec.line)
        params = spec.args if spec.args is not None else function_body_names(spec.expr)
        if spec.name in _called_names(spec.expr):
            raise cascade_error(source, spec.line, "function calls itself", spec.name,
                                "a definition from built-ins and functions declared above it (no recursion)")
        if not params:
            raise cascade_error(source, spec.line, "function has no argument", spec.expr,
                                "an expression of at least one argument, like x * tanh(softplus(x))")
        for param in params:
            if not param.isidentifier() or param in functions.RESERVED_WORDS:
                raise cascade_error(source, spec.line, f"bad argument name of {spec.name}", param, "an identifier")
        if len(set(params)) != len(params):
            raise cascade_error(source, spec.line, f"argument of {spec.name} repeated", ", ".join(params),
                                "distinct argument names")
        expr = parse_function_body(spec.expr, params, line=spec.line, source=source, local_functions=declared)
        if spec.merge not in ("intersection", "union"):
            raise cascade_error(source, spec.line, f"bad merge of function {spec.name}", spec.merge,
                                "intersection or union")
        identity = None
        if spec.merge == "union":
            if spec.identity is None:
                raise cascade_error(source, spec.line, f"union function {spec.name} has no identity", spec.name,
                                    "identity: the value an absent argument takes (like -inf for max)")
            identity = parse_number(spec.identity, source=source, line=spec.line, what=f"identity of {spec.name}")
        frozen_local = dict(declared)
        declared[spec.name] = functions.MapFunction(
            name=spec.name, fn=_evaluator(expr, params, frozen_local), arity=len(params), merge=spec.merge,
            identity=identity, definition=spec.expr, params=tuple(params), expr=expr, line=spec.line,
            scope=frozen_local)
    return declared


def _called_names(text: str) -> set[str]:
    return set(re.findall(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", str(text)))


_SAMPLES = np.array([-2.75, -1.0, -0.3, 0.0, 0.45, 1.5, 3.0])


def declare_reduce_ops(specs: list[ReduceSpec], local_functions: Mapping[str, functions.MapFunction], *,
                       source: str) -> dict[str, functions.ReduceOp]:
    """The :class:`~einsum_ir.functions.ReduceOp` of each declaration; ``combine`` is the name of a
    2-argument function (built-in or declared) or an expression of two free names."""
    declared: dict[str, functions.ReduceOp] = {}
    for spec in specs:
        _check_name(spec.name, "reduce operator", declared, functions.get_reduce_op(spec.name) is not None,
                    source=source, line=spec.line)
        identity = parse_number(spec.identity, source=source, line=spec.line, what=f"identity of {spec.name}")
        text = str(spec.combine).strip()
        entry = functions.get_function(text, local_functions) if text.isidentifier() else None
        if text.isidentifier() and entry is None:
            raise cascade_error(source, spec.line, f"unknown combine function of reduce operator {spec.name}", text,
                                f"a function of 2 arguments "
                                f"({', '.join(functions.function_names(local_functions))}) or an expression "
                                "of two names like 'a * b'")
        if entry is not None:
            if entry.arity != 2:
                raise cascade_error(source, spec.line, f"combine of {spec.name} takes {entry.arity} argument(s)",
                                    text, "a function of 2 arguments")
            combine_fn = entry.fn
            ufunc = entry.fn if isinstance(entry.fn, np.ufunc) and entry.fn.nin == 2 else None
            op = functions.ReduceOp(name=spec.name, ufunc=ufunc, identity=identity, combine=text,
                                    combine_fn=combine_fn, line=spec.line)
        else:
            params = function_body_names(text)
            if len(params) != 2:
                raise cascade_error(source, spec.line, f"combine of {spec.name} must use two names", text,
                                    f"an expression of exactly two names like 'a * b' (found "
                                    f"{', '.join(params) or 'none'})")
            expr = parse_function_body(text, params, line=spec.line, source=source, local_functions=local_functions)
            op = functions.ReduceOp(name=spec.name, ufunc=None, identity=identity, combine=text,
                                    combine_fn=_evaluator(expr, params, dict(local_functions)), line=spec.line,
                                    combine_expr=expr)
        _check_monoid(op, source=source)
        declared[spec.name] = op
    return declared


def _check_monoid(op: functions.ReduceOp, *, source: str) -> None:
    """Refuse a combine that is not associative or an identity that is not neutral (on sample values)."""
    a, b, c = np.meshgrid(_SAMPLES, _SAMPLES[::-1], np.roll(_SAMPLES, 2), indexing="ij")
    with np.errstate(all="ignore"):
        left = op.apply(op.apply(a, b), c)
        right = op.apply(a, op.apply(b, c))
        neutral = op.apply(np.full_like(_SAMPLES, op.identity), _SAMPLES)
    close = functools.partial(np.isclose, rtol=1e-9, atol=1e-12, equal_nan=True)
    bad = ~close(left, right)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise cascade_error(source, op.line, f"combine of reduce operator {op.name} is not associative",
                            op.combine, f"an associative operation (here ({a[i]} . {b[i]}) . {c[i]} = {left[i]:.6g} "
                            f"but {a[i]} . ({b[i]} . {c[i]}) = {right[i]:.6g})")
    if not np.all(close(neutral, _SAMPLES)):
        j = int(np.argwhere(~close(neutral, _SAMPLES))[0][0])
        raise cascade_error(source, op.line, f"identity of reduce operator {op.name} is not neutral",
                            op.identity, f"a value e with e . x = x (here e . {_SAMPLES[j]} = {neutral[j]:.6g})")
