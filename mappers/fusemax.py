"""The three FuseMax designs of the paper's ablation as shorthands for their (cascade, mapping) pairs.

+Binding (``specs/mappings/fusemax.yaml``), +Architecture (``fusemax-arch.yaml``) and +Cascade
(``fusemax-cascade.yaml``) all run the built-in ``attention-1pass`` cascade through the generic spatial
mapper (:mod:`mappers.cascade_mapper`); the mapping files say what differs (binding, issue order,
software pipelining, placement, closed-form fill and drain). The hand-written mappers these replaced
are kept, frozen, as the test oracle ``tests/mappers/reference_fusemax.py``.
"""
from __future__ import annotations

from attnsim.archsim.spec import Arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.cascade_work import EXP_TAYLOR_MACS
from attnsim.mappers.designs import MapOptions, MappedAttention, design_cascade
from attnsim.mappers.workloads import Workload

CASCADE = "attention-1pass"
OPTIONS = {"fusemax": (), "fusemax-arch": (), "fusemax-cascade": ("glb_sizing_bytes",)}
"""The ``MapOptions.extra`` keys each design accepts."""


def _map(design: str, workload: Workload, seq: int, arch: Arch, options: MapOptions) -> MappedAttention:
    return map_named(design_cascade(design, workload, seq), design, workload, seq, arch, options=options,
                     known_options=OPTIONS[design])


def map_binding(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """FuseMax (+Binding): Mapping 1 with the 2D/1D software pipeline (``specs/mappings/fusemax.yaml``)."""
    return _map("fusemax", workload, seq, arch, options)


def map_architecture(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """+Architecture: FuseMax's arrays, one tile at a time (``specs/mappings/fusemax-arch.yaml``)."""
    return _map("fusemax-arch", workload, seq, arch, options)


def map_cascade(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """+Cascade: the 1-pass cascade on FLAT's arrays (``specs/mappings/fusemax-cascade.yaml``);
    ``options.extra["glb_sizing_bytes"]`` sizes ``P1`` with another buffer capacity (16 MiB reproduces
    the artifact, which sizes +Cascade with FuseMax's buffer)."""
    return _map("fusemax-cascade", workload, seq, arch, options)


__all__ = ["CASCADE", "EXP_TAYLOR_MACS", "OPTIONS", "map_architecture", "map_binding", "map_cascade"]
