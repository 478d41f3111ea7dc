"""The ``multi_pass`` GPU schedule template (FLAT's structure on a GPU), filled from the cascade.

A CTA owns ``block_m`` query rows and walks the K/V tiles once per pass (``gpu.passes``: the op groups
of each pass, in order). A tensor written in one pass and read in a later one (``gpu.spill``: its
bytes per element) is kept where it fits: in SMEM when the block's whole rows fit next to the CTA
inputs and the tile stages, else spilled to L2 when every SM's rows fit in L2 together, else to HBM
(FLAT's rule: the largest row block whose live tensors fit). Each pass: reload the spilled tensors it
reads (into a staging slot freed by the pass's last reader), load its tile inputs (into a stage
buffer freed by their reader), run its groups, write out what a later pass reads. Groups holding only
mask pieces run once between the pass that produces their Einsum and the next, over all the CTA's
diagonal tiles. The passes follow one another: a reload waits for the last write of its tensor.
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.schedule import Block, Schedule
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_cascade_groups import Group
from attnsim.mappers.gpu_cascade_mapper import CascadeMapping, emit_group, fraction_name
from attnsim.mappers.gpu_common import LATENCY_LANES, TENSOR_MUFU, CtaWork, OpList, Rates, hbm_fraction_of_kv
from attnsim.mappers.gpu_template_loads import keys_fill, rows_fill


def spill_bytes_per_row(m: CascadeMapping) -> int:
    """Bytes one query row of the largest spilled tensor takes over the whole sequence."""
    return m.workload.seq * max(m.section.spill.values(), default=0)


def spill_level(m: CascadeMapping) -> str:
    """Where the spilled tensors' rows live: ``smem``, ``l2`` or ``hbm`` (module docstring)."""
    return spill_placement(m.section, m.spec, m.workload, m.tile.block_m, m.tile.smem_bytes)[0]


def spill_placement(section: Any, spec: Any, workload: Any, block_m: int, inputs_smem: int) -> tuple[str, int]:
    """(level, SMEM bytes per CTA) for a CTA whose inputs take ``inputs_smem`` bytes of SMEM."""
    per_element = max(section.spill.values(), default=0)
    rows_bytes = block_m * workload.seq * per_element
    forced = section.spill_level
    if forced == "smem" or (forced == "auto" and inputs_smem + rows_bytes <= spec.storage.smem_bytes_per_cta.value):
        return "smem", inputs_smem + rows_bytes
    case = section.tile_case({"head_dim": workload.head_dim, "causal": workload.causal,
                              "dtype": workload.dtype}, "")
    staging = section.stages * block_m * case.block_n * per_element
    if forced != "auto":
        return forced, inputs_smem + staging
    level = "l2" if spec.sms * rows_bytes <= spec.storage.l2_bytes.value else "hbm"
    return level, inputs_smem + staging


