"""Multi-pass cascades on a spatial accelerator: a mapping's fusion ``groups`` -> one software-pipelined
loop per group, the groups one after the other. Nothing here names a particular Einsum or tensor; the
mapping file does (``specs/mappings/unfused.yaml``, ``flat.yaml``; docs/mapping.md, "Multi-pass mappings").

Per group (:class:`mappers.mapping_spec.Group`), with the point's extents (``M = P = seq``, ``E``, ``F``)
and ``B x H`` heads:

* **blocks**: the DRAM-level loop over ``block_rank`` in blocks of ``block_factor``; ``fit``: as many
  blocks as the largest multiple of the rank's tile extent (at most ``block_max``) whose ``live`` tensors
  (block footprints) and double-buffered ``staged`` tiles fit the global buffer needs, balanced (each
  the rank / blocks, rounded up to the tile extent).
  ``ceil`` everywhere: a length that is not a multiple runs the last block and tile padded, so latency
  and traffic never decrease with the length.
* **iterations**: per head, ``prod ceil(extent / tile)`` over the tiled ranks (``iteration: tile``) or the
  blocks (``iteration: block``); each processes the tile's (or block's) extents.
* **compute** per Einsum, from the cascade (:mod:`mappers.cascade_work`): points of its iteration space,
  primitive ops lowered on the bound unit; on the 2D array the ``spatial`` ranks run across rows and
  columns (``ceil(extent / dimension)`` steps each), every other rank in time; on the 1D array the points
  spread over the lanes. Cycles per point: the ops in sequence, or the slowest op (``op_overlap``).
* **traffic** per head, in words (``GroupChoice.traffic``; ``nb`` blocks; ``rr`` = a reader's re-reads,
  one per array tile of its spatial ranks the tensor lacks; ``s`` = the spill fraction): an input read
  ``once`` moves ``(1 - s) x |T| + s x nb x sum(readers) block(T) x rr``; ``per_block`` ``nb x block(T)``;
  ``per_tile`` ``nb x sum(readers) block(T) x rr``. An intermediate on ``chip`` moves ``s`` of every
  access (its write and each reader's ``block(T) x rr``); in ``dram`` it is written and read back by its
  first reader. A group output is written ``nb x block(T)``; one its writer reduces over the block rank
  (partial sums) is also read back ``nb - 1`` times.
* **spill** ``auto`` (the artifact's stable-softmax rule, fact sheet §2.5): ``1 - min(1, available / (word
  x M))`` with ``available`` the buffer left per row of the block once the block rows of the group's
  inputs and outputs are in (0 when no intermediate lives on chip).
* **energy**: each Einsum's ops; its reads from the first level of the tensor's placement (the group's
  ``placement`` over the mapping's; only readers in ``read_by``), its write to every level, counted when
  in ``charge``; the loads of inputs placed in the global buffer write it, the stores of such outputs
  read it.
* **pipeline**: a load (stage 0), then per run of consecutive Einsums on one unit a stage, each followed
  by a DRAM transfer stage carrying the traffic of the tensors that run writes; the load of iteration
  ``j + 2`` waits for the first Einsum of ``j`` (double buffering) -- :func:`mappers.attention_ops.loop_blocks`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from attnsim.archsim.schedule import LoopDep, Schedule
from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade
from attnsim.mappers.attention_ops import OpTemplate, ceil_div, compute_op, dram_op, last_ops, loop_blocks
from attnsim.mappers.cascade_work import CascadeWork, EinsumWork, lower
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.group_buffer import ON_CHIP_MODES, group_buffer
from attnsim.mappers.mapping_spec import Group, GroupChoice, MappingSpec, Placement, evaluate_expression
from attnsim.mappers.tiling import spilled_fraction
from attnsim.mappers.workloads import Workload

ACCESS_LEVELS = ("global_buffer", "pe1d.register_file", "pe2d.register_file")
"""Levels whose accesses the energy model can charge (``pe`` and ``dram`` are not buffer accesses)."""

_CHOICE_KEYS = ("traffic", "spatial", "live", "staged", "spill", "block_factor", "block_max", "block_min", "fit",
                "block_sizes")


@dataclass(frozen=True)
class ResolvedGroup:
    """One group at one point: its choices resolved to numbers (reported in ``choices``)."""

    name: str
    einsums: tuple[str, ...]
    source: str
    block_rank: str
    block: int
    blocks_per_head: int
    iterations_per_head: int
    spill: float
    traffic: dict[str, str]
    spatial: dict[str, dict[str, str]]
    tile: dict[str, int]


def _merged(group: Group, override: GroupChoice | Mapping[str, Any] | None) -> dict[str, Any]:
    """The group's choices with ``override``'s (an alternative or a table row) on top."""
    merged = {key: getattr(group, key) for key in _CHOICE_KEYS}
    if override is None:
        return merged
    values = override if isinstance(override, Mapping) else {k: getattr(override, k) for k in _CHOICE_KEYS}
    for key, value in values.items():
        if key in ("traffic", "spatial") and value:
            merged[key] = {**merged[key], **value}
        elif value is not None and value != {}:
            merged[key] = value
    return merged


def _tensor_ranks(work: CascadeWork, tensor: str) -> tuple[str, ...]:
    for w in work.einsums.values():
        if w.write.tensor == tensor:
            return tuple(sorted(w.write.ranks))
        for ref in w.reads:
            if ref.tensor == tensor:
                return tuple(sorted(ref.ranks))
    return ()


def _exact(value: Fraction) -> int | Fraction:
    """``value`` as an int when it is whole: the same rational value, but int arithmetic is several
    times cheaper than Fraction's, and the common point (no mask, no spill) is all whole numbers."""
    return value.numerator if value.denominator == 1 else value


