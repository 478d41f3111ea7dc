"""The merge phase of split-K and stream-K mappings: one merge CTA per query block with partials.

A split CTA (``CtaWork.partial``) stores, instead of the outputs, the partial results the cascade's
merge Einsums read (``place == 'merge'``: the Einsums over the split rank after the loop, e.g. the
global max, the rescaled denominators and numerators, the division), in FP32
(:func:`mappers.gpu_template_loads.store_partials`). The merge CTA of a query block loads its
``parts`` partials (from L2 when every partial fits in half of it, else from HBM), runs the merge
Einsums' work with the split rank at ``parts`` and the block's real rows, and stores the outputs.
Flash-Decoding runs this as a second kernel (FA2's ``combine`` kernel), LeanAttention in the host CTA
of each block; either way it follows the main CTAs and its cost is the time of these schedules
dispatched over the SMs.
"""
from __future__ import annotations

import math

from attnsim.archsim.schedule import Schedule
from attnsim.mappers.gpu_cascade_mapper import CascadeMapping, emit_group, fraction_name
from attnsim.mappers.gpu_common import OpList, Rates, m_blocks, query_rows, sm_schedule
from attnsim.mappers.gpu_template_loads import PARTIAL_BYTES, partial_elements, store_outputs


def merge_rows(m: CascadeMapping) -> int:
    """Real query rows of a block (the average over a grid head's blocks, rounded up)."""
    return math.ceil(query_rows(m.workload, m.tile) / m_blocks(m.workload, m.tile))


def partial_bytes(m: CascadeMapping, rows: int) -> float:
    """Bytes of the partials one split of a ``rows``-row query block stores."""
    return sum(partial_elements(m.plan, m.layout, t, rows) * PARTIAL_BYTES for t in m.plan.merge_reads())


def merge_schedule(m: CascadeMapping, parts: int) -> Schedule:
    """One merge CTA: load ``parts`` partials of a block, merge them, store the outputs."""
    rates = Rates.of(m.spec, m.workload.dtype, fraction_name(m.section))
    rows = merge_rows(m)
    extents = m.layout.extents(rows, m.tile.block_n, parts)
    ops = OpList(rates, m.workload.dtype)
    loaded: list[str] = []
    for tensor in m.plan.merge_reads():
        nbytes = parts * partial_elements(m.plan, m.layout, tensor, rows) * PARTIAL_BYTES
        loaded += ops.load(f"ld{tensor}_m", nbytes, 0.0 if m.partials_in_l2 else 1.0, [], einsum=tensor)
    previous: list[str] = []
    for group in m.plan.of_place("merge"):
        op_id = f"{group.name}_m"
        emit_group(ops, group, op_id, extents, loaded + previous)
        previous = [op_id]
    store_outputs(ops, m.plan, ["m"], "m", rows, m.layout, m.tile.block_n, 1.0)
    return sm_schedule(ops.ops, [], 0, [], {}, name=f"{m.name} merge of {parts}")


__all__ = ["merge_rows", "merge_schedule", "partial_bytes"]
