"""The data model of Extended-Einsum cascades (what the parser builds and every analysis reads).

Shape symbols (``M``, ``M0``...) are sympy symbols with ``positive=True, integer=True``; rank variables
(``m``, ``m0``...) are sympy symbols with ``integer=True, nonnegative=True``. Build them with
:func:`shape_symbol` and :func:`rank_symbol` so that symbols made elsewhere compare equal.

Graph convention (``Cascade.graph``, a ``networkx.DiGraph``): tensor nodes are ``("tensor", name)``,
Einsum nodes are ``("einsum", einsum.name)``; every node has ``kind`` (``"tensor"`` or ``"einsum"``)
and ``name``; Einsum nodes also carry ``einsum`` (the :class:`Einsum`). Edge tensor -> Einsum: the
Einsum reads the tensor; attribute ``ref`` is the first :class:`TensorRef` of that tensor in the
expression and ``refs`` all of them (PRM reads both ``RM[m1,p]`` and ``RM[m1+1,p]``). Edge Einsum ->
tensor: the Einsum writes it; ``ref`` is the output reference. Reads of the previous iterate make the
graph cyclic (``RM -> RM update -> RM``); that is legal and marked on the edge with ``previous_iterate``
(True when every ref on that edge reads the iterative dimension at the bare iterative rank).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import networkx
import sympy

from attnsim.einsum_ir.errors import cascade_error


@functools.lru_cache(maxsize=None)
def shape_symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of a shape (a rank's extent, a count of elements)."""
    return sympy.Symbol(name, positive=True, integer=True)


@functools.lru_cache(maxsize=None)
def rank_symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of a rank variable (a coordinate, 0-based)."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def _format_sympy(expr: sympy.Expr) -> str:
    """A compact human form of an index or shape expression (``m1*M0 + m0``)."""
    return str(expr)


@dataclass(frozen=True)
class IndexExpr:
    """One index of a tensor reference: an affine expression in rank variables.

    ``expr`` uses :func:`rank_symbol` for rank variables and :func:`shape_symbol` for shapes;
    ``ranks`` names the rank variables it uses.
    """

    expr: sympy.Expr
    ranks: frozenset[str]

    @property
    def rank_var(self) -> str | None:
        """The rank name when the index is exactly one rank variable (``m``), else None."""
        if isinstance(self.expr, sympy.Symbol) and self.expr.name in self.ranks:
            return self.expr.name
        return None

    @property
    def is_constant(self) -> bool:
        """True when the index uses no rank variable (``0``, ``M1``)."""
        return not self.ranks

    def affine(self) -> tuple[dict[str, sympy.Expr], sympy.Expr]:
        """``(coefficients per rank, constant)`` with ``expr == sum(coef*rank) + constant``."""
        return _affine_parts(self.expr, tuple(sorted(self.ranks)))

    def __str__(self) -> str:
        return _format_sympy(self.expr)


@functools.lru_cache(maxsize=4096)
def _affine_parts(expr: sympy.Expr, ranks: tuple[str, ...]) -> tuple[dict[str, sympy.Expr], sympy.Expr]:
    expanded = sympy.expand(expr)
    symbols = [rank_symbol(r) for r in ranks]
    coefficients = {r: sympy.expand(expanded.coeff(s, 1)) for r, s in zip(ranks, symbols)}
    constant = sympy.expand(expanded.subs({s: 0 for s in symbols}))
    return coefficients, constant


@dataclass(frozen=True)
class TensorRef:
    """A tensor read or written at some indices (``K[e, m1*M0 + m0]``); a scalar has no index."""

    tensor: str
    indices: tuple[IndexExpr, ...]

    @property
    def ranks(self) -> frozenset[str]:
        """Every rank variable used by the indices."""
        return frozenset().union(*(i.ranks for i in self.indices)) if self.indices else frozenset()

    def __str__(self) -> str:
        return f"{self.tensor}[{', '.join(str(i) for i in self.indices)}]"


@dataclass(frozen=True)
class Const:
    """A numeric literal (``0``, ``-inf`` is ``Neg(Const(inf))`` or ``Const(-inf)``)."""

    value: float

    def __str__(self) -> str:
        if self.value == float("inf"):
            return "inf"
        if self.value == float("-inf"):
            return "-inf"
        return repr(int(self.value)) if float(self.value).is_integer() else repr(self.value)