def _footprint(ranks: Sequence[str], extents: Mapping[str, int]) -> int:
    return math.prod(extents[r] for r in ranks)


def _spatial_map(work: EinsumWork, choice: object, where: str) -> dict[str, str]:
    """Rank -> array dimension (``rows``/``cols``) of a 2D Einsum (GroupChoice.spatial)."""
    if isinstance(choice, Mapping):
        return {rank: dim for dim, rank in choice.items()}
    if choice == "output":
        ref_ranks = [i.rank_var for i in work.write.indices]
    else:
        inputs = [r for r in work.reads]
        if len(inputs) < 2:
            raise MappingError(f"{where}: '{choice}' stationarity needs an Einsum with two operands; "
                               f"{work.name} has {len(inputs)}")
        ref = inputs[1] if choice == "weight" else inputs[0]
        ref_ranks = [i.rank_var for i in ref.indices]
    ranks = [r for r in ref_ranks if r is not None][:2]
    if len(ranks) < 2:
        raise MappingError(f"{where}: '{choice}' stationarity of {work.name} needs a held tensor with two ranks")
    return {ranks[0]: "rows", ranks[1]: "cols"}


@dataclass(frozen=True)
class _GroupStatic:
    """What a group reads and writes, independent of the point (computed once per cascade and mapping)."""

    inputs: tuple[str, ...]
    intermediates: tuple[str, ...]
    outputs: tuple[str, ...]
    ranks: dict[str, tuple[str, ...]]
    readers: dict[str, list[str]]
    buffer_readers: dict[str, list[str]]
    writer: dict[str, str]


def _group_static(mapping: MappingSpec, group: Group, work: CascadeWork) -> _GroupStatic:
    names = group.einsums
    written = [work.einsums[n].write.tensor for n in names]
    read = [r.tensor for n in names for r in work.einsums[n].reads]
    inputs = tuple(dict.fromkeys(t for t in read if t not in written))
    intermediates = tuple(t for t in written if t in read)
    outputs = tuple(t for t in written if t not in read)
    tensors = (*inputs, *intermediates, *outputs)
    readers = {t: [n for n in names if any(r.tensor == t for r in work.einsums[n].reads)] for t in tensors}
    buffer_readers = {}
    for t in tensors:
        place = _placement(mapping, group, t)
        buffer_readers[t] = [n for n in readers[t] if place.read_by is None or n in place.read_by]
    writer = {work.einsums[n].write.tensor: n for n in reversed(names)}
    return _GroupStatic(inputs, intermediates, outputs, {t: _tensor_ranks(work, t) for t in tensors}, readers,
                        buffer_readers, writer)


