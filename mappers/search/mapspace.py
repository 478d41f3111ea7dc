"""The map space of a cascade on a spatial accelerator: every mapping the generic mapper
(:mod:`mappers.cascade_mapper`) can run that this search enumerates, as :class:`Candidate` s.

A candidate fixes, for one (cascade, workload, sequence length, architecture) point:

* the *nest shape* (:class:`NestShape`): which rank variable of the pass rank is streamed from DRAM (the
  iterative rank ``m1`` of attention-1pass, the outer part ``s`` of a partition without a recurrence, or
  the pass rank ``m`` itself) and which is spread over the array (``m0``, ``k``, or ``m`` split);
* the *tile sizes*: the spread rank's tile ``row_tile`` (a divisor of the pass rank's extent, at most
  the array dimension it runs on and at least an eighth of it), the parallel rank's tile ``col_tile``
  (likewise on the other dimension) and the *fusion granularity* ``block``: how many parallel-rank tiles
  stay resident in the global buffer (``P1``; powers of two dividing what is left, and all of it);
* the *spatial assignment* ``swap``: False puts the spread rank on the array's rows and the parallel rank
  on its columns (FuseMax's Mapping 1), True the other way round;
* the *binding* of each computing Einsum to a unit that has its operators (``pe2d``, ``pe1d``), issued
  in the seed mapping's program order.

What a candidate does not choose is derived (:func:`candidate_data`): placement by the exact dominance
rule of :mod:`mappers.search.pruning` (each tile-local intermediate at the cheapest level it may
validly live at), pipelining with no tile waits and no serialisation (adding dependencies never
shortens the in-order engine's schedule), and the *policy* of the base mapping: which accesses are
charged (``charge``), drains (``pipelining.drain``: how the hardware moves a result out of the array),
``closed_form``, and the placement of inputs, outputs and recurrence state.

Fusion across passes is not enumerated: the generic path fuses a 1-pass cascade into one nest over its
pass rank (:func:`mappers.cascade_defaults.check_single_pass`); a multi-pass cascade is refused here with
the pass analysis's reason and searched on the groups path instead (:mod:`.groups_search`).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.mappers.cascade_defaults import check_single_pass, default_mapping_data, pass_analysis
from attnsim.mappers.cascade_plan import Plan, build_plan, workload_sizes
from attnsim.mappers.cascade_work import CascadeWork, cascade_work, supports
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import MappingSpec, mapping_from_data
from attnsim.mappers.workloads import Workload

UNITS = ("pe2d", "pe1d")
SMALLEST_TILE_FRACTION = 8
"""Tiles smaller than the array dimension / this are not enumerated (heuristic: they idle most PEs)."""


@dataclass(frozen=True)
class NestShape:
    """How the pass rank is traversed: ``streamed`` from DRAM, ``spread`` over an array dimension.

    ``size_symbol`` is the shape symbol the mapping's ``sizes`` sets from the spread tile (``M0`` of
    attention-1pass, ``S`` of split-k-decode), ``size_inverse`` whether it is the number of tiles
    (``S = M / tile``) rather than the tile; None when the spread rank is the pass rank itself (its
    spatial loop carries the tile as a factor).
    """

    streamed: str
    spread: str
    size_symbol: str | None = None
    size_inverse: bool = False


@dataclass(frozen=True)
class Candidate:
    """One point of the map space (module docstring). ``binding``: ((Einsum, unit), ...) in cascade order."""

    shape: NestShape
    row_tile: int
    col_tile: int
    block: int
    swap: bool
    binding: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """One line, e.g. ``m1 streamed, m0 256 on rows, p 256 on cols, P1 16, 5 on pe2d``."""
        dims = ("cols", "rows") if self.swap else ("rows", "cols")
        on_2d = sum(1 for _, unit in self.binding if unit == "pe2d")
        return (f"{self.shape.streamed} streamed, {self.shape.spread} {self.row_tile} on {dims[0]}, "
                f"col tile {self.col_tile} on {dims[1]}, block {self.block}, {on_2d} Einsums on pe2d")


@dataclass
class Problem:
    """One search point: cascade, workload at ``seq`` tokens, architecture and the base mapping whose
    policy (charge, drains, closed_form, placement of inputs/outputs/state) every candidate keeps.

    Build it with :func:`make_problem`. ``seed``: the mapping evaluated first (the base itself when it
    is written for this cascade, else the cascade's default mapping, else None).
    """

    cascade: Cascade
    workload: Workload
    seq: int
    arch: Arch
    base: MappingSpec
    seed: MappingSpec | None
    column: str
    shapes: tuple[NestShape, ...]
    order: dict[str, int]
    base_binding: dict[str, str]
    supported: dict[str, tuple[str, ...]]
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.cascade.name} on {self.arch.name}: {self.workload.name} at seq {self.seq}"


def _nest_shapes(cascade: Cascade) -> tuple[NestShape, ...]:
    """The ways this nest can traverse the cascade's pass rank (module docstring)."""
    analysis = pass_analysis(cascade)
    family = analysis.family
    derived = {symbol.name for symbol in cascade.derived_shapes}
    shapes: list[NestShape] = []
    for partition in family.partitions:
        if len(partition) != 2:
            continue
        for streamed, spread in itertools.permutations(sorted(partition)):
            if cascade.iterative and streamed not in cascade.iterative and any(r in partition for r in cascade.iterative):
                continue   # a recurrence runs over its iterative rank: that one is streamed
            spread_symbol = cascade.ranks[spread].name
            streamed_symbol = cascade.ranks[streamed].name
            if spread_symbol not in derived:
                shapes.append(NestShape(streamed, spread, spread_symbol, False))
            elif streamed_symbol not in derived:
                shapes.append(NestShape(streamed, spread, streamed_symbol, True))
    if not shapes:
        for rank in sorted(family.full):
            shapes.append(NestShape(rank, rank))
    return tuple(shapes)


def make_problem(cascade: Cascade, workload: Workload, seq: int, arch: Arch, base: MappingSpec | None = None
                 ) -> Problem:
    """The search point (see :class:`Problem`); MappingError (one line) for a cascade the generic path
    cannot fuse or a base mapping for another target."""
    seq = workload.check_seq(seq)
    analysis = pass_analysis(cascade)
    from attnsim.einsum_ir.bounds import parallel_ranks

    if analysis.passes > 1:
        check_single_pass(cascade, base or mapping_from_data(
            {"name": "search", "source": "attnsim search", "target": "spatial"}, "<search>"))
    parallel = parallel_ranks(analysis)
    if not parallel:
        raise MappingError(f"{cascade.source}: cascade {cascade.name} has no parallel rank to tile")
    seed: MappingSpec | None = None
    if base is not None and base.target != "spatial":
        raise MappingError(f"{base.origin}: target: expected spatial for a spatial search, got {base.target}")
    if base is not None and (base.cascade in (None, cascade.name)) and base.loops is not None:
        seed = base
    else:
        try:
            seed = mapping_from_data(default_mapping_data(cascade, arch), f"<default mapping of {cascade.name}>")
            build_plan(cascade, seed, workload, seq, arch)
        except MappingError:
            seed = None
    if base is None:
        base = mapping_from_data({"name": f"{cascade.name}-search", "source": "attnsim search (defaults by analysis)",
                                  "target": "spatial", "cascade": cascade.name, "arch": arch.name}, "<search>")
    shapes = _nest_shapes(cascade)
    work = _work(cascade, workload, seq, shapes, arch)
    supported = {w.name: tuple(u for u in UNITS if supports(w, arch, u)) for w in work.compute}
    for name, units in supported.items():
        if not units:
            raise MappingError(f"{arch.origin}: no unit can run Einsum {name} of cascade {cascade.name}")
    order = {w.name: i for i, w in enumerate(work.compute)}
    base_binding: dict[str, str] = {}
    if seed is not None:
        try:
            plan = build_plan(cascade, seed, workload, seq, arch)
            order = {n: i for i, n in enumerate((*plan.order, *plan.after))}
            base_binding = dict(plan.binding)
        except MappingError:
            seed = None
    if not base_binding:
        base_binding = {name: units[0] for name, units in supported.items()}
    return Problem(cascade=cascade, workload=workload, seq=seq, arch=arch, base=base, seed=seed,
                   column=parallel[0], shapes=shapes, order=order, base_binding=base_binding, supported=supported)


def _work(cascade: Cascade, workload: Workload, seq: int, shapes: tuple[NestShape, ...], arch: Arch) -> CascadeWork:
    """The cascade's work at some valid sizes (to list its Einsums; sizes do not change which compute)."""
    sizes = workload_sizes(workload, seq)
    shape = shapes[0]
    if shape.size_symbol is not None:
        sizes[shape.size_symbol] = 1
    return cascade_work(cascade, sizes)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def tile_choices(extent: int, dimension: int) -> list[int]:
    """Tiles of a rank of ``extent`` on an array dimension of ``dimension`` PEs: divisors of the extent
    at most the dimension and at least dimension / :data:`SMALLEST_TILE_FRACTION`, largest first (the
    whole extent when it is smaller than that)."""
    low = max(1, dimension // SMALLEST_TILE_FRACTION)
    tiles = [d for d in _divisors(extent) if low <= d <= dimension]
    return sorted(tiles, reverse=True) or [max(d for d in _divisors(extent) if d <= dimension)]


def block_choices(left: int) -> list[int]:
    """Fusion granularities (tiles of the parallel rank resident at once) for ``left`` tiles: the powers
    of two dividing it and ``left`` itself, largest first."""
    values = {left}
    power = 1
    while power < left:
        if left % power == 0:
            values.add(power)
        power *= 2
    return sorted(values, reverse=True)


def binding_choices(problem: Problem) -> list[tuple[tuple[str, str], ...]]:
    """Bindings enumerated (heuristic neighbourhood, documented in docs/mapping-search.md): the seed's
    binding, every binding one Einsum away from it, and each unit taking every Einsum it can."""
    names = sorted(problem.supported, key=problem.order.__getitem__)
    base = {n: problem.base_binding.get(n, problem.supported[n][0]) for n in names}
    movable = [n for n in names if len(problem.supported[n]) > 1]
    seen: dict[tuple[tuple[str, str], ...], None] = {}

    def add(binding: Mapping[str, str]) -> None:
        seen.setdefault(tuple((n, binding[n]) for n in names), None)

    add(base)
    radius = 1
    for count in range(1, radius + 1):
        for moved in itertools.combinations(movable, count):
            trial = dict(base)
            for name in moved:
                trial[name] = next(u for u in problem.supported[name] if u != base[name])
            add(trial)
    for unit in UNITS:
        add({n: unit if unit in problem.supported[n] else base[n] for n in names})
    return list(seen)


def enumerate_candidates(problem: Problem) -> Iterator[Candidate]:
    """Every candidate of the map space, nest shape by nest shape (module docstring)."""
    arch = problem.arch
    dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}
    sizes = workload_sizes(problem.workload, problem.seq)
    pass_extent = sizes[pass_analysis(problem.cascade).family.shape.name]
    column_extent = sizes[problem.cascade.ranks[problem.column].name]
    bindings = binding_choices(problem)
    for shape in problem.shapes:
        for swap in (False, True):
            row_dim, col_dim = (dims["cols"], dims["rows"]) if swap else (dims["rows"], dims["cols"])
            for row_tile in tile_choices(pass_extent, row_dim):
                for col_tile in tile_choices(column_extent, col_dim):
                    for block in block_choices(column_extent // col_tile):
                        for binding in bindings:
                            yield Candidate(shape, row_tile, col_tile, block, swap, binding)


def candidate_data(problem: Problem, candidate: Candidate) -> dict[str, Any]:
    """The candidate as a complete mapping (plain data the generic mapper and ``--mapping`` accept)."""
    from attnsim.mappers.search.pruning import candidate_placement

    shape = candidate.shape
    rows, cols = ("cols", "rows") if candidate.swap else ("rows", "cols")
    column = problem.column
    sizes: dict[str, Any] = {}
    if shape.size_symbol is not None:
        pass_extent = workload_sizes(problem.workload, problem.seq)[pass_analysis(problem.cascade).family.shape.name]
        sizes[shape.size_symbol] = pass_extent // candidate.row_tile if shape.size_inverse else candidate.row_tile
        spread_loop: dict[str, Any] = {"rank": shape.spread, "spatial": rows}
    else:
        spread_loop = {"rank": shape.spread, "factor": candidate.row_tile, "spatial": rows}
    loops = [{"rank": column, "level": "dram"}, {"rank": shape.streamed, "level": "dram"},
             {"rank": column, "factor": candidate.block, "level": "global_buffer"}, spread_loop,
             {"rank": column, "factor": candidate.col_tile, "spatial": cols}]
    binding = {unit: [n for n, u in sorted(candidate.binding, key=lambda item: problem.order[item[0]]) if u == unit]
               for unit in UNITS}
    base = problem.base
    data: dict[str, Any] = {
        "name": f"{problem.cascade.name}-searched", "target": "spatial",
        "description": f"searched mapping of {problem.cascade.name} on {problem.arch.name}: {candidate.describe()}",
        "source": f"attnsim search ({problem.workload.name}, seq {problem.seq}; policy of {base.name})",
        "cascade": problem.cascade.name, "arch": problem.arch.name, "sizes": sizes, "loops": loops,
        "binding": {u: names for u, names in binding.items() if names},
        "pipelining": {"tile_waits_for": [], "serial": False, "drain": dict(base.pipelining.drain)},
        "closed_form": base.closed_form.model_dump(mode="json"),
    }
    if base.charge is not None:
        data["charge"] = list(base.charge)
    data["placement"] = {tensor: dict(entry) for tensor, entry in candidate_placement(problem, candidate).items()}
    return data


def candidate_mapping(problem: Problem, candidate: Candidate) -> MappingSpec:
    """:func:`candidate_data` validated (cached per candidate)."""
    key = ("mapping", candidate)
    if key not in problem.cache:
        problem.cache[key] = mapping_from_data(candidate_data(problem, candidate), f"<searched mapping of "
                                               f"{problem.cascade.name}>")
    return problem.cache[key]


def candidate_plan(problem: Problem, candidate: Candidate) -> Plan:
    """The generic mapper's plan of the candidate (MappingError when it cannot run)."""
    return build_plan(problem.cascade, candidate_mapping(problem, candidate), problem.workload, problem.seq,
                      problem.arch)


__all__ = ["Candidate", "NestShape", "Problem", "SMALLEST_TILE_FRACTION", "UNITS", "binding_choices",
           "block_choices", "candidate_data", "candidate_mapping", "candidate_plan", "enumerate_candidates",
           "make_problem", "tile_choices"]
