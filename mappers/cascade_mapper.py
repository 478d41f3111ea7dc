"""The generic spatial mapper: (cascade, mapping, workload, arch) -> the :class:`archsim.schedule.Schedule`
the engine runs. Nothing here names a particular Einsum; the mapping file may.

What each part comes from:

* sizes, tiles, binding, placement, program order: :func:`mappers.cascade_plan.build_plan`;
* per Einsum and tile, from the cascade itself (:mod:`mappers.cascade_work`): iteration points from
  the rank extents, primitive ops per point from the expression, lowered onto the bound unit;
  cycles = steps x cycles per point, where on the 2D array the tile's spatial ranks run across rows and
  columns (``ceil(extent / dimension)`` steps each) and every other rank in time, and on the 1D array
  the ``cols`` rank runs across the lanes; utilisation = busy PE-cycles / (PEs x cycles);
* accesses: each read of a tensor from the first level of its placement (only by the Einsums in
  ``read_by`` when given), each write to every level; counted only when in ``charge`` and priced;
* dependencies: the cascade's (its transitive reduction: an edge implied by a longer path is left
  out), within a tile (``tile``: same iteration), loop-carried over the
  iterative rank (``carried``: implied by in-order issue on one unit; across units the previous
  tile's instance, conservatively), after the loop (``final``: the block's last tile);
* pipelining: ``tile_waits_for`` (tile d+1's first op waits for those of tile d), ``drain`` (an extra
  op on the producer's unit that its consumers wait for);
* DRAM: group tensors loaded once per group (the next group's prefetched during the last iteration),
  stream tensors once per iteration (double-buffered: the load of iteration ``i + 1`` waits until the
  last reader of iteration ``i - 1`` has finished), outputs written per block as soon as computed.

The nest is built as nested blocks (groups > iterations > blocks), the shape of FuseMax's Mapping 1:
the engine extrapolates every level, nothing is unrolled. ``closed_form`` drops what the artifact's
analytical model ignores (fill: the first loads and the mapping's ``drop_first_deps``; drain: the
mapping's ``drop_last`` Einsums of the last tile and the last output write), keeping every action.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx

from attnsim.archsim.schedule import Block, Dep, Operation, Schedule
from attnsim.archsim.spec import Arch
from attnsim.einsum_ir import Cascade, resolve_cascade
from attnsim.einsum_ir.errors import CascadeError
from attnsim.mappers.attention_ops import ceil_div, dram_cycles
from attnsim.mappers.cascade_plan import Plan, build_plan, gqa_pack, grid_heads
from attnsim.mappers.cascade_work import lower
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.masking import body_mask, check_masked_shape
from attnsim.mappers.mapping_spec import MappingSpec, evaluate_expression, load_mapping
from attnsim.mappers.workloads import Workload

OPTIONS = ("glb_sizing_bytes", "flat_table")
"""The ``MapOptions.extra`` keys the generic mapper accepts (the capacity the ``fit`` rule sizes with)."""


@dataclass(frozen=True)
class _Role:
    last_iteration: bool
    first: bool
    final: bool
    after_done: bool = False   # an instance of the after-loop Einsums precedes this tile in program order


def _op(id: str, unit: str, einsum: str, cycles: int, actions: Mapping[str, float], deps: Sequence[Dep] = (),
        util: float = 1.0) -> Operation:
    return Operation(id=id, unit=unit, duration_cycles=int(cycles), deps=tuple(deps), einsum=einsum,
                     actions={k: v for k, v in actions.items() if v}, util=min(1.0, max(0.0, util)))


def _dropped(op: Operation) -> Operation:
    return Operation(id=op.id, unit=op.unit, duration_cycles=0, deps=op.deps, einsum=op.einsum,
                     actions=dict(op.actions), util=0.0)


class _TileBuilder:
    """The operations of one tile (and of the after-loop Einsums of one block), from the plan."""

    def __init__(self, plan: Plan, closed_form: bool) -> None:
        self.plan = plan
        self.closed_form = closed_form
        arch = plan.arch
        self.arch = arch
        work = plan.work
        self._computed: dict[tuple, dict[str, tuple[str, int, dict[str, float], float]]] = {}
        self.compute = self.computed(plan.tile)
        drains = plan.mapping.pipelining.drain
        values = {**work.sizes, "pe2d.rows": arch.arrays.pe2d.rows, "pe2d.cols": arch.arrays.pe2d.cols,
                  "pe1d.size": arch.arrays.pe1d.size}
        self.drain = {name: evaluate_expression(expr, values, f"{plan.mapping.origin}: pipelining.drain.{name}")
                      for name, expr in drains.items()}
        for name in list(self.drain) + plan.mapping.pipelining.tile_waits_for + \
                plan.mapping.closed_form.drop_first_deps + plan.mapping.closed_form.drop_last:
            if name not in self.compute:
                raise MappingError(f"{plan.mapping.origin}: pipelining/closed_form: no computing Einsum '{name}' "
                                   f"in the cascade {work.cascade.name}")
        self._deps_cache: dict = {}
        self._tile_cache: dict = {}
        self.direct = _direct_edges(work.cascade, tuple(self.compute), work.dependencies)
        self.stream_readers = [n for n in plan.order
                               if any(r.tensor in plan.stream_tensors for r in work.einsums[n].reads)]

    # -- per-Einsum cycles and actions ------------------------------------------------------------

    def computed(self, tile: Mapping[str, int]) -> dict[str, tuple[str, int, dict[str, float], float]]:
        """Per Einsum (unit, cycles, actions, util) of one tile of the given extents (the plan's tile, or a
        partial one: :class:`mappers.cascade_plan.Plan`), cached per extents."""
        key = tuple(sorted(tile.items()))
        if key not in self._computed:
            self._computed[key] = {name: self._compute(name, tile) for name in (*self.plan.order, *self.plan.after)}
        return self._computed[key]

    def _steps(self, name: str, unit: str, tile: Mapping[str, int]) -> tuple[int, int]:
        """(steps, PEs) of Einsum ``name`` on ``unit`` for one tile: a partial tile takes as many steps as
        ``ceil(extent / dimension)`` says, i.e. a full pass of the 2D array but fewer 1D lane steps when
        it needs fewer."""
        plan = self.plan
        work = plan.work.einsums[name]
        steps = 1
        if unit == "pe2d":
            dims = {"rows": self.arch.arrays.pe2d.rows, "cols": self.arch.arrays.pe2d.cols}
            for rank in work.iteration_ranks:
                extent = tile.get(rank, 1)
                steps *= ceil_div(extent, dims[plan.spatial[rank]]) if rank in plan.spatial else extent
            return steps, self.arch.pes_2d
        lanes = self.arch.pes_1d
        lane_ranks = [r for r in work.iteration_ranks if plan.spatial.get(r) == "cols"]
        for rank in work.iteration_ranks:
            extent = tile.get(rank, 1)
            steps *= ceil_div(extent, lanes) if rank in lane_ranks else extent
        if not lane_ranks:
            steps = ceil_div(steps, lanes)
        return steps, lanes

    def _compute(self, name: str, tile: Mapping[str, int]) -> tuple[str, int, dict[str, float], float]:
        plan = self.plan
        unit = plan.binding[name]
        work = plan.work.einsums[name]
        lowered = lower(work, self.arch, unit)
        points = work.points(tile)
        steps, pes = self._steps(name, unit, tile)
        cycles = steps * lowered.cycles
        actions: dict[str, float] = {f"{unit}.{op}": count * points for op, count in lowered.actions.items()}
        for tensor, elements in work.read_elements(tile).items():
            place = plan.placement[tensor]
            if place.read_by is not None and name not in place.read_by:
                continue
            self._access(actions, place.levels[0], "read", elements)
        for level in plan.placement[work.write.tensor].levels:
            self._access(actions, level, "write", work.write_elements(tile))
        if name in plan.accumulators:   # read-modify-write of the partial result
            self._access(actions, plan.placement[work.write.tensor].levels[0], "read", work.write_elements(tile))
        util = points * lowered.cycles / (pes * cycles) if cycles else 0.0
        return unit, cycles, actions, util

    def _access(self, actions: dict[str, float], level: str, kind: str, elements: int) -> None:
        if level in ("pe", "dram"):
            return
        key = f"{level}.{kind}"
        if key in self.plan.charge:
            actions[key] = actions.get(key, 0) + elements

    # -- the tile ------------------------------------------------------------------------------------

    def _deps(self, name: str, role: _Role, data_deps: Sequence[Dep]) -> list[Dep]:
        plan = self.plan
        first = role.first and self.closed_form and name in plan.mapping.closed_form.drop_first_deps
        chained = (role.last_iteration or role.after_done) and plan.mapping.pipelining.serial and name == plan.order[0]
        key = (name, first, chained, tuple(data_deps))   # only these parts of the role change the result
        cached = self._deps_cache.get(key)
        if cached is None:
            cached = self._deps_cache[key] = self._derive_deps(name, role, data_deps)
        return cached

    def _derive_deps(self, name: str, role: _Role, data_deps: Sequence[Dep]) -> list[Dep]:
        plan = self.plan
        if self.closed_form and role.first and name in plan.mapping.closed_form.drop_first_deps:
            return []
        deps: list[Dep] = []
        unit = plan.binding[name]
        for dep in plan.work.deps_of(name):
            producer = dep.producer
            if dep.kind in ("tile", "final") and (producer, name) in self.direct:
                deps.append(f"{producer}:drain" if producer in self.drain else producer)
            elif dep.kind == "carried" and plan.binding[producer] != unit:
                deps.append(("prev", producer))
        if any(r.tensor in plan.stream_tensors or r.tensor in plan.group_tensors
               for r in plan.work.einsums[name].reads) and name == plan.order[0]:
            deps.extend(data_deps)
        if name == plan.order[0]:
            deps.extend(("prev", w) for w in plan.mapping.pipelining.tile_waits_for)
            if plan.mapping.pipelining.serial and plan.after:
                # in series, the previous block's after-loop Einsums (e.g. a deferred division) come first
                if role.last_iteration or role.after_done:
                    deps.append(("prev", plan.after[-1]))
        elif plan.mapping.pipelining.serial and name in plan.order:
            before = plan.order[plan.order.index(name) - 1]
            deps.append(f"{before}:drain" if before in self.drain else before)
        elif any(r.tensor in plan.stream_tensors or r.tensor in plan.group_tensors
                 for r in plan.work.einsums[name].reads) and not deps:
            deps.extend(data_deps)
        return list(dict.fromkeys(deps))

    def tile(self, role: _Role, data_deps: Sequence[Dep], extents: Mapping[str, int] | None = None
             ) -> list[Operation]:
        """The ops of one tile of ``extents`` (default: the plan's full tile); memoised: operations are
        immutable and a builder's tiles depend only on the role, the data dependencies and the extents."""
        key = (role, tuple(data_deps), None if extents is None else tuple(sorted(extents.items())))
        cached = self._tile_cache.get(key)
        if cached is None:
            cached = self._tile_cache[key] = self._tile(role, data_deps, extents)
        return list(cached)

    def _tile(self, role: _Role, data_deps: Sequence[Dep], extents: Mapping[str, int] | None = None
              ) -> list[Operation]:
        plan = self.plan
        extents = plan.tile if extents is None else extents
        compute = self.computed(extents)
        drop = set(plan.mapping.closed_form.drop_last) if self.closed_form and role.final else set()
        ops: list[Operation] = []
        for name in plan.order:
            unit, cycles, actions, util = compute[name]
            op = _op(name, unit, name, cycles, actions, self._deps(name, role, data_deps), util)
            ops.append(_dropped(op) if name in drop else op)
            if name in self.drain:
                ops.append(_op(f"{name}:drain", unit, name, self.drain[name], {}, (name,), util=0.0))
        if role.last_iteration:
            for name in plan.after:
                unit, cycles, actions, util = compute[name]
                op = _op(name, unit, name, cycles, actions, self._deps(name, role, data_deps), util)
                ops.append(_dropped(op) if name in drop else op)
            ops.extend(self._stores(role, extents))
        return ops

    def _stores(self, role: _Role, extents: Mapping[str, int]) -> list[Operation]:
        plan = self.plan
        ops = []
        for tensor in plan.output_tensors:
            writers = [n for n in (*plan.after, *plan.accumulators) if plan.work.einsums[n].write.tensor == tensor]
            if not writers:
                continue
            elements = plan.work.einsums[writers[-1]].write_elements(extents)
            n_bytes = elements * self.arch.word_bytes
            drop = self.closed_form and role.final
            cycles = 0 if drop else math.ceil(dram_cycles(self.arch, n_bytes))
            ops.append(_op(f"{tensor}:store", "dram", "", cycles, {"dram.write": n_bytes}, (writers[-1],)))
        return ops


_BUILDERS: dict[tuple, tuple[Any, _TileBuilder]] = {}


def _tile_builder(plan: Plan, closed_form: bool) -> _TileBuilder:
    """A :class:`_TileBuilder` for ``plan``, reused across points whose tiles are the same: what a
    builder derives (per-Einsum cycles, actions, dependencies, tile operations) depends only on the
    cascade, mapping, architecture, tile, binding, placement and the drain values, not on the length."""
    work = plan.work
    drains = plan.mapping.pipelining.drain
    key = (id(work.cascade), id(plan.mapping), id(plan.arch), closed_form, tuple(sorted(plan.tile.items())),
           plan.order, plan.after, plan.stream_tensors, plan.group_tensors, plan.accumulators,
           tuple(sorted((k, v) for k, v in work.sizes.items() if drains)))
    hit = _BUILDERS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], (work.cascade, plan.mapping, plan.arch))):
        return hit[1]
    if len(_BUILDERS) > 256:
        _BUILDERS.clear()
    builder = _TileBuilder(plan, closed_form)
    _BUILDERS[key] = ((work.cascade, plan.mapping, plan.arch), builder)   # references keep the ids alive
    return builder


