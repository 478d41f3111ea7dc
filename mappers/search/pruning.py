"""Pruning rules of the mapping search, and which of them are exact.

=====================  =======  ===============================================================================
rule                   exact?   what it does
=====================  =======  ===============================================================================
``footprint``          exact    the live footprint that the pass analysis proves necessary
                                (:func:`einsum_ir.bounds.live_bounds`: recurrence state, reused and partial
                                tensors of one resident block) exceeds the global buffer: no placement can
                                run the candidate, it is skipped before any plan is built
``infeasible``         exact    the generic mapper refuses the candidate (its own fit rule, also counting the
                                streamed tiles; an issue order the dependencies forbid)
``bound``              exact    a lower bound of (latency, energy, on-chip bytes) is dominated by a point
                                already evaluated, so the candidate cannot enter the Pareto front. Two
                                bounds: *analytic* (before a plan: per-unit compute cycles of the binding
                                and DRAM time of the compulsory traffic; operator and DRAM energy; the live
                                footprint) and *schedule* (the schedule built but not run: busy cycles per
                                unit, exact energy and buffer peak, which do not depend on timing)
``placement``          exact    per tile-local intermediate, only the cheapest level it may live at is kept
                                (forwarded in the PE when every reader is on the producer's unit, else the
                                reader unit's register file or the global buffer, whichever the charged
                                actions price lower). Placement changes no cycle in the model and energy is
                                a sum over tensors, so the choice per tensor is independent and dominant
``pipelining``         exact    no tile waits, no serialisation: the engine issues in order and starts an
                                operation when its unit and its dependencies allow, so an added dependency
                                can only delay it; the actions are the same
``neighbourhood``      no       bindings at most one Einsum away from the seed's (and each unit taking
                                all it can); tiles at least 1/8 of the array dimension; fusion granularities
                                powers of two (heuristic limits of the map space, :mod:`.mapspace`)
``budget``             no       the search stops at its wall-clock budget, best lower bound first
=====================  =======  ===============================================================================

"Exact" means: a candidate skipped by the rule could not have changed the Pareto front of the map
space (or, for placement and pipelining, is matched or beaten by the one kept).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from attnsim.archsim.energy import energy_pj
from attnsim.archsim.schedule import Block, Schedule
from attnsim.mappers.cascade_defaults import pass_analysis
from attnsim.mappers.cascade_plan import accumulates, default_placement, footprint_elements, workload_sizes
from attnsim.mappers.cascade_work import CascadeWork, cascade_work, lower
from attnsim.mappers.search.mapspace import Candidate, Problem

RULES = ("footprint", "infeasible", "bound", "placement", "pipelining")
"""Pruning rules counted by the search (module docstring)."""

RELATIVE_SLACK = 1e-9
"""A bound dominates only by more than this relative margin (float sums in another order)."""


@dataclass(frozen=True)
class Bound:
    """A lower bound (or exact value) of a candidate's latency (s), energy (pJ) and on-chip bytes."""

    latency_s: float
    energy_pj: float
    onchip_bytes: float


def dominated(bound: Bound, front: Iterable[Any]) -> bool:
    """Whether some evaluated point of ``front`` (``latency_s``, ``energy_pj``, ``onchip_bytes``) is no
    worse than ``bound`` in all three and better in one: then nothing at or above the bound can enter
    the front. Values within :data:`RELATIVE_SLACK` count as equal (and equal does not dominate)."""
    for point in front:
        values = ((point.latency_s, bound.latency_s), (point.energy_pj, bound.energy_pj),
                  (point.onchip_bytes, bound.onchip_bytes))
        if all(p <= b * (1 + RELATIVE_SLACK) for p, b in values) and \
                any(p < b * (1 - RELATIVE_SLACK) for p, b in values):
            return True
    return False


