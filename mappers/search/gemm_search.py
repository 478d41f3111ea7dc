"""Mapping search over the GEMM tilings of :mod:`mappers.gemm`: every dataflow, loop order, block height,
operand mode and chunk that fits the global buffer (:func:`mappers.gemm.gemm_candidates`), ranked by a
lower bound and evaluated on the engine best bound first.

The planner (:func:`mappers.gemm.plan_gemm`) picks, per dataflow, the fitting plan of least DRAM
traffic; this search picks by the objective (latency, energy or EDP) over all of them and all
dataflows. Bound (exact as a bound): latency >= max(the array's MAC steps plus fill/drain under
``fill_drain``, the plan's DRAM traffic / bandwidth); the Pareto front is over (latency_s, energy_pj,
onchip_bytes = resident + staging bytes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from attnsim.archsim.engine import run
from attnsim.archsim.spec import Arch
from attnsim.mappers.gemm import DATAFLOWS, GemmPlan, fold_fixed_cycles, gemm_candidates, schedule_of_plan
from attnsim.mappers.search.pruning import Bound, dominated, pareto_front


@dataclass
class GemmPoint:
    """One evaluated GEMM plan."""

    latency_s: float
    energy_pj: float
    onchip_bytes: int
    cycles: int
    traffic_bytes: float
    plan: GemmPlan

    def to_json(self) -> dict[str, Any]:
        return {"latency_s": self.latency_s, "energy_pj": self.energy_pj, "onchip_bytes": self.onchip_bytes,
                "cycles": self.cycles, "traffic_bytes": self.traffic_bytes,
                "mapping": {**self.plan.mapping, "description": self.plan.description}}


@dataclass
class GemmSearchResult:
    """Front, best point, and counts (candidates, pruned by bound, evaluated, wall time)."""

    front: list[GemmPoint]
    best: GemmPoint
    candidates: int
    pruned: int
    evaluated: int
    wall_s: float
    planner: dict[str, GemmPoint] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best.to_json(), "front": [p.to_json() for p in self.front],
                "planner": {df: p.to_json() for df, p in self.planner.items()},
                "stats": {"candidates": self.candidates, "pruned_bound": self.pruned, "evaluated": self.evaluated,
                          "wall_s": self.wall_s}}


def compute_cycles(plan: GemmPlan) -> int:
    """The array's cycles with DRAM never stalling (the same for every loop order, height and chunk)."""
    fixed = fold_fixed_cycles(plan.rows, plan.cols, plan.dataflow, plan.fill_drain)
    cycles = sum((fold.temporal + fixed) * count for fold, count in plan.fold_kinds)
    return cycles + (2 * plan.rows + plan.cols - 2 if plan.fill_drain == "overlapped" else 0)


def plan_bound(plan: GemmPlan, arch: Arch) -> Bound:
    """Latency >= max(compute cycles, DRAM traffic / bandwidth); energy >= MAC and DRAM energy."""
    from attnsim.archsim.energy import energy_pj

    traffic = plan.dram_read_bytes + plan.dram_write_bytes
    cycles = max(compute_cycles(plan), traffic / arch.dram_bytes_per_cycle)
    energy = energy_pj(arch, {"pe2d.mac": plan.macs, "dram.read": plan.dram_read_bytes,
                              "dram.write": plan.dram_write_bytes})
    return Bound(cycles / arch.clock_hz, energy, plan.resident_bytes + plan.staging_bytes)


def evaluate_plan(plan: GemmPlan, arch: Arch) -> GemmPoint:
    """Run the plan's schedule on the engine."""
    result = run(schedule_of_plan(plan, arch, einsum="linear"), arch)
    return GemmPoint(float(result.latency_s), float(result.energy_pj), plan.resident_bytes + plan.staging_bytes,
                     int(result.cycles), float(result.traffic_bytes), plan)


def _key(objective: str):  # type: ignore[no-untyped-def]
    from attnsim.mappers.search.driver import objective_key
    return objective_key(objective)


def search_gemm(m: int, n: int, k: int, arch: Arch, *, fill_drain: str = "overlapped", objective: str = "latency",
                dataflows: tuple[str, ...] = DATAFLOWS) -> GemmSearchResult:
    """Search the tilings of C[M,N] = A[M,K] @ B[K,N] on ``arch`` (module docstring); also evaluates the
    planner's choice per dataflow (``planner``) for comparison."""
    from attnsim.mappers.gemm import plan_gemm

    key = _key(objective)
    started = time.perf_counter()
    plans = [plan for dataflow in dataflows for plan in gemm_candidates(m, n, k, arch, dataflow, fill_drain)]
    ranked = sorted(((key(plan_bound(p, arch)), i, p) for i, p in enumerate(plans)), key=lambda item: item[:2])
    points: list[GemmPoint] = []
    pruned = 0
    for _, _, plan in ranked:
        if dominated(plan_bound(plan, arch), pareto_front(points)):
            pruned += 1
            continue
        points.append(evaluate_plan(plan, arch))
    front = pareto_front(points)
    planner = {df: evaluate_plan(plan_gemm(m, n, k, arch, df, fill_drain), arch) for df in dataflows}
    return GemmSearchResult(front=front, best=min(front, key=key), candidates=len(plans), pruned=pruned,
                            evaluated=len(points), wall_s=time.perf_counter() - started, planner=planner)


__all__ = ["GemmPoint", "GemmSearchResult", "compute_cycles", "evaluate_plan", "plan_bound", "search_gemm"]