class _GroupBuilder:
    """Resolves one group at one point and builds its loop's templates."""

    def __init__(self, mapping: MappingSpec, index: int, work: CascadeWork, arch: Arch, workload: Workload,
                 values: Mapping[str, int], table_row: Mapping[str, Any] | None, table_source: str,
                 static: _GroupStatic) -> None:
        self.mapping, self.group, self.work, self.arch = mapping, mapping.groups[index], work, arch  # type: ignore[index]
        self.where = f"{mapping.origin}: groups[{index}]"
        self.values, self.workload = values, workload
        group = self.group
        self.extents = dict(work.extents)
        for rank in (group.block_rank, *group.tile):
            if rank not in self.extents:
                raise MappingError(f"{self.where}: rank '{rank}' is not a rank of cascade {work.cascade.name} "
                                   f"(known: {', '.join(self.extents)})")
        self.tile_extents = dict(self.extents)
        for rank, expression in group.tile.items():
            self.tile_extents[rank] = min(self.extents[rank],
                                          evaluate_expression(expression, values, f"{self.where}.tile.{rank}"))
        self.static = static
        self.inputs, self.intermediates, self.outputs = static.inputs, static.intermediates, static.outputs
        self.ranks = static.ranks
        candidates: list[tuple[dict[str, Any], str]] = []
        if table_row is not None:
            candidates.append((_merged(group, None) | {k: v for k, v in table_row.items() if k not in ("traffic", "spatial")}
                               | {"traffic": {**group.traffic, **table_row.get("traffic", {})},
                                  "spatial": {**group.spatial, **table_row.get("spatial", {})}}, table_source))
        else:
            alternatives = group.alternatives or [None]
            for i, alternative in enumerate(alternatives):
                candidates.append((_merged(group, alternative),
                                   f"{self.where}.alternatives[{i}]" if alternative is not None else self.where))
        self.choice, self.source, self.block = self._pick(candidates)

    # -- what the group reads and writes ----------------------------------------------------------------

    def readers(self, tensor: str) -> list[str]:
        return self.static.readers[tensor]

    def buffer_readers(self, tensor: str) -> list[str]:
        """Readers that read ``tensor`` from its buffer (``read_by`` of its placement; the others get it
        from registers as it is produced)."""
        return self.static.buffer_readers[tensor]

    def writer(self, tensor: str) -> str:
        return self.static.writer[tensor]

    # -- the block -------------------------------------------------------------------------------------

    def _pick(self, candidates: list[tuple[dict[str, Any], str]]) -> tuple[dict[str, Any], str, int]:
        rank = self.group.block_rank
        step = self.tile_extents[rank] if rank in self.group.tile else 1
        ceiling = ceil_div(self.extents[rank], step) * step
        need = ""
        for index, (choice, source) in enumerate(candidates):
            factor = choice["block_factor"] or "fit"
            if factor != "fit":
                block = evaluate_expression(factor, self.values, f"{source}.block_factor")
                per_row, fixed = self._live_words(choice)
                need_bytes = (fixed + per_row * block) * self.arch.word_bytes
                if need_bytes > self.arch.global_buffer.capacity_bytes:
                    raise MappingError(f"{source}: a block of {block} along {rank} with its live and staged tensors "
                                       f"({', '.join((*(choice['live'] or ()), *(choice['staged'] or ())))}) takes "
                                       f"{need_bytes} bytes, more than global_buffer.capacity_bytes = "
                                       f"{self.arch.global_buffer.capacity_bytes}")
                return choice, source, block
            limit = ceiling
            if choice["block_max"] is not None:
                limit = min(limit, evaluate_expression(choice["block_max"], self.values, f"{source}.block_max"))
            floor = step
            if choice["block_min"] is not None:
                floor = max(step, evaluate_expression(choice["block_min"], self.values, f"{source}.block_min"))
            if choice["fit"] == "fibres":
                per_row, fixed = self._fibre_words(choice), 0
                tensors = ", ".join(self._on_chip_fibres(choice)) or "no score fibre on chip"
            else:
                per_row, fixed = self._live_words(choice)
                tensors = ", ".join((*(choice["live"] or ()), *(choice["staged"] or ())))
            capacity_words = self.arch.global_buffer.capacity_bytes // self.arch.word_bytes
            rows = (capacity_words - fixed) // per_row if per_row else ceiling
            if choice["block_sizes"] == "powers_of_two":
                if rows >= ceiling:   # the whole rank (FLAT's head granularity)
                    return choice, source, ceiling
                block = step
                while 2 * block <= min(limit, rows):
                    block *= 2
                if floor <= block <= min(limit, rows):
                    return choice, source, block
                if choice["spill"] == "buffer" and index == len(candidates) - 1:
                    return choice, source, floor   # the last resort spills what does not fit, as FLAT does
            else:
                largest = min(limit, rows) // step * step
                if largest >= floor:   # as many blocks as the largest needs, balanced (the least padding)
                    count = ceil_div(self.extents[rank], largest)
                    return choice, source, ceil_div(self.extents[rank], count * step) * step
            need = (f"a block of {floor} along {rank} with its {'on-chip score fibres' if choice['fit'] == 'fibres' else 'live and staged tensors'} "
                    f"({tensors}) takes {(fixed + per_row * floor) * self.arch.word_bytes} bytes")
        raise MappingError(f"{self.where} ({self.group.name}): nothing fits in global_buffer.capacity_bytes = "
                           f"{self.arch.global_buffer.capacity_bytes}: {need}")

    def _live_words(self, choice: Mapping[str, Any]) -> tuple[int, int]:
        """(words per row of the block rank, words independent of it) of a choice's live + staged tensors."""
        rank = self.group.block_rank
        per_row = fixed = 0
        for tensor in choice["live"] or ():
            ranks = self._ranks_of(tensor, "live")
            other = _footprint([r for r in ranks if r != rank], self.extents)
            if rank in ranks:
                per_row += other
            else:
                fixed += other
        for tensor in choice["staged"] or ():
            fixed += 2 * _footprint(self._ranks_of(tensor, "staged"), self.tile_extents)
        return per_row, fixed

    def _fibres(self) -> tuple[str, ...]:
        """The group's score fibres: intermediates over the block rank and the cascade's pass rank (per-row
        summaries, over the block rank alone, live in the units)."""
        from attnsim.mappers.cascade_defaults import pass_analysis

        family = set(pass_analysis(self.work.cascade).family.members)
        rank = self.group.block_rank
        return tuple(t for t in self.intermediates if rank in self.ranks[t] and set(self.ranks[t]) & family)

    def _on_chip_fibres(self, choice: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(t for t in self._fibres() if choice["traffic"].get(t) in ON_CHIP_MODES)

    def _fibre_words(self, choice: Mapping[str, Any]) -> int:
        """Words per row of the block rank of the on-chip score fibres, one in place (``fit: fibres``)."""
        rank = self.group.block_rank
        return max((_footprint([r for r in self.ranks[t] if r != rank], self.extents)
                    for t in self._on_chip_fibres(choice)), default=0)

    def _ranks_of(self, tensor: str, key: str) -> tuple[str, ...]:
        if tensor not in self.ranks:
            raise MappingError(f"{self.where}.{key}: group {self.group.name} does not read or write '{tensor}' "
                               f"(known: {', '.join(self.ranks)})")
        return self.ranks[tensor]

    # -- resolution --------------------------------------------------------------------------------------

    def resolve(self) -> ResolvedGroup:
        group = self.group
        rank = group.block_rank
        blocks = ceil_div(self.extents[rank], self.block)
        if group.iteration == "block":
            iterations = blocks
        else:
            iterations = math.prod(ceil_div(self.extents[r], self.tile_extents[r]) for r in group.tile)
        spatial = {n: _spatial_map(self.work.einsums[n], c, f"{self.source}.spatial.{n}")
                   for n, c in self.choice["spatial"].items() if n in group.einsums}
        for name, dims in spatial.items():
            for r in dims:
                if r not in self.work.einsums[name].iteration_ranks:
                    raise MappingError(f"{self.source}.spatial.{name}: Einsum {name} has no rank '{r}'")
        traffic = {t: m for t, m in self.choice["traffic"].items() if t in self.ranks}
        return ResolvedGroup(name=group.name, einsums=tuple(group.einsums), source=self.source, block_rank=rank,
                             block=self.block, blocks_per_head=blocks, iterations_per_head=iterations,
                             spill=self._spill(traffic), traffic=traffic, spatial=spatial, tile=self.tile_extents)

    def _spill(self, traffic: Mapping[str, str]) -> float:
        spill = self.choice["spill"]
        if spill is None:
            return 0.0
        if spill == "buffer":
            fibres = self._fibres()
            tensors = {t: self.ranks[t] for t in (*self.inputs, *self.outputs, *fibres)}
            need = group_buffer(tensors, traffic, fibres, self.group.block_rank, self.block, self.extents,
                                self.tile_extents)
            return need.spill(self.arch.global_buffer.capacity_bytes // self.arch.word_bytes)
        if spill != "auto":
            return float(spill)
        if not any(traffic.get(t) == "chip" for t in self.intermediates):
            return 0.0
        rank, word = self.group.block_rank, self.arch.word_bytes
        block = {**self.extents, rank: self.block}
        resident = sum(_footprint(self.ranks[t], block) for t in (*self.inputs, *self.outputs) if rank in self.ranks[t])
        available_per_row = (self.arch.global_buffer.capacity_bytes - resident * word) / self.block
        pass_rank = str(self.work.cascade.meta.get("pass_rank") or "M")
        return spilled_fraction(available_per_row, self.work.sizes[pass_rank], word)


def _rereads(resolved: ResolvedGroup, work: CascadeWork, reader: str, tensor_ranks: Sequence[str],
             block: Mapping[str, int], arch: Arch, binding: Mapping[str, str]) -> int:
    """Array tiles of ``reader`` that read the tensor's slice: one per tile of its spatial ranks the
    tensor does not have (1 on the 1D array)."""
    if binding[reader] != "pe2d":
        return 1
    dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}
    count = 1
    for rank, dim in resolved.spatial.get(reader, {}).items():
        if rank not in tensor_ranks:
            count *= ceil_div(block[rank], dims[dim])
    return count


def _placement(mapping: MappingSpec, group: Group, tensor: str) -> Placement:
    return group.placement.get(tensor) or mapping.placement.get(tensor) or Placement(levels=["pe"])


def _charge(actions: dict[str, float], charge: frozenset[str], level: str, kind: str, words: float) -> None:
    if level in ACCESS_LEVELS and f"{level}.{kind}" in charge and words:
        key = f"{level}.{kind}"
        actions[key] = actions.get(key, 0) + words


def _templates(builder: _GroupBuilder, resolved: ResolvedGroup, binding: Mapping[str, str],
               charge: frozenset[str]) -> list[OpTemplate]:
    mapping, group, work, arch = builder.mapping, builder.group, builder.work, builder.arch
    word = arch.word_bytes
    prefix = f"{group.name}:"
    rank = resolved.block_rank
    block = {**builder.extents, rank: resolved.block}
    per_iteration = resolved.tile if group.iteration == "tile" else block
    nb, iph = resolved.blocks_per_head, resolved.iterations_per_head
    s = _exact(Fraction(resolved.spill).limit_denominator(1 << 20)) if resolved.spill else 0

    # DRAM words per head: inputs (the load), and per tensor written (the transfer after its writer's run).
    # Exact rationals throughout (ints where whole, see _exact); bytes per iteration divide by iph exactly.
    load_words: int | Fraction = 0
    written_read: dict[str, int | Fraction] = {}
    written_write: dict[str, int | Fraction] = {}
    def over_blocks(ranks: Sequence[str]) -> int:
        """Words of a tensor summed over the head's blocks: its whole footprint once when the blocks
        partition it (the last block may be partial), else once per block."""
        return _footprint(ranks, builder.extents) * (1 if rank in ranks else nb)

    # Under a mask (masking.masked_tiles: skip) the masked cells move nothing: a tensor a masked Einsum writes
    # over the mask's ranks (QK, SN, A) is stored and read back at its live fraction; an input streamed per
    # block or per tile is read only where its reader is live; a tensor read once whole stays dense.
    live = {n: _exact(_live_fraction(builder, resolved, work.einsums[n])) for n in group.einsums}

    def reader_live(tensor: str) -> int | Fraction:
        return max((live[r] for r in builder.buffer_readers(tensor) or builder.readers(tensor)), default=1)

    sparse_of: dict[str, bool] = {}

    def sparse(tensor: str) -> bool:
        """Whether the tensor itself is masked: its writer's conditions use only its ranks (memoised per
        point: it depends only on the cascade)."""
        hit = sparse_of.get(tensor)
        if hit is not None:
            return hit
        writer = next((w for w in work.compute if w.write.tensor == tensor), None)
        if writer is None:
            sparse_of[tensor] = False
            return False
        from attnsim.mappers.masking import einsum_conditions

        conditions = einsum_conditions(work, writer.name, f"{builder.where}.masking")
        sparse_of[tensor] = result = (bool(conditions)
                                      and {r for c in conditions for r, _ in c.coefficients} <= set(writer.write.ranks))
        return result

    for tensor in builder.inputs:
        ranks = builder.ranks[tensor]
        mode = resolved.traffic.get(tensor, "per_tile")
        reads = over_blocks(ranks) * sum(_rereads(resolved, work, r, ranks, block, arch, binding)
                                         for r in builder.buffer_readers(tensor))
        factor = reader_live(tensor)
        whole = factor if sparse(tensor) and builder.mapping.masking.masked_tiles == "skip" else 1
        if mode == "once":
            load_words += (1 - s) * _footprint(ranks, builder.extents) * whole + s * reads * factor
        elif mode == "per_block":
            load_words += over_blocks(ranks) * factor
        elif mode == "per_tile":
            load_words += reads * factor
        else:
            raise MappingError(f"{resolved.source}.traffic.{tensor}: '{mode}' is for tensors the group writes; "
                               "expected once, per_block or per_tile for an input")
    for tensor in builder.intermediates:
        ranks = builder.ranks[tensor]
        mode = resolved.traffic.get(tensor)
        size = over_blocks(ranks)
        readers = builder.buffer_readers(tensor) or builder.readers(tensor)
        rr = {r: _rereads(resolved, work, r, ranks, block, arch, binding) for r in readers}
        kept = live[builder.writer(tensor)] if sparse(tensor) else 1
        if mode == "chip":
            written_write[tensor] = s * size * kept
            written_read[tensor] = s * sum(size * rr[r] * live[r] for r in readers)
        elif mode == "dram":
            written_write[tensor] = size * kept
            written_read[tensor] = size * rr[readers[0]] * live[readers[0]]
        elif mode is not None:
            raise MappingError(f"{resolved.source}.traffic.{tensor}: '{mode}' is for inputs; expected chip or "
                               "dram for an intermediate")
    for tensor in builder.outputs:
        ranks = builder.ranks[tensor]
        writer = work.einsums[builder.writer(tensor)]
        partial = rank in writer.reduced_ranks and rank not in ranks
        kept = live[builder.writer(tensor)] if sparse(tensor) else 1
        written_write[tensor] = over_blocks(ranks) * kept
        written_read[tensor] = (nb - 1) * _footprint(ranks, builder.extents) if partial else 0

    # Runs of consecutive Einsums on one unit.
    runs: list[list[str]] = []
    for name in group.einsums:
        if runs and binding[runs[-1][-1]] == binding[name]:
            runs[-1].append(name)
        else:
            runs.append([name])
    fill = (evaluate_expression(group.fill_cycles, builder.values, f"{builder.where}.fill_cycles")
            if group.fill_cycles is not None else 0)
    fills = {}
    for tensor in builder.inputs:
        if _placement(mapping, group, tensor).levels[0] == "global_buffer" and "global_buffer.write" in charge:
            fills["global_buffer.write"] = fills.get("global_buffer.write", 0) + max(
                work.einsums[r].read_elements(per_iteration).get(tensor, 0) for r in builder.readers(tensor))
    first = f"{prefix}{group.einsums[0]}"
    templates = [dram_op(f"{prefix}load", arch, read_bytes=Fraction(load_words * word) / iph, stage=0,
                         deps=(LoopDep(first, 2),), extra_actions=fills)]
    previous = f"{prefix}load"
    previous_last: str | None = None
    for k, run in enumerate(runs):
        stage = 2 * k + 1
        for i, name in enumerate(run):
            einsum = work.einsums[name]
            if i == 0:
                deps = (previous,) + ((previous_last,) if previous_last else ())
            else:
                deps = (f"{prefix}{run[i - 1]}",)
            templates.append(_compute(builder, resolved, einsum, binding[name], per_iteration, stage, deps, fill, charge,
                                       live[name]))
        last = f"{prefix}{run[-1]}"
        written = [work.einsums[n].write.tensor for n in run]
        drains: dict[str, float] = {}
        for tensor in written:
            if tensor in builder.outputs and _placement(mapping, group, tensor).levels[0] == "global_buffer":
                _charge(drains, charge, "global_buffer", "read", work.einsums[builder.writer(tensor)].write_elements(per_iteration))
        read_words = sum(written_read.get(t, 0) for t in written)
        write_words = sum(written_write.get(t, 0) for t in written)
        io = f"{prefix}io{k}" if k < len(runs) - 1 else f"{prefix}store"
        templates.append(dram_op(io, arch, read_bytes=Fraction(read_words * word) / iph,
                                 write_bytes=Fraction(write_words * word) / iph,
                                 stage=stage + 1, deps=(last,), extra_actions=drains))
        previous, previous_last = io, last
    return templates


def _live_fraction(builder: _GroupBuilder, resolved: ResolvedGroup, einsum: EinsumWork) -> Fraction:
    """The fraction of ``einsum``'s cells that a mask (its index filters, or its producer's:
    :func:`mappers.masking.einsum_conditions`) leaves live, under ``masking.masked_tiles: skip``; 1 without
    a mask. Cells: the group's tile along tiled ranks, its block along the block rank, the 2D array's rows
    along any other (a whole rank streams past the arrays in tiles of its rows)."""
    if builder.mapping.masking.masked_tiles != "skip":
        return Fraction(1)
    from attnsim.mappers.cascade_plan import gqa_pack
    from attnsim.mappers.masking import einsum_conditions, live_cell_fraction

    pack = gqa_pack(builder.workload, builder.mapping)
    conditions = einsum_conditions(builder.work, einsum.name, f"{builder.where}.masking", pack)
    if not conditions:
        return Fraction(1)
    group = builder.group
    cells = {}
    for rank in {r for c in conditions for r, _ in c.coefficients}:
        if group.iteration == "tile" and rank in group.tile:
            size = builder.tile_extents[rank]
        elif rank == resolved.block_rank:
            size = resolved.block
        else:
            size = builder.arch.arrays.pe2d.rows
        cells[rank] = (size, builder.extents[rank])
    query = next((r for r, sym in builder.work.cascade.ranks.items() if sym.name == "P"), None)
    return live_cell_fraction(conditions, cells, query, pack)


def _compute(builder: _GroupBuilder, resolved: ResolvedGroup, einsum: EinsumWork, unit: str,
             extents: Mapping[str, int], stage: int, deps: tuple, fill: int, charge: frozenset[str],
             live: int | Fraction | None = None) -> OpTemplate:
    """One iteration of ``einsum``; under a mask its compute (cycles and ops, not its accesses) is the
    live fraction of the full iteration's (:func:`_live_fraction`: the masked cells are skipped, the
    iterations made equal, so that the loop's total is exact; the tensors stay dense in the buffers and
    DRAM, as an unfused implementation keeps QK)."""
    arch, group, mapping = builder.arch, builder.group, builder.mapping
    lowered = lower(einsum, arch, unit)
    if lowered.missing:
        raise MappingError(f"{mapping.origin}: binding.{unit}: {unit} of {arch.name} has no '{lowered.missing[0]}' "
                           f"operation (needed by Einsum {einsum.name})")
    table = getattr(arch.arrays, unit).ops
    per_point = max(table[op] for op in lowered.actions) if group.op_overlap and lowered.actions else lowered.cycles
    points = einsum.points(extents)
    if unit == "pe2d":
        dims = {"rows": arch.arrays.pe2d.rows, "cols": arch.arrays.pe2d.cols}
        spatial = resolved.spatial.get(einsum.name, {})
        steps = math.prod(ceil_div(extents.get(r, 1), dims[spatial[r]]) if r in spatial else extents.get(r, 1)
                          for r in einsum.iteration_ranks)
        pes = arch.pes_2d
    else:
        pes = arch.pes_1d
        steps = ceil_div(points, pes)
    if live is None:   # the caller's (:func:`_templates` computes it once per Einsum and point)
        live = _live_fraction(builder, resolved, einsum)
    cycles = math.ceil(steps * live) * per_point
    points_live = float(points * live)
    actions: dict[str, float] = {f"{unit}.{op}": count * points_live for op, count in lowered.actions.items()}
    for tensor, elements in einsum.read_elements(extents).items():
        place = _placement(mapping, group, tensor)
        if place.read_by is None or einsum.name in place.read_by:
            _charge(actions, charge, place.levels[0], "read", elements)
    for level in _placement(mapping, group, einsum.write.tensor).levels:
        _charge(actions, charge, level, "write", einsum.write_elements(extents))
    util = points_live * per_point / (pes * cycles) if cycles else 0.0
    return compute_op(f"{group.name}:{einsum.name}", unit, einsum.name, cycles, actions, stage=stage, deps=deps,
                      util=util, fill_cycles=fill if unit == "pe2d" else 0)


# --------------------------------------------------------------------------------------------------
# Choices tables (FLAT's per-point configuration, specs/mappings/flat-*.yaml).


def _table_row(group: Group, builder_inputs: Sequence[str], workload: Workload, seq: int, table_name: str | None
               ) -> tuple[dict[str, Any] | None, str]:
    """The table's row for the point as group choices (placement -> traffic modes, stationarity ->
    spatial, P1 -> the block, spill), or None where the table does not list it."""
    if table_name is None:
        return None, ""
    from attnsim.mappers.flat_config import load_flat_table

    table = load_flat_table(table_name)
    try:
        config = table.config_for(workload, seq)
    except MappingError:
        return None, ""
    traffic = {}
    for tensor, place in config.placement.model_dump().items():
        if tensor in builder_inputs:
            traffic[tensor] = "once" if place == "chip" else "per_tile"
        else:
            traffic[tensor] = place
    row: dict[str, Any] = {"traffic": traffic, "spatial": dict(config.stationarity.model_dump()),
                           "block_factor": config.p1_rows,
                           "spill": "auto" if config.spill_fraction is None else config.spill_fraction}
    return row, f"{table.origin}: classes.{config.model_class}.seqs.{seq}"


# --------------------------------------------------------------------------------------------------
# The mapper.


def check_groups(cascade: Cascade, mapping: MappingSpec, work: CascadeWork) -> None:
    """MappingError for groups that do not cover the cascade's computing Einsums exactly once, or that fuse
    across a pass boundary without holding the whole pass rank in one iteration."""
    from attnsim.mappers.cascade_defaults import fusion_boundaries, pass_analysis

    names = [w.name for w in work.compute]
    seen: dict[str, int] = {}
    for g, group in enumerate(mapping.groups or ()):
        for i, name in enumerate(group.einsums):
            if name not in names:
                raise MappingError(f"{mapping.origin}: groups[{g}].einsums[{i}]: cascade {cascade.name} has no "
                                   f"computing Einsum '{name}' (known: {', '.join(names)})")
            if name in seen:
                raise MappingError(f"{mapping.origin}: groups[{g}].einsums[{i}]: Einsum {name} is already in "
                                   f"groups[{seen[name]}]; expected each Einsum in one group")
            seen[name] = g
    missing = [n for n in names if n not in seen]
    if missing:
        raise MappingError(f"{mapping.origin}: groups: Einsum {missing[0]} is in no group; expected every "
                           f"computing Einsum of {cascade.name} in one")
    analysis = pass_analysis(cascade)
    family = set(analysis.family.members)
    for g, group in enumerate(mapping.groups or ()):
        passes = {analysis.einsum_pass.get(n) for n in group.einsums}
        tiled = family & set(group.tile) if group.iteration == "tile" else family & {group.block_rank}
        if len(passes) > 1 and tiled:
            boundary = next((b for b in fusion_boundaries(analysis) if b.get("einsum") in group.einsums),
                            {"reason": "it spans several passes"})
            raise MappingError(f"{mapping.origin}: groups[{g}]: fuses Einsums of passes {sorted(passes)} but tiles "
                               f"{', '.join(sorted(tiled))}: {boundary['reason']}; expected the whole rank in "
                               "one iteration (or one group per pass)")


def groups_fit(cascade: Cascade, mapping: MappingSpec) -> bool:
    """Whether ``mapping``'s groups name exactly the cascade's computing Einsums."""
    names = {e.name for e in cascade.einsums}
    listed = [n for g in mapping.groups or () for n in g.einsums]
    from attnsim.mappers.cascade_work import _einsum_work

    computing = {e.name for e in cascade.einsums if _einsum_work(cascade, e).role == "compute"}
    return set(listed) <= names and set(listed) == computing and len(listed) == len(set(listed))


def resolved_groups_data(mapping: MappingSpec, mapped: MappedAttention) -> dict[str, Any]:
    """``mapping`` as plain data with every group's choice at the mapped point written out (block, traffic,
    stationarity as rows/cols, spill; no table, no alternatives): loading it maps that point the same way."""
    data = mapping.to_yaml_dict()
    for group in data["groups"]:
        chosen = mapped.choices["groups"][group["name"]]
        for key in ("table", "alternatives"):
            group.pop(key, None)
        group["block_factor"] = chosen["block"]
        group["traffic"] = dict(chosen["traffic"])
        group["spatial"] = {n: {dim: rank for rank, dim in dims.items()} for n, dims in chosen["spatial"].items()}
        group["spill"] = chosen["spill_fraction"]
    data["cascade"] = mapped.choices["cascade"]
    return data


def _binding(mapping: MappingSpec, work: CascadeWork, arch: Arch, spatial_einsums: set[str]) -> dict[str, str]:
    binding = {}
    for w in work.compute:
        unit = mapping.bound_unit(w.name)
        if unit is None:
            unit = "pe2d" if w.name in spatial_einsums and not lower(w, arch, "pe2d").missing else "pe1d"
        binding[w.name] = unit
    return binding


_ANALYSES: dict[tuple[int, int, int], tuple[tuple, tuple]] = {}


def _analysis(cascade: Cascade, mapping: MappingSpec, arch: Arch, work: CascadeWork
              ) -> tuple[dict[str, str], frozenset[str], tuple[_GroupStatic, ...]]:
    """The point-independent part of a (cascade, mapping, arch): the groups checked, the binding, the
    charged actions, each group's tensors (cached: all three are immutable once loaded)."""
    key = (id(cascade), id(mapping), id(arch))
    hit = _ANALYSES.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], (cascade, mapping, arch))):
        return hit[1]  # type: ignore[return-value]
    check_groups(cascade, mapping, work)
    spatial_einsums = {n for g in mapping.groups or () for n in g.spatial}
    for g in mapping.groups or ():
        for alternative in g.alternatives:
            spatial_einsums |= set(alternative.spatial)
    binding = _binding(mapping, work, arch, spatial_einsums)
    charge = frozenset(mapping.charge if mapping.charge is not None else
                       ("global_buffer.read", "global_buffer.write", "dram.read", "dram.write"))
    statics = tuple(_group_static(mapping, g, work) for g in mapping.groups or ())
    if len(_ANALYSES) > 256:
        _ANALYSES.clear()
    result = (binding, charge, statics)
    _ANALYSES[key] = ((cascade, mapping, arch), result)   # the references keep the ids from being reused
    return result


