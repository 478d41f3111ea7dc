"""The generic GPU mapper: (cascade, mapping, workload, GPU spec) -> the schedules the engine runs.

Per Einsum, the cascade says which unit does the work and how much (:mod:`mappers.gpu_cascade_work`)
and what waits for what (:mod:`mappers.gpu_cascade_groups`); the mapping's ``gpu:`` section
(:mod:`mappers.gpu_mapping`) says how a CTA is tiled and laid out, and which schedule template its
consumers follow:

``in_phase``          the resident CTAs' warps run every op in step (FA2: mma.sync, ldmatrix operand
                      reads from SMEM, cp.async single-buffered tile loads);
``warp_specialized``  a producer warpgroup loads K/V tiles into a ring of ``stages`` SMEM buffers by
                      TMA while consumer warpgroups compute, with ping-pong between the warpgroups
                      and the next tile's first GEMM issued before the current tile's second (FA3);
``multi_pass``        the CTA walks the K/V tiles once per pass (:mod:`mappers.gpu_multi_pass`);
``recurrent``         one CTA walks a cascade's iterative rank carrying its state, one block of
                      the inputs in and of the outputs out per step (Lightning-2;
                      :mod:`mappers.gpu_template_recurrent`, which builds the whole mapping).

Nothing here names an Einsum. The mapper builds schedules and never runs the engine: the result is a
:class:`~mappers.gpu_common.GpuMapping` whose ``cta_schedule(work)`` gives one CTA group's schedule;
:func:`studies.gpu.run_gpu_mapping` runs them and assembles the result.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.archsim.schedule import Schedule
from attnsim.einsum_ir import Cascade
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_cascade_groups import Group, GroupPlan, plan_groups
from attnsim.mappers.gpu_cascade_work import (UNIT_FP32, UNIT_MUFU, UNIT_TENSOR, GpuCascadeWork, SpecialFunctions,
                                              gpu_cascade_work)
from attnsim.mappers.gpu_common import (
    CtaTile,
    CtaWork,
    GpuAttention,
    GpuMapping,
    OpList,
    Rates,
    grid_heads,
    launch_order,
    m_blocks,
    block_tiles,
    merge_parts,
    occupancy,
    stream_k_order,
)
from attnsim.mappers.gpu_mapping import GpuSection, gpu_section, matches
from attnsim.mappers.gpu_mechanisms import MECHANISMS, launch_cycles, permute_ops, transposed_inputs
from attnsim.mappers.mapping_spec import MappingSpec

WARPGROUP_THREADS = 128


# --------------------------------------------------------------------------------------------------
# Ranks, extents, tiles.


@dataclass(frozen=True)
class Layout:
    """How the cascade's ranks meet the CTA: per-tile extents of every rank variable."""

    rows_rank: str
    keys_ranks: frozenset[str]
    sizes: dict[str, int]              # shape symbol -> workload value
    shape_of: dict[str, str]           # rank variable -> shape symbol
    tile_shape: str                    # shape symbol of the keys rank's tile (M0, or M unpartitioned)
    iterative: frozenset[str]
    split_rank: str | None = None      # the split-K rank (one split per CTA)

    def extents(self, rows: int, block_n: int, splits: int = 1) -> dict[str, int]:
        """Per-tile extent of each rank variable: ``rows`` for the rows rank, ``block_n`` for the keys
        tile, 1 for the tile index, ``splits`` for the split rank (1 in a CTA, the partials in the
        merge), the workload's size otherwise."""
        out: dict[str, int] = {}
        for rank, shape in self.shape_of.items():
            if rank == self.rows_rank:
                out[rank] = rows
            elif rank == self.split_rank:
                out[rank] = splits
            elif shape == self.tile_shape:
                out[rank] = block_n
            elif rank in self.keys_ranks:
                out[rank] = 1
            else:
                out[rank] = self.sizes.get(shape, 1)
        return out

    def tensor_elements(self, cascade: Cascade, tensor: str, rows: int, block_n: int) -> int:
        """Elements of input ``tensor`` in one CTA (rows) or K/V tile (keys)."""
        count = 1
        for dim in cascade.tensor_shapes[tensor]:
            name = str(dim)
            rank = next((r for r, s in self.shape_of.items() if s == name), None)
            if rank == self.rows_rank:
                count *= rows
            elif rank is not None and rank in self.keys_ranks:
                count *= block_n
            else:
                count *= self.sizes.get(name, 1)
        return count