def pareto_front(points: Sequence[Any]) -> list[Any]:
    """The points not dominated by another (exact comparisons), ties kept once, sorted by latency."""
    front = []
    for point in points:
        key = (point.latency_s, point.energy_pj, point.onchip_bytes)
        beaten = False
        for other in points:
            okey = (other.latency_s, other.energy_pj, other.onchip_bytes)
            if all(o <= k for o, k in zip(okey, key)) and okey != key:
                beaten = True
                break
        if not beaten and all((p.latency_s, p.energy_pj, p.onchip_bytes) != key for p in front):
            front.append(point)
    return sorted(front, key=lambda p: (p.latency_s, p.energy_pj, p.onchip_bytes))


def add_to_front(front: list[Any], point: Any) -> list[Any]:
    """``front`` (a Pareto front) with ``point`` added: unchanged when a front point is no worse in all
    three, else without the points ``point`` dominates (the same set as :func:`pareto_front`)."""
    key = (point.latency_s, point.energy_pj, point.onchip_bytes)
    keys = [(p.latency_s, p.energy_pj, p.onchip_bytes) for p in front]
    if any(all(o <= k for o, k in zip(other, key)) for other in keys):
        return front
    kept = [p for p, other in zip(front, keys) if not all(k <= o for k, o in zip(key, other))]
    return sorted([*kept, point], key=lambda p: (p.latency_s, p.energy_pj, p.onchip_bytes))


# --------------------------------------------------------------------------------------------------
# Sizes and the tile of a candidate.


def candidate_sizes(problem: Problem, candidate: Candidate) -> dict[str, int]:
    """The shape symbols of the candidate (workload sizes plus the one the nest sets)."""
    sizes = workload_sizes(problem.workload, problem.seq)
    shape = candidate.shape
    if shape.size_symbol is not None:
        extent = sizes[pass_analysis(problem.cascade).family.shape.name]
        sizes[shape.size_symbol] = extent // candidate.row_tile if shape.size_inverse else candidate.row_tile
    return sizes


def _work(problem: Problem, candidate: Candidate) -> CascadeWork:
    return cascade_work(problem.cascade, candidate_sizes(problem, candidate))


def candidate_tile(problem: Problem, candidate: Candidate, work: CascadeWork) -> dict[str, int]:
    """Rank -> extent of one tile (the generic mapper's ``Plan.tile``): the spread rank at its tile, the
    parallel rank at its column tile, the streamed rank 1, every other rank whole."""
    tile = dict(work.extents)
    shape = candidate.shape
    tile[shape.streamed] = 1
    tile[shape.spread] = candidate.row_tile
    tile[problem.column] = candidate.col_tile
    return tile


# --------------------------------------------------------------------------------------------------
# Placement by dominance.


def dominant_placement(problem: Problem, candidate: Candidate) -> dict[str, Any]:
    """Every tensor's placement: the base's (or the default) for inputs, views, outputs, recurrence state
    and accumulators; for the other intermediates the cheapest valid level (module docstring)."""
    work = _work(problem, candidate)
    cascade = problem.cascade
    family = frozenset(pass_analysis(cascade).family.members)
    binding = dict(candidate.binding)
    tile = candidate_tile(problem, candidate, work)
    base = problem.base
    own_base = base.cascade in (None, cascade.name)
    accumulated = {w.write.tensor for w in work.compute if accumulates(w, family)}
    tensors = list(dict.fromkeys([*cascade.inputs, *(w.write.tensor for w in work.einsums.values())]))
    placement: dict[str, Any] = {}
    for tensor in tensors:
        policy = (work.source_of(tensor) in cascade.inputs or tensor in cascade.outputs
                  or tensor in cascade.iterative_dims or tensor in accumulated or not work.producers(tensor))
        if policy:
            chosen = base.placement.get(tensor) if own_base else None
            place = chosen or default_placement(work, tensor, family)
            placement[tensor] = place.model_dump(mode="json", exclude_defaults=True)
            placement[tensor]["levels"] = list(place.levels)
            continue
        placement[tensor] = _cheapest(problem, work, tensor, binding, tile)
    return placement


