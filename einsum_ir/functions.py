"""Map functions and reduce operators usable in Einsums, and their cost in primitive operations.

Built-in map functions::

    exp log sqrt abs                    primitives (1 argument)
    max min                             primitives (2 arguments, union presence)
    sigmoid softplus tanh rsqrt relu elu gelu silu     composites (1 argument)
    clip(x, lo, hi)                     composite (3 arguments)
    logaddexp(a, b)                     composite (2 arguments, union presence, identity -inf)

Built-in reduce operators: ``sum`` (combine ``add``), ``max``, ``min``, ``logaddexp`` (combine
``logaddexp``, identity ``-inf``: a reduction to log-sum-exp), ``argmax`` / ``argmin`` (the
coordinate of the largest / smallest element along the one reduced rank, first on ties, as a value;
cost ``max`` (``min``) + ``cmp`` per element).

Costs (what simulators charge)
------------------------------
Every function has a cost in the primitive operations :data:`PRIMITIVES` (``add`` counts ``+`` and
``-``; ``cmp`` is a comparison yielding 0/1; negation is a sign flip and free). A composite's cost is
derived from its textbook definition (:data:`DEFINITIONS`, parsed with the Einsum expression grammar),
counting each distinct subexpression once and constant subexpressions (numbers, sizes) as free::

    primitive_cost("sigmoid")                  -> {"add": 1, "div": 1, "exp": 1}    # 1 / (1 + exp(-x))
    primitive_cost("gelu", units={"tanh"})     -> {..., "tanh": 1}   # the architecture has a tanh unit
    expression_cost(einsum.expr)               -> per-point cost of an Einsum's expression
    einsum_cost(einsum)                        -> EinsumCost(map=..., reduce=...) per iteration point
    reduce_cost("sum")                         -> {"add": 1}

``units`` names functions an architecture executes in one unit of its own: expansion stops there and
the function counts as ``{name: 1}``. Simulators use these costs unless the architecture declares a
unit for the function. A function registered from Python without ``cost=`` or ``definition=`` is
opaque: its cost is ``{name: 1}``.

Functions and reduce operators declared in a cascade file (``functions:`` / ``reduce_ops:``, see
einsum_ir.declarations) live in that cascade (``Cascade.functions``, ``Cascade.reduce_ops``), not in
the global registries; every lookup here takes them as ``local``::

    primitive_cost("mish", local=cascade.functions)         # {'add': 3, 'div': 1, 'exp': 2, 'log': 1, 'mul': 2}
    reduce_cost("lse", local_functions=cascade.functions, local=cascade.reduce_ops)
    einsum_cost(einsum, functions=cascade.functions, reduce_ops=cascade.reduce_ops)

Evaluation uses numerically stable numpy forms (``softplus = logaddexp(0, x)``); the definitions are
the formulas the costs count, and equal the numpy forms (tests/einsum_ir/test_ir_functions.py).

Presence semantics (fibertree "empty" points, see docs/einsum-syntax.md): a function's ``merge`` is
``"intersection"`` (the result is absent where any argument is absent; the default) or ``"union"``
(absent only where every argument is absent; an absent argument is replaced by ``identity`` first;
what ``max``, ``min`` and ``logaddexp`` do).

A user adds a function from Python with one call, and the parser accepts it from then on::

    einsum_ir.register_function("sigmoid2", lambda x: 1.0 / (1.0 + np.exp(-2 * x)), cost={"exp": 1, ...})
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from attnsim.einsum_ir.model import (BinOp, Call, Compare, Const, Einsum, Expr, Neg, RankValue, Size, TensorRef,
                                     ValueFilter)

__all__ = [
    "DEFINITIONS", "EinsumCost", "MapFunction", "PRIMITIVES", "RESERVED_WORDS", "ReduceOp", "compare_values",
    "definition_expr",
    "einsum_cost", "evaluate_definition", "expression_cost", "function_names", "get_function", "get_reduce_op",
    "primitive_cost", "reduce_cost", "reduce_op_names", "register_function", "register_reduce_op",
    "unregister_function",
]

RESERVED_WORDS = frozenset({"where", "and", "over", "inf"})

PRIMITIVES = ("add", "mul", "div", "max", "min", "exp", "log", "sqrt", "abs", "cmp")
"""Primitive operations costs are counted in (``add`` includes subtraction; ``cmp`` is a comparison)."""

PRIMITIVE_FUNCTIONS = frozenset({"exp", "log", "sqrt", "abs", "max", "min"})
"""Map functions that are themselves primitives (cost ``{name: 1}``)."""

DEFINITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "sigmoid": (("x",), "1 / (1 + exp(-x))"),
    "softplus": (("x",), "log(1 + exp(x))"),
    "tanh": (("x",), "(exp(2 * x) - 1) / (exp(2 * x) + 1)"),
    "rsqrt": (("x",), "1 / sqrt(x)"),
    "relu": (("x",), "max(x, 0)"),
    "elu": (("x",), "max(x, 0) + min(exp(x) - 1, 0)"),
    # tanh approximation (Hendrycks & Gimpel 2016, arXiv:1606.08415 §2; BERT / GPT-2): 0.79788... = sqrt(2/pi)
    "gelu": (("x",), "0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))"),
    "silu": (("x",), "x * sigmoid(x)"),
    "clip": (("x", "lo", "hi"), "min(max(x, lo), hi)"),
    "logaddexp": (("a", "b"), "max(a, b) + log(1 + exp(-abs(a - b)))"),
}
"""Textbook definitions of the built-in composites: name -> (arguments, expression). Costs count these."""


@dataclass(frozen=True)
class MapFunction:
    """A point-wise function of ``arity`` arrays, with its presence (merge) semantics and its cost.

    ``definition`` is the expression (text) over ``params`` that the cost counts (None for a
    primitive or an opaque Python function); ``given_cost`` a flat cost given at registration;
    ``expr`` the parsed definition (filled for functions declared in a cascade file); ``line`` the
    file line of a declaration; ``scope`` the declared functions its definition may call. The
    property ``cost`` is its primitive cost with no architecture units.
    """

    name: str
    fn: Callable[..., np.ndarray]
    arity: int
    merge: str = "intersection"
    identity: float | None = None
    definition: str | None = None
    params: tuple[str, ...] = ()
    given_cost: Mapping[str, int] | None = None
    expr: Expr | None = field(default=None, compare=False)
    line: int | None = None
    scope: Mapping[str, "MapFunction"] | None = field(default=None, compare=False, repr=False)

    @property
    def cost(self) -> dict[str, int]:
        """Primitive operations of one application with no architecture units (see primitive_cost)."""
        if self.name in PRIMITIVE_FUNCTIONS and self.definition is None and self.given_cost is None:
            return {self.name: 1}
        expr = definition_expr(self)
        if expr is not None:
            return expression_cost(expr, local=self.scope)
        if self.given_cost is not None:
            return dict(sorted(self.given_cost.items()))
        return {self.name: 1}


@dataclass(frozen=True)
class ReduceOp:
    """A reduction: ``reduce(values, axes)``, the identity a reduction over nothing yields, its combine.

    ``combine`` names the binary operation: a primitive (``add``, ``max``, ``min``) or a map function
    of 2 arguments (``logaddexp``, or one declared in a cascade); its cost is the reduction's cost per
    element. ``ufunc`` is set when numpy can reduce directly; otherwise ``combine_fn`` folds pairwise.
    """

    name: str
    ufunc: np.ufunc | None
    identity: float
    combine: str = "add"
    combine_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    line: int | None = None
    combine_expr: Expr | None = field(default=None, compare=False)  # a declared combine expression
    index: bool = False  # argmax / argmin: the result is the coordinate of the best element

    def apply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Combine two partial results element-wise."""
        if self.index:
            raise ValueError(f"{self.name} returns a coordinate; partial results cannot be combined")
        return self.ufunc(a, b) if self.ufunc is not None else self.combine_fn(a, b)

    def reduce(self, values: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        """Reduce ``values`` over ``axis`` (an empty reduction gives the identity)."""
        if self.index:  # one axis (the parser refuses more); ties give the first coordinate
            pick = np.argmax if self.combine == "max" else np.argmin
            return pick(np.asarray(values), axis=axis[0]).astype(np.float64)
        return self._reduce(values, axis)

    def _reduce(self, values: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
        if self.ufunc is not None:
            return self.ufunc.reduce(values, axis=axis)
        values = np.asarray(values)
        kept = [d for d in range(values.ndim) if d not in axis]
        moved = np.transpose(values, kept + list(axis))
        flat = moved.reshape(tuple(values.shape[d] for d in kept) + (-1,))
        if flat.shape[-1] == 0:
            return np.full(flat.shape[:-1], self.identity, values.dtype)
        while flat.shape[-1] > 1:  # pairwise tree: associativity is checked when the operator is declared
            count = flat.shape[-1]
            half = count // 2
            paired = self.combine_fn(flat[..., :half], flat[..., half:2 * half])
            flat = np.concatenate([paired, flat[..., 2 * half:]], axis=-1) if count % 2 else paired
        return flat[..., 0]


@dataclass(frozen=True)
class EinsumCost:
    """Primitive operations per point of an Einsum's iteration space: ``map`` evaluates the expression,
    ``reduce`` combines it into the output (empty when nothing is reduced)."""

    map: dict[str, int]
    reduce: dict[str, int]


_FUNCTIONS: dict[str, MapFunction] = {}
_REDUCE_OPS: dict[str, ReduceOp] = {}
_PARSED: dict[str, Expr] = {}


def register_function(name: str, fn: Callable[..., np.ndarray], arity: int = 1, *,
                      merge: str = "intersection", identity: float | None = None,
                      replace: bool = False, cost: Mapping[str, int] | None = None,
                      definition: str | None = None, params: tuple[str, ...] | None = None) -> MapFunction:
    """Make ``name(arg, ...)`` usable in Einsum expressions; returns the registered entry.

    ``fn`` must accept and return numpy arrays element-wise (a numpy ufunc or a function of ufuncs).
    ``merge="union"`` needs ``identity`` (the value an absent argument takes). Re-registering an
    existing name needs ``replace=True``. The cost is ``cost`` (primitive -> count), else derived from
    ``definition`` (an expression over ``params``), else opaque (``{name: 1}``).
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
    if cost is not None and any(p not in PRIMITIVES or not isinstance(n, int) or n < 0 for p, n in cost.items()):
        raise ValueError(f"cannot register function {name!r}: cost must map primitives "
                         f"({', '.join(PRIMITIVES)}) to non-negative integers")
    params = tuple(params) if params is not None else tuple(f"x{i}" for i in range(arity)) if arity > 1 else ("x",)
    entry = MapFunction(name=name, fn=fn, arity=arity, merge=merge, identity=identity, definition=definition,
                        params=params, given_cost=dict(cost) if cost is not None else None)
    _FUNCTIONS[name] = entry
    _PARSED.pop(name, None)
    return entry


def unregister_function(name: str) -> None:
    """Remove a registered function (used by tests that register temporary functions)."""
    _FUNCTIONS.pop(name, None)
    _PARSED.pop(name, None)


def get_function(name: str, local: Mapping[str, MapFunction] | None = None) -> MapFunction | None:
    """The function called ``name``: declared in the cascade (``local``) or registered; else None."""
    if local and name in local:
        return local[name]
    return _FUNCTIONS.get(name)


def function_names(local: Mapping[str, MapFunction] | None = None) -> tuple[str, ...]:
    """Names of every registered function (and of ``local`` ones), sorted."""
    return tuple(sorted(set(_FUNCTIONS) | set(local or ())))


def register_reduce_op(name: str, ufunc: np.ufunc, identity: float, *, replace: bool = False,
                       combine: str | None = None) -> ReduceOp:
    """Make ``:: name`` usable as a reduction; ``ufunc.reduce`` must accept a tuple of axes.

    ``combine`` names the operation whose cost a reduction step has (default: ``name`` itself when it
    is a primitive or a function, else opaque).
    """
    if not name.isidentifier() or name in RESERVED_WORDS:
        raise ValueError(f"cannot register reduce operator {name!r}: expected an identifier")
    if not hasattr(ufunc, "reduce"):
        raise ValueError(f"cannot register reduce operator {name!r}: {ufunc!r} has no reduce method")
    if name in _REDUCE_OPS and not replace:
        raise ValueError(f"reduce operator {name!r} is already registered; pass replace=True to replace it")
    entry = ReduceOp(name=name, ufunc=ufunc, identity=float(identity), combine=combine or name)
    _REDUCE_OPS[name] = entry
    return entry


def get_reduce_op(name: str, local: Mapping[str, ReduceOp] | None = None) -> ReduceOp | None:
    """The reduce operator called ``name`` (declared in the cascade, ``local``, or registered), or None."""
    if local and name in local:
        return local[name]
    return _REDUCE_OPS.get(name)


def reduce_op_names(local: Mapping[str, ReduceOp] | None = None) -> tuple[str, ...]:
    """Names of every reduce operator (and of ``local`` ones), sorted."""
    return tuple(sorted(set(_REDUCE_OPS) | set(local or ())))


# --- costs ---------------------------------------------------------------------------------------

def definition_expr(entry: MapFunction) -> Expr | None:
    """The parsed definition of ``entry`` (None for a primitive or an opaque function)."""
    if entry.expr is not None:
        return entry.expr
    if entry.definition is None:
        return None
    if entry.name not in _PARSED:
        from attnsim.einsum_ir.syntax import parse_function_body  # the parser imports this module
        _PARSED[entry.name] = parse_function_body(entry.definition, entry.params, line=1,
                                                  source=f"<definition of {entry.name}>")
    return _PARSED[entry.name]


def primitive_cost(name: str, *, units: Collection[str] = (),
                   local: Mapping[str, MapFunction] | None = None) -> dict[str, int]:
    """Primitive operations one application of map function ``name`` costs (primitive -> count).

    ``units`` names functions the architecture executes as one operation of its own (they count as
    ``{name: 1}``); ``local`` holds the functions declared in a cascade. Raises KeyError for an
    unknown name.
    """
    entry = get_function(name, local)
    if entry is None:
        raise KeyError(f"unknown function {name!r}; expected one of {', '.join(function_names(local))}")
    if name in units or name in PRIMITIVE_FUNCTIONS and entry is _FUNCTIONS.get(name):
        return {name: 1}
    expr = definition_expr(entry)
    if expr is not None:
        return expression_cost(expr, units=units, local=entry.scope if entry.scope is not None else local)
    if entry.given_cost is not None:
        return dict(sorted(entry.given_cost.items()))
    return {name: 1}


_BINOP_PRIMITIVE = {"+": "add", "-": "add", "*": "mul", "/": "div"}


def expression_cost(expr: Expr, *, units: Collection[str] = (),
                    local: Mapping[str, MapFunction] | None = None) -> dict[str, int]:
    """Primitive operations to evaluate ``expr`` at one point: each distinct subexpression once,
    constant subexpressions (numbers, sizes, functions of them) free, negation free, a division by a
    constant a multiply (by the reciprocal, computed once)."""
    total: Counter[str] = Counter()
    seen: set = set()

    def visit(node: Expr) -> None:
        if node in seen or not _reads_data(node):
            return
        seen.add(node)
        if isinstance(node, Neg):
            visit(node.arg)
        elif isinstance(node, BinOp):
            visit(node.left)
            visit(node.right)
            if node.op == "/" and not _reads_data(node.right):
                total["mul"] += 1   # a division by a constant is a multiply by its (precomputed) reciprocal
            else:
                total[_BINOP_PRIMITIVE.get(node.op, "cmp")] += 1
        elif isinstance(node, Compare):
            visit(node.left)
            visit(node.right)
            total["cmp"] += 1
        elif isinstance(node, Call):
            for arg in node.args:
                visit(arg)
            total.update(primitive_cost(node.fn, units=units, local=local))

    visit(expr)
    return dict(sorted((k, v) for k, v in total.items() if v))


def _reads_data(node: Expr) -> bool:
    if isinstance(node, (TensorRef, RankValue)):
        return True
    if isinstance(node, (Const, Size)):
        return False
    if isinstance(node, Neg):
        return _reads_data(node.arg)
    if isinstance(node, (BinOp, Compare)):
        return _reads_data(node.left) or _reads_data(node.right)
    if isinstance(node, Call):
        return any(_reads_data(a) for a in node.args)
    return True


def reduce_cost(name: str, *, units: Collection[str] = (), local_functions: Mapping[str, MapFunction] | None = None,
                local: Mapping[str, ReduceOp] | None = None) -> dict[str, int]:
    """Primitive operations one step of reduce operator ``name`` costs (combining one element)."""
    op = get_reduce_op(name, local)
    if op is None:
        raise KeyError(f"unknown reduce operator {name!r}; expected one of {', '.join(reduce_op_names(local))}")
    if name in units:
        return {name: 1}
    if op.index:  # keep the best value (max / min) and compare to decide whether the coordinate changes
        return {op.combine: 1, "cmp": 1}
    if op.combine_expr is not None:
        return expression_cost(op.combine_expr, units=units, local=local_functions)
    if op.combine in PRIMITIVES:
        return {op.combine: 1}
    if get_function(op.combine, local_functions) is not None:
        return primitive_cost(op.combine, units=units, local=local_functions)
    return {op.combine: 1}


def einsum_cost(einsum: Einsum, *, units: Collection[str] = (), functions: Mapping[str, MapFunction] | None = None,
                reduce_ops: Mapping[str, ReduceOp] | None = None) -> EinsumCost:
    """Primitive operations per point of ``einsum``'s iteration space (``functions`` / ``reduce_ops``:
    the cascade's declared ones, ``Cascade.functions`` / ``Cascade.reduce_ops``). ``map`` includes
    the value filters (both sides and one ``cmp``); index filters are free (address arithmetic)."""
    mapped = Counter(expression_cost(einsum.expr, units=units, local=functions))
    for condition in einsum.filters:  # a value filter evaluates both sides and compares, per point
        if isinstance(condition, ValueFilter):
            mapped.update(expression_cost(Compare(condition.op, condition.lhs, condition.rhs), units=units,
                                          local=functions))
    mapped = dict(sorted(mapped.items()))
    reduced = ({} if einsum.reduce_op is None else
               reduce_cost(einsum.reduce_op, units=units, local_functions=functions, local=reduce_ops))
    return EinsumCost(map=mapped, reduce=reduced)


# --- evaluating a definition ---------------------------------------------------------------------

def evaluate_definition(expr: Expr, env: Mapping[str, np.ndarray],
                        local: Mapping[str, MapFunction] | None = None) -> np.ndarray:
    """Evaluate a function definition point-wise with numpy, arguments bound in ``env``."""
    if isinstance(expr, Const):
        return np.asarray(expr.value)
    if isinstance(expr, TensorRef):
        return np.asarray(env[expr.tensor])
    if isinstance(expr, Neg):
        return -evaluate_definition(expr.arg, env, local)
    if isinstance(expr, BinOp):
        a = evaluate_definition(expr.left, env, local)
        b = evaluate_definition(expr.right, env, local)
        with np.errstate(all="ignore"):
            return _BINOP_NUMPY[expr.op](a, b)
    if isinstance(expr, Call):
        entry = get_function(expr.fn, local)
        args = [evaluate_definition(a, env, local) for a in expr.args]
        with np.errstate(all="ignore"):
            return np.asarray(entry.fn(*args))
    if isinstance(expr, Compare):
        a = evaluate_definition(expr.left, env, local)
        b = evaluate_definition(expr.right, env, local)
        return compare_values(a, b, expr.op).astype(np.float64)
    raise TypeError(f"not a function-definition node: {expr!r}")


def compare_values(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    """``a op b`` element-wise as booleans (``op`` one of < <= > >= == !=)."""
    return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
            "!=": np.not_equal}[op](a, b)


_BINOP_NUMPY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def _elu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _builtin(name: str, fn: Callable[..., np.ndarray], **kwargs) -> None:
    params, definition = DEFINITIONS.get(name, (None, None))
    arity = len(params) if params else kwargs.pop("arity", 1)
    register_function(name, fn, arity, definition=definition, params=params, **kwargs)


_builtin("exp", np.exp)
_builtin("log", np.log)
_builtin("sqrt", np.sqrt)
_builtin("abs", np.abs)
_builtin("max", np.maximum, arity=2, merge="union", identity=-math.inf)
_builtin("min", np.minimum, arity=2, merge="union", identity=math.inf)
_builtin("sigmoid", special.expit)
_builtin("softplus", lambda x: np.logaddexp(0.0, x))
_builtin("tanh", np.tanh)
_builtin("rsqrt", lambda x: 1.0 / np.sqrt(x))
_builtin("relu", lambda x: np.maximum(x, 0.0))
_builtin("elu", _elu)
_builtin("gelu", _gelu_tanh)
_builtin("silu", lambda x: x * special.expit(x))
_builtin("clip", lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi))
_builtin("logaddexp", np.logaddexp, merge="union", identity=-math.inf)

register_reduce_op("sum", np.add, 0.0, combine="add")
register_reduce_op("max", np.maximum, -math.inf)
register_reduce_op("min", np.minimum, math.inf)
register_reduce_op("logaddexp", np.logaddexp, -math.inf)
_REDUCE_OPS["argmax"] = ReduceOp(name="argmax", ufunc=None, identity=-math.inf, combine="max", index=True)
_REDUCE_OPS["argmin"] = ReduceOp(name="argmin", ufunc=None, identity=math.inf, combine="min", index=True)
