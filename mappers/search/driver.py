"""The search: walk the map space best lower bound first, prune, evaluate the rest with the cost model.

1. The seed (the base mapping, or the cascade's default mapping) is evaluated first: the front starts
   with it, so the search never returns a front that the seed dominates.
2. Every candidate of :func:`mapspace.enumerate_candidates` passes the ``footprint`` rule or is dropped;
   the survivors get their analytic bound (:func:`pruning.analytic_bound`) and are sorted by it under the
   objective.
3. In that order, while the budget lasts: a candidate whose analytic bound is dominated by the front is
   dropped (``bound``); else its schedule is built (``infeasible`` if the generic mapper refuses it) and
   dropped if its schedule bound is dominated; else it is evaluated by the cost model
   (:mod:`.model`, in this process or through an ``evaluator`` that runs batches elsewhere) and joins
   the evaluated points.
4. The result: the Pareto front of the evaluated points over (latency_s, energy_pj, onchip_bytes), the
   best point under the objective among those at least as fast and as frugal as the seed (so a searched
   mapping never regresses on the seed in either), the best of the whole front, and the counts of
   every pruning rule.

An ``evaluator`` is a callable taking a list of complete mappings as plain data and returning, in the
same order, an :class:`model.Evaluation` or a one-line error for each (the studies layer provides one
over local worker processes or a Dask cluster, :mod:`studies.search_run`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from attnsim.mappers.cascade_defaults import resolved_mapping_data
from attnsim.mappers.cascade_mapper import map_cascade
from attnsim.mappers.cascade_plan import build_plan
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import MappingSpec, mapping_from_data
from attnsim.mappers.search.mapspace import (Candidate, Problem, candidate_data, candidate_mapping,
                                             enumerate_candidates)
from attnsim.mappers.search.model import Evaluation, evaluate_mapped
from attnsim.mappers.search.pruning import (Bound, add_to_front, analytic_bound, dominated, footprint_bytes, pareto_front,
                                            schedule_bound)

OBJECTIVES = ("latency", "energy", "edp")
"""What the best point minimises: latency_s, energy_pj, or their product (energy-delay product)."""

Evaluator = Callable[[Sequence[dict[str, Any]]], Sequence["Evaluation | str"]]
Progress = Callable[[int, int], None]


@dataclass
class SearchPoint:
    """One evaluated mapping: its figures, the candidate (None for the seed) and the mapping as data."""

    latency_s: float
    energy_pj: float
    onchip_bytes: int
    cycles: int
    traffic_bytes: float
    mapping: dict[str, Any]
    candidate: Candidate | None = None

    @property
    def origin(self) -> str:
        return "seed" if self.candidate is None else "searched"

    def to_json(self) -> dict[str, Any]:
        return {"latency_s": self.latency_s, "energy_pj": self.energy_pj, "onchip_bytes": self.onchip_bytes,
                "cycles": self.cycles, "traffic_bytes": self.traffic_bytes, "origin": self.origin,
                "mapping": self.mapping}


@dataclass
class SearchStats:
    """Counts of the search: candidates enumerated, pruned per rule, schedules built, evaluated; wall time."""

    enumerated: int = 0
    pruned: dict[str, int] = field(default_factory=lambda: {"footprint": 0, "infeasible": 0, "bound": 0,
                                                            "budget": 0})
    bound_stage: dict[str, int] = field(default_factory=lambda: {"analytic": 0, "schedule": 0})
    dominated_alternatives: dict[str, int] = field(default_factory=lambda: {"placement": 0, "pipelining": 0})
    schedules_built: int = 0
    evaluated: int = 0
    failed: int = 0
    wall_s: float = 0.0
    engine_s: float = 0.0

    def fractions(self) -> dict[str, float]:
        """Fraction of the enumerated candidates each candidate-level rule removed."""
        total = max(1, self.enumerated)
        return {rule: count / total for rule, count in self.pruned.items()}

    def to_json(self) -> dict[str, Any]:
        return {"enumerated": self.enumerated, "pruned": dict(self.pruned), "bound_stage": dict(self.bound_stage),
                "fraction_pruned": self.fractions(), "dominated_alternatives": dict(self.dominated_alternatives),
                "schedules_built": self.schedules_built, "evaluated": self.evaluated, "failed": self.failed,
                "wall_s": self.wall_s, "engine_s": self.engine_s}


@dataclass
class SearchResult:
    """The Pareto front (sorted by latency), the seed's point and two picks under ``objective``: ``best``,
    the best front point that is at least as fast and as frugal (energy) as the seed (the seed itself
    when none beats it; any front point without a seed), and ``best_any``, the best of the whole front
    (it may trade energy for latency against the seed)."""

    label: str
    objective: str
    front: list[SearchPoint]
    best: SearchPoint
    seed: SearchPoint | None
    stats: SearchStats
    best_any: SearchPoint | None = None

    def to_json(self) -> dict[str, Any]:
        return {"point": self.label, "objective": self.objective, "best": self.best.to_json(),
                "best_any": None if self.best_any is None else self.best_any.to_json(),
                "seed": None if self.seed is None else self.seed.to_json(),
                "front": [p.to_json() for p in self.front], "stats": self.stats.to_json()}


def objective_key(objective: str) -> Callable[[Any], tuple[float, ...]]:
    """Sort key of a point (or bound) under ``objective`` (ties: latency, energy, on-chip bytes)."""
    if objective == "latency":
        return lambda p: (p.latency_s, p.energy_pj, p.onchip_bytes)
    if objective == "energy":
        return lambda p: (p.energy_pj, p.latency_s, p.onchip_bytes)
    if objective == "edp":
        return lambda p: (p.latency_s * p.energy_pj, p.latency_s, p.onchip_bytes)
    raise MappingError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _placement_alternatives(data: dict[str, Any]) -> int:
    """Placements the dominance rule did not enumerate for this candidate: every other valid level of
    each tile-local intermediate (forwarded ones have the register file and the buffer as well)."""
    extra = 0
    for entry in data["placement"].values():
        levels = entry["levels"]
        if levels == ["pe"]:
            extra += 2
        elif len(levels) == 1 and levels[0].endswith("register_file"):
            extra += 1
    return extra


def _point(problem: Problem, mapping: MappingSpec, evaluation: Evaluation, candidate: Candidate | None) -> SearchPoint:
    plan = build_plan(problem.cascade, mapping, problem.workload, problem.seq, problem.arch)
    data = resolved_mapping_data(plan)
    return SearchPoint(evaluation.latency_s, evaluation.energy_pj, evaluation.onchip_bytes, evaluation.cycles,
                       evaluation.traffic_bytes, data, candidate)



def screen_candidates(candidates: Iterable[Any], exceeds_buffer: Callable[[Any], bool],
                      bound_of: Callable[[Any], Any], key: Callable[[Any], tuple[float, ...]],
                      stats: Any) -> list[tuple[tuple[float, ...], int, Any, Any]]:
    """The exact screen of every search: count each candidate (``stats.enumerated``), drop those whose
    live footprint exceeds the buffer (``stats.pruned["footprint"]``), and return the rest as
    ``(key(bound), index, candidate, bound)``, best bound first, ties in enumeration order."""
    bounded = []
    for index, candidate in enumerate(candidates):
        stats.enumerated += 1
        if exceeds_buffer(candidate):
            stats.pruned["footprint"] += 1
            continue
        bound = bound_of(candidate)
        bounded.append((key(bound), index, candidate, bound))
    bounded.sort(key=lambda item: (item[0], item[1]))
    return bounded


def search(problem: Problem, objective: str = "latency", budget_s: float | None = None,
           evaluator: Evaluator | None = None, batch: int = 1, progress: Progress | None = None) -> SearchResult:
    """Search ``problem``'s map space (module docstring). ``budget_s``: wall-clock limit (None: none);
    ``evaluator``/``batch``: evaluate ``batch`` mappings at a time elsewhere; ``progress(done, total)``
    is called as candidates are decided."""
    key = objective_key(objective)
    started = time.perf_counter()
    stats = SearchStats()
    points: list[SearchPoint] = []
    seed_point = None
    if problem.seed is not None:
        mapped = map_cascade(problem.cascade, problem.seed, problem.workload, problem.seq, problem.arch)
        seed_point = _point(problem, problem.seed, evaluate_mapped(mapped, problem.arch), None)
        points.append(seed_point)
    capacity = problem.arch.global_buffer.capacity_bytes
    bounded = screen_candidates(enumerate_candidates(problem), lambda c: footprint_bytes(problem, c) > capacity,
                                lambda c: analytic_bound(problem, c), key, stats)
    decided = stats.pruned["footprint"]
    total = stats.enumerated
    if progress:
        progress(decided, total)
    pending: list[tuple[Candidate, dict[str, Any], Any]] = []
    n_einsums = len(problem.supported)

    def flush() -> None:
        nonlocal decided
        if not pending:
            return
        clock = time.perf_counter()
        if evaluator is None:
            results: Sequence[Evaluation | str] = [evaluate_mapped(mapped, problem.arch) for _, _, mapped in pending]
        else:
            results = evaluator([data for _, data, _ in pending])
        stats.engine_s += time.perf_counter() - clock
        for (candidate, data, _), result in zip(pending, results):
            if isinstance(result, str):
                stats.failed += 1
            else:
                stats.evaluated += 1
                points.append(_point(problem, candidate_mapping(problem, candidate), result, candidate))
        decided += len(pending)
        pending.clear()
        if progress:
            progress(decided, total)

    front = pareto_front(points)
    for position, (_, _, candidate, bound) in enumerate(bounded):
        if budget_s is not None and time.perf_counter() - started > budget_s:
            stats.pruned["budget"] += len(bounded) - position
            break
        if dominated(bound, front):
            stats.pruned["bound"] += 1
            stats.bound_stage["analytic"] += 1
            decided += 1
            continue
        try:
            data = candidate_data(problem, candidate)
            mapping = candidate_mapping(problem, candidate)
            mapped = map_cascade(problem.cascade, mapping, problem.workload, problem.seq, problem.arch)
        except MappingError:
            stats.pruned["infeasible"] += 1
            decided += 1
            continue
        stats.schedules_built += 1
        stats.dominated_alternatives["placement"] += _placement_alternatives(data)
        stats.dominated_alternatives["pipelining"] += 2 * (n_einsums + 1) - 1   # serial x tile waits
        exact = schedule_bound(problem, mapped.schedule, int(mapped.choices["glb_peak_bytes"]))
        if dominated(exact, front):
            stats.pruned["bound"] += 1
            stats.bound_stage["schedule"] += 1
            decided += 1
            continue
        pending.append((candidate, data, mapped))
        if len(pending) >= max(1, batch):
            known = len(points)
            flush()
            for point in points[known:]:
                front = add_to_front(front, point)
        if progress and position % 16 == 0:
            progress(decided, total)
    flush()
    if not points:
        raise MappingError(f"{problem.label}: no mapping of the map space runs (every candidate was refused: "
                           f"{stats.pruned['footprint']} by the footprint rule, {stats.pruned['infeasible']} "
                           "by the mapper)")
    front = pareto_front(points)
    best_any = min(front, key=key)
    no_worse = [p for p in front if seed_point is None or (p.latency_s <= seed_point.latency_s
                                                           and p.energy_pj <= seed_point.energy_pj)]
    best = min(no_worse or front, key=key)
    stats.wall_s = time.perf_counter() - started
    if progress:
        progress(total, total)
    return SearchResult(label=problem.label, objective=objective, front=front, best=best, seed=seed_point,
                        stats=stats, best_any=best_any)


def best_mapping(result: SearchResult) -> MappingSpec:
    """The best point's mapping, validated (what ``--out`` writes)."""
    return mapping_from_data(result.best.mapping, "<searched mapping>")


__all__ = ["Evaluator", "OBJECTIVES", "SearchPoint", "SearchResult", "SearchStats", "best_mapping", "screen_candidates",
           "objective_key", "search"]

