"""The ``recurrent`` GPU template: one CTA walks a cascade's iterative rank, carrying its state.

For block-recurrent cascades (Lightning Attention-2's ``lightning2-causal``, block-form causal linear
attention) that have no query rank: the state (``S[e,f,t+1] = S[e,f,t] + KV[e,f,t]``) is carried over
the iterative rank ``t`` and each step reads one block of the inputs and writes one block of the
output. Everything is derived from the cascade and the mapping, nothing names an Einsum:

- ``gpu.keys_rank`` must be an iterative rank of the cascade (the rank carried); each CTA walks its
  ``T = ceil(seq / block_m)`` steps in series, ``block_m`` being the extent of ``gpu.rows_rank`` (the
  block's rows: the shape symbol of the rows rank, ``B``, is bound to ``block_m``; every rank of that
  shape -- the intra-block keys ``j`` too -- has that extent). The symbols of the iterative rank's
  derived shape other than ``B`` (``T = N / B``: ``N``) are *walked*: ``block_m`` of them per step.
- ``gpu.split_rank`` (optional): a rank of the state that no Einsum reduces (the value columns ``f``),
  split over CTAs in ``block_n`` columns each (Lightning-2's ``BLOCK_MODEL``); CTAs = batch x heads x
  ``ceil(F / block_n)`` (the cascade's parallel ranks b, h -> CTAs), no merge.
- Per step and CTA: the per-step input blocks are loaded (``stages`` buffers: a load waits for the
  readers of the block ``stages`` steps back), every per-step op group of
  :func:`mappers.gpu_cascade_groups.plan_groups` runs in dependency order (a read of the carried
  iterate waits for the previous step's writer), the output block is converted and stored.
- ``gpu.operand_dtype: tf32``: the tensor cores run at the spec's TF32 rate on FP32 operands (the
  convert-to-16-bit pieces disappear; each loaded input element is widened to FP32 once, 1/2 op).

Launch order: CUDA's ``blockIdx.x`` varies fastest, and a grid ``(b*h, splits)`` (Lightning-2's
``_fwd_kernel``) launches every head's split 0 first, so the splits of one head that run at once are
``min(splits, slots // heads)`` (slots = SMs x resident CTAs); the inputs that every split reads (Q, K)
come from HBM once per such group and from L2 for the others.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.archsim.schedule import Schedule
from attnsim.einsum_ir import Cascade
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_cascade_groups import Group, GroupPlan, plan_groups
from attnsim.mappers.gpu_cascade_work import (CONVERT_OPS_PER_ELEMENT, UNIT_FP32, UNIT_TENSOR, GpuCascadeWork,
                                              SpecialFunctions, gpu_cascade_work)
from attnsim.mappers.gpu_common import CtaTile, CtaWork, GpuAttention, GpuMapping, OpList, Rates, occupancy, sm_schedule
from attnsim.mappers.gpu_mapping import GpuSection, gpu_section
from attnsim.mappers.gpu_template_loads import OUTPUT_BYTES
from attnsim.mappers.mapping_spec import MappingSpec

OPERAND_BYTES = {"tf32": 4}
"""Bytes per tensor-core operand element of an ``operand_dtype`` (TF32 is held in 32-bit registers)."""


@dataclass(frozen=True)
class RecurrentLayout:
    """How the cascade's ranks meet a recurrent CTA."""

    rows_rank: str
    step_rank: str                  # the iterative rank carried (one step per block)
    split_rank: str | None
    block_shape: str                # the rows rank's shape symbol (B): block_m
    walked: frozenset[str]          # shape symbols walked block by block (N)
    split_shape: str | None
    sizes: dict[str, int]           # other shape symbols -> workload values
    shape_of: dict[str, str]        # rank variable -> shape symbol

    def extents(self, block_m: int, block_n: int) -> dict[str, int]:
        """Per-step extent of every rank variable: ``block_m`` for the block's ranks, 1 for the step
        rank, ``block_n`` for the split rank, the workload's size otherwise."""
        out: dict[str, int] = {}
        for rank, shape in self.shape_of.items():
            if rank == self.step_rank:
                out[rank] = 1
            elif shape == self.block_shape or shape in self.walked:
                out[rank] = block_m
            elif rank == self.split_rank:
                out[rank] = block_n
            else:
                out[rank] = self.sizes.get(shape, 1)
        return out

    def elements(self, cascade: Cascade, tensor: str, block_m: int, block_n: int) -> int:
        """Elements of ``tensor`` (an input or output) that one step of one CTA reads or writes."""
        count = 1
        for dim in cascade.tensor_shapes[tensor]:
            name = str(dim)
            if name in self.walked or name == self.block_shape:
                count *= block_m
            elif name == self.split_shape:
                count *= block_n
            else:
                count *= self.sizes.get(name, 1)
        return count

    def splits_of(self, cascade: Cascade, tensor: str) -> bool:
        """True when ``tensor`` has the split rank's shape (each CTA reads only its columns)."""
        return self.split_shape is not None and any(str(d) == self.split_shape for d in cascade.tensor_shapes[tensor])