def layout_of(cascade: Cascade, section: GpuSection, workload: GpuAttention, where: str) -> Layout:
    """Check the section's ranks against the cascade and bind its shape symbols to the workload."""
    shape_of = {rank: str(symbol) for rank, symbol in cascade.ranks.items()}
    named = [("rows_rank", section.rows_rank), ("keys_rank", section.keys_rank)]
    if section.split_rank is not None:
        named.append(("split_rank", section.split_rank))
    elif section.partition == "stream_k":
        raise MappingError(f"{where}: gpu.partition: 'stream_k' merges partial results over a split rank; "
                           f"missing gpu.split_rank")
    for key, rank in named:
        if rank not in shape_of:
            raise MappingError(f"{where}: gpu.{key}: the cascade has no rank '{rank}' "
                               f"(its ranks: {', '.join(shape_of)})")
    keys_shape = shape_of[section.keys_rank]
    split_shape = shape_of[section.split_rank] if section.split_rank is not None else None
    keys_ranks = {section.keys_rank}
    tile_shape = keys_shape
    for symbol, expr in cascade.derived_shapes.items():   # M1 = M / M0: m1 and m0 walk the keys too
        names = {str(s) for s in expr.free_symbols}
        if keys_shape in names:
            keys_ranks |= {r for r, s in shape_of.items() if s == str(symbol)}
            for other in sorted(names - {keys_shape, split_shape}):
                tile_shape = other
                keys_ranks |= {r for r, s in shape_of.items() if s == other}
    values = {"seq": workload.seq, "head_dim": workload.head_dim, "splits": 1}
    if workload.window is not None:
        values["window"] = workload.window
    sizes: dict[str, int] = {}
    for symbol in cascade.free_symbols():
        name = str(symbol)
        if name == tile_shape and name not in section.shapes:
            continue
        if name not in section.shapes:
            raise MappingError(f"{where}: gpu.shapes: no value for the cascade's shape symbol {name} "
                               f"(expected seq, head_dim, splits or window)")
        if section.shapes[name] == "window" and workload.window is None:
            raise MappingError(f"{where}: gpu.shapes.{name}: cascade {cascade.name}'s {name} is the sliding "
                               "window, but the workload has none; expected a window size (attnsim gpu --window W)")
        sizes[name] = values[section.shapes[name]]
    if workload.window is not None and not any(section.shapes.get(str(s)) == "window" for s in cascade.free_symbols()):
        raise MappingError(f"{where}: gpu.shapes: the workload has a sliding window of {workload.window} keys but "
                           f"cascade {cascade.name} has no shape symbol bound to window; expected a windowed "
                           "cascade (e.g. window-attention)")
    return Layout(section.rows_rank, frozenset(keys_ranks), sizes, shape_of, tile_shape,
                  frozenset(cascade.iterative), section.split_rank)


