"""The mapping search over the multi-pass (fusion-group) path: the choices of a fused group that holds the
whole pass rank per block (FLAT's one group of QK, the 3-pass softmax and AV; docs/mapping-search.md,
"FLAT's 3-pass cascade").

A candidate fixes, for the base mapping's one group:

* the **placement** of each group input (``once``: filled into the buffer once; ``per_tile``: streamed)
  and of each score fibre the base leaves open (``chip`` / ``dram``; :mod:`mappers.group_buffer`);
* the **stationarity** of each Einsum bound to the 2D array with two operands (``output``, ``weight``,
  ``input``: which operand's ranks lie over the array);
* the **block**, the fusion granularity along the block rank: the rank's array tile times a power of two,
  and the whole rank (FLAT's head granularity).

Derived, not chosen: the **spill** (:func:`mappers.group_buffer.group_buffer`: the score fibres overflow
when the block's need exceeds the buffer -- FLAT's own accounting, which reproduces its table's spill
column), the binding, pipelining, charge and energy placement (the base's).

Pruning, all exact: ``footprint`` (the double-buffered inputs and outputs alone, which cannot spill,
exceed the buffer); ``infeasible`` (the group mapper refuses the block: its ``live`` and ``staged``
tensors do not fit); ``bound`` -- *analytic*, before any schedule: latency >= max(the busiest unit's
compute cycles of the block, DRAM time of the compulsory traffic: every input and output once), energy
>= the operators' energy, on-chip bytes exact, memoised per (stationarity, block); *schedule*: the
schedule built, not run: busy cycles per unit (DRAM included), exact energy. A candidate whose bound a
front point dominates cannot enter the front. The seed is the base mapping at the point (FLAT's table
row where it has one), evaluated first.
"""
from __future__ import annotations

import itertools
import math
import time
from fractions import Fraction
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from attnsim.archsim.energy import energy_pj
from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.mappers.cascade_defaults import pass_analysis
from attnsim.mappers.cascade_groups import _analysis, map_groups, resolved_groups_data
from attnsim.mappers.cascade_plan import resolve_sizes
from attnsim.mappers.attention_ops import OpTemplate
from attnsim.mappers.attention_ops import dram_cycles as dram_transfer_cycles
from attnsim.mappers.cascade_work import lower
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.group_buffer import group_buffer
from attnsim.mappers.mapping_spec import MappingSpec, evaluate_expression
from attnsim.mappers.search.driver import SearchPoint, SearchResult, SearchStats, objective_key, screen_candidates
from attnsim.mappers.search.model import Evaluation
from attnsim.mappers.search.pruning import Bound, add_to_front, dominated, pareto_front
from attnsim.mappers.workloads import Workload

STATIONARITIES = ("output", "weight", "input")
INPUT_MODES = ("once", "per_tile")
FIBRE_MODES = ("chip", "dram")


@dataclass(frozen=True)
class GroupCandidate:
    """One choice of the group: ``traffic`` ((tensor, mode), ...), ``spatial`` ((Einsum, stationarity),
    ...), ``block`` (rows of the block rank)."""

    traffic: tuple[tuple[str, str], ...]
    spatial: tuple[tuple[str, str], ...]
    block: int

    def describe(self) -> str:
        """One line, e.g. ``block 1024; QK output, AV output; Q once, K per_tile, ..., QK chip, A chip``."""
        return (f"block {self.block}; " + ", ".join(f"{e} {s}" for e, s in self.spatial) + "; "
                + ", ".join(f"{t} {m}" for t, m in self.traffic))


@dataclass
class GroupsProblem:
    """One search point of the groups path (build it with :func:`make_groups_problem`)."""

    cascade: Cascade
    workload: Workload
    seq: int
    arch: Arch
    base: MappingSpec
    group: str
    inputs: tuple[str, ...]
    fibres: tuple[str, ...]
    fixed: dict[str, str]
    two_operand_2d: tuple[str, ...]
    tensor_ranks: dict[str, tuple[str, ...]]
    extents: dict[str, int]
    tile: dict[str, int]
    block_rank: str
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.cascade.name} on {self.arch.name}: {self.workload.name} at seq {self.seq}"


