"""Tile loads and stores of the GPU schedule templates: which inputs, how many bytes, what waits.

Inputs indexed by the keys rank are loaded per K/V tile, the others once per CTA. Bytes are clipped
to the tensor's real extent (issue #12): a CTA's query block and a head's last K/V tile may be
ragged, and no CTA loads or stores rows beyond ``seq``. Per CTA the schedule is uniform over its
tiles, so the clipped K/V bytes are spread evenly over them: each tile load moves ``seq / (tiles x
block_n)`` of a full tile; each CTA's query block moves its own real rows (:func:`rows_fill` with the
CTA's work); summed over a head's CTAs and tiles that is exactly the tensor's extent (for K/V: times
the CTAs that read each tile).
"""
from __future__ import annotations

from typing import Any

from attnsim.mappers.gpu_cascade_groups import Group, GroupPlan
from attnsim.mappers.gpu_common import GpuAttention, OpList, m_blocks, query_rows

OUTPUT_BYTES = 2
"""The cascade's outputs are written in 16 bits."""


def keys_fill(workload: GpuAttention, block_n: int, work: Any = None) -> float:
    """Real keys over the keys the tiles cover: ``seq / (ceil(seq / block_n) x block_n)``; for CTA
    ``work`` (its ``tiles`` K/V tiles: a causal CTA stops at its diagonal) ``min(seq, tiles x block_n) /
    (tiles x block_n)``, so a CTA that never reaches the ragged last tile loads whole tiles."""
    tiles = -(-workload.seq // block_n) if work is None else max(1, work.tiles)
    return min(workload.seq, tiles * block_n) / (tiles * block_n)


def rows_fill(workload: GpuAttention, tile: Any, work: Any = None) -> float:
    """Real query rows over ``block_m``: of CTA ``work`` (:class:`~mappers.gpu_common.CtaWork`: 1 for a
    full block, less for a head's ragged last block, 0 for a cluster's padding block), or without
    ``work`` the average over a grid head's CTAs, ``rows / (blocks x block_m)`` (rows: the query length,
    times the packed heads of a GQA group). Per CTA, so that no full CTA is charged less than its rows:
    spreading the clip evenly made a length one past a multiple of ``block_m`` faster than the multiple
    where memory bounds the CTA (issue #12)."""
    if work is not None:
        return 1.0 if work.rows is None else work.rows / tile.block_m
    return query_rows(workload, tile) / (m_blocks(workload, tile) * tile.block_m)


def reader_stage(plan: GroupPlan, tensor: str) -> int:
    """The pipeline stage of the earliest op reading input ``tensor``."""
    return min((g.stage for g in plan.readers_of_input(tensor)), default=0)


def input_deps(plan: GroupPlan, group: Group, ends: dict[str, tuple[str, ...]], *, body: bool) -> list[Any]:
    """Dependencies of ``group`` on its inputs' loads: a per-tile input read by a stage-s op was
    loaded s iterations earlier; a CTA input once, in the prologue."""
    out: list[Any] = []
    for tensor in group.inputs:
        ids = ends.get(tensor, ())
        lag = group.stage if tensor in plan.work.tile_inputs else 0
        if lag and body:
            out += [("prev", i) for i in ids]
        else:
            out += list(ids)
    return out


def store_outputs(ops: OpList, plan: GroupPlan, suffixes: list[str], op_suffix: str, rows: int,
                  layout: Any, block_n: int, fill: float, after: tuple[Any, ...] = ()) -> None:
    """Write every cascade output of the CTA (or copy) ``op_suffix`` through L2 to HBM in 16 bits,
    after the ops holding the output's pieces of each consumer in ``suffixes`` (and ``after``)."""
    cascade = plan.work.cascade
    for tensor in cascade.outputs:
        producer = plan.work.producer(tensor)
        holders = [g.name for g in plan.groups.values() if any(p.einsum == producer for p in g.pieces)]
        deps = [f"{h}_{s}" for s in suffixes for h in holders] + list(after)
        elements = layout.tensor_elements(cascade, tensor, rows, block_n)
        ops.store(f"st{tensor}_{op_suffix}", elements * OUTPUT_BYTES * fill, deps, einsum=producer or tensor)


PARTIAL_BYTES = 4
"""Split-K partials (running max, denominator, numerator) are stored in FP32 (FA2's split-KV kernel
writes its O accumulator and log-sum-exp in FP32)."""


def partial_elements(plan: GroupPlan, layout: Any, tensor: str, rows: int) -> int:
    """Elements of partial ``tensor`` one split of a query block holds: its Einsum's output ranks at
    the CTA's extents (rows for the rows rank; 1 for the keys, tile and split ranks)."""
    einsum = plan.work.cascade.einsum(plan.work.producer(tensor))
    extents = layout.extents(rows, 1)
    count = 1
    for rank in einsum.output_ranks:
        count *= 1 if rank in layout.keys_ranks else extents.get(rank, 1)
    return count


def store_partials(ops: OpList, plan: GroupPlan, op_suffix: str, rows: int, layout: Any, fill: float, *,
                   to_hbm: bool) -> None:
    """Write the partials the merge reads (:meth:`GroupPlan.merge_reads`) in FP32 through L2 (and on to
    HBM unless they stay in L2), after the ops holding their Einsums' pieces."""
    for tensor in plan.merge_reads():
        producer = plan.work.producer(tensor)
        holders = [g.name for g in plan.groups.values() if any(p.einsum == producer for p in g.pieces)
                   and g.place != "merge"]
        nbytes = partial_elements(plan, layout, tensor, rows) * PARTIAL_BYTES * fill
        ops.store(f"st{tensor}_{op_suffix}", nbytes, [f"{h}_{op_suffix}" for h in holders], einsum=producer,
                  to_hbm=to_hbm)


__all__ = ["OUTPUT_BYTES", "PARTIAL_BYTES", "input_deps", "keys_fill", "partial_elements", "reader_stage",
           "rows_fill", "store_outputs", "store_partials"]