def map_groups(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch, *,
               options: MapOptions = MapOptions()) -> MappedAttention:
    """Schedule ``cascade`` under the multi-pass ``mapping`` (its ``groups``) for ``workload`` at ``seq``."""
    from attnsim.mappers.cascade_plan import _values, grid_heads, resolve_sizes

    from attnsim.mappers.masking import check_masked_shape, is_masked_cascade

    work = resolve_sizes(cascade, mapping, workload, seq, arch)
    check_masked_shape(work, workload, seq, mapping.origin)
    binding, charge, statics = _analysis(cascade, mapping, arch, work)
    values = _values(work.sizes, arch)
    heads = grid_heads(workload, mapping)
    table_option = options.extra.get("flat_table")
    searched = options.extra.get("group_choices") or {}   # group name -> a row of choices (mappers.search)
    blocks = []
    after: tuple[str, ...] = ()
    groups: dict[str, Any] = {}
    for index, group in enumerate(mapping.groups or ()):
        static = statics[index]
        if group.name in searched:
            row, row_source = dict(searched[group.name]), f"{mapping.origin}: groups[{index}] (searched choice)"
        else:
            row, row_source = _table_row(group, static.inputs, workload, seq, table_option or group.table)
        builder = _GroupBuilder(mapping, index, work, arch, workload, values, row, row_source, static)
        resolved = builder.resolve()
        templates = _templates(builder, resolved, binding, charge)
        blocks.extend(loop_blocks(templates, heads * resolved.iterations_per_head, closed_form=options.closed_form,
                                  name=group.name, after=after))
        after = last_ops(templates)
        groups[group.name] = {"source": resolved.source, "block_rank": resolved.block_rank, "block": resolved.block,
                              "blocks_per_head": resolved.blocks_per_head,
                              "iterations": heads * resolved.iterations_per_head, "spill_fraction": resolved.spill,
                              "traffic": dict(resolved.traffic),
                              "spatial": {n: dict(d) for n, d in resolved.spatial.items()}}
    schedule = Schedule(blocks=tuple(blocks), name=f"{mapping.name} {cascade.name} {workload.name} seq {seq}")
    order = [n for g in mapping.groups or () for n in g.einsums]
    choices = {"cascade": cascade.name, "mapping": mapping.name, "sizes": dict(work.sizes), "groups": groups,
               "binding": {n: binding[n] for n in order}, "grid_heads": heads,
               "masked_tiles": mapping.masking.masked_tiles if is_masked_cascade(work) else None}
    return MappedAttention(design=mapping.name, schedule=schedule,
                           einsums_2d=tuple(n for n in order if binding[n] == "pe2d"),
                           einsums_1d=tuple(n for n in order if binding[n] == "pe1d"), choices=choices)


__all__ = ["ResolvedGroup", "check_groups", "groups_fit", "map_groups", "resolved_groups_data"]
