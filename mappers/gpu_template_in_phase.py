"""The ``in_phase`` GPU schedule template (FlashAttention-2's structure), filled from the cascade.

Each resident CTA is one *copy*; its warps work on the same tile between barriers and nothing staggers
the copies, so every copy's ops are issued in step: per K/V tile, the stage-1 tensor ops (the previous
tile's second GEMM), the single-buffered tile loads (an input read by stage-0 ops after that op of the
previous tile, one read by stage-1 ops after this iteration's), the stage-0 tensor ops, the softmax
ops, then the ops that wait for this iteration's stage-1 ops. Tensor ops read their SMEM operands with
ldmatrix in ``ldmatrix_k_step``-deep steps (the first exposed), and with ``cp_async`` every tile load
also writes SMEM through the SM's port; body ops wait for a load's L2/HBM transfer, not its SMEM write.
With the ``lagging_fill_order`` mechanism (mappers/gpu_mechanisms.py) the SMEM write of a tile read only
by the stage-1 ops (V) takes the port after this iteration's stage-0 operand reads, not before them.
The prologue holds tile 0's stage-0 work (and the mask work of the other diagonal tiles, so the body
stays uniform), the epilogue the last tile's stage-1 ops, the work after the loop and the stores.
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.schedule import Schedule
from attnsim.mappers.gpu_cascade_groups import Group
from attnsim.mappers.gpu_cascade_mapper import CascadeMapping, dep_ids, emit_group, fraction_name, gemm_smem_bytes
from attnsim.mappers.gpu_common import CtaWork, OpList, Rates, hbm_fraction_of_kv, sm_schedule
from attnsim.mappers.gpu_template_loads import (input_deps, keys_fill, reader_stage, rows_fill, store_outputs,
                                                store_partials)


def in_phase_schedule(m: CascadeMapping, work: CtaWork, resident: int) -> Schedule:
    """``resident`` CTAs of the mapping, each over ``work.tiles`` K/V tiles, in step on one SM."""
    spec, workload, tile, plan, layout = m.spec, m.workload, m.tile, m.plan, m.layout
    section = m.section
    rates = Rates.of(spec, workload.dtype, fraction_name(section))
    b = workload.element_bytes
    rows, bn = tile.block_m, tile.block_n
    extents = layout.extents(rows, bn)
    cascade = plan.work.cascade
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    kfill, rfill = keys_fill(workload, bn, work), rows_fill(workload, tile, work)
    copies = [f"c{c}" for c in range(resident)]
    stage0, stage1 = plan.tile_tensor(0), plan.tile_tensor(1)
    softmax, late = plan.softmax(), plan.late_groups()
    post = plan.of_place("post") + ([] if work.partial else plan.of_place("merge"))
    early = [t for t in plan.work.tile_inputs if reader_stage(plan, t) == 0]
    lagging = [t for t in plan.work.tile_inputs if reader_stage(plan, t) > 0]
    mask_groups = [g for g in plan.of_place("tile") if any(p.kind == "mask" for p in g.pieces)]
    k_step = section.ldmatrix_k_step
    smem = {g.name: (gemm_smem_bytes(plan, g, layout, rows, bn, tile.consumers, b, k_step) if k_step else (0.0, 1))
            for g in stage0 + stage1}
    poly = m.poly
    n = work.tiles

    def nbytes(tensor: str) -> float:
        return layout.tensor_elements(cascade, tensor, rows, bn) * b

    def load_bytes(tensor: str) -> float:
        return nbytes(tensor) * (kfill if tensor in plan.work.tile_inputs else rfill)

    def load(ops: OpList, tensor: str, c: str, deps: list[Any], *, smem_write: bool = True) -> tuple[str, ...]:
        hbm = hbm_kv if tensor in plan.work.tile_inputs else 1.0
        return ops.load(f"ld{tensor}_{c}", load_bytes(tensor), hbm, deps, einsum=tensor,
                        smem_write=section.cp_async and smem_write)

    def transfer(ends: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e for e in ends if not e.endswith("_smem"))

    def gemm(ops: OpList, g: Group, c: str, deps: list[Any]) -> None:
        smem_bytes, steps = smem[g.name]
        emit_group(ops, g, f"{g.name}_{c}", extents, deps, smem_bytes=smem_bytes, k_steps=steps)

    def emitted(ops: OpList, before: set[str]) -> set[str]:
        return before | {op.id for op in ops.ops}

    # ---- prologue: CTA inputs and tile 0's loads; tile 0's stage-0 work
    pro = OpList(rates, workload.dtype)
    ends: dict[str, dict[str, tuple[str, ...]]] = {c: {} for c in copies}
    for c in copies:
        for tensor in (*plan.work.cta_inputs, *early):
            ends[c][tensor] = load(pro, tensor, c, [])
    for c in copies:
        for tensor in lagging:
            ends[c][tensor] = load(pro, tensor, c, [])
    cta_ends = {c: {t: ends[c][t] for t in plan.work.cta_inputs} for c in copies}
    for c in copies:   # work on the CTA inputs alone, before the loop
        for g in plan.of_place("pre"):
            emit_group(pro, g, f"{g.name}_{c}", extents, dep_ids(plan, g, c, emitted(pro, set()), set(),
                                                              iteration_block=False)
                  + input_deps(plan, g, ends[c], body=False))
    for c in copies:
        for g in stage0:
            gemm(pro, g, c, dep_ids(plan, g, c, emitted(pro, set()), set(), iteration_block=False)
                 + input_deps(plan, g, ends[c], body=False))
    for c in copies:
        for g in softmax:
            emit_group(pro, g, f"{g.name}_{c}", extents, dep_ids(plan, g, c, emitted(pro, set()), set(),
                                                              iteration_block=False),
                  masked=work.masked > 0, poly=poly)
    if work.masked > 1:
        for c in copies:
            amount = sum(p.work(extents) for g in mask_groups for p in g.pieces if p.kind == "mask")
            pro.fp32(f"mask_{c}", amount * (work.masked - 1), [f"{g.name}_{c}" for g in mask_groups],
                     einsum=mask_groups[0].einsums[0] if mask_groups else "")
    for c in copies:
        for g in late:
            emit_group(pro, g, f"{g.name}_{c}", extents, dep_ids(plan, g, c, emitted(pro, set()), set(),
                                                              iteration_block=False), poly=poly)
    before_body = emitted(pro, set())

    # ---- body, tile i = 1 .. n-1: tile i-1's stage-1 ops, tile i's loads and stage-0 work
    body = OpList(rates, workload.dtype)
    body_ids = {f"{g.name}_{c}" for g in (*stage1, *stage0, *softmax, *late) for c in copies}
    body_ends = {c: {**cta_ends[c], **{t: transfer(ends[c][t]) for t in plan.work.tile_inputs}} for c in copies}
    for c in copies:
        for g in stage1:
            gemm(body, g, c, dep_ids(plan, g, c, emitted(body, before_body), body_ids, iteration_block=True)
                 + input_deps(plan, g, body_ends[c], body=True))

    def war(tensor: str, c: str) -> list[Any]:
        """A single-buffered tile is overwritten once the previous tile's readers are done with it."""
        out: list[Any] = []
        for reader in plan.readers_of_input(tensor):
            op_id = f"{reader.name}_{c}"
            out.append(("prev", op_id) if reader.stage == 0 else op_id)
        return out

    for c in copies:
        for tensor in early:
            load(body, tensor, c, war(tensor, c))
    late_fill = section.cp_async and section.mechanisms.lagging_fill_order
    for c in copies:
        for tensor in lagging:
            load(body, tensor, c, war(tensor, c), smem_write=not late_fill)
    for c in copies:
        for g in stage0:
            order = [f"{s.name}_{c}" for s in stage1]   # the copy's warps issue their GEMMs in order
            gemm(body, g, c, dep_ids(plan, g, c, emitted(body, before_body), body_ids, iteration_block=True)
                 + input_deps(plan, g, body_ends[c], body=True) + order)
    if late_fill:   # the lagging tiles land while the stage-0 GEMMs read their operands: the port serves those first
        for c in copies:
            for tensor in lagging:
                body.smem_write(f"ld{tensor}_{c}", load_bytes(tensor), einsum=tensor)
    for c in copies:
        for g in softmax:
            emit_group(body, g, f"{g.name}_{c}", extents,
                  dep_ids(plan, g, c, emitted(body, before_body), body_ids, iteration_block=True), poly=poly)
    for c in copies:
        for g in late:
            emit_group(body, g, f"{g.name}_{c}", extents,
                  dep_ids(plan, g, c, emitted(body, before_body), body_ids, iteration_block=True), poly=poly)
    before_epilogue = emitted(body, before_body)

    # ---- epilogue: the last tile's stage-1 ops, the work after the loop, the stores
    epi = OpList(rates, workload.dtype)
    for c in copies:
        for g in stage1:
            gemm(epi, g, c, dep_ids(plan, g, c, emitted(epi, before_epilogue), set(), iteration_block=False)
                 + input_deps(plan, g, body_ends[c], body=False))
    for c in copies:
        for g in post:
            drain = [f"{s.name}_{c}" for s in stage1]
            emit_group(epi, g, f"{g.name}_{c}", extents,
                  dep_ids(plan, g, c, emitted(epi, before_epilogue), set(), iteration_block=False) + drain)
    for c in copies:
        if work.partial:   # a split's partial results, for the merge phase
            store_partials(epi, plan, c, rows, layout, rfill, to_hbm=not m.partials_in_l2)
        else:
            store_outputs(epi, plan, [c], c, rows, layout, bn, rfill)
    return sm_schedule(pro.ops, body.ops, n - 1, epi.ops, {}, name=f"{m.name} CTA x{n} (x{resident})")


__all__ = ["in_phase_schedule"]