@dataclass(frozen=True)
class Call:
    """A map function applied point-wise (``exp(x)``, ``max(a, b)``, a registered function)."""

    fn: str
    args: tuple["Expr", ...]

    def __str__(self) -> str:
        return f"{self.fn}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class BinOp:
    """An infix map: ``op`` is one of ``+ - * /``."""

    op: str
    left: "Expr"
    right: "Expr"

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    arg: "Expr"

    def __str__(self) -> str:
        return f"-{self.arg}"


@dataclass(frozen=True)
class Size:
    """A shape symbol used as a scalar value (``-log(M)``, ``1/H``, ``sqrt(E)``): the size the user gives."""

    name: str

    @property
    def symbol(self) -> sympy.Symbol:
        return shape_symbol(self.name)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Compare:
    """A data-dependent comparison yielding 1 where it holds and 0 elsewhere (``QK[m,p] == GM[p]``)."""

    op: str
    left: "Expr"
    right: "Expr"

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class RankValue:
    """A rank variable's coordinate used as a value; only inside a value filter (``where m == IDX[p]``)."""

    rank: str

    def __str__(self) -> str:
        return self.rank


Expr = Union[Const, TensorRef, Call, BinOp, Neg, Size, Compare, RankValue]


def expr_tensor_refs(expr: Expr) -> tuple[TensorRef, ...]:
    """Every tensor reference in ``expr``, left to right."""
    if isinstance(expr, TensorRef):
        return (expr,)
    if isinstance(expr, (Const, Size, RankValue)):
        return ()
    if isinstance(expr, Call):
        return tuple(ref for arg in expr.args for ref in expr_tensor_refs(arg))
    if isinstance(expr, (BinOp, Compare)):
        return expr_tensor_refs(expr.left) + expr_tensor_refs(expr.right)
    if isinstance(expr, Neg):
        return expr_tensor_refs(expr.arg)
    raise TypeError(f"not an Einsum expression node: {expr!r}")


@dataclass(frozen=True)
class Filter:
    """An affine comparison that restricts an Einsum's iteration space (``m <= p``)."""

    lhs: sympy.Expr
    op: str
    rhs: sympy.Expr

    @property
    def ranks(self) -> frozenset[str]:
        """Rank variables used on either side."""
        symbols = self.lhs.free_symbols | self.rhs.free_symbols
        return frozenset(s.name for s in symbols if s == rank_symbol(s.name))

    def __str__(self) -> str:
        return f"{_format_sympy(self.lhs)} {self.op} {_format_sympy(self.rhs)}"


@dataclass(frozen=True)
class ValueFilter:
    """A comparison of values that restricts an Einsum's iteration space point by point
    (``where QK[m,p] >= T[p]``, ``where m == IDX[p]``); its reads are reads of the Einsum."""

    lhs: "Expr"
    op: str
    rhs: "Expr"

    def refs(self) -> tuple[TensorRef, ...]:
        """Tensor references read by the comparison, left to right."""
        return expr_tensor_refs(self.lhs) + expr_tensor_refs(self.rhs)

    @property
    def ranks(self) -> frozenset[str]:
        """Rank variables used: by its tensor references and as values."""
        used = set().union(*(r.ranks for r in self.refs())) if self.refs() else set()
        return frozenset(used | set(expr_rank_values(self.lhs)) | set(expr_rank_values(self.rhs)))

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"


def expr_rank_values(expr: "Expr") -> tuple[str, ...]:
    """Rank variables used as values in ``expr`` (only value filters have them)."""
    if isinstance(expr, RankValue):
        return (expr.rank,)
    if isinstance(expr, Call):
        return tuple(r for a in expr.args for r in expr_rank_values(a))
    if isinstance(expr, (BinOp, Compare)):
        return expr_rank_values(expr.left) + expr_rank_values(expr.right)
    if isinstance(expr, Neg):
        return expr_rank_values(expr.arg)
    return ()


ROLES = ("plain", "init", "update")