def multi_pass_schedule(m: CascadeMapping, work: CtaWork, resident: int) -> Schedule:
    """One CTA of the mapping: its passes over ``work.tiles`` K/V tiles."""
    spec, workload, tile, plan, layout, section = m.spec, m.workload, m.tile, m.plan, m.layout, m.section
    if not section.passes:
        raise MappingError(f"{m.where}: gpu.passes: style multi_pass needs the op groups of each pass")
    rates = Rates.of(spec, workload.dtype, fraction_name(section))
    b = workload.element_bytes
    cascade = plan.work.cascade
    bm, bn = tile.block_m, tile.block_n
    extents = layout.extents(bm, bn)
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    kfill, rfill = keys_fill(workload, bn, work), rows_fill(workload, tile, work)
    level = spill_level(m)
    spill_hbm = 1.0 if level == "hbm" else 0.0
    groups = plan.groups
    pass_of: dict[str, int] = {}
    for index, names in enumerate(section.passes):
        for name in names:
            if name not in groups:
                raise MappingError(f"{m.where}: gpu.passes: no op group '{name}' (groups: {', '.join(groups)})")
            pass_of[name] = index
    mask_only = [g for g in plan.of_place("tile") if g.name not in pass_of
                 and all(p.kind == "mask" for p in g.pieces)]
    for g in plan.of_place("tile"):
        if g.name not in pass_of and g not in mask_only:
            raise MappingError(f"{m.where}: gpu.passes: op group '{g.name}' is in no pass")
    tile_inputs = plan.work.tile_inputs
    tile_bytes = {t: layout.tensor_elements(cascade, t, bm, bn) * b for t in tile_inputs}
    spilled = {t: n for t, n in section.spill.items()}
    slot = max((bm * bn * n for n in spilled.values()), default=0)
    buffers = {TENSOR_MUFU: 1, **{f"{t}_stages": tile.stages * tile_bytes[t] for t in tile_inputs},
               "spill_stages": tile.stages * slot}
    writers = {t: [g.name for g in groups.values() if any(
        plan.work.einsums[p.einsum].tensor == t and p.kind in ("main", "rcp", "mask") for p in g.pieces)
        or any(p.kind == "convert" and any(r.tensor == t for r in p.reads) for p in g.pieces)]
        for t in spilled}
    produced_in = {t: min((pass_of[w] for w in writers[t] if w in pass_of), default=-1) for t in spilled}

    def spill_ops_bytes(tensor: str) -> float:
        return bm * bn * spilled[tensor] * kfill * rfill

    def smem_copy(ops: OpList, op_id: str, nbytes: float, deps: list[Any], claims: dict[str, int] | None,
                  einsum: str) -> tuple[str, ...]:
        return (ops.add(op_id, "smem", max(1, round(nbytes / rates.smem_bytes)), deps, einsum=einsum,
                        actions={"smem.byte": nbytes}, claims=claims),)

    pro = OpList(rates, workload.dtype)
    ends: dict[str, tuple[str, ...]] = {}
    for t in plan.work.cta_inputs:
        ends[t] = pro.load(f"ld{t}", layout.tensor_elements(cascade, t, bm, bn) * b * rfill, 1.0, (), einsum=t)
    for g in plan.of_place("pre"):   # work on the CTA inputs alone, before the passes
        deps = [d for d in g.deps if any(op.id == d for op in pro.ops)]
        emit_group(pro, g, g.name, extents, deps + [i for t in g.inputs for i in ends.get(t, ())])
    blocks = [Block(tuple(pro.ops), 1, "prologue")]
    for index, names in enumerate(section.passes):
        ops = OpList(rates, workload.dtype)
        members = [groups[n] for n in names]
        reloads = [t for t in spilled if produced_in[t] < index and any(
            any(r.tensor == t for p in g.pieces for r in p.reads) for g in members)]
        local: dict[str, tuple[str, ...]] = {}
        previous = [n for k, names_k in enumerate(section.passes) if k == index - 1 for n in names_k]
        for t in reloads:   # the passes follow one another: a reload waits for the previous pass
            waits = list(dict.fromkeys([*writers[t], *previous] + [g.name for g in mask_only if any(
                plan.work.einsums[p.einsum].tensor == t for p in g.pieces)]))
            claims = {"spill_stages": slot}
            if level == "smem":
                local[t] = smem_copy(ops, f"in{t}", spill_ops_bytes(t), waits, claims, t)
            else:
                local[t] = ops.load(f"in{t}", spill_ops_bytes(t), spill_hbm, waits, claims=claims, einsum=t)
        pass_inputs = [t for t in tile_inputs if any(t in g.inputs for g in members)]
        for t in pass_inputs:
            local[t] = ops.load(f"ld{t}", tile_bytes[t] * kfill, hbm_kv, (), claims={f"{t}_stages": tile_bytes[t]},
                                einsum=t)
        emitted: set[str] = set(op.id for block in blocks for op in block.walk())
        last_reader: dict[str, str] = {}
        for g in members:
            for t in list(reloads) + pass_inputs:
                if any(r.tensor == t for p in g.pieces for r in p.reads) or t in g.inputs:
                    last_reader[t] = g.name
        for g in members:
            deps: list[Any] = []
            for dep in g.deps:
                if dep in emitted or any(op.id == dep for op in ops.ops):
                    deps.append(dep)
            deps += [d for d in g.final_deps if d in emitted]
            for t in g.inputs:
                deps += list(local.get(t, ends.get(t, ())))
            for t in reloads:
                if any(r.tensor == t for p in g.pieces for r in p.reads):
                    deps = [d for d in deps if d not in writers[t]] + list(local[t])
            freed = {f"{t}_stages": tile_bytes[t] for t in pass_inputs if last_reader.get(t) == g.name}
            if any(last_reader.get(t) == g.name for t in reloads):
                freed["spill_stages"] = slot
            emit_group(ops, g, g.name, extents, list(dict.fromkeys(deps)), releases=freed or None)
        for t in spilled:   # written here, read in a later pass
            if produced_in[t] == index and any(pass_of.get(r.name, -1) > index for r in _readers(plan, t)):
                waits = [w for w in writers[t] if w in names]
                if level == "smem":
                    smem_copy(ops, f"out{t}", spill_ops_bytes(t), waits, None, t)
                else:
                    ops.store(f"out{t}", spill_ops_bytes(t), waits, einsum=t, to_hbm=level == "hbm")
        blocks.append(Block(tuple(ops.ops), work.tiles, f"pass{index + 1}"))
        masks = [g for g in mask_only if any(pass_of.get(w, -1) == index for p in g.pieces
                                              for w in _main_groups(plan, p.einsum))]
        if masks:
            mid = OpList(rates, workload.dtype)
            for g in masks:
                amount = g.work(extents) * work.masked
                mid.fp32(g.name, amount, [d for d in g.deps], einsum=g.einsums[0])
            blocks.append(Block(tuple(mid.ops), 1, f"after_pass{index + 1}"))
    epi = OpList(rates, workload.dtype)
    emitted = set(op.id for block in blocks for op in block.walk())
    last_tensor = [n for n in section.passes[-1] if groups[n].unit == "tensor"]
    for g in plan.of_place("post"):
        deps = [d for d in (*g.deps, *g.final_deps) if d in emitted or any(op.id == d for op in epi.ops)]
        emit_group(epi, g, g.name, extents, list(dict.fromkeys(deps + last_tensor)))
    store_outputs_cta(epi, plan, layout, bm, bn, rfill)
    blocks.append(Block(tuple(epi.ops), 1, "epilogue"))
    return Schedule(blocks=tuple(block for block in blocks if block.items), buffers_bytes=buffers,
                    lanes={"latency": LATENCY_LANES}, name=f"{m.name} CTA x{work.tiles} ({level})")


def _readers(plan: Any, tensor: str) -> list[Group]:
    return [g for g in plan.groups.values() if any(r.tensor == tensor for p in g.pieces for r in p.reads)]


def _main_groups(plan: Any, einsum: str) -> list[str]:
    return [g.name for g in plan.groups.values() if any(p.einsum == einsum and p.kind == "main" for p in g.pieces)]


def store_outputs_cta(ops: OpList, plan: Any, layout: Any, rows: int, block_n: int, fill: float) -> None:
    """The CTA's outputs, after the ops holding their pieces (op ids without a consumer suffix)."""
    from attnsim.mappers.gpu_template_loads import OUTPUT_BYTES

    cascade = plan.work.cascade
    for tensor in cascade.outputs:
        producer = plan.work.producer(tensor)
        holders = [g.name for g in plan.groups.values() if any(p.einsum == producer for p in g.pieces)]
        elements = layout.tensor_elements(cascade, tensor, rows, block_n)
        ops.store(f"st{tensor}", elements * OUTPUT_BYTES * fill, holders, einsum=producer or tensor)


__all__ = ["multi_pass_schedule", "spill_bytes_per_row", "spill_level", "spill_placement"]
