"""The paper's two baselines as shorthands for their (cascade, mapping) pairs: unfused
(``specs/mappings/unfused.yaml``) and FLAT (``specs/mappings/flat.yaml``), both the built-in
``attention-3pass`` cascade through the generic mapper's fusion groups (:mod:`mappers.cascade_groups`).
The hand-written mappers these replaced are kept, frozen, as the test oracles
``tests/mappers/reference_unfused.py`` and ``reference_flat.py``.
"""
from __future__ import annotations

from attnsim.archsim.spec import Arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.designs import MapOptions, MappedAttention, design_cascade
from attnsim.mappers.errors import MappingError
from attnsim.mappers.workloads import Workload

CASCADE = "attention-3pass"
OPTIONS = {"unfused": (), "flat": ("flat_table",)}
"""The ``MapOptions.extra`` keys each design accepts (``flat_table``: another FLAT choices table)."""


def _map(design: str, workload: Workload, seq: int, arch: Arch, options: MapOptions) -> MappedAttention:
    if options.causal:
        raise MappingError(f"{design}: causal masking is not supported by this design; expected causal=False")
    return map_named(design_cascade(design, workload, seq), design, workload, seq, arch, options=options,
                     known_options=OPTIONS[design])


def map_unfused(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """Unfused attention: QK, the 3-pass softmax and AV as three groups in sequence (``unfused.yaml``)."""
    return _map("unfused", workload, seq, arch, options)


def map_flat(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """FLAT: row-granular fusion of the 3-pass cascade (``flat.yaml``); ``options.extra["flat_table"]``
    names another choices table (a name in ``specs/mappings/`` or a path)."""
    return _map("flat", workload, seq, arch, options)


__all__ = ["CASCADE", "OPTIONS", "map_flat", "map_unfused"]
