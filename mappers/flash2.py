"""FlashAttention-2's schedule of the 1-pass cascade on a spatial accelerator, as a shorthand for its
(cascade, mapping) pair: ``attention-1pass`` with ``specs/mappings/flash2.yaml`` (FuseMax's tiling, every
Einsum of a tile in series, only DRAM overlapping compute) through :mod:`mappers.cascade_mapper`. The
hand-written mapper it replaced is kept, frozen, as the test oracle ``tests/mappers/reference_flash2.py``.
"""
from __future__ import annotations

from attnsim.archsim.spec import Arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.designs import MapOptions, MappedAttention, design_cascade
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import Workload

DESIGN = "flash2"


def map_attention(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """Schedule of FlashAttention-2 for ``workload`` at ``seq`` tokens on ``arch`` (module docstring)."""
    if options.extra:
        raise MappingError(f"{DESIGN}: unknown option '{sorted(options.extra)[0]}' (known: none)")
    return map_named(design_cascade(DESIGN, workload, seq), DESIGN, workload, seq, arch, options=options)


__all__ = ["DESIGN", "map_attention"]