def recurrent_layout(cascade: Cascade, section: GpuSection, workload: GpuAttention, where: str) -> RecurrentLayout:
    """Check the section's ranks against the cascade (the step rank must be iterative, the split rank
    never reduced) and bind the shape symbols."""
    shape_of = {rank: str(symbol) for rank, symbol in cascade.ranks.items()}
    named = [("rows_rank", section.rows_rank), ("keys_rank", section.keys_rank)]
    if section.split_rank is not None:
        named.append(("split_rank", section.split_rank))
    for key, rank in named:
        if rank not in shape_of:
            raise MappingError(f"{where}: gpu.{key}: the cascade has no rank '{rank}' "
                               f"(its ranks: {', '.join(shape_of)})")
    iterative = [str(r) for r in cascade.iterative]
    if section.keys_rank not in iterative:
        raise MappingError(f"{where}: gpu.keys_rank: style 'recurrent' walks an iterative rank of the cascade, "
                           f"got '{section.keys_rank}' (cascade {cascade.name}'s iterative ranks: "
                           f"{', '.join(iterative) or 'none'})")
    if section.split_rank is not None:
        reducing = [e.name for e in cascade.einsums if section.split_rank in e.reduced_ranks]
        if reducing:
            raise MappingError(f"{where}: gpu.split_rank: '{section.split_rank}' is reduced by {reducing[0]}; "
                               "style 'recurrent' splits a rank no Einsum reduces (the CTAs never merge)")
    block_shape = shape_of[section.rows_rank]
    step_shape = shape_of[section.keys_rank]
    derived = {str(k): v for k, v in cascade.derived_shapes.items()}
    if step_shape not in derived:
        raise MappingError(f"{where}: gpu.keys_rank: the shape {step_shape} of '{section.keys_rank}' is not derived "
                           f"from the rows' block ({block_shape}); expected e.g. T: N / {block_shape}")
    walked = frozenset(str(s) for s in derived[step_shape].free_symbols) - {block_shape}
    values = {"seq": workload.seq, "head_dim": workload.head_dim}
    sizes: dict[str, int] = {}
    for symbol in cascade.free_symbols():
        name = str(symbol)
        if name == block_shape:
            continue
        if name not in section.shapes or section.shapes[name] not in values:
            raise MappingError(f"{where}: gpu.shapes: no value for the cascade's shape symbol {name} "
                               f"(expected seq or head_dim; {block_shape} is block_m)")
        sizes[name] = values[section.shapes[name]]
    split_shape = shape_of[section.split_rank] if section.split_rank is not None else None
    return RecurrentLayout(section.rows_rank, section.keys_rank, section.split_rank, block_shape, walked,
                           split_shape, sizes, shape_of)


