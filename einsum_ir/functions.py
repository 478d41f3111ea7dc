"""Registries of map functions and reduce operators usable in Einsums.

A user adds an elementwise function with one call, and the parser accepts it from then on::

    einsum_ir.register_function("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)))

Presence semantics (fibertree "empty" points, see docs/einsum-syntax.md): a function's ``merge`` is
``"intersection"`` (the result is absent where any argument is absent; the default, and what ``exp``,
``log``, ``sqrt``, ``abs`` do) or ``"union"`` (absent only where every argument is absent; an absent
argument is replaced by ``identity`` first; what ``max`` and ``min`` do).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RESERVED_WORDS = frozenset({"where", "and", "over", "inf"})


@dataclass(frozen=True)
class MapFunction:
    """A point-wise function of ``arity`` arrays, with its presence (merge) semantics."""

    name: str
    fn: Callable[..., np.ndarray]
    arity: int
    merge: str = "intersection"
    identity: float | None = None


@dataclass(frozen=True)
class ReduceOp:
    """A reduction: ``ufunc.reduce`` over axes, and the identity a reduction over nothing yields."""

    name: str
    ufunc: np.ufunc
    identity: float


_FUNCTIONS: dict[str, MapFunction] = {}
_REDUCE_OPS: dict[str, ReduceOp] = {}


def register_function(name: str, fn: Callable[..., np.ndarray], arity: int = 1, *,
                      merge: str = "intersection", identity: float | None = None,
                      replace: bool = False) -> MapFunction:
    """Make ``name(arg, ...)`` usable in Einsum expressions; returns the registered entry.

    ``fn`` must accept and return numpy arrays element-wise (a numpy ufunc or a function of ufuncs).
    ``merge="union"`` needs ``identity`` (the value an absent argument takes). Re-registering an
    existing name needs ``replace=True``.
    """
    if not name.isidentifier() or not name[0].isalpha() or name in RESERVED_WORDS:
        raise ValueError(f"cannot register function {name!r}: expected an identifier that is not one of "
                         f"{', '.join(sorted(RESERVED_WORDS))}")
    if not callable(fn):
        raise ValueError(f"cannot register function {name!r}: fn is not callable")
    if not isinstance(arity, int) or arity < 1:
        raise ValueError(f"cannot register function {name!r}: arity must be a positive integer, got {arity!r}")
    if merge not in ("intersection", "union"):
        raise ValueError(f"cannot register function {name!r}: merge must be 'intersection' or 'union'")
    if merge == "union" and identity is None:
        raise ValueError(f"cannot register function {name!r}: a union function needs an identity")
    if name in _FUNCTIONS and not replace:
        raise ValueError(f"function {name!r} is already registered; pass replace=True to replace it")
    entry = MapFunction(name=name, fn=fn, arity=arity, merge=merge, identity=identity)
    _FUNCTIONS[name] = entry
    return entry


def unregister_function(name: str) -> None:
    """Remove a registered function (used by tests that register temporary functions)."""
    _FUNCTIONS.pop(name, None)


def get_function(name: str) -> MapFunction | None:
    """The registered function called ``name``, or None."""
    return _FUNCTIONS.get(name)


def function_names() -> tuple[str, ...]:
    """Names of every registered function, sorted."""
    return tuple(sorted(_FUNCTIONS))


def register_reduce_op(name: str, ufunc: np.ufunc, identity: float, *, replace: bool = False) -> ReduceOp:
    """Make ``:: name`` usable as a reduction; ``ufunc.reduce`` must accept a tuple of axes."""
    if not name.isidentifier() or name in RESERVED_WORDS:
        raise ValueError(f"cannot register reduce operator {name!r}: expected an identifier")
    if not hasattr(ufunc, "reduce"):
        raise ValueError(f"cannot register reduce operator {name!r}: {ufunc!r} has no reduce method")
    if name in _REDUCE_OPS and not replace:
        raise ValueError(f"reduce operator {name!r} is already registered; pass replace=True to replace it")
    entry = ReduceOp(name=name, ufunc=ufunc, identity=float(identity))
    _REDUCE_OPS[name] = entry
    return entry


def get_reduce_op(name: str) -> ReduceOp | None:
    """The reduce operator called ``name``, or None."""
    return _REDUCE_OPS.get(name)


def reduce_op_names() -> tuple[str, ...]:
    """Names of every reduce operator, sorted."""
    return tuple(sorted(_REDUCE_OPS))


register_function("exp", np.exp)
register_function("log", np.log)
register_function("sqrt", np.sqrt)
register_function("abs", np.abs)
register_function("max", np.maximum, arity=2, merge="union", identity=-math.inf)
register_function("min", np.minimum, arity=2, merge="union", identity=math.inf)

register_reduce_op("sum", np.add, 0.0)
register_reduce_op("max", np.maximum, -math.inf)
register_reduce_op("min", np.minimum, math.inf)