def _direct_edges(cascade: Cascade, names: tuple[str, ...], dependencies: tuple) -> set[tuple[str, str]]:
    """The tile/final dependency edges among ``names`` not implied by a longer path (cached per cascade):
    dropping implied edges keeps ``drop_first_deps`` to the direct producers (e.g. SLN waits for RM, which
    waited for LM, which waited for BQK)."""
    cache = cascade.__dict__.setdefault("_direct_edges_cache", {})
    if names not in cache:
        graph = networkx.DiGraph()
        graph.add_nodes_from(names)
        graph.add_edges_from((d.producer, d.consumer) for d in dependencies
                             if d.kind in ("tile", "final") and d.producer in names and d.consumer in names)
        cache[names] = set(networkx.transitive_reduction(graph).edges)
    return cache[names]


@dataclass(frozen=True)
class _GroupKind:
    """The blocks of one kind of DRAM-level group: ``blocks`` inner blocks resident over ``block_tile``,
    the last over ``last_tile`` (a partial block) or the full tile (None)."""

    blocks: int
    block_tile: Mapping[str, int]
    last_tile: Mapping[str, int] | None = None


def _nest(plan: Plan, builder: _TileBuilder) -> tuple[Block, ...]:
    """Prologue (first group's tensors and first stream tile), then the groups: first, middle, last.

    Remainders (:class:`mappers.cascade_plan.Plan`): the iterative loop's last iteration runs the partial
    tile (and the iteration before it loads the partial stream tile); with a partial last group per
    head, the groups run per head as ``P2 - 1`` full groups and the tail group (fewer blocks, the last
    partial), each group's prefetch sized for the group after it. Every count stays a block repeat."""
    arch = plan.arch
    word = arch.word_bytes
    work = plan.work

    def group_bytes_of(block_tile: Mapping[str, int]) -> int:
        return sum(work.einsums[_reader(plan, t)].read_elements(block_tile)[t] for t in plan.group_tensors) * word

    def stream_bytes_of(tile: Mapping[str, int]) -> int:
        return sum(work.einsums[_reader(plan, t)].read_elements(tile)[t] for t in plan.stream_tensors) * word

    fill = "global_buffer.write" in plan.charge

    def load(id: str, n_bytes: int, deps: Sequence[Dep], drop: bool = False) -> Operation:
        actions = {"dram.read": n_bytes, "global_buffer.write": n_bytes // word if fill else 0}
        return _op(id, "dram", "", 0 if drop else math.ceil(dram_cycles(arch, n_bytes)), actions, deps)

    last_reader = builder.stream_readers[-1] if builder.stream_readers else plan.order[-1]
    slot_free: tuple[Dep, ...] = (("prev", last_reader),)
    blocks_per_iteration = 1
    for f in plan.inner.values():
        blocks_per_iteration *= f
    full = _GroupKind(blocks_per_iteration, plan.block_tile)
    tail = _GroupKind(plan.tail.blocks, plan.tail.block_tile, plan.tail.last_tile) if plan.tail else full
    last_tile = plan.last_iteration_tile
    stream_full = stream_bytes_of(plan.tile)
    stream_last = stream_bytes_of(last_tile) if last_tile is not None else stream_full
    stream_first = stream_last if plan.iterations == 1 else stream_full   # a group's first stream tile

    def tiles(kind: _GroupKind, role_first: bool, role_final: bool, last: bool, data_deps: Sequence[Dep],
              after_done: bool) -> list[Block]:
        base = last_tile if last and last_tile is not None else plan.tile
        partial = None
        if kind.last_tile is not None:
            partial = {**base, plan.tail.rank: kind.last_tile[plan.tail.rank]} if plan.tail else None

        def block(first: bool, final: bool, is_partial: bool, repeats: int) -> Block:
            name = "tile_first" if first else "tile_last" if final else "tile_partial" if is_partial else "tiles"
            return Block(tuple(builder.tile(_Role(last, first, final, after_done), data_deps,
                                            partial if is_partial else base)), repeats, name)

        n = kind.blocks
        special = sorted({i for i, on in ((0, role_first), (n - 1, role_final or partial is not None)) if on})
        blocks: list[Block] = []
        position = 0
        for i in special:
            if i > position:
                blocks.append(block(False, False, False, i - position))
            blocks.append(block(role_first and i == 0, role_final and i == n - 1,
                                partial is not None and i == n - 1, 1))
            position = i + 1
        if position < n:
            blocks.append(block(False, False, False, n - position))
        return blocks

    def group(kind: _GroupKind, next_kind: _GroupKind | None, first: bool, last: bool, repeats: int,
              name: str) -> Block:
        q_dep: Dep = "group_next" if last else ("prev", "group_next")
        s_first: Dep = "stream_next" if last else ("prev", "stream_next")
        items: list = []
        regular = plan.iterations - 1
        if regular:
            deps = (q_dep, s_first, ("prev", "stream_load"))
            body = lambda first_tile, n_bytes: (load("stream_load", n_bytes, slot_free),  # noqa: E731
                                                *tiles(kind, first_tile, False, False, deps, not first))
            if first:   # iteration 0 loads tile 1: the last one when there are two
                items.append(Block(body(True, stream_last if regular == 1 else stream_full), 1, "iteration_first"))
                regular -= 1
            if regular and last_tile is not None:
                if regular > 1:
                    items.append(Block(body(False, stream_full), regular - 1, "iterations"))
                items.append(Block(body(False, stream_last), 1, "iteration_penultimate"))
            elif regular:
                items.append(Block(body(False, stream_full), regular, "iterations"))
        last_deps = (q_dep, s_first) + (("stream_load",) if plan.iterations > 1 else ())
        prefetch = [] if last or next_kind is None else [load("group_next", group_bytes_of(next_kind.block_tile),
                                                              slot_free),
                                                         load("stream_next", stream_first, slot_free)]
        items.append(Block((*prefetch, *tiles(kind, first and plan.iterations == 1, last, True, last_deps, not first)),
                           1, "iteration_last"))
        return Block(tuple(items), repeats, name)

    first_kind = full if plan.tail is not None and plan.tail.groups_per_head > 1 else tail
    prologue = Block((load("group_next", group_bytes_of(first_kind.block_tile), (), drop=builder.closed_form),
                      load("stream_next", stream_first, (), drop=builder.closed_form)), 1, "prologue")
    blocks = [prologue]
    if plan.tail is None or plan.tail.groups_per_head == 1:   # every group alike
        kind = tail
        if plan.groups == 1:
            blocks.append(group(kind, None, True, True, 1, "group_only"))
        else:
            blocks.append(group(kind, kind, True, False, 1, "group_first"))
            if plan.groups > 2:
                blocks.append(group(kind, kind, False, False, plan.groups - 2, "groups"))
            blocks.append(group(kind, None, False, True, 1, "group_last"))
        return tuple(blocks)

    per_head = plan.tail.groups_per_head
    heads = plan.groups // per_head

    def head(first_head: bool, last_head: bool) -> list[Block]:
        """One head's groups, runs of equal groups as one repeated block."""
        runs: list[list] = []
        for g in range(per_head):
            is_tail = g == per_head - 1
            next_tail = g + 1 == per_head - 1
            entry = [is_tail, None if is_tail and last_head else next_tail and not is_tail,
                     first_head and g == 0, last_head and is_tail]
            if runs and runs[-1][0] == entry:
                runs[-1][1] += 1
            else:
                runs.append([entry, 1])
        out = []
        for (is_tail, next_tail, first, last), count in runs:
            name = "group_first" if first else "group_last" if last else "group_tail" if is_tail else "groups"
            out.append(group(tail if is_tail else full, None if next_tail is None else tail if next_tail else full,
                             first, last, count, name))
        return out

    if heads == 1:
        blocks.extend(head(True, True))
    else:
        blocks.extend(head(True, False))
        if heads > 2:
            blocks.append(Block(tuple(head(False, False)), heads - 2, "heads"))
        blocks.extend(head(False, True))
    return tuple(blocks)


def _reader(plan: Plan, tensor: str) -> str:
    for name in plan.order:
        if tensor in plan.work.einsums[name].read_elements(plan.tile):
            return name
    raise MappingError(f"{plan.mapping.origin}: no Einsum of the loop body reads {tensor}")


def map_cascade(cascade: Cascade, mapping: MappingSpec, workload: Workload, seq: int, arch: Arch, *,
                options: MapOptions = MapOptions()) -> MappedAttention:
    """Schedule ``cascade`` under ``mapping`` for ``workload`` at ``seq`` tokens on ``arch``.

    Raises MappingError (one line, naming the mapping file and key) for a mapping that cannot run.
    """
    if options.causal:
        raise MappingError(f"{mapping.origin}: causal masking is not supported by this mapping; expected causal=False")
    unknown = sorted(set(options.extra) - set(OPTIONS))
    if unknown:
        raise MappingError(f"{mapping.name}: unknown option '{unknown[0]}' (known: {', '.join(OPTIONS)})")
    sizing = options.extra.get("glb_sizing_bytes")
    if sizing is not None and (isinstance(sizing, bool) or not isinstance(sizing, int) or sizing <= 0):
        raise MappingError(f"{mapping.name}: option glb_sizing_bytes: expected a positive integer number of "
                           f"bytes, got {sizing!r}")
    seq = workload.check_seq(seq)
    if mapping.groups is not None:   # a multi-pass mapping: fusion groups in sequence
        from attnsim.mappers.cascade_groups import map_groups

        return map_groups(cascade, mapping, workload, seq, arch, options=options)
    from attnsim.mappers.cascade_defaults import check_single_pass, retarget

    check_single_pass(cascade, mapping)
    mapping = retarget(mapping, cascade, arch)
    plan = build_plan(cascade, mapping, workload, seq, arch, glb_sizing_bytes=sizing)
    check_masked_shape(plan.work, workload, seq, mapping.origin)
    builder = _tile_builder(plan, options.closed_form)
    mask = body_mask(plan.work, plan.order, gqa_pack(workload, mapping), plan.where("masking")) \
        if mapping.masking.masked_tiles == "skip" else None
    heads = grid_heads(workload, mapping)
    if mask is not None:
        from attnsim.mappers.cascade_masked import masked_groups, masked_nest

        if options.closed_form:
            raise MappingError(f"{mapping.origin}: masking.masked_tiles: the closed form (the artifact's model) "
                               "has no masked tiles to skip; expected no --closed-form, or masked_tiles: compute")
        groups_of_head = masked_groups(plan, mask)
        blocks = masked_nest(plan, builder, groups_of_head, heads)
        tiles = heads * sum(m.tiles for m in groups_of_head)
    else:
        blocks = _nest(plan, builder)
        tiles = plan.groups * plan.iterations * plan.choices["inner_iterations"]
        if plan.tail is not None:   # the last group of each head holds fewer blocks
            tiles -= (plan.groups // plan.tail.groups_per_head) * plan.iterations * (
                plan.choices["inner_iterations"] - plan.tail.blocks)
    schedule = Schedule(blocks=blocks, name=f"{mapping.name} {cascade.name} {workload.name} seq {seq}")
    choices = {
        **plan.choices["loops"],
        "cascade": cascade.name, "mapping": mapping.name, "sizes": dict(plan.work.sizes),
        "tile": dict(plan.tile), "block_tile": dict(plan.block_tile), "outer": dict(plan.outer),
        "inner": dict(plan.inner), "iterations": plan.iterations, "groups": plan.groups, "tiles": tiles,
        "last_iteration_tile": plan.last_iteration_tile, "real_sizes": plan.choices["real_sizes"],
        "tail_group": None if plan.tail is None else {"rank": plan.tail.rank, "blocks": plan.tail.blocks,
                                                      "block_tile": plan.tail.block_tile,
                                                      "last_tile": plan.tail.last_tile},
        "masked_tiles": mapping.masking.masked_tiles if mask is not None else None,
        "tiles_without_mask": plan.groups * plan.iterations * plan.choices["inner_iterations"] if mask is not None
        else tiles,
        "grid_heads": heads, "pack_gqa": gqa_pack(workload, mapping),
        "fit_factor": plan.glb_fit_bound, "glb_rule_bytes": plan.glb_bytes,
        "glb_peak_bytes": plan.choices["glb_peak_bytes"], "glb_sizing_bytes": sizing or arch.global_buffer.capacity_bytes,
        "glb_capacity_bytes": arch.global_buffer.capacity_bytes,
        "binding": {n: plan.binding[n] for n in (*plan.order, *plan.after)},
        "placement": {t: list(p.levels) for t, p in plan.placement.items()},
    }
    order = (*plan.order, *plan.after)
    return MappedAttention(design=mapping.name, schedule=schedule,
                           einsums_2d=tuple(n for n in order if plan.binding[n] == "pe2d"),
                           einsums_1d=tuple(n for n in order if plan.binding[n] == "pe1d"), choices=choices)


def load_cascade_arg(name_or_path: str | Path) -> Cascade:
    """A built-in cascade by name or a cascade file; MappingError (one line) otherwise. Parsed once per
    file version (cached by name and modification time)."""
    text = str(name_or_path)
    path = Path(text)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _load_cascade(text, stamp)


@functools.lru_cache(maxsize=64)
def _load_cascade(name_or_path: str, stamp: int | None) -> Cascade:
    try:
        return resolve_cascade(name_or_path)
    except CascadeError as exc:
        raise MappingError(" ".join(str(exc).split())) from None


def map_named(cascade: str | Cascade, mapping: str | MappingSpec, workload: Workload, seq: int, arch: Arch, *,
              options: MapOptions = MapOptions(), known_options: Sequence[str] | None = None) -> MappedAttention:
    """:func:`map_cascade` with the cascade and mapping given by name or path; ``known_options``: the
    ``MapOptions.extra`` keys a design shorthand accepts (any other is refused, naming the design)."""
    if known_options is not None:
        unknown = sorted(set(options.extra) - set(known_options))
        if unknown:
            raise MappingError(f"{mapping if isinstance(mapping, str) else mapping.name}: unknown option "
                               f"'{unknown[0]}' (known: {', '.join(known_options) or 'none'})")
    cascade_obj = cascade if isinstance(cascade, Cascade) else load_cascade_arg(cascade)
    mapping_obj = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    return map_cascade(cascade_obj, mapping_obj, workload, seq, arch, options=options)


__all__ = ["OPTIONS", "load_cascade_arg", "map_cascade", "map_named"]
