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
from attnsim.mappers.cascade_plan import Plan, build_plan
from attnsim.mappers.cascade_work import lower
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
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
        self.compute = {name: self._compute(name) for name in (*plan.order, *plan.after)}
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

    def _steps(self, name: str, unit: str) -> tuple[int, int]:
        """(steps, PEs) of Einsum ``name`` on ``unit`` for one tile."""
        plan = self.plan
        work = plan.work.einsums[name]
        tile = plan.tile
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

    def _compute(self, name: str) -> tuple[str, int, dict[str, float], float]:
        plan = self.plan
        unit = plan.binding[name]
        work = plan.work.einsums[name]
        lowered = lower(work, self.arch, unit)
        points = work.points(plan.tile)
        steps, pes = self._steps(name, unit)
        cycles = steps * lowered.cycles
        actions: dict[str, float] = {f"{unit}.{op}": count * points for op, count in lowered.actions.items()}
        for tensor, elements in work.read_elements(plan.tile).items():
            place = plan.placement[tensor]
            if place.read_by is not None and name not in place.read_by:
                continue
            self._access(actions, place.levels[0], "read", elements)
        for level in plan.placement[work.write.tensor].levels:
            self._access(actions, level, "write", work.write_elements(plan.tile))
        if name in plan.accumulators:   # read-modify-write of the partial result
            self._access(actions, plan.placement[work.write.tensor].levels[0], "read", work.write_elements(plan.tile))
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

    def tile(self, role: _Role, data_deps: Sequence[Dep]) -> list[Operation]:
        """The operations of one tile in ``role`` (memoised: operations are immutable and a builder's
        tiles depend only on the role and the data dependencies)."""
        key = (role, tuple(data_deps))
        cached = self._tile_cache.get(key)
        if cached is None:
            cached = self._tile_cache[key] = self._tile(role, data_deps)
        return list(cached)

    def _tile(self, role: _Role, data_deps: Sequence[Dep]) -> list[Operation]:
        plan = self.plan
        drop = set(plan.mapping.closed_form.drop_last) if self.closed_form and role.final else set()
        ops: list[Operation] = []
        for name in plan.order:
            unit, cycles, actions, util = self.compute[name]
            op = _op(name, unit, name, cycles, actions, self._deps(name, role, data_deps), util)
            ops.append(_dropped(op) if name in drop else op)
            if name in self.drain:
                ops.append(_op(f"{name}:drain", unit, name, self.drain[name], {}, (name,), util=0.0))
        if role.last_iteration:
            for name in plan.after:
                unit, cycles, actions, util = self.compute[name]
                op = _op(name, unit, name, cycles, actions, self._deps(name, role, data_deps), util)
                ops.append(_dropped(op) if name in drop else op)
            ops.extend(self._stores(role))
        return ops

    def _stores(self, role: _Role) -> list[Operation]:
        plan = self.plan
        ops = []
        for tensor in plan.output_tensors:
            writers = [n for n in (*plan.after, *plan.accumulators) if plan.work.einsums[n].write.tensor == tensor]
            if not writers:
                continue
            elements = plan.work.einsums[writers[-1]].write_elements(plan.tile)
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