@dataclass(frozen=True)
class RecurrentMapping:
    """Everything the schedule needs, resolved once."""

    name: str
    section: GpuSection
    plan: GroupPlan
    layout: RecurrentLayout
    tile: CtaTile
    spec: GpuSpec
    workload: GpuAttention
    steps: int
    shared_hbm_fraction: float      # of the inputs every split reads: the part from HBM


def _topological(groups: list[Group]) -> list[Group]:
    """``groups`` in an order where every same-step dependency comes first (stable otherwise)."""
    names = {g.name for g in groups}
    done: list[Group] = []
    placed: set[str] = set()
    pending = list(groups)
    while pending:
        for group in pending:
            if all(d in placed or d not in names or dist > 0 for d, dist in group.deps.items()) and \
                    all(d in placed or d not in names for d in group.final_deps):
                done.append(group)
                placed.add(group.name)
                pending.remove(group)
                break
        else:
            raise MappingError(f"gpu.ops: op groups {', '.join(g.name for g in pending)} wait for each other "
                               "within one step")
    return done


def step_groups(plan: GroupPlan) -> tuple[list[Group], list[Group]]:
    """(per-step groups in dependency order, groups after the loop). A cascade output indexed by the
    walked rank is converted per step (its ``output`` pieces join the step), not once after the loop."""
    per_step = [g for g in plan.groups.values() if g.place == "tile"
                or (g.place == "post" and all(p.kind == "output" and plan.work.einsums[p.einsum.split(".")[0]].place
                                               == "tile" for p in g.pieces if p.einsum.split(".")[0] in plan.work.einsums))]
    after = [g for g in plan.groups.values() if g not in per_step and g.place in ("post", "merge")]
    return _topological(per_step), after


def _work_of(group: Group, extents: Mapping[str, int], tf32: bool) -> float:
    """FLOPs/ops of ``group`` per step (TF32 operands: no convert to 16 bits)."""
    kinds = ("main", "mask", "rcp", "output") if tf32 else None
    return group.work(extents, kinds=kinds)


