"""The ``warp_specialized`` GPU schedule template (FlashAttention-3's structure), filled from the cascade.

One CTA per SM group: a producer loads the CTA inputs once and each K/V tile into a ring of ``stages``
SMEM buffers (TMA, shared by a cluster of ``cluster`` CTAs through multicast); ``consumers``
warpgroups own ``block_m / consumers`` rows each and run, per tile, the stage-0 tensor ops, the
previous tile's stage-1 tensor ops (``intra_pipeline``: the next tile's first GEMM before the current
tile's second; off: the other way round), the softmax ops and the ops that wait for this iteration's
stage-1 ops. ``pingpong``: each warpgroup's GEMMs then its softmax, so one's softmax runs while the
other's GEMMs do; off: every warpgroup's GEMMs in step, then every softmax. ``warp_specialized`` off:
the consumers issue the loads after they are done with the previous tile's buffer and meet at a
CTA-wide barrier per tile (no ping-pong). The last consumer's reading op frees a stage buffer.
The mapping's ``mechanisms`` (:mod:`mappers.gpu_mechanisms`) add the tile scheduler's fetch, the O
write through SMEM, the FP8 V transpose and accumulator permutes, and the persistent overlap of a
CTA's prologue with the previous CTA's epilogue.
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.schedule import Schedule
from attnsim.mappers.gpu_cascade_groups import Group
from attnsim.mappers.gpu_cascade_mapper import CascadeMapping, dep_ids, emit_group, fraction_name, persistent_kernel
from attnsim.mappers.gpu_common import CtaWork, OpList, Rates, cycles, hbm_fraction_of_kv, sm_schedule
from attnsim.mappers.gpu_mechanisms import (
    LANES_PER_WARP_INSTRUCTION,
    SCALAR_STORE_BYTES,
    TRANSPOSE_ISSUE_PER_BYTE,
    TRANSPOSE_SMEM_BYTES_PER_BYTE,
    renamed_copy,
    transposed_inputs,
)
from attnsim.mappers.gpu_template_loads import OUTPUT_BYTES, input_deps, keys_fill, rows_fill, store_outputs

STMATRIX_BYTES = 512
"""``stmatrix.x4``: four 8x8 16-bit matrices = 512 B per warp instruction (the FP16 O write)."""


def warp_specialized_schedule(m: CascadeMapping, work: CtaWork, resident: int) -> Schedule:
    """One CTA of the mapping over ``work.tiles`` K/V tiles (``resident`` is 1 by construction)."""
    spec, workload, tile, plan, layout, section = m.spec, m.workload, m.tile, m.plan, m.layout, m.section
    rates = Rates.of(spec, workload.dtype, fraction_name(section))
    b = workload.element_bytes
    cascade = plan.work.cascade
    rows, bn = tile.rows_per_consumer, tile.block_n
    extents = layout.extents(rows, bn)
    cta_extents = layout.extents(tile.block_m, bn)
    consumers = [f"w{w}" for w in range(tile.consumers)]
    last = consumers[-1]
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    kfill, rfill = keys_fill(workload, bn, work), rows_fill(workload, tile, work)
    stage0, stage1 = plan.tile_tensor(0), plan.tile_tensor(1)
    softmax, late, post = plan.softmax(), plan.late_groups(), plan.of_place("post")
    tile_inputs = plan.work.tile_inputs
    tile_bytes = {t: layout.tensor_elements(cascade, t, tile.block_m, bn) * b for t in tile_inputs}
    buffers = {f"{t}_stages": tile.stages * tile_bytes[t] for t in tile_inputs}
    pingpong = section.pingpong and section.warp_specialized
    first_qk = section.intra_pipeline
    mask_groups = [g for g in plan.of_place("tile") if any(p.kind == "mask" for p in g.pieces)]
    poly = m.poly
    n = work.tiles
    mech = section.mechanisms
    fp8 = workload.dtype == "fp8"
    transposed = set(transposed_inputs(plan, layout.keys_ranks)) if mech.fp8_v_transpose and fp8 else set()
    permute = mech.fp8_accumulator_permute and fp8
    persistent = persistent_kernel(section, workload, m.where)
    dynamic_scheduler = persistent and (section.launch_order == "longest_first" or (
        section.launch_order == "longest_first_if_causal" and workload.causal))
    overlap = mech.persistent_overlap and section.warp_specialized and persistent
    transpose_after: list[Any] = []   # the previous CTA's O store (O's staging buffer is V^T's)

    # each tile input's buffer is freed once, by its reader that runs latest in an iteration: a
    # stage-1 tensor op (the previous tile), else an FP32/MUFU op, else a stage-0 tensor op (a cascade
    # whose only reader of K is a feature map, phi(K), frees K there)
    order = [*stage0, *softmax, *late, *stage1]
    freer = {t: max((i, g.name) for i, g in enumerate(order) if t in g.inputs)[1]
             for t in tile_inputs if any(t in g.inputs for g in order)}

    def releases(g: Group, w: str) -> dict[str, int] | None:
        if w != last:
            return None
        freed = {f"{t}_stages": tile_bytes[t] for t in g.inputs if freer.get(t) == g.name}
        return freed or None

    def loads(ops: OpList, deps: dict[str, list[Any]], first: bool = False) -> dict[str, tuple[str, ...]]:
        out = {t: ops.load(f"ld{t}", tile_bytes[t] * kfill, hbm_kv, deps.get(t, []),
                           claims={f"{t}_stages": tile_bytes[t]}, einsum=t, l2_share=1 / tile.cluster)
               for t in tile_inputs}
        for t in sorted(transposed):   # the producer transposes V in SMEM (ldmatrix.trans, prmt, stmatrix)
            nbytes = tile_bytes[t] * kfill
            after = list(out[t]) + (transpose_after if first else [])
            port = ops.add(f"tr{t}", "smem", cycles(TRANSPOSE_SMEM_BYTES_PER_BYTE * nbytes, rates.smem_bytes),
                           after, einsum=t, actions={"smem.byte": TRANSPOSE_SMEM_BYTES_PER_BYTE * nbytes})
            issue = ops.add(f"tr{t}_issue", "fp32", cycles(TRANSPOSE_ISSUE_PER_BYTE * nbytes, rates.fp32_ops),
                            after, einsum=t)
            out[t] = (port, issue)
        return out

    def deps_of(ops: OpList, g: Group, w: str, before: set[str], block_ids: set[str], body: bool) -> list[Any]:
        return dep_ids(plan, g, w, before | {op.id for op in ops.ops}, block_ids, iteration_block=body)

    def iteration(ops: OpList, w: str, ends: dict[str, tuple[str, ...]], before: set[str], block_ids: set[str],
                  *, body: bool, masked: bool, emit_qk: bool = True, emit_pv: bool = True,
                  emit_softmax: bool = True, barrier: tuple[Any, ...] = ()) -> None:
        def first() -> None:
            for g in stage0:
                emit_group(ops, g, f"{g.name}_{w}", extents, deps_of(ops, g, w, before, block_ids, body)
                      + input_deps(plan, g, ends, body=body) + list(barrier), releases=releases(g, w))

        def second() -> None:
            for g in stage1:
                emit_group(ops, g, f"{g.name}_{w}", extents, deps_of(ops, g, w, before, block_ids, body)
                      + input_deps(plan, g, ends, body=body), releases=releases(g, w))

        if emit_qk and first_qk:
            first()
        if emit_pv:
            second()
        if emit_qk and not first_qk:
            first()
        if not emit_softmax:
            return
        for g in (*softmax, *late):
            emit_group(ops, g, f"{g.name}_{w}", extents, deps_of(ops, g, w, before, block_ids, body),
                  masked=masked and g in softmax, poly=poly, permute=permute, releases=releases(g, w))

    def consumers_work(ops: OpList, ends: dict[str, tuple[str, ...]], before: set[str], block_ids: set[str],
                       *, body: bool, masked: bool, emit_pv: bool, barrier: tuple[Any, ...] = ()) -> None:
        common = dict(body=body, masked=masked, barrier=barrier)
        if pingpong:
            for w in consumers:
                iteration(ops, w, ends, before, block_ids, emit_pv=emit_pv, **common)
            return
        phases = ("qk", "pv") if first_qk else ("pv", "qk")
        for phase in phases:
            if phase == "pv" and not emit_pv:
                continue
            for w in consumers:
                iteration(ops, w, ends, before, block_ids, emit_qk=phase == "qk", emit_pv=phase == "pv",
                          emit_softmax=False, **common)
        for w in consumers:
            iteration(ops, w, ends, before, block_ids, emit_qk=False, emit_pv=False, **common)

    def epilogue(before_epilogue: set[str], body_ends: dict[str, tuple[str, ...]]) -> OpList:
        """The last tile's stage-1 work, the work after the loop, the O write and the stores."""
        epi = OpList(rates, workload.dtype)
        for w in consumers:
            for g in stage1:
                emit_group(epi, g, f"{g.name}_{w}", extents, deps_of(epi, g, w, before_epilogue, set(), False)
                      + input_deps(plan, g, body_ends, body=False), releases=releases(g, w))
            for g in post:
                drain = [f"{s.name}_{w}" for s in stage1]
                emit_group(epi, g, f"{g.name}_{w}", extents,
                           deps_of(epi, g, w, before_epilogue, set(), False) + drain)
        after: tuple[Any, ...] = ()
        if mech.epilogue_smem:   # registers -> SMEM (stmatrix; FP8: 16-bit scalar stores), then TMA
            nbytes = sum(layout.tensor_elements(cascade, t, tile.block_m, bn) for t in cascade.outputs) \
                * OUTPUT_BYTES * rfill
            per_instruction = SCALAR_STORE_BYTES if fp8 else STMATRIX_BYTES
            math_done = [f"{g.name}_{w}" for w in consumers for g in (*stage1, *post)]
            port = epi.add("sto", "smem", cycles(nbytes, min(rates.smem_bytes, per_instruction)), math_done,
                           einsum=cascade.outputs[0], actions={"smem.byte": nbytes})
            issue = epi.add("sto_issue", "fp32",
                            cycles(nbytes / per_instruction * LANES_PER_WARP_INSTRUCTION, rates.fp32_ops),
                            math_done, einsum=cascade.outputs[0])
            after = (port, issue)
        store_outputs(epi, plan, consumers, "cta", tile.block_m, layout, bn, rfill, after=after)
        return epi

    # ---- prologue: CTA inputs, tile 0's loads and stage-0 work (the diagonal tiles come first)
    pro = OpList(rates, workload.dtype)
    ends: dict[str, tuple[str, ...]] = {}
    setup: list[Any] = []
    if mech.cta_setup and (dynamic_scheduler or not persistent):   # one L2 round trip: the atomicAdd
        # on the tile counter, or a fresh CTA's barrier initialisation and cluster synchronisation
        setup = [pro.add("setup", "latency", rates.l2_latency, ())]
    previous: list[Any] = []   # with persistent_overlap: the previous CTA's epilogue, replayed here
    if overlap:
        placeholder = epilogue(set(), {})
        replay = renamed_copy(placeholder.ops, "prev_")
        pro.ops.extend(replay)
        previous = [op.id for op in replay if op.unit in ("tensor", "mufu", "fp32", "smem")]
        transpose_after.extend(op.id for op in replay if op.id.startswith("prev_st") and op.unit == "l2")
    for t in plan.work.cta_inputs:
        ends[t] = pro.load(f"ld{t}", layout.tensor_elements(cascade, t, tile.block_m, bn) * b * rfill, 1.0,
                           tuple(setup), einsum=t)
    ends.update(loads(pro, {t: list(setup) for t in tile_inputs}, first=True))
    for w in consumers:   # work on the CTA inputs alone, before the loop
        for g in plan.of_place("pre"):
            emit_group(pro, g, f"{g.name}_{w}", extents, deps_of(pro, g, w, set(), set(), False)
                  + input_deps(plan, g, ends, body=False))
    consumers_work(pro, ends, set(), set(), body=False, masked=work.masked > 0, emit_pv=False,
                   barrier=tuple(previous))
    if work.masked > 1:
        amount = sum(p.work(cta_extents) for g in mask_groups for p in g.pieces if p.kind == "mask")
        pro.fp32("mask", amount * (work.masked - 1), [f"{g.name}_{w}" for w in consumers for g in mask_groups],
                 einsum=mask_groups[0].einsums[0] if mask_groups else "")
    before_body = {op.id for op in pro.ops}

    # ---- body: tile i's loads and stage-0 work, tile i-1's stage-1 work
    body = OpList(rates, workload.dtype)
    body_ids = {f"{g.name}_{w}" for g in (*stage0, *stage1, *softmax, *late) for w in consumers}
    if section.warp_specialized:
        body_ends = {**ends, **loads(body, {})}
    else:   # the consumers load a tile once they are done with the previous one in that buffer
        deps = {t: [("prev", f"{g.name}_{w}") for w in consumers for g in plan.readers_of_input(t)]
                for t in tile_inputs}
        body_ends = {**ends, **loads(body, deps)}
    barrier: tuple[Any, ...] = () if section.warp_specialized else tuple(
        ("prev", f"{g.name}_{w}") for w in consumers for g in (*softmax, *late, *stage1))
    consumers_work(body, body_ends, before_body, body_ids, body=True, masked=False, emit_pv=True,
                   barrier=barrier)
    before_epilogue = before_body | {op.id for op in body.ops}

    # ---- epilogue: the last tile's stage-1 work, the work after the loop, the stores (with
    # persistent_overlap it runs beside the next CTA's prologue: replayed there, not here)
    epi = epilogue(before_epilogue, body_ends)
    return sm_schedule(pro.ops, body.ops, n - 1, [] if overlap else epi.ops, buffers, name=f"{m.name} CTA x{n}")


__all__ = ["warp_specialized_schedule"]