@dataclass(frozen=True)
class Einsum:
    """One line of a cascade.

    ``name`` is the output tensor's name; initialisation lines are named ``f"{tensor}.init"`` and
    are the only other Einsum writing an iterative tensor besides its update. ``reduced_ranks`` are
    the ranks of the expression absent from the output (Einstein convention), reduced with
    ``reduce_op``. ``iteration_ranks`` lists the output's rank variables, then the expression's, in
    first-seen order. ``role`` is ``"init"`` (writes an iterative tensor at a constant iterate),
    ``"update"`` (writes it at ``r+1``) or ``"plain"``; ``iterative_rank`` is ``r`` for init/update.
    ``line`` is the 1-based line in the cascade file, ``source`` the line's text without comment.
    """

    name: str
    output: TensorRef
    expr: Expr
    reduce_op: str | None
    reduced_ranks: frozenset[str]
    iteration_ranks: tuple[str, ...]
    filters: tuple["Filter | ValueFilter", ...]
    role: str
    iterative_rank: str | None
    line: int
    source: str

    def inputs(self) -> tuple[TensorRef, ...]:
        """Tensor references read by the expression, then by value filters, left to right."""
        refs = expr_tensor_refs(self.expr)
        for condition in self.filters:
            if isinstance(condition, ValueFilter):
                refs += condition.refs()
        return refs

    @property
    def index_filters(self) -> tuple["Filter", ...]:
        """The filters on indices (affine comparisons of rank variables)."""
        return tuple(f for f in self.filters if isinstance(f, Filter))

    @property
    def value_filters(self) -> tuple["ValueFilter", ...]:
        """The filters on values."""
        return tuple(f for f in self.filters if isinstance(f, ValueFilter))

    @property
    def output_ranks(self) -> tuple[str, ...]:
        """Iteration ranks that index the output."""
        return tuple(r for r in self.iteration_ranks if r not in self.reduced_ranks)

    def __str__(self) -> str:
        return self.source