def make_groups_problem(cascade: Cascade, workload: Workload, seq: int, arch: Arch, base: MappingSpec
                        ) -> GroupsProblem:
    """The search point; MappingError (one line) for a base without exactly one fused group."""
    seq = workload.check_seq(seq)
    groups = base.groups or []
    if len(groups) != 1:
        raise MappingError(f"{base.origin}: groups: the groups search varies one fused group; this mapping has "
                           f"{len(groups)}")
    group = groups[0]
    work = resolve_sizes(cascade, base, workload, seq, arch)
    binding, _, statics = _analysis(cascade, base, arch, work)
    static = statics[0]
    family = set(pass_analysis(cascade).family.members)
    fixed = dict(group.traffic)
    fibres = tuple(t for t in static.intermediates if group.block_rank in static.ranks[t]
                   and set(static.ranks[t]) & family)
    from attnsim.mappers.cascade_plan import _values

    values = _values(work.sizes, arch)
    tile = {r: min(work.extents[r], evaluate_expression(e, values, f"{base.origin}: groups[0].tile.{r}"))
            for r, e in group.tile.items()}
    two = tuple(n for n in group.einsums if binding[n] == "pe2d" and len(work.einsums[n].reads) >= 2)
    chosen = tuple(t for t in fibres if t not in fixed)   # the base's fixed fibres are not counted (module doc)
    tensors = (*static.inputs, *static.outputs, *chosen)
    return GroupsProblem(cascade=cascade, workload=workload, seq=seq, arch=arch, base=base, group=group.name,
                         inputs=tuple(t for t in static.inputs if t not in fixed),
                         fibres=chosen, fixed=fixed, two_operand_2d=two,
                         tensor_ranks={t: static.ranks[t] for t in tensors}, extents=dict(work.extents),
                         tile=tile, block_rank=group.block_rank)


def block_choices(extent: int, step: int) -> list[int]:
    """Blocks along a rank of ``extent`` with array tile ``step``: ``step x 2^k`` below the rank (rounded
    up to the tile), and the whole rank, largest first."""
    whole = math.ceil(extent / step) * step
    values = {whole}
    block = step
    while block < whole:
        values.add(block)
        block *= 2
    return sorted(values, reverse=True)


def enumerate_group_candidates(problem: GroupsProblem) -> Iterator[GroupCandidate]:
    """Every candidate (module docstring)."""
    step = problem.tile.get(problem.block_rank, 1)
    blocks = block_choices(problem.extents[problem.block_rank], step)
    for block in blocks:
        for spatial in itertools.product(STATIONARITIES, repeat=len(problem.two_operand_2d)):
            for inputs in itertools.product(INPUT_MODES, repeat=len(problem.inputs)):
                for fibres in itertools.product(FIBRE_MODES, repeat=len(problem.fibres)):
                    traffic = (*zip(problem.inputs, inputs), *zip(problem.fibres, fibres))
                    yield GroupCandidate(tuple(traffic), tuple(zip(problem.two_operand_2d, spatial)), block)


def _buffer(problem: GroupsProblem, traffic: Mapping[str, str], block: int) -> Any:
    return group_buffer(problem.tensor_ranks, traffic, problem.fibres, problem.block_rank, block, problem.extents,
                        problem.tile)


def candidate_row(problem: GroupsProblem, candidate: GroupCandidate) -> dict[str, Any]:
    """The candidate as a row of group choices (``options.extra["group_choices"]`` of the group mapper),
    with the derived spill."""
    traffic = {**problem.fixed, **dict(candidate.traffic)}
    capacity = problem.arch.global_buffer.capacity_bytes // problem.arch.word_bytes
    spill = _buffer(problem, traffic, candidate.block).spill(capacity)
    return {"traffic": traffic, "spatial": dict(candidate.spatial), "block_factor": candidate.block, "spill": spill}


def onchip_bytes(problem: GroupsProblem, traffic: Mapping[str, str], block: int) -> int:
    """The group's buffer occupancy (need, at most the capacity), bytes."""
    arch = problem.arch
    return _buffer(problem, traffic, block).onchip_bytes(arch.global_buffer.capacity_bytes, arch.word_bytes)


def _map(problem: GroupsProblem, row: Mapping[str, Any] | None) -> MappedAttention:
    extra = {} if row is None else {"group_choices": {problem.group: row}}
    return map_groups(problem.cascade, problem.base, problem.workload, problem.seq, problem.arch,
                      options=MapOptions(extra=extra))


def analytic_bound(problem: GroupsProblem, candidate: GroupCandidate) -> Bound:
    """Before any schedule (module docstring): compute cycles of each unit over the head's blocks, DRAM
    time of every input and output once; the operators' energy; on-chip bytes exact."""
    key = ("compute", candidate.spatial, candidate.block)
    if key not in problem.cache:
        problem.cache[key] = _compute_bound(problem, candidate)
    cycles, ops_pj = problem.cache[key]
    traffic = {**problem.fixed, **dict(candidate.traffic)}
    return Bound(cycles / problem.arch.clock_hz, ops_pj, onchip_bytes(problem, traffic, candidate.block))