def _cheapest(problem: Problem, work: CascadeWork, tensor: str, binding: Mapping[str, str],
              tile: Mapping[str, int]) -> dict[str, Any]:
    producers = work.producers(tensor)
    consumers = work.consumers(tensor)
    home = {binding[p] for p in producers}
    units = {binding[c] for c in consumers}
    if len(home) == 1 and units <= home:
        return {"levels": ["pe"]}
    writes = sum(work.einsums[p].write_elements(tile) for p in producers)
    reads = {c: work.einsums[c].read_elements(tile).get(tensor, 0) for c in consumers}
    options: list[tuple[float, int, dict[str, Any]]] = []
    glb = writes * _price(problem, "global_buffer.write") + sum(reads.values()) * _price(problem, "global_buffer.read")
    options.append((glb, 1, {"levels": ["global_buffer"]}))
    away = units - home
    if len(home) == 1 and len(away) == 1:
        unit = next(iter(away))
        readers = [c for c in consumers if binding[c] == unit]
        cost = writes * _price(problem, f"{unit}.register_file.write") + \
            sum(reads[c] for c in readers) * _price(problem, f"{unit}.register_file.read")
        entry: dict[str, Any] = {"levels": [f"{unit}.register_file"]}
        if len(readers) < len(consumers):
            entry["read_by"] = readers
        options.append((cost, 0, entry))
    return min(options, key=lambda item: (item[0], item[1]))[2]


def _price(problem: Problem, action: str) -> float:
    """pJ of one counted ``action`` under the base's ``charge`` (0 when not charged or not priced)."""
    key = ("price", action)
    if key not in problem.cache:
        charge = problem.base.charge
        charged = charge is None or action in charge
        problem.cache[key] = energy_pj(problem.arch, {action: 1.0}) if charged and action in problem.arch.energy \
            else 0.0
    return problem.cache[key]


# --------------------------------------------------------------------------------------------------
# The footprint rule.


def footprint_bytes(problem: Problem, candidate: Candidate) -> int:
    """The pass analysis's minimum live footprint of one resident block, bytes
    (:func:`einsum_ir.bounds.live_bounds` with the parallel rank's tile = ``block x col_tile``)."""
    from attnsim.einsum_ir.bounds import live_bounds

    key = ("bounds",)
    if key not in problem.cache:
        bounds = live_bounds(pass_analysis(problem.cascade))
        symbols = sorted(bounds.total.free_symbols, key=lambda s: s.name)
        problem.cache[key] = (bounds, symbols, sympy.lambdify(symbols, bounds.total, "math"))
    bounds, symbols, function = problem.cache[key]
    sizes = candidate_sizes(problem, candidate)
    tiles = {symbol.name: rank for rank, symbol in bounds.tiles.items()}
    work = _work(problem, candidate)
    values = []
    for symbol in symbols:
        if symbol.name in tiles:
            rank = tiles[symbol.name]
            values.append(candidate.block * candidate.col_tile if rank == problem.column else work.extents[rank])
        elif symbol.name in sizes:
            values.append(sizes[symbol.name])
        else:
            return 0   # a shape the workload does not fix: no bound from it
    return int(function(*values)) * problem.arch.word_bytes


# --------------------------------------------------------------------------------------------------
# The analytic bound (before a plan).


def _steps(problem: Problem, candidate: Candidate, name: str, unit: str, tile: Mapping[str, int],
           work: CascadeWork) -> int:
    """Steps of one tile of Einsum ``name`` on ``unit`` (the generic mapper's rule, docs/mapping.md)."""
    arch = problem.arch
    rows, cols = ("cols", "rows") if candidate.swap else ("rows", "cols")
    spatial = {candidate.shape.spread: rows, problem.column: cols}
    ranks = work.einsums[name].iteration_ranks
    steps = 1
    if unit == "pe2d":
        dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}
        for rank in ranks:
            extent = tile.get(rank, 1)
            steps *= math.ceil(extent / dims[spatial[rank]]) if rank in spatial else extent
        return steps
    lanes = arch.pes_1d
    lane_ranks = [r for r in ranks if spatial.get(r) == "cols"]
    for rank in ranks:
        extent = tile.get(rank, 1)
        steps *= math.ceil(extent / lanes) if rank in lane_ranks else extent
    return steps if lane_ranks else math.ceil(steps / lanes)


