"""What the engine returns: cycles, time, per-unit and per-Einsum activity, actions, energy, area."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class TraceRow(NamedTuple):
    """One executed operation instance (kept only by full, non-extrapolated runs with trace=True)."""

    unit: str
    einsum: str
    op_id: str
    block: str
    iteration: int
    start_cycle: int
    end_cycle: int


@dataclass
class Result:
    """Outcome of :func:`archsim.engine.run`.

    Attributes:
        cycles: makespan in cycles (last operation's end; the schedule starts at cycle 0).
        latency_s: cycles / clock_hz (None without an architecture).
        busy_cycles: {unit: sum over executed ops of duration_cycles x util} (lane-cycles).
        utilisation: {unit: busy_cycles / (cycles x lanes)}, in [0, 1].
        per_einsum: {einsum: {unit: busy cycles}} (untagged operations under ``""``).
        actions: summed action counts in natural units (ops, words, bytes; see archsim.schedule).
        energy_pj: total energy in pJ (None without an architecture).
        energy_breakdown_pj: {action: pJ} (empty without an architecture).
        traffic_bytes: DRAM traffic, actions ``dram.read`` + ``dram.write`` in bytes.
        area_mm2: chip area in mm^2 (None without an architecture).
        extrapolated_iterations: block iterations not simulated but extrapolated (0 = full run).
        simulated_ops: operation instances actually simulated.
        timeline: per-op rows for a Gantt chart (only with trace=True), else None.
    """

    cycles: int
    latency_s: float | None
    busy_cycles: dict[str, float]
    utilisation: dict[str, float]
    per_einsum: dict[str, dict[str, float]]
    actions: dict[str, float]
    energy_pj: float | None
    energy_breakdown_pj: dict[str, float]
    traffic_bytes: float
    area_mm2: float | None
    extrapolated_iterations: int = 0
    simulated_ops: int = 0
    timeline: list[TraceRow] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict whose key names carry the units."""
        return {
            "cycles": self.cycles,
            "latency_s": self.latency_s,
            "busy_cycles": dict(self.busy_cycles),
            "utilisation": dict(self.utilisation),
            "per_einsum_busy_cycles": {einsum: dict(units) for einsum, units in self.per_einsum.items()},
            "actions_natural_units": dict(self.actions),
            "energy_pj": self.energy_pj,
            "energy_breakdown_pj": dict(self.energy_breakdown_pj),
            "traffic_bytes": self.traffic_bytes,
            "area_mm2": self.area_mm2,
            "extrapolated_iterations": self.extrapolated_iterations,
            "simulated_ops": self.simulated_ops,
        }