def _compute_bound(problem: GroupsProblem, candidate: GroupCandidate) -> tuple[float, float]:
    arch = problem.arch
    work = resolve_sizes(problem.cascade, problem.base, problem.workload, problem.seq, arch)
    binding, _, _ = _analysis(problem.cascade, problem.base, arch, work)
    group = (problem.base.groups or [])[0]
    heads = problem.workload.batch * problem.workload.heads
    rank = problem.block_rank
    blocks = math.ceil(problem.extents[rank] / candidate.block)
    block = {**problem.extents, rank: candidate.block}
    spatial_choice = dict(candidate.spatial)
    busy = {"pe2d": 0.0, "pe1d": 0.0}
    actions: dict[str, float] = {}
    from attnsim.mappers.cascade_groups import _spatial_map

    for name in group.einsums:
        einsum = work.einsums[name]
        unit = binding[name]
        lowered = lower(einsum, arch, unit)
        table = getattr(arch.arrays, unit).ops
        per_point = max(table[op] for op in lowered.actions) if group.op_overlap and lowered.actions else lowered.cycles
        points = einsum.points(block)
        if unit == "pe2d":
            dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}
            choice = spatial_choice.get(name, group.spatial.get(name))
            spatial = _spatial_map(einsum, choice, "<search>") if choice is not None else {}
            steps = math.prod(math.ceil(block.get(r, 1) / dims[spatial[r]]) if r in spatial else block.get(r, 1)
                              for r in einsum.iteration_ranks)
        else:
            steps = math.ceil(points / arch.pes_1d)
        busy[unit] += steps * per_point * blocks * heads
        for op, count in lowered.actions.items():
            actions[f"{unit}.{op}"] = actions.get(f"{unit}.{op}", 0.0) + count * points * blocks * heads
    words = sum(math.prod(problem.extents[r] for r in problem.tensor_ranks[t])
                for t in problem.tensor_ranks if t not in problem.fibres and t not in problem.fixed)
    dram_cycles = float(dram_transfer_cycles(arch, heads * words * arch.word_bytes))   # the mapper's exact rule
    return max(*busy.values(), dram_cycles), energy_pj(arch, actions)


def _templates_of(problem: GroupsProblem, row: Mapping[str, Any]) -> tuple[list[OpTemplate], int]:
    """The group's per-iteration operations under ``row`` and the iterations they repeat (all heads):
    :func:`mappers.cascade_groups.map_groups`'s own steps, stopped before the loop is unrolled."""
    from attnsim.mappers.cascade_groups import _GroupBuilder, _templates
    from attnsim.mappers.cascade_plan import _values

    work = resolve_sizes(problem.cascade, problem.base, problem.workload, problem.seq, problem.arch)
    binding, charge, statics = _analysis(problem.cascade, problem.base, problem.arch, work)
    builder = _GroupBuilder(problem.base, 0, work, problem.arch, problem.workload, _values(work.sizes, problem.arch),
                            row, "<search>", statics[0])
    resolved = builder.resolve()
    heads = problem.workload.batch * problem.workload.heads
    return _templates(builder, resolved, binding, charge), heads * resolved.iterations_per_head


def chain_bound(problem: GroupsProblem, templates: list[OpTemplate], iterations: int, onchip: int) -> Bound:
    """A schedule's exact energy and a latency bound, before the loop is unrolled or run: one iteration's
    operations form a dependency chain (load, each run of Einsums, its DRAM transfer, ...), so for every
    unit ``u`` latency >= (the chain before u's first operation, first iteration, with fills) + u's busy
    cycles (every execution, fills once) + (the chain after u's last operation, last iteration). The
    first and last iterations run in the loop's ramp, whose durations are rounded up."""
    cycles = 0.0
    for unit in dict.fromkeys(t.unit for t in templates):
        indices = [i for i, t in enumerate(templates) if t.unit == unit]
        busy = sum(float(t.cycles) * iterations + t.fill_cycles for t in templates if t.unit == unit)
        if any(Fraction(t.cycles).denominator != 1 for t in templates if t.unit == unit):
            busy -= 0.5   # the loop keeps a unit's fractional total exact, rounded half up (attention_ops)
        before = sum(float(t.cycles) + t.fill_cycles for t in templates[:indices[0]])
        after = sum(float(t.cycles) for t in templates[indices[-1] + 1:])
        cycles = max(cycles, before + busy + after)
    actions: dict[str, float] = {}
    for t in templates:
        for action, amount in t.actions.items():
            actions[action] = actions.get(action, 0.0) + amount * iterations
    return Bound(cycles / problem.arch.clock_hz, energy_pj(problem.arch, actions), onchip)


def _evaluate(mapped: MappedAttention, arch: Arch, onchip: int) -> Evaluation:
    from attnsim.archsim.engine import run

    result = run(mapped.schedule, arch)
    return Evaluation(latency_s=float(result.latency_s), energy_pj=float(result.energy_pj), onchip_bytes=onchip,
                      cycles=int(result.cycles), traffic_bytes=float(result.traffic_bytes))


