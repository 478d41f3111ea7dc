"""The work of a cascade, derived from its Einsums: ranks, element counts, primitive ops, dependencies.

Nothing here names a particular Einsum: everything is read from the cascade (``einsum_ir``). Used by
the spatial mapper (:mod:`mappers.cascade_mapper`) and the GPU mappers alike.

API::

    work = cascade_work(cascade, sizes)          # sizes: {shape symbol name: int}, e.g. M, P, E, F, M0
    work.extents                                  # {rank variable: extent}, e.g. {"m0": 256, "m1": 4096, ...}
    work.einsums["SLN"]                           # EinsumWork
    work.compute                                  # EinsumWork of the Einsums that compute (no views/inits)
    work.dependencies                             # tuple[Dependency]
    w = work.einsums["BQK"]
    w.role                                        # "compute" | "view" | "init"
    w.iteration_ranks, w.output_ranks, w.reduced_ranks
    w.points(tile)                                # iteration points in a tile {rank: extent} (missing -> 1)
    w.ops                                         # {primitive: count per point}, before lowering: "mac",
                                                  # "add" (also subtract), "mul", "div", "max", "exp", ...
    w.read_elements(tile) / w.write_elements(tile)  # {tensor: elements referenced in the tile}
    lowered = lower(w, arch, "pe2d")              # the ops on one unit of ``arch``
    lowered.actions                               # {op: count per point}: what the energy model charges
    lowered.cycles                                # cycles one PE spends per point (the ops in sequence)
    lowered.missing                               # ops the unit cannot do (empty when it can run w)

Work per point of an Einsum's iteration space (its output ranks x reduced ranks):

* a contraction (a product reduced with ``sum``) is one ``mac``; any other ``sum`` reduction one
  ``add``, a ``max``/``min`` reduction one ``max``;
* the rest is ``einsum_ir.functions.einsum_cost`` (each distinct subexpression once, constants and
  sizes free): ``+``/``-`` one ``add``, ``*`` one ``mul`` (lowered to ``mac`` on units without a
  multiplier), ``/`` one ``div``, a built-in function its primitive ops (sigmoid: add, div, exp),
  a function declared in the cascade its definition's; ``min`` runs on the ``max`` comparator;
* FuseMax's exp (paper §V, fact sheet §3.5/§6.4): on a unit without an exp unit (no ``<unit>.exp``
  area entry in the architecture) ``exp`` is 6 MACs + 1 add, the add absorbing a subtract taken
  directly as exp's argument (``exp(x - m)`` is 6 MAC + 1 add in all), and takes the arch's
  ``ops.exp`` cycles; with an exp unit it is one ``exp`` and the subtract stays a separate ``add``.
  Either way the unit must list ``exp`` in its ``ops`` table to run it.

Dependencies (:class:`Dependency`): producer -> consumer through a tensor, with ``kind``:
``tile`` (same tile / same iterate), ``carried`` (the consumer reads the previous iterate of a
recurrence over iterative rank ``rank``: the producer's instance one iteration earlier), ``final``
(the consumer reads the final iterate: after the whole iterative loop). Views (an Einsum that only
re-indexes a tensor, e.g. ``BK[e,m1,m0] = K[e, m1*M0 + m0]``) and initialisations compute nothing; a
read of a view is a read of its source (``source_of``).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import sympy

from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import BinOp, Call, Cascade, Einsum, Neg, TensorRef
from attnsim.einsum_ir.functions import einsum_cost
from attnsim.mappers.errors import MappingError

EXP_TAYLOR_MACS = 6
"""MACs of one exp without an exp unit (5th-order Taylor series, FuseMax paper §V); plus one add."""

Role = Literal["compute", "view", "init"]
DepKind = Literal["tile", "carried", "final"]


@dataclass(frozen=True)
class Dependency:
    """``consumer`` reads ``tensor`` that ``producer`` writes (module docstring for ``kind``)."""

    producer: str
    consumer: str
    tensor: str
    kind: DepKind
    rank: str | None = None


@dataclass(frozen=True)
class Lowered:
    """An Einsum's per-point work on one unit: actions (op -> count), cycles, ops the unit lacks."""

    unit: str
    actions: dict[str, int]
    cycles: int
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class EinsumWork:
    """What one Einsum computes, independent of any mapping (module docstring)."""

    name: str
    einsum: Einsum
    role: Role
    iteration_ranks: tuple[str, ...]
    output_ranks: tuple[str, ...]
    reduced_ranks: tuple[str, ...]
    ops: dict[str, int]
    absorbed_subtracts: int
    reads: tuple[TensorRef, ...]
    write: TensorRef
    iterative_dims: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def points(self, tile: Mapping[str, int]) -> int:
        """Iteration points in a tile given as {rank: extent} (ranks not given count 1)."""
        return _product(tile.get(rank, 1) for rank in self.iteration_ranks)

    def _ref_ranks(self, ref: TensorRef) -> tuple[str, ...]:
        """The rank variables indexing one iterate of ``ref`` (its iterative dimension left out)."""
        iterative = self.iterative_dims.get(ref.tensor, (None, None))[0]
        ranks: set[str] = set()
        for dim, index in enumerate(ref.indices):
            if dim != iterative:
                ranks |= index.ranks
        return tuple(sorted(ranks))

    @cached_property
    def _read_ranks(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        # Mappers ask for element counts thousands of times per point: the ranks are fixed per Einsum.
        return tuple((ref.tensor, self._ref_ranks(ref)) for ref in self.reads)

    @cached_property
    def _write_ranks(self) -> tuple[str, ...]:
        return self._ref_ranks(self.write)

    def read_elements(self, tile: Mapping[str, int]) -> dict[str, int]:
        """{tensor: elements of it the Einsum reads in the tile} (one iterate of an iterative tensor;
        a tensor read at two iterates, such as ``RM[m1]`` and ``RM[m1+1]``, counts once)."""
        counts: dict[str, int] = {}
        for tensor, ranks in self._read_ranks:
            counts[tensor] = max(counts.get(tensor, 0), _product(tile.get(rank, 1) for rank in ranks))
        return counts

    def write_elements(self, tile: Mapping[str, int]) -> int:
        """Elements of the output the Einsum writes in the tile."""
        return _product(tile.get(rank, 1) for rank in self._write_ranks)


@dataclass(frozen=True)
class CascadeWork:
    """A cascade's work at resolved sizes: rank extents, per-Einsum work, dependency edges."""

    cascade: Cascade
    sizes: dict[str, int]
    extents: dict[str, int]
    einsums: dict[str, EinsumWork]
    dependencies: tuple[Dependency, ...]
    views: dict[str, str]

    @cached_property
    def compute(self) -> tuple[EinsumWork, ...]:
        """The Einsums that compute (no views, no initialisations), in cascade order (fixed once built:
        the mappers ask for it per tensor and point)."""
        return tuple(w for w in self.einsums.values() if w.role == "compute")

    def source_of(self, tensor: str) -> str:
        """The tensor a view re-indexes (``BK`` -> ``K``); the tensor itself otherwise."""
        while tensor in self.views:
            tensor = self.views[tensor]
        return tensor

    def producers(self, tensor: str) -> tuple[str, ...]:
        """Computing Einsums writing ``tensor``."""
        return tuple(w.name for w in self.compute if w.write.tensor == tensor)

    def consumers(self, tensor: str) -> tuple[str, ...]:
        """Computing Einsums reading ``tensor`` (or a view of it)."""
        return tuple(w.name for w in self.compute
                     if any(self.source_of(r.tensor) == self.source_of(tensor) for r in w.reads))

    def footprint_ranks(self, tensor: str) -> tuple[tuple[str, ...], ...]:
        """The rank sets indexing one iterate of ``tensor``: as its writer writes it, else each of the
        references through which the first computing Einsum that reads it reads it (its footprint in a
        block is the largest of their products); empty for a tensor nothing computes with."""
        cache = self.__dict__.setdefault("_footprint_ranks", {})
        if tensor not in cache:
            cache[tensor] = self._find_footprint_ranks(tensor)
        return cache[tensor]

    def _find_footprint_ranks(self, tensor: str) -> tuple[tuple[str, ...], ...]:
        for w in self.einsums.values():
            if w.write.tensor == tensor and w.role != "init":
                return (w._write_ranks,)
        for w in self.einsums.values():
            if w.role == "compute":
                reads = tuple(ranks for name, ranks in w._read_ranks if name == tensor)
                if reads:
                    return reads
        return ()

    def deps_of(self, consumer: str) -> tuple[Dependency, ...]:
        """The dependencies of ``consumer`` on computing Einsums."""
        by_consumer = self.cascade.__dict__.setdefault("_deps_by_consumer", {})
        if consumer not in by_consumer:
            by_consumer[consumer] = tuple(d for d in self.dependencies if d.consumer == consumer)
        return by_consumer[consumer]


def _product(values: Any) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


# --------------------------------------------------------------------------------------------------
# Ops of an expression.


def _is_view(einsum: Einsum) -> bool:
    return isinstance(einsum.expr, TensorRef) and not einsum.reduced_ranks and einsum.role == "plain"


def _exp_of_subtract(expr: Any) -> int:
    """Number of ``exp(a - b)`` calls in ``expr`` (the subtract FuseMax's composite exp absorbs)."""
    if isinstance(expr, Call):
        own = int(expr.fn == "exp" and isinstance(expr.args[0], BinOp) and expr.args[0].op == "-")
        return own + sum(_exp_of_subtract(a) for a in expr.args)
    if isinstance(expr, BinOp):
        return _exp_of_subtract(expr.left) + _exp_of_subtract(expr.right)
    if isinstance(expr, Neg):
        return _exp_of_subtract(expr.arg)
    return 0


def _einsum_work(cascade: Cascade, einsum: Einsum) -> EinsumWork:
    role: Role = "init" if einsum.role == "init" else ("view" if _is_view(einsum) else "compute")
    ops: Counter = Counter()
    absorbed = 0
    if role == "compute":
        cost = einsum_cost(einsum, functions=getattr(cascade, "functions", None),
                           reduce_ops=getattr(cascade, "reduce_ops", None))
        ops.update(cost.map)
        ops.update(cost.reduce)
        expr = einsum.expr
        if (einsum.reduced_ranks and dict(cost.reduce) == {"add": 1} and isinstance(expr, BinOp)
                and expr.op == "*" and ops["mul"] >= 1):
            ops["mul"] -= 1          # a contraction: multiply and accumulate in one MAC
            ops["add"] -= 1
            ops["mac"] += 1
        if ops.get("min"):
            ops["max"] += ops.pop("min")   # the comparator that takes maxima takes minima
        absorbed = _exp_of_subtract(expr)
    return EinsumWork(name=einsum.name, einsum=einsum, role=role, iteration_ranks=tuple(einsum.iteration_ranks),
                      output_ranks=tuple(einsum.output_ranks), reduced_ranks=tuple(sorted(einsum.reduced_ranks)),
                      ops={op: n for op, n in ops.items() if n}, absorbed_subtracts=absorbed,
                      reads=tuple(einsum.inputs()), write=einsum.output, iterative_dims=dict(cascade.iterative_dims))


def _dependencies(cascade: Cascade, works: Mapping[str, EinsumWork], views: Mapping[str, str]) -> tuple[Dependency, ...]:
    deps: list[Dependency] = []
    for work in works.values():
        if work.role != "compute":
            continue
        for ref in work.reads:
            writers = [w for w in cascade.writers(ref.tensor) if works[w.name].role == "compute"]
            if not writers:
                continue
            kind: DepKind = "tile"
            rank = None
            if ref.tensor in cascade.iterative_dims:
                dim, rank = cascade.iterative_dims[ref.tensor]
                index = ref.indices[dim]
                bound = cascade.iterative[rank]
                if sympy.simplify(index.expr - bound) == 0:
                    kind = "final"
                elif index.rank_var == rank:
                    kind = "carried"
                elif index.is_constant:
                    continue  # the initial iterate: no computing producer
                else:
                    rank = None
            for writer in writers:
                deps.append(Dependency(writer.name, work.name, ref.tensor, kind, rank))
    return tuple(dict.fromkeys(deps))


def cascade_work(cascade: Cascade, sizes: Mapping[str, int]) -> CascadeWork:
    """The work of ``cascade`` at ``sizes`` ({shape symbol name: int}; derived shapes are computed).

    Raises the cascade's CascadeError for missing or inconsistent sizes. Results are cached on the
    cascade object per sizes (a cascade is not changed after loading).
    """
    cache = cascade.__dict__.setdefault("_cascade_work_cache", {})
    key = tuple(sorted(sizes.items()))
    if key not in cache:
        cache[key] = _cascade_work(cascade, sizes)
    return cache[key]


def _cascade_work(cascade: Cascade, sizes: Mapping[str, int]) -> CascadeWork:
    resolved = cascade.resolve_sizes(dict(sizes))
    named = {symbol.name: value for symbol, value in resolved.items()}
    extents = {rank: named[symbol.name] for rank, symbol in cascade.ranks.items()}
    static = cascade.__dict__.get("_cascade_work_static")
    if static is None:   # what does not depend on sizes, once per cascade
        works = {e.name: _einsum_work(cascade, e) for e in cascade.einsums}
        views = {w.write.tensor: w.reads[0].tensor for w in works.values() if w.role == "view"}
        static = (works, views, _dependencies(cascade, works, views))
        cascade.__dict__["_cascade_work_static"] = static
    works, views, deps = static
    return CascadeWork(cascade=cascade, sizes=named, extents=extents, einsums=works, dependencies=deps,
                       views=views)


# --------------------------------------------------------------------------------------------------
# Lowering onto a unit.


def has_exp_unit(arch: Arch, unit: str) -> bool:
    """Whether ``unit``'s PEs have a dedicated exp unit (the architecture gives it an area entry)."""
    return f"{unit}.exp" in arch.area


_LOWERED: dict[tuple[int, int, str], tuple[EinsumWork, Arch, Lowered]] = {}


def lower(work: EinsumWork, arch: Arch, unit: str) -> Lowered:
    """``work``'s per-point ops on ``unit`` of ``arch``: actions charged and cycles (module docstring).
    Memoised per (Einsum, architecture object, unit): both are immutable once loaded."""
    key = (id(work), id(arch), unit)
    hit = _LOWERED.get(key)
    if hit is not None and hit[0] is work and hit[1] is arch:
        return hit[2]
    if len(_LOWERED) > 4096:
        _LOWERED.clear()
    result = _lower(work, arch, unit)
    _LOWERED[key] = (work, arch, result)   # the references keep the ids from being reused
    return result


def _lower(work: EinsumWork, arch: Arch, unit: str) -> Lowered:
    table = getattr(arch.arrays, unit).ops
    actions: Counter = Counter()
    for op, count in work.ops.items():
        if op == "mul":
            actions["mul" if "mul" in table else "mac"] += count
        elif op == "exp" and not has_exp_unit(arch, unit):
            actions["mac"] += EXP_TAYLOR_MACS * count
            actions["add"] += count
        else:
            actions[op] += count
    cycles = 0
    missing: list[str] = []
    exp_composite = "exp" in work.ops and not has_exp_unit(arch, unit)
    if exp_composite:
        actions["add"] -= min(work.absorbed_subtracts, work.ops["exp"])
    for op, count in actions.items():
        if exp_composite and op in ("mac", "add"):
            continue
        cost = table.get(op)
        if cost is None:
            missing.append(op)
        else:
            cycles += cost * count
    if exp_composite:
        n_exp = work.ops["exp"]
        exp_cycles = table.get("exp")
        if exp_cycles is None:
            missing.append("exp")
            exp_cycles = 0
        cycles += n_exp * exp_cycles
        rest_mac = actions["mac"] - EXP_TAYLOR_MACS * n_exp
        rest_add = actions["add"] - n_exp
        for op, count in (("mac", rest_mac), ("add", rest_add)):
            if count > 0:
                cost = table.get(op)
                if cost is None:
                    missing.append(op)
                else:
                    cycles += cost * count
    return Lowered(unit=unit, actions={op: n for op, n in actions.items() if n}, cycles=cycles,
                   missing=tuple(dict.fromkeys(missing)))


def supports(work: EinsumWork, arch: Arch, unit: str) -> bool:
    """Whether ``unit`` can run ``work`` (it has every primitive op the Einsum needs)."""
    return not lower(work, arch, unit).missing


__all__ = ["CascadeWork", "Dependency", "EXP_TAYLOR_MACS", "EinsumWork", "Lowered", "cascade_work",
           "has_exp_unit", "lower", "supports"]