def _nest(plan: Plan, builder: _TileBuilder) -> tuple[Block, ...]:
    """Prologue (first group's tensors and first stream tile), then the groups: first, middle, last."""
    arch = plan.arch
    word = arch.word_bytes
    work = plan.work
    group_bytes = sum(work.einsums[_reader(plan, t)].read_elements(plan.block_tile)[t] for t in plan.group_tensors) * word
    stream_bytes = sum(work.einsums[_reader(plan, t)].read_elements(plan.tile)[t] for t in plan.stream_tensors) * word
    fill = "global_buffer.write" in plan.charge

    def load(id: str, n_bytes: int, deps: Sequence[Dep], drop: bool = False) -> Operation:
        actions = {"dram.read": n_bytes, "global_buffer.write": n_bytes // word if fill else 0}
        return _op(id, "dram", "", 0 if drop else math.ceil(dram_cycles(arch, n_bytes)), actions, deps)

    last_reader = builder.stream_readers[-1] if builder.stream_readers else plan.order[-1]
    slot_free: tuple[Dep, ...] = (("prev", last_reader),)
    blocks_per_iteration = 1
    for f in plan.inner.values():
        blocks_per_iteration *= f

    def tiles(role_first: bool, role_final: bool, last: bool, data_deps: Sequence[Dep],
              after_done: bool) -> list[Block]:
        blocks: list[Block] = []
        remaining = blocks_per_iteration
        if role_first:
            blocks.append(Block(tuple(builder.tile(_Role(last, True, role_final and remaining == 1, after_done),
                                                   data_deps)), 1, "tile_first"))
            remaining -= 1
        middle = remaining - (1 if role_final and remaining else 0)
        if middle:
            blocks.append(Block(tuple(builder.tile(_Role(last, False, False, after_done), data_deps)), middle,
                                "tiles"))
        if role_final and remaining:
            blocks.append(Block(tuple(builder.tile(_Role(last, False, True, after_done), data_deps)), 1,
                                "tile_last"))
        return blocks

    def group(first: bool, last: bool, repeats: int, name: str) -> Block:
        q_dep: Dep = "group_next" if last else ("prev", "group_next")
        s_first: Dep = "stream_next" if last else ("prev", "stream_next")
        items: list = []
        regular = plan.iterations - 1
        if regular:
            deps = (q_dep, s_first, ("prev", "stream_load"))
            body = lambda first_tile: (load("stream_load", stream_bytes, slot_free),  # noqa: E731
                                       *tiles(first_tile, False, False, deps, not first))
            if first:
                items.append(Block(body(True), 1, "iteration_first"))
                regular -= 1
            if regular:
                items.append(Block(body(False), regular, "iterations"))
        last_deps = (q_dep, s_first) + (("stream_load",) if plan.iterations > 1 else ())
        prefetch = [] if last else [load("group_next", group_bytes, slot_free),
                                    load("stream_next", stream_bytes, slot_free)]
        items.append(Block((*prefetch, *tiles(first and plan.iterations == 1, last, True, last_deps, not first)), 1,
                           "iteration_last"))
        return Block(tuple(items), repeats, name)

    prologue = Block((load("group_next", group_bytes, (), drop=builder.closed_form),
                      load("stream_next", stream_bytes, (), drop=builder.closed_form)), 1, "prologue")
    blocks = [prologue]
    if plan.groups == 1:
        blocks.append(group(True, True, 1, "group_only"))
    else:
        blocks.append(group(True, False, 1, "group_first"))
        if plan.groups > 2:
            blocks.append(group(False, False, plan.groups - 2, "groups"))
        blocks.append(group(False, True, 1, "group_last"))
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
    builder = _tile_builder(plan, options.closed_form)
    schedule = Schedule(blocks=_nest(plan, builder), name=f"{mapping.name} {cascade.name} {workload.name} seq {seq}")
    tiles = plan.groups * plan.iterations * plan.choices["inner_iterations"]
    choices = {
        **plan.choices["loops"],
        "cascade": cascade.name, "mapping": mapping.name, "sizes": dict(plan.work.sizes),
        "tile": dict(plan.tile), "block_tile": dict(plan.block_tile), "outer": dict(plan.outer),
        "inner": dict(plan.inner), "iterations": plan.iterations, "groups": plan.groups, "tiles": tiles,
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
              options: MapOptions = MapOptions()) -> MappedAttention:
    """:func:`map_cascade` with the cascade and mapping given by name or path."""
    cascade_obj = cascade if isinstance(cascade, Cascade) else load_cascade_arg(cascade)
    mapping_obj = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    return map_cascade(cascade_obj, mapping_obj, workload, seq, arch, options=options)


__all__ = ["OPTIONS", "load_cascade_arg", "map_cascade", "map_named"]