def _point(problem: GroupsProblem, mapped: MappedAttention, evaluation: Evaluation,
           candidate: GroupCandidate | None) -> SearchPoint:
    data = resolved_groups_data(problem.base, mapped)
    data["name"] = f"{problem.base.name}-searched" if candidate is not None else problem.base.name
    data["source"] = (f"attnsim search ({problem.workload.name}, seq {problem.seq}; policy of {problem.base.name})"
                      if candidate is not None else problem.base.source)
    return SearchPoint(evaluation.latency_s, evaluation.energy_pj, evaluation.onchip_bytes, evaluation.cycles,
                       evaluation.traffic_bytes, data, candidate)  # type: ignore[arg-type]


def search_groups(problem: GroupsProblem, objective: str = "latency", budget_s: float | None = None,
                  progress: Any = None) -> SearchResult:
    """Search the group's choices (module docstring); the result as :func:`mappers.search.driver.search`'s."""
    key = objective_key(objective)
    started = time.perf_counter()
    stats = SearchStats()
    arch = problem.arch
    capacity_words = arch.global_buffer.capacity_bytes // arch.word_bytes
    seed_mapped = _map(problem, None)
    chosen = seed_mapped.choices["groups"][problem.group]
    seed_onchip = onchip_bytes(problem, chosen["traffic"], int(chosen["block"]))
    seed = _point(problem, seed_mapped, _evaluate(seed_mapped, arch, seed_onchip), None)
    points = [seed]
    bounded = screen_candidates(
        enumerate_group_candidates(problem),
        lambda c: _buffer(problem, {**problem.fixed, **dict(c.traffic)}, c.block).other_words > capacity_words,
        lambda c: analytic_bound(problem, c), key, stats)
    decided = stats.pruned["footprint"]
    front = pareto_front(points)
    for position, (_, _, candidate, bound) in enumerate(bounded):
        if budget_s is not None and time.perf_counter() - started > budget_s:
            stats.pruned["budget"] += len(bounded) - position
            break
        decided += 1
        if progress and position % 16 == 0:
            progress(decided, stats.enumerated)
        if dominated(bound, front):
            stats.pruned["bound"] += 1
            stats.bound_stage["analytic"] += 1
            continue
        row = candidate_row(problem, candidate)
        try:
            templates, iterations = _templates_of(problem, row)
        except MappingError:
            stats.pruned["infeasible"] += 1
            continue
        stats.schedules_built += 1
        if dominated(chain_bound(problem, templates, iterations, int(bound.onchip_bytes)), front):
            stats.pruned["bound"] += 1
            stats.bound_stage["schedule"] += 1
            continue
        clock = time.perf_counter()
        mapped = _map(problem, row)
        point = _point(problem, mapped, _evaluate(mapped, arch, int(bound.onchip_bytes)), candidate)
        stats.engine_s += time.perf_counter() - clock
        stats.evaluated += 1
        points.append(point)
        front = add_to_front(front, point)
    front = pareto_front(points)
    best_any = min(front, key=key)
    no_worse = [p for p in front if p.latency_s <= seed.latency_s and p.energy_pj <= seed.energy_pj]
    best = min(no_worse or front, key=key)
    stats.wall_s = time.perf_counter() - started
    if progress:
        progress(stats.enumerated, stats.enumerated)
    return SearchResult(label=problem.label, objective=objective, front=front, best=best, seed=seed, stats=stats,
                        best_any=best_any)


def uses_groups(cascade: Cascade, base: MappingSpec | None) -> bool:
    """Whether the search of ``cascade`` under ``base`` runs on the groups path: a base with ``groups:``,
    or no base and a multi-pass cascade."""
    return (base is not None and base.groups is not None) or (base is None and pass_analysis(cascade).passes > 1)


def search_groups_point(cascade: Cascade, workload: Workload, seq: int, arch: Arch, base: MappingSpec | None,
                        objective: str = "latency", budget_s: float | None = None, progress: Any = None
                        ) -> SearchResult:
    """:func:`search_groups` of the point, the base defaulting to the cascade's default group mapping
    (:func:`mappers.cascade_defaults.default_groups_mapping`)."""
    from attnsim.mappers.cascade_defaults import default_groups_mapping

    problem = make_groups_problem(cascade, workload, seq, arch, base or default_groups_mapping(cascade))
    return search_groups(problem, objective, budget_s, progress)


__all__ = ["GroupCandidate", "GroupsProblem", "analytic_bound", "block_choices", "candidate_row",
           "enumerate_group_candidates", "make_groups_problem", "onchip_bytes", "search_groups", "search_groups_point",
           "uses_groups"]