def _charged(problem: Problem, action: str) -> bool:
    key = ("charged", action)
    if key not in problem.cache:
        charge = problem.base.charge
        problem.cache[key] = action.startswith("dram.") or (
            (charge is None or action in charge) and action in problem.arch.energy)
    return problem.cache[key]


def candidate_placement(problem: Problem, candidate: Candidate) -> dict[str, Any]:
    """:func:`dominant_placement`, cached per tile and binding (the fusion granularity does not change it)."""
    key = ("placement", candidate.shape, candidate.row_tile, candidate.col_tile, candidate.swap, candidate.binding)
    if key not in problem.cache:
        problem.cache[key] = dominant_placement(problem, candidate)
    return problem.cache[key]


def analytic_bound(problem: Problem, candidate: Candidate) -> Bound:
    """Before any plan or schedule: latency >= max(each unit's compute cycles, the DRAM time of the
    traffic the nest must move: group tensors once, streamed tensors once per resident block, outputs
    once); energy: operators, accesses as placed and charged, DRAM traffic (what the schedule's
    actions add up to); on-chip bytes: every tensor placed in the global buffer, one block of it (two
    when double-buffered), as the generic mapper counts its peak."""
    work = _work(problem, candidate)
    cascade = problem.cascade
    arch = problem.arch
    family = frozenset(pass_analysis(cascade).family.members)
    tile = candidate_tile(problem, candidate, work)
    extents = work.extents
    heads = problem.workload.batch * problem.workload.heads
    looped = {candidate.shape.streamed, candidate.shape.spread, problem.column}
    tiles_per_head = math.prod(extents[r] // tile[r] for r in looped)
    blocks_per_head = extents[problem.column] // tile[problem.column]
    placement = candidate_placement(problem, candidate)
    busy = {"pe2d": 0.0, "pe1d": 0.0}
    actions: dict[str, float] = {}

    def add(action: str, amount: float) -> None:
        if _charged(problem, action):
            actions[action] = actions.get(action, 0.0) + amount

    binding = dict(candidate.binding)
    tile_key = (candidate.shape, candidate.row_tile, candidate.col_tile, candidate.swap)
    for w in work.compute:
        unit = binding[w.name]
        memo_key = ("einsum", tile_key, w.name, unit)
        memo = problem.cache.get(memo_key)
        if memo is None:
            lowered = lower(w, arch, unit)
            in_body = bool(set(w.iteration_ranks) & family) or w.einsum.iterative_rank == candidate.shape.streamed
            count = heads * (tiles_per_head if in_body else blocks_per_head)
            cycles = _steps(problem, candidate, w.name, unit, tile, work) * lowered.cycles * count
            points = w.points(tile) * count
            ops = {f"{unit}.{op}": n * points for op, n in lowered.actions.items()}
            reads = {t: e * count for t, e in w.read_elements(tile).items()}
            memo = problem.cache[memo_key] = (cycles, ops, reads, w.write_elements(tile) * count,
                                              in_body and accumulates(w, family))
        cycles, ops, reads, writes, accumulating = memo
        busy[unit] += cycles
        for action, amount in ops.items():
            actions[action] = actions.get(action, 0.0) + amount
        for tensor, elements in reads.items():
            place = placement[tensor]
            if place.get("read_by") is not None and w.name not in place["read_by"]:
                continue
            if place["levels"][0] not in ("pe", "dram"):
                add(f"{place['levels'][0]}.read", elements)
        written = placement[w.write.tensor]["levels"]
        for level in written:
            if level not in ("pe", "dram"):
                add(f"{level}.write", writes)
        if accumulating and written[0] not in ("pe", "dram"):
            add(f"{written[0]}.read", writes)
    memo_key = ("dram", tile_key, candidate.block, candidate.binding)
    if memo_key not in problem.cache:
        problem.cache[memo_key] = _dram_and_onchip(problem, candidate, work, placement, tile, heads, family)
    read_words, write_words, onchip = problem.cache[memo_key]
    word = arch.word_bytes
    add("dram.read", heads * read_words * word)
    add("dram.write", heads * write_words * word)
    add("global_buffer.write", heads * read_words)
    cycles = max(max(busy.values()), heads * (read_words + write_words) * word / arch.dram_bytes_per_cycle)
    return Bound(cycles / arch.clock_hz, energy_pj(arch, actions), onchip)


def _dram_and_onchip(problem: Problem, candidate: Candidate, work: CascadeWork, placement: Mapping[str, Any],
                     tile: Mapping[str, int], heads: int, family: frozenset[str]) -> tuple[int, int, int]:
    """(input words read per head, output words written per head, on-chip peak bytes)."""
    cascade = problem.cascade
    extents = work.extents
    word = problem.arch.word_bytes
    groups_per_head = extents[problem.column] // (candidate.col_tile * candidate.block)
    whole = dict(extents)
    read_words = 0
    seen: set[str] = set()
    for w in work.compute:
        for tensor, elements in w.read_elements(whole).items():
            if tensor in seen or work.source_of(tensor) not in cascade.inputs or placement[tensor]["levels"][0] == "dram":
                continue
            seen.add(tensor)
            read_words += elements * (groups_per_head if _ranks_of(w, tensor) & family else 1)
    write_words = sum(w.write_elements(whole) for w in work.compute if w.write.tensor in cascade.outputs
                      and not _later_writer(work, w))
    block = dict(tile)
    block[problem.column] *= candidate.block
    onchip = sum(footprint_elements(work, t, block) * word * (2 if p.get("buffering") == "double" else 1)
                 for t, p in placement.items() if "global_buffer" in p["levels"])
    return read_words, write_words, onchip


def _ranks_of(work: Any, tensor: str) -> set[str]:
    for ref in work.reads:
        if ref.tensor == tensor:
            return set(ref.ranks)
    return set()


def _later_writer(work: CascadeWork, einsum: Any) -> bool:
    """Whether another computing Einsum after ``einsum`` writes the same output (only the last is stored)."""
    names = [w.name for w in work.compute if w.write.tensor == einsum.write.tensor]
    return names[-1] != einsum.name


# --------------------------------------------------------------------------------------------------
# The schedule bound (a schedule built, not run).


def schedule_totals(schedule: Schedule) -> tuple[dict[str, float], dict[str, float]]:
    """(actions summed over every executed operation, busy cycles per unit): what the engine will count,
    independent of timing (every operation of a block runs once per repetition)."""
    actions: dict[str, float] = {}
    busy: dict[str, float] = {}

    def walk(items: Sequence[Any], times: int) -> None:
        for item in items:
            if isinstance(item, Block):
                walk(item.items, times * item.repeats)
                continue
            busy[item.unit] = busy.get(item.unit, 0.0) + item.duration_cycles * times
            for action, amount in item.actions.items():
                actions[action] = actions.get(action, 0.0) + amount * times

    for block in schedule.blocks:
        walk(block.items, block.repeats)
    for unit in busy:
        busy[unit] /= schedule.lanes_of(unit)
    return actions, busy


def schedule_bound(problem: Problem, schedule: Schedule, onchip_bytes: int) -> Bound:
    """Latency >= the busiest unit's busy cycles; energy and on-chip bytes exact."""
    actions, busy = schedule_totals(schedule)
    cycles = max(busy.values()) if busy else 0.0
    return Bound(cycles / problem.arch.clock_hz, energy_pj(problem.arch, actions), onchip_bytes)


__all__ = ["Bound", "RELATIVE_SLACK", "RULES", "add_to_front", "analytic_bound", "candidate_placement", "candidate_sizes", "candidate_tile",
           "dominant_placement",
           "dominated", "footprint_bytes", "pareto_front", "schedule_bound", "schedule_totals"]