def cta_tile(section: GpuSection, spec: GpuSpec, workload: GpuAttention, work: GpuCascadeWork,
             layout: Layout, where: str) -> CtaTile:
    """The CTA's tile and resources from the mapping: SMEM = CTA inputs + stages x tile inputs."""
    facts = {"head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype}
    case = section.tile_case(facts, where)
    threads = (case.consumers * section.threads_per_consumer
               + section.producer_warpgroups * WARPGROUP_THREADS)
    if section.registers_per_thread == "split":
        registers = min(spec.storage.max_registers_per_thread.value,
                        (spec.storage.register_file_bytes_per_sm.value // 4 // threads) // 8 * 8)
    else:
        registers = min(section.registers_per_thread, spec.storage.max_registers_per_thread.value)
    b = workload.element_bytes
    cascade = work.cascade
    smem = sum(layout.tensor_elements(cascade, t, case.block_m, case.block_n) * b for t in work.cta_inputs)
    stages = case.stages or section.stages
    smem += stages * sum(layout.tensor_elements(cascade, t, case.block_m, case.block_n) * b
                         for t in work.tile_inputs)
    smem += fp8_transpose_smem(section, workload, work, layout, case, stages)
    capacity = spec.storage.smem_bytes_per_cta.value
    if smem > capacity:
        parts = [f"{t} {layout.tensor_elements(cascade, t, case.block_m, case.block_n) * b}"
                 for t in work.cta_inputs]
        per_stage = " + ".join(f"{t} {layout.tensor_elements(cascade, t, case.block_m, case.block_n) * b}"
                               for t in work.tile_inputs)
        raise MappingError(f"{where}: gpu.tiles: the CTA's SMEM tiles need {smem} bytes ("
                           f"{' + '.join(parts) or 'no CTA inputs'} + {stages} x ({per_stage})) for "
                           f"block_m {case.block_m}, block_n {case.block_n}, head_dim {workload.head_dim}; "
                           f"{spec.name} allows {capacity} per CTA")
    if section.style == "multi_pass":   # the spilled rows in SMEM when they fit, else staging slots
        from attnsim.mappers.gpu_template_multi_pass import spill_placement

        smem = spill_placement(section, spec, workload, case.block_m, smem)[1]
    pack = workload.group if section.pack_gqa == "always" or (
        section.pack_gqa == "decode" and workload.q_len == 1) else 1
    cluster = 1
    size = case.cluster if case.cluster is not None else (
        section.cluster.size if section.cluster is not None and matches(section.cluster.when, facts) else 1)
    if size > 1:
        # FA3 rounds the query blocks up to a multiple of the cluster (hopper/flash_fwd_launch_template.h:
        # num_blocks_m = round_up(ceil(seqlen_q / kBlockM), cluster)); the extra CTAs' loads are clipped
        # (gpu_common.m_blocks). Dropping the cluster when the blocks did not divide made latency fall
        # as the length grew (issue #12).
        cluster = size
    tile = CtaTile(block_m=case.block_m, block_n=case.block_n, consumers=case.consumers, threads=threads,
                   registers_per_thread=registers, smem_bytes=smem, stages=stages, cluster=cluster, pack=pack)
    if section.split_rank is not None and section.partition == "grid":
        ctas = grid_heads(workload, tile) * m_blocks(workload, tile)
        splits = section.splits.choose(ctas, spec.sms, -(-workload.seq // case.block_n))
        tile = replace(tile, splits=splits)
    return tile


def persistent_kernel(section: GpuSection, workload: GpuAttention, where: str) -> bool:
    """False when the workload's tile case says the kernel has no persistent tile scheduler (then
    the hardware launches CTAs in block order and no CTA's prologue overlaps another's epilogue)."""
    facts = {"head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype}
    return section.tile_case(facts, where).persistent


def fp8_transpose_smem(section: GpuSection, workload: GpuAttention, work: GpuCascadeWork, layout: Layout,
                       case: Any, stages: int) -> int:
    """SMEM of the transposed copies (mechanism ``fp8_v_transpose``): one per stage of each per-tile
    input a contraction reduces over the keys rank (``SharedStorageQKVOVt``'s ``smem_v_out``)."""
    if not (section.mechanisms.fp8_v_transpose and workload.dtype == "fp8"):
        return 0
    plan = plan_groups(work, section, "")
    return stages * sum(layout.tensor_elements(work.cascade, t, case.block_m, case.block_n) * workload.element_bytes
                        for t in transposed_inputs(plan, layout.keys_ranks))


# --------------------------------------------------------------------------------------------------
# Shared schedule pieces.


def dep_ids(plan: GroupPlan, group: Group, suffix: str, emitted: set[str], block_ids: set[str],
             *, iteration_block: bool) -> list[Any]:
    """Schedule dependencies of ``group``'s op: lag 0 -> the op id (if already issued), lag >= 1 ->
    ``("prev", id, lag)`` inside a loop body, the most recent instance otherwise."""
    out: list[Any] = []
    for dep, distance in group.deps.items():
        lag = plan.lag(group, dep, distance)
        op_id = f"{dep}_{suffix}"
        if lag == 0:
            if op_id in emitted:
                out.append(op_id)
        elif iteration_block and op_id in block_ids:
            out.append(("prev", op_id, lag) if lag > 1 else ("prev", op_id))
        elif op_id in emitted:
            out.append(op_id)
    for dep in group.final_deps:
        if f"{dep}_{suffix}" in emitted:
            out.append(f"{dep}_{suffix}")
    return out


def emit_group(ops: OpList, group: Group, op_id: str, extents: Mapping[str, int], deps: list[Any], *,
          masked: bool = False, smem_bytes: float = 0.0, k_steps: int = 1,
          releases: Mapping[str, int] | None = None, poly: Mapping[str, float] | None = None,
          permute: bool = False) -> None:
    """One op of ``group`` (its unit's helper on :class:`OpList`); ``permute``: add the FP8
    accumulator permutes of its converts (mechanism ``fp8_accumulator_permute``)."""
    kinds = None if masked else ("main", "convert", "rcp", "output")
    amount = group.work(extents, kinds=kinds)
    if permute and group.unit == UNIT_FP32:
        amount += permute_ops(group, extents)
    einsum = group.einsums[0]
    if poly:
        amount = _poly_adjusted(group, extents, amount, poly, masked)
    if group.unit == UNIT_TENSOR:
        ops.gemm(op_id, amount, deps, einsum=einsum, smem_bytes=smem_bytes, k_steps=k_steps, releases=releases)
    elif group.unit == UNIT_MUFU:
        ops.exp(op_id, amount, deps, einsum=einsum, releases=releases)
    else:
        ops.fp32(op_id, amount, deps, einsum=einsum, releases=releases)


def _poly_adjusted(group: Group, extents: Mapping[str, int], amount: float,
                   poly: Mapping[str, float], masked: bool) -> float:
    """Move ``poly['fraction']`` of the exponentials of ``poly['einsums']`` from the MUFU to the FP32
    lanes at ``poly['fp32_ops']`` ops each."""
    einsums = poly["einsums"]
    moved = sum(p.work(extents) for p in group.pieces if p.einsum in einsums and p.kind == "main"
                and p.unit == UNIT_MUFU)
    if group.unit == UNIT_MUFU:
        return amount - poly["fraction"] * moved
    if group.unit == UNIT_FP32:
        exps = poly["exp_points"]
        return amount + poly["fraction"] * poly["fp32_ops"] * exps if any(
            p.einsum in einsums and p.kind == "main" for p in group.pieces) else amount
    return amount


def gemm_smem_bytes(plan: GroupPlan, group: Group, layout: Layout, rows: int, block_n: int, consumers: int,
               b: int, k_step: int) -> tuple[float, int]:
    """ldmatrix operand bytes of a tensor op (operands that are loaded inputs live in SMEM; each
    consumer reads its own rows of a rows-indexed operand and the whole of any other) and its k-steps."""
    work = plan.work
    smem = 0.0
    steps = 1
    extents = layout.extents(rows, block_n)
    for piece in group.pieces:
        if piece.kind != "main" or piece.per_point == 0:
            continue
        einsum = work.cascade.einsum(piece.einsum)
        for ref in einsum.inputs():
            source = work.source(ref.tensor)
            if source not in work.cascade.inputs:
                continue
            ranks = [i.rank_var for i in ref.indices if i.rank_var]
            elements = 1
            for rank in ranks:
                elements *= extents.get(rank, 1)
            readers = 1 if layout.rows_rank in ranks else consumers
            smem += readers * elements * b
        reduced = 1
        for rank in einsum.reduced_ranks:
            reduced *= extents.get(rank, 1)
        steps = max(1, reduced // k_step)
    return smem, steps


# --------------------------------------------------------------------------------------------------
# The mapping.


@dataclass(frozen=True)
class CascadeMapping:
    """Everything the templates need, resolved once per (cascade, mapping, workload, spec)."""

    name: str
    section: GpuSection
    plan: GroupPlan
    layout: Layout
    tile: CtaTile
    spec: GpuSpec
    workload: GpuAttention
    poly: dict[str, Any] | None
    where: str
    partials_in_l2: bool = True     # split-K partials stay in L2 (they fit) rather than go to HBM


def _poly(section: GpuSection, plan: GroupPlan, layout: Layout, tile: CtaTile, spec: GpuSpec,
          workload: GpuAttention) -> dict[str, Any] | None:
    """The polynomial-exp split (``gpu.poly_exp``): fraction f balancing, per consumer and tile,
    tensor + exposed MUFU (of the listed Einsums) against FP32 work + the polynomials:
    ``f = (T + (1 - o) M - F) / ((1 - o) M + P)`` clamped to [0, 1]."""
    if section.poly_exp is None:
        return None
    einsums = set(section.poly_exp.einsums)
    extents = layout.extents(tile.rows_per_consumer, tile.block_n)
    exp_points = sum(p.work(extents) for g in plan.of_place("tile") for p in g.pieces
                     if p.einsum in einsums and p.kind == "main" and p.unit == UNIT_MUFU)
    if section.poly_exp.fraction != "balanced":
        fraction = float(section.poly_exp.fraction)
    else:
        rates = Rates.of(spec, workload.dtype, fraction_name(section))
        tensor = sum(g.work(extents) for g in plan.of_place("tile") if g.unit == UNIT_TENSOR) / rates.tensor_flops
        mufu = exp_points / rates.mufu_ops
        fp32 = sum(g.work(extents, kinds=("main", "convert", "rcp", "output"))
                   for g in plan.of_place("tile") if g.unit == UNIT_FP32) / rates.fp32_ops
        poly = section.poly_exp.fp32_ops * exp_points / rates.fp32_ops
        exposed = (1.0 - rates.mufu_overlap) * mufu
        fraction = min(1.0, max(0.0, (tensor + exposed - fp32) / (exposed + poly)))
    return {"einsums": einsums, "fraction": fraction, "fp32_ops": section.poly_exp.fp32_ops,
            "exp_points": exp_points}


TENSOR_FRACTIONS = {"mma.sync": "mma_sync_tensor_fraction", "wgmma": "wgmma_tensor_fraction"}
"""Tensor instruction of a mapping -> the GPU spec's calibration of the fraction of the peak it reaches."""


def fraction_name(section: GpuSection) -> str:
    """The calibration entry (:data:`TENSOR_FRACTIONS`) of the mapping's tensor instruction."""
    return TENSOR_FRACTIONS[section.tensor_instruction]


def resolve(cascade: Cascade, mapping: MappingSpec, workload: GpuAttention, spec: GpuSpec,
            section: GpuSection | None = None) -> CascadeMapping:
    """Validate and resolve a (cascade, mapping) pair for ``workload`` on ``spec``."""
    where = mapping.origin
    section = section or gpu_section(mapping)
    _check_features(section, spec, workload, where)
    layout0 = layout_of(cascade, section, workload, where)
    if section.style != "multi_pass":
        _check_one_pass(cascade, section, where)
    if section.split_rank is not None and section.style != "in_phase":
        raise MappingError(f"{where}: gpu.split_rank: split-K partials are written by the in_phase template "
                           f"only, got style '{section.style}'")
    split_ranks = frozenset({section.split_rank}) if section.split_rank is not None else frozenset()
    work = gpu_cascade_work(cascade, layout0.keys_ranks, SpecialFunctions.of(spec.mufu_functions, spec.function_forms),
                            split_ranks)
    plan = plan_groups(work, section, where)
    if section.style == "multi_pass" and section.passes is None:
        section = _with_derived_passes(section, cascade, plan, workload, where)
    tile = cta_tile(section, spec, workload, work, layout0, where)
    layout = Layout(layout0.rows_rank, layout0.keys_ranks, {**layout0.sizes, layout0.tile_shape: tile.block_n},
                    layout0.shape_of, layout0.tile_shape, layout0.iterative, layout0.split_rank)
    poly = _poly(section, plan, layout, tile, spec, workload)
    return CascadeMapping(mapping.name, section, plan, layout, tile, spec, workload, poly, where)


HOPPER_FEATURES = frozenset({"wgmma", "tma", "warp_specialization", "clusters"})
"""Features new in Hopper (archsim.gpu_spec.GPU_FEATURES): what FA3 needs and an A100 lacks."""


def _check_features(section: GpuSection, spec: GpuSpec, workload: GpuAttention, where: str) -> None:
    """MappingError naming the key when the mapping needs a GPU feature ``spec`` lacks (FA3's wgmma,
    TMA and warp specialisation are Hopper-only: compute capability 9.0)."""
    facts = {"head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype}
    for feature, key in section.gpu_features(facts).items():
        if not spec.has_feature(feature):
            hopper = " (a Hopper feature, compute capability 9.0, that FA3-style mappings use)" if feature in \
                HOPPER_FEATURES else ""
            raise MappingError(f"{where}: gpu.{key}: needs the GPU feature '{feature}'{hopper}, which {spec.name} "
                               f"does not have (its features: {', '.join(spec.feature_names)})")


def _pass_analysis(cascade: Cascade, rank: str):   # type: ignore[no-untyped-def]
    """The pass analysis of ``cascade`` over ``rank`` (None where it does not cover the cascade), once
    per cascade: the analysis (sympy) costs more than simulating a point."""
    from attnsim.einsum_ir.passes import AnalysisError, analyze_passes

    key = (cascade.source, cascade.name, tuple(e.source for e in cascade.einsums), rank)
    if key not in _ANALYSES:
        try:
            _ANALYSES[key] = analyze_passes(cascade, rank)
        except AnalysisError:
            _ANALYSES[key] = None
    return _ANALYSES[key]


_ANALYSES: dict[tuple, Any] = {}


def _with_derived_passes(section: GpuSection, cascade: Cascade, plan: Any, workload: GpuAttention,
                         where: str) -> GpuSection:
    """A multi_pass section without ``passes``: each per-tile op group in the pass of its Einsum (the
    pass analysis over the keys rank), and as ``spill`` every tensor indexed by the keys rank that one
    pass writes and a later pass reads -- in the workload's element width when only tensor-core ops
    read it there (P for the P V GEMM), else FP32 (4 bytes). Row summaries (a max or sum per query)
    stay in registers."""
    rank_var = section.keys_rank
    analysis = _pass_analysis(cascade, str(cascade.ranks[rank_var]))
    if analysis is None:
        raise MappingError(f"{where}: gpu.passes: not given, and the pass analysis does not cover cascade "
                           f"{cascade.name}: list the op groups of each pass")
    pass_of = analysis.einsum_pass
    passes: list[list[str]] = [[] for _ in range(analysis.passes)]
    for g in plan.of_place("tile"):
        einsums = [p.einsum for p in g.pieces if p.kind != "mask"]
        if einsums:
            passes[max(pass_of.get(e, 1) for e in einsums) - 1].append(g.name)
    by_tensor = {e.output.tensor: e for e in cascade.einsums}
    spill: dict[str, int] = {}
    for tensor, einsum in by_tensor.items():
        if rank_var not in einsum.output_ranks or einsum.name not in pass_of:
            continue
        later = [g for g in plan.of_place("tile") if any(
            r.tensor == tensor for piece in g.pieces for r in piece.reads)
            and max(pass_of.get(p.einsum, 1) for p in g.pieces) > pass_of[einsum.name]]
        if later:
            spill[tensor] = workload.element_bytes if all(g.unit == "tensor" for g in later) else 4
    return section.model_copy(update={"passes": [names for names in passes if names], "spill": spill})


def _check_one_pass(cascade: Cascade, section: GpuSection, where: str) -> None:
    """A single-sweep template needs a cascade the pass analysis finds 1-pass over the keys rank
    (outside what the analysis covers there is nothing to check against)."""
    rank = str(cascade.ranks[section.keys_rank])
    analysis = _pass_analysis(cascade, rank)
    passes = analysis.passes if analysis is not None else 0
    if passes > 1:
        raise MappingError(f"{where}: gpu.style: '{section.style}' makes one sweep over the K/V tiles, but "
                           f"cascade {cascade.name} needs {passes} passes over {rank} (use style: multi_pass)")


def map_cascade(cascade: Cascade, mapping: MappingSpec, workload: GpuAttention, spec: GpuSpec, *,
                section: GpuSection | None = None, design: str | None = None) -> GpuMapping:
    """The GPU mapping of ``cascade`` with ``mapping`` for ``workload`` on ``spec`` (no engine run)."""
    if (section or gpu_section(mapping)).style == "recurrent":
        from attnsim.mappers.gpu_template_recurrent import map_recurrent

        return map_recurrent(cascade, mapping, workload, spec, section=section, design=design)
    resolved = resolve(cascade, mapping, workload, spec, section)
    section = resolved.section
    tile = resolved.tile
    try:
        occ = occupancy(spec, tile)
    except MappingError as exc:
        raise MappingError(f"{resolved.where}: gpu.tiles: {exc}") from None
    longest = persistent_kernel(section, workload, resolved.where) and (section.launch_order == "longest_first" or (
        section.launch_order == "longest_first_if_causal" and workload.causal))
    if section.style == "in_phase":
        from attnsim.mappers.gpu_template_in_phase import in_phase_schedule as build
    elif section.style == "warp_specialized":
        from attnsim.mappers.gpu_template_warp_specialized import warp_specialized_schedule as build
    else:
        from attnsim.mappers.gpu_template_multi_pass import multi_pass_schedule as build

    n_tiles = -(-workload.seq // tile.block_n)
    if section.partition == "stream_k":
        order = stream_k_order(workload, tile, spec.sms * occ.resident_ctas)
        merges = merge_parts(order, block_tiles(workload, tile) if workload.causal else n_tiles)
    else:
        order = launch_order(workload, tile, longest_first=longest)
        merges = [tile.splits] * (grid_heads(workload, tile) * m_blocks(workload, tile)) if tile.splits > 1 else []
    if merges:
        from attnsim.mappers.gpu_template_merge import merge_schedule, partial_bytes

        stored = sum(partial_bytes(resolved, tile.block_m) for w in order for p in w.parts() if p.partial)
        resolved = replace(resolved, partials_in_l2=stored <= spec.storage.l2_bytes.value / 2)

    def schedule(work: CtaWork, copies: int | None = None) -> Schedule:
        return build(resolved, work, occ.resident_ctas if copies is None else copies)

    def merge(parts: int) -> Schedule:
        return merge_schedule(resolved, parts)

    choices: dict[str, Any] = {"block_m": tile.block_m, "block_n": tile.block_n, "consumers": tile.consumers,
                               "stages": tile.stages, "cluster": tile.cluster, "style": section.style,
                               "cascade": cascade.name, "mapping": mapping.name}
    if section.style == "warp_specialized":
        choices.update(warp_specialized=section.warp_specialized, pingpong=section.pingpong,
                       intra_pipeline=section.intra_pipeline)
    if resolved.poly is not None:
        choices["poly_exp_fraction"] = round(resolved.poly["fraction"], 4)
    if section.style == "multi_pass":
        from attnsim.mappers.gpu_template_multi_pass import spill_level

        choices["score_rows_in"] = spill_level(resolved)
    choices.update(pack_gqa=tile.pack, partition=section.partition)
    if section.split_rank is not None:
        choices.update(splits=tile.splits, merge_ctas=len(merges), partials_in=("l2" if resolved.partials_in_l2
                                                                                else "hbm") if merges else None)
    enabled = [name for name in MECHANISMS if getattr(section.mechanisms, name)]
    if enabled:
        choices["mechanisms"] = enabled
    return GpuMapping(design=design or mapping.name, workload=workload, tile=tile, occupancy=occ,
                      order=tuple(order), cta_schedule=schedule, tensor_instruction=section.tensor_instruction,
                      choices=choices, merges=tuple(merges), merge_schedule=merge if merges else None,
                      launch_cycles=launch_cycles(section.mechanisms, spec.clock_hz))


__all__ = ["CascadeMapping", "Layout", "cta_tile", "dep_ids", "emit_group", "fraction_name", "gemm_smem_bytes",
           "layout_of", "map_cascade", "resolve"]