@dataclass
class Cascade:
    """An ordered list of Einsums over declared ranks and shapes, validated at load.

    ``ranks`` maps rank variable -> shape symbol; ``derived_shapes`` shape symbol -> expression of
    other shapes (``M1: M/M0``); ``iterative`` rank -> stop bound (``m1 -> M1``: iterate while
    ``m1 < M1``). ``tensor_shapes`` gives, per tensor, the extent of each dimension; an iterative
    dimension has extent ``bound + 1`` (iterates ``0..bound``). ``iterative_dims`` maps each iterative
    tensor to ``(dimension, rank)``. ``symbol_lines`` gives the file line where each shape symbol is
    declared (for error messages). ``meta`` holds ``attention`` (dict with ``algorithm`` and
    ``causal``), ``pass_rank`` (shape-symbol name, str), ``closed_form`` (str) when the file has them.
    """

    name: str
    description: str
    path: Path | None
    ranks: dict[str, sympy.Symbol]
    derived_shapes: dict[sympy.Symbol, sympy.Expr]
    iterative: dict[str, sympy.Expr]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    einsums: tuple[Einsum, ...]
    tensor_shapes: dict[str, tuple[sympy.Expr, ...]]
    graph: networkx.DiGraph
    meta: dict
    iterative_dims: dict[str, tuple[int, str]] = field(default_factory=dict)
    symbol_lines: dict[str, int] = field(default_factory=dict)
    origin: str = ""  # name used in error messages when there is no path (load_cascade_text(source=...))
    tensor_lines: dict[str, int] = field(default_factory=dict)  # input: its line in `inputs`; else first writer
    functions: dict = field(default_factory=dict)  # name -> functions.MapFunction declared in the file
    reduce_ops: dict = field(default_factory=dict)  # name -> functions.ReduceOp declared in the file
    warnings: tuple[str, ...] = ()  # one-line warnings found at load ("file:line: what; expected ...")

    @property
    def source(self) -> str:
        """The file name used in error messages."""
        if self.path is not None:
            return str(self.path)
        return self.origin or f"<{self.name}>"

    def free_symbols(self) -> set[sympy.Symbol]:
        """Shape symbols a user must give sizes for (every shape symbol that is not derived)."""
        symbols: set[sympy.Symbol] = set(self.ranks.values())
        for expr in self.derived_shapes.values():
            symbols |= expr.free_symbols
        return {s for s in symbols if s not in self.derived_shapes}

    def einsum(self, name: str) -> Einsum:
        """The Einsum called ``name`` (``"RM"`` is the update, ``"RM.init"`` the initialisation)."""
        for einsum in self.einsums:
            if einsum.name == name:
                return einsum
        raise KeyError(name)

    def writers(self, tensor: str) -> tuple[Einsum, ...]:
        """Einsums that write ``tensor`` (init first for an iterative tensor)."""
        return tuple(e for e in self.einsums if e.output.tensor == tensor)

    @staticmethod
    def tensor_node(name: str) -> tuple[str, str]:
        """Graph node id of a tensor."""
        return ("tensor", name)

    @staticmethod
    def einsum_node(name: str) -> tuple[str, str]:
        """Graph node id of an Einsum."""
        return ("einsum", name)

    def resolve_sizes(self, sizes: dict[str, int]) -> dict[sympy.Symbol, int]:
        """Sizes of every shape symbol (free and derived) from user sizes keyed by symbol name.

        Names that are not shape symbols of this cascade are ignored. Raises CascadeError for a
        missing free symbol, a non-positive size, a derived shape that is not a whole number
        (``M=1000 is not divisible by M0=256``: partitioned ranks need exact multiples) or a given
        derived size that disagrees with its definition.
        """
        resolved: dict[sympy.Symbol, int] = {}
        for symbol in sorted(self.free_symbols(), key=lambda s: s.name):
            line = self.symbol_lines.get(symbol.name)
            if symbol.name not in sizes or sizes[symbol.name] is None:
                given = ", ".join(sorted(s.name for s in self.free_symbols()))
                raise cascade_error(self.source, line, f"missing size for shape symbol {symbol.name}",
                                    symbol.name, f"a size for each of {given}")
            value = sizes[symbol.name]
            if isinstance(value, bool) or int(value) != value or int(value) <= 0:
                raise cascade_error(self.source, line, f"size {symbol.name}={value} is not a positive integer",
                                    symbol.name, "a positive integer")
            resolved[symbol] = int(value)
        pending = dict(self.derived_shapes)
        while pending:
            progressed = False
            for symbol, expr in list(pending.items()):
                if not expr.free_symbols <= set(resolved):
                    continue
                resolved[symbol] = self._derived_size(symbol, expr, resolved)
                del pending[symbol]
                progressed = True
            if not progressed:  # guarded at load; kept so a hand-built cascade cannot loop forever
                symbol = next(iter(pending))
                raise cascade_error(self.source, self.symbol_lines.get(symbol.name),
                                    "derived shapes depend on each other", symbol.name, "acyclic shape definitions")
        for symbol, expr in self.derived_shapes.items():
            if symbol.name in sizes and sizes[symbol.name] is not None and int(sizes[symbol.name]) != resolved[symbol]:
                raise cascade_error(self.source, self.symbol_lines.get(symbol.name),
                                    f"size {symbol.name}={sizes[symbol.name]} disagrees with {symbol.name} = {expr}",
                                    symbol.name, f"{symbol.name}={resolved[symbol]} or no size for it")
        return resolved

    def _derived_size(self, symbol: sympy.Symbol, expr: sympy.Expr, known: dict[sympy.Symbol, int]) -> int:
        value = sympy.nsimplify(expr.subs(known))
        line = self.symbol_lines.get(symbol.name)
        token = f"{symbol.name}: {expr}"
        if not value.is_integer:
            numerator, denominator = sympy.fraction(sympy.together(expr))
            n_value, d_value = numerator.subs(known), denominator.subs(known)
            raise cascade_error(self.source, line, f"{numerator}={n_value} is not divisible by {denominator}={d_value}",
                                token,
                                f"{numerator} to be a multiple of {denominator} (partitioned ranks split exactly)")
        if int(value) <= 0:
            raise cascade_error(self.source, line, f"derived shape {symbol.name}={value} is not positive",
                                token, "a positive size")
        return int(value)