def _operand_smem(plan: GroupPlan, group: Group, layout: RecurrentLayout, extents: Mapping[str, int],
                  consumers: int, operand_bytes: int, k_step: int, staged: bool = False) -> tuple[float, int]:
    """SMEM operand bytes a tensor op's loaded-input operands (``staged``: every operand) cost
    (ldmatrix-style: each consumer reads its rows of a rows-indexed operand and all of any other) and
    its k-steps."""
    smem, steps = 0.0, 1
    work = plan.work
    for piece in group.pieces:
        if piece.kind != "main" or piece.per_point == 0:
            continue
        einsum = work.cascade.einsum(piece.einsum)
        for ref in einsum.inputs():
            if work.source(ref.tensor) not in work.cascade.inputs and not staged:
                continue
            ranks = [i.rank_var for i in ref.indices if i.rank_var]
            count = math.prod(extents.get(r, 1) for r in ranks)
            smem += (1 if layout.rows_rank in ranks else consumers) * count * operand_bytes
        reduced = math.prod(extents.get(r, 1) for r in einsum.reduced_ranks)
        steps = max(1, reduced // k_step)
    return smem, steps


def _operand_sides(plan: GroupPlan, group: Group) -> list[tuple[str, int, str, tuple[str, ...]]]:
    """(source tensor, side 0 = A / 1 = B, read relation, rank variables) of every operand of the
    tensor-core group's contractions (``left * right``: the left factor is the MMA's A operand)."""
    work = plan.work
    out: list[tuple[str, int, str, tuple[str, ...]]] = []
    if group.unit != UNIT_TENSOR:
        return out
    for piece in group.pieces:
        if piece.kind != "main" or piece.per_point == 0:
            continue
        expr = work.cascade.einsum(piece.einsum).expr
        for side, (ref, read) in enumerate(zip((expr.left, expr.right), piece.reads)):
            out.append((work.source(ref.tensor), side, read.relation,
                        tuple(i.rank_var for i in ref.indices if i.rank_var)))
    return out


def staged_operands(plan: GroupPlan, groups: list[Group]) -> dict[tuple[str, int], tuple[str, ...]]:
    """(tensor, side) -> the rank variables of its reads, for every operand of the step's tensor-core
    groups (``operand_staging``), in first-use order: a tensor used as the A operand of one GEMM and
    the B operand of another (K: B of Q K^T, A of K^T V) is converted to both layouts."""
    out: dict[tuple[str, int], tuple[str, ...]] = {}
    for group in groups:
        for tensor, side, _, ranks in _operand_sides(plan, group):
            out.setdefault((tensor, side), ranks)
    return out


def recurrent_schedule(m: RecurrentMapping, work: CtaWork, resident: int) -> Schedule:
    """``resident`` CTAs, in step on one SM, each walking ``work.tiles`` steps."""
    spec, workload, tile, plan, layout, section = m.spec, m.workload, m.tile, m.plan, m.layout, m.section
    from attnsim.mappers.gpu_cascade_mapper import fraction_name

    tensor_type = section.operand_dtype or workload.dtype
    tf32 = section.operand_dtype is not None
    rates = Rates.of(spec, tensor_type, fraction_name(section))
    b = workload.element_bytes
    operand_bytes = OPERAND_BYTES.get(section.operand_dtype or "", b)
    extents = layout.extents(tile.block_m, tile.block_n)
    cascade = plan.work.cascade
    fill = min(workload.seq, work.tiles * tile.block_m) / (work.tiles * tile.block_m)
    groups, after = step_groups(plan)
    names = {g.name for g in groups}
    copies = [f"c{c}" for c in range(resident)]
    stages = tile.stages
    inputs = plan.work.tile_inputs

    body = OpList(rates, tensor_type)
    ends: dict[str, dict[str, tuple[str, ...]]] = {c: {} for c in copies}
    for c in copies:
        for tensor in inputs:
            readers = [f"{g.name}_{c}" for g in plan.readers_of_input(tensor) if g.name in names]
            war = [("prev", r, stages) if stages > 1 else ("prev", r) for r in readers]
            nbytes = layout.elements(cascade, tensor, tile.block_m, tile.block_n) * b * fill
            hbm = 1.0 if layout.splits_of(cascade, tensor) or tile.splits == 1 else m.shared_hbm_fraction
            transfer = body.load(f"ld{tensor}_{c}", nbytes, hbm, war, einsum=tensor, smem_write=section.cp_async)
            ends[c][tensor] = tuple(e for e in transfer if not e.endswith("_smem"))
            if tf32:   # the loaded 16-bit elements widened to FP32 registers (.to(tl.float32))
                widened = layout.elements(cascade, tensor, tile.block_m, tile.block_n) * CONVERT_OPS_PER_ELEMENT
                ends[c][tensor] = body.fp32(f"wd{tensor}_{c}", widened, ends[c][tensor], einsum=tensor)
    k_step = section.ldmatrix_k_step
    staging = staged_operands(plan, groups) if section.operand_staging else {}
    held = {g.name: {p.einsum for p in g.pieces} for g in groups}

    def stage(c: str, key: tuple[str, int], deps: list[Any]) -> None:
        tensor, side = key
        nbytes = math.prod(extents.get(r, 1) for r in staging[key]) * operand_bytes
        body.add(f"stg{tensor}{'AB'[side]}_{c}", "smem", math.ceil(nbytes / rates.smem_bytes), deps,
                 einsum=tensor, actions={"smem.byte": nbytes})

    def staged_deps(c: str, g: Group) -> list[Any]:
        """A GEMM waits for its operands' SMEM copies (a carried iterate's: the previous step's)."""
        out: list[Any] = []
        if not staging:
            return out
        for tensor, side, relation, _ in _operand_sides(plan, g):
            op = f"stg{tensor}{'AB'[side]}_{c}"
            out.append(("prev", op) if relation == "carried" else op)
        return out

    for c in copies:
        for key in staging:
            if key[0] in inputs:
                stage(c, key, list(ends[c][key[0]]))
    for c in copies:
        for g in groups:
            deps: list[Any] = staged_deps(c, g)
            for dep, distance in g.deps.items():
                if dep not in names:
                    continue
                deps.append(f"{dep}_{c}" if distance == 0 else ("prev", f"{dep}_{c}"))
            deps += [f"{d}_{c}" for d in g.final_deps if d in names]
            for tensor in g.inputs:
                deps += list(ends[c].get(tensor, ()))
            amount = _work_of(g, extents, tf32)
            einsum = g.einsums[0]
            if g.unit == UNIT_TENSOR:
                smem, steps = _operand_smem(plan, g, layout, extents, tile.consumers, operand_bytes, k_step,
                                            staged=bool(staging)) if k_step else (0.0, 1)
                body.gemm(f"{g.name}_{c}", amount, deps, einsum=einsum, smem_bytes=smem, k_steps=steps)
            elif g.unit == UNIT_FP32:
                body.fp32(f"{g.name}_{c}", amount, deps, einsum=einsum)
            else:
                body.exp(f"{g.name}_{c}", amount, deps, einsum=einsum)
            for key in staging:   # a computed operand is staged once its last piece is done
                producer = plan.work.producer(key[0])
                if key[0] in inputs or producer is None:
                    continue
                holders = [n for n, einsums in held.items() if producer in einsums]
                if holders and holders[-1] == g.name:
                    stage(c, key, [f"{h}_{c}" for h in holders])
        for tensor in cascade.outputs:
            producer = plan.work.producer(tensor)
            holders = [f"{g.name}_{c}" for g in groups if any(p.einsum.split(".")[0] == producer for p in g.pieces)]
            nbytes = layout.elements(cascade, tensor, tile.block_m, tile.block_n) * OUTPUT_BYTES * fill
            body.store(f"st{tensor}_{c}", nbytes, holders, einsum=producer or tensor)
    epi = OpList(rates, tensor_type)
    for c in copies:
        for g in after:
            amount = _work_of(g, extents, tf32)
            deps = [f"{d}_{c}" for d in (*g.deps, *g.final_deps) if d in names]
            if g.unit == UNIT_TENSOR:
                epi.gemm(f"{g.name}_{c}", amount, deps, einsum=g.einsums[0])
            elif g.unit == UNIT_FP32:
                epi.fp32(f"{g.name}_{c}", amount, deps, einsum=g.einsums[0])
            else:
                epi.exp(f"{g.name}_{c}", amount, deps, einsum=g.einsums[0])
    return sm_schedule((), body.ops, work.tiles, epi.ops, {}, name=f"{m.name} CTA x{work.tiles} steps (x{resident})")


def map_recurrent(cascade: Cascade, mapping: MappingSpec, workload: GpuAttention, spec: GpuSpec, *,
                  section: GpuSection | None = None, design: str | None = None) -> GpuMapping:
    """The ``recurrent`` GPU mapping of ``cascade`` for ``workload`` on ``spec`` (no engine run)."""
    from attnsim.mappers.gpu_cascade_mapper import _check_features

    where = mapping.origin
    section = section or gpu_section(mapping)
    _check_features(section, spec, workload, where)
    if section.operand_dtype is not None and getattr(spec.per_sm_per_clock.tensor_flops, section.operand_dtype) is None:
        raise MappingError(f"{where}: gpu.operand_dtype: {spec.name} gives no {section.operand_dtype} tensor rate "
                           f"(per_sm_per_clock.tensor_flops.{section.operand_dtype})")
    if workload.window is not None or workload.q_len != workload.seq or workload.kv_heads != workload.heads:
        raise MappingError(f"{where}: gpu.style: 'recurrent' maps prefill with one K/V head per query head and no "
                           "window (expected no --window, --q-len or --kv-heads)")
    layout = recurrent_layout(cascade, section, workload, where)
    keys = frozenset({section.keys_rank})
    work: GpuCascadeWork = gpu_cascade_work(cascade, keys, SpecialFunctions.of(spec.mufu_functions,
                                                                              spec.function_forms))
    plan = plan_groups(work, section, where, staged=False)
    case = section.tile_case({"head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype},
                             where)
    split_size = layout.sizes.get(layout.split_shape, 1) if layout.split_shape else 1
    block_n = min(case.block_n, split_size) if layout.split_shape else case.block_n
    splits = -(-split_size // block_n) if layout.split_shape else 1
    threads = case.consumers * section.threads_per_consumer
    registers = (min(spec.storage.max_registers_per_thread.value,
                     (spec.storage.register_file_bytes_per_sm.value // 4 // threads) // 8 * 8)
                 if section.registers_per_thread == "split"
                 else min(section.registers_per_thread, spec.storage.max_registers_per_thread.value))
    stages = case.stages or section.stages
    smem = stages * sum(layout.elements(cascade, t, case.block_m, block_n) * workload.element_bytes
                        for t in work.tile_inputs)
    if smem > spec.storage.smem_bytes_per_cta.value:
        raise MappingError(f"{where}: gpu.tiles: {stages} stages of the step's input blocks need {smem} bytes of "
                           f"SMEM; {spec.name} allows {spec.storage.smem_bytes_per_cta.value} per CTA")
    tile = CtaTile(block_m=case.block_m, block_n=block_n, consumers=case.consumers, threads=threads,
                   registers_per_thread=registers, smem_bytes=smem, stages=stages, splits=splits)
    try:
        occ = occupancy(spec, tile)
    except MappingError as exc:
        raise MappingError(f"{where}: gpu.tiles: {exc}") from None
    heads = workload.batch * workload.heads
    steps = -(-workload.seq // case.block_m)
    masked = steps if any(e.filtered for e in work.einsums.values()) else 0
    order = tuple(CtaWork(steps, masked) for _ in range(heads * splits))
    together = max(1, min(splits, (spec.sms * occ.resident_ctas) // heads))
    resolved = RecurrentMapping(mapping.name, section, plan, layout, tile, spec, workload, steps, 1.0 / together)
    extents = layout.extents(tile.block_m, tile.block_n)
    groups, _ = step_groups(plan)
    tensor_flops = sum(_work_of(g, extents, section.operand_dtype is not None) for g in groups
                       if g.unit == UNIT_TENSOR) * steps * len(order)

    def schedule(cta: CtaWork, copies: int | None = None) -> Schedule:
        return recurrent_schedule(resolved, cta, occ.resident_ctas if copies is None else copies)

    choices: dict[str, Any] = {"block_m": tile.block_m, "block_n": tile.block_n, "consumers": tile.consumers,
                               "stages": stages, "cluster": 1, "style": "recurrent", "cascade": cascade.name,
                               "mapping": mapping.name, "steps_per_cta": steps, "splits": splits,
                               "step_rank": section.keys_rank, "split_rank": section.split_rank,
                               "operand_dtype": section.operand_dtype or workload.dtype,
                               "cascade_tensor_flops": tensor_flops, "splits_sharing_hbm_reads": together}
    return GpuMapping(design=design or mapping.name, workload=workload, tile=tile, occupancy=occ, order=order,
                      cta_schedule=schedule, tensor_instruction=section.tensor_instruction, choices=choices)


__all__ = ["OPERAND_BYTES", "RecurrentLayout", "RecurrentMapping", "map_recurrent", "recurrent_layout",
           "recurrent_schedule", "staged_operands", "step_groups"]
