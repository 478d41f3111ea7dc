"""The cost model of the mapping search: a mapping mapped by the generic mapper and run on the engine.

Kept apart from the map space (:mod:`.mapspace`) and the search (:mod:`.driver`), as Timeloop splits
mapspace, search and model: the search only sees (latency, energy, on-chip bytes) of a mapping.
``onchip_bytes`` is the global-buffer peak of the mapping (every live tensor of one resident block,
double-buffered ones twice: ``choices["glb_peak_bytes"]`` of :func:`mappers.cascade_mapper.map_cascade`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnsim.archsim.engine import run
from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.mappers.cascade_mapper import map_cascade
from attnsim.mappers.designs import MappedAttention
from attnsim.mappers.mapping_spec import MappingSpec
from attnsim.mappers.workloads import Workload


@dataclass(frozen=True)
class Evaluation:
    """What the cost model says of one mapping: latency (s), energy (pJ), on-chip bytes, cycles, DRAM
    traffic (bytes)."""

    latency_s: float
    energy_pj: float
    onchip_bytes: int
    cycles: int
    traffic_bytes: float

    def to_json(self) -> dict[str, Any]:
        return {"latency_s": self.latency_s, "energy_pj": self.energy_pj, "onchip_bytes": self.onchip_bytes,
                "cycles": self.cycles, "traffic_bytes": self.traffic_bytes}


def evaluate_mapped(mapped: MappedAttention, arch: Arch) -> Evaluation:
    """Run an already mapped schedule on the engine."""
    result = run(mapped.schedule, arch)
    return Evaluation(latency_s=float(result.latency_s), energy_pj=float(result.energy_pj),
                      onchip_bytes=int(mapped.choices["glb_peak_bytes"]), cycles=int(result.cycles),
                      traffic_bytes=float(result.traffic_bytes))


def evaluate_mapping(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch) -> Evaluation:
    """Map ``cascade`` under ``mapping`` and run it (MappingError when it cannot run)."""
    return evaluate_mapped(map_cascade(cascade, mapping, workload, seq, arch), arch)


__all__ = ["Evaluation", "evaluate_mapped", "evaluate_mapping"]
