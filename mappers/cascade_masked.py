"""The spatial nest of a masked (causal) cascade with the masked tiles left out (``masking.masked_tiles:
skip``): :func:`masked_groups` finds, per DRAM-level group of one head, which inner blocks compute a tile
in each iteration (:mod:`mappers.masking`); :func:`masked_nest` builds the schedule.

The nest is :func:`mappers.cascade_mapper._nest`'s (groups > iterations over the K/V tiles > resident
query blocks > the tile on the arrays) with three differences:

* an iteration in which every block's tile is masked is not run and its K/V tile is not loaded (a
  group of the first query rows needs only the first K/V tiles);
* an iteration runs only its blocks' unmasked tiles; a block whose last unmasked tile this is runs its
  after-loop Einsums (the deferred division) and stores its output there, first in the iteration;
* loads are issued in program order (per iteration its K/V tile) and wait for the slot two iterations
  back (double buffering); as in the dense nest, a group's last iteration loads the next group's
  resident tensors and first K/V tile (a prologue loads the first group's, the very last group loads
  nothing ahead); the DRAM unit, in order, runs ahead of the arrays by itself.

To keep the schedule a nest of repeated blocks, the iterations after a group's first run (the causal
diagonal: one block fewer per iteration) are paired first with last when every pair then holds the same
tiles: iteration ``k`` and ``n - 1 - k`` of the ``n`` run as one step that loads both K/V tiles. The pair
holds the same tiles, loads and stores as the two iterations; only their order within the group changes
(the online softmax merges tiles in any order) and a step keeps two K/V tiles in flight instead of one.
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from attnsim.archsim.schedule import Block, Dep, Operation
from attnsim.mappers.attention_ops import dram_cycles
from attnsim.mappers.cascade_mapper import _op, _reader, _Role, _TileBuilder
from attnsim.mappers.cascade_plan import Plan
from attnsim.mappers.errors import MappingError
from attnsim.mappers.masking import Mask, rank_box


@dataclass(frozen=True)
class MaskedGroup:
    """One DRAM-level group of a masked nest: per run of equal iterations ``(active, finishing, count)``:
    ``count`` consecutive iterations in which ``active`` inner blocks compute a tile, ``finishing`` of
    them for the last time."""

    runs: tuple[tuple[int, int, int], ...]

    @property
    def tiles(self) -> int:
        """Tiles the group computes."""
        return sum(active * count for active, _, count in self.runs)


@dataclass(frozen=True)
class _Step:
    """``count`` repeats of: load ``iterations`` K/V tiles, compute ``finishing`` last tiles and
    ``regular`` tiles."""

    iterations: int
    finishing: int
    regular: int
    count: int


def masked_groups(plan: Plan, mask: Mask) -> tuple[MaskedGroup, ...]:
    """The groups of one head under ``mask``: per inner block, the interval of iterations in which its
    tile is not masked (bisection: each filter's maximum over a tile's box is monotone in the iteration),
    then per iteration the blocks live and finishing (MappingError, naming ``masking``, for a nest or a
    mask this cannot handle)."""
    where = plan.where("masking")
    if (plan.tail is not None and not single_partial_block(plan)) or plan.last_iteration_tile is not None:
        raise MappingError(f"{where}: skipping masked tiles needs tiles that divide the lengths (no partial "
                           "K/V tile or query group, except one partial query block per head); expected M a "
                           "multiple of the K/V tile and P of a group of query blocks, or masking.masked_tiles: "
                           "compute")
    if len(plan.outer) > 1 or len(plan.inner) > 1:
        raise MappingError(f"{where}: skipping masked tiles needs at most one dram loop outside the iterative "
                           "loop and one global_buffer loop inside it; expected masking.masked_tiles: compute")
    extents = plan.work.extents
    outer_rank, outer_factor = next(iter(plan.outer.items()), (None, 1))
    inner_rank, inner_factor = next(iter(plan.inner.items()), (None, 1))
    it_rank = plan.iterative_rank
    iterations = plan.iterations

    def masked(g: int, i: int, b: int) -> bool:
        starts: dict[str, int] = {it_rank: i * plan.tile[it_rank]}
        if outer_rank is not None:
            starts[outer_rank] = g * plan.block_tile[outer_rank]
        if inner_rank is not None:
            starts[inner_rank] = starts.get(inner_rank, 0) + b * plan.tile[inner_rank]
        return mask.masked(rank_box(extents, {r: (v, v + plan.tile[r] - 1) for r, v in starts.items()}))

    def live(g: int, b: int) -> tuple[int, int] | None:
        ends = [i for i in (0, iterations - 1) if not masked(g, i, b)]
        if not ends:
            probe = next((i for i in range(1, iterations - 1) if not masked(g, i, b)), None)
            if probe is None:
                return None
            ends = [probe]

        def edge(inside: int, outside: int) -> int:   # the last live iteration from inside towards outside
            while abs(outside - inside) > 1:
                middle = (inside + outside) // 2
                if masked(g, middle, b):
                    outside = middle
                else:
                    inside = middle
            return inside

        return edge(ends[0], -1), edge(ends[-1], iterations)

    groups = []
    blocks = plan.tail.blocks if plan.tail is not None else inner_factor
    for g in range(outer_factor):
        intervals = [live(g, b) for b in range(blocks)]
        if any(x is None for x in intervals):
            raise MappingError(f"{where}: the mask leaves a block of queries (group {g}) with no key; expected "
                               "every query to attend to some key")
        firsts = [x[0] for x in intervals if x is not None]
        lasts = [x[1] for x in intervals if x is not None]
        if firsts != sorted(firsts) or lasts != sorted(lasts):
            raise MappingError(f"{where}: the mask's live tiles do not move monotonically with the query blocks; "
                               "skipping masked tiles needs a causal or banded mask")
        runs: list[list[int]] = []
        for i in range(firsts[0], lasts[-1] + 1):
            low = bisect.bisect_left(lasts, i)        # first block still live
            high = bisect.bisect_right(firsts, i)     # one past the last block already live
            if high <= low:
                continue
            finishing = bisect.bisect_right(lasts, i) - low
            if runs and runs[-1][:2] == [high - low, finishing]:
                runs[-1][2] += 1
            else:
                runs.append([high - low, finishing, 1])
        groups.append(MaskedGroup(tuple((a, f, c) for a, f, c in runs)))
    return tuple(groups)


def single_partial_block(plan: Plan) -> bool:
    """Whether each head's queries are one partial block (fewer rows than a tile: decode's one query, a
    chunk shorter than the array's columns) -- the one query remainder the masked nest runs, on the
    block's real rows."""
    return plan.tail is not None and plan.tail.groups_per_head == 1 and plan.tail.blocks == 1


def _steps(group: MaskedGroup) -> list[_Step]:
    """The group's iterations as steps: its first run as it is, the rest paired first with last when
    every pair then holds the same tiles (module docstring), else run by run."""
    first, rest_runs = group.runs[:1], group.runs[1:]
    steps = [_Step(1, f, a - f, c) for a, f, c in first]
    rest = [(a, f) for a, f, c in rest_runs for _ in range(c)]
    n = len(rest)
    pairs = {(rest[k][0] + rest[n - 1 - k][0], rest[k][1] + rest[n - 1 - k][1]) for k in range(n // 2)}
    if n >= 2 and len(pairs) == 1:
        (active, finishing), = pairs
        if n % 2:
            middle_active, middle_finishing = rest[n // 2]
            steps.append(_Step(1, middle_finishing, middle_active - middle_finishing, 1))
        steps.append(_Step(2, finishing, active - finishing, n // 2))
        return steps
    return steps + [_Step(1, f, a - f, c) for a, f, c in rest_runs]


def masked_nest(plan: Plan, builder: _TileBuilder, groups: Sequence[MaskedGroup], heads: int
                ) -> tuple[Block, ...]:
    """``heads`` repeats of one head's groups (module docstring)."""
    arch = plan.arch
    word = arch.word_bytes
    work = plan.work
    fill = "global_buffer.write" in plan.charge
    partial = single_partial_block(plan)
    block_tile = plan.tail.block_tile if partial else plan.block_tile
    tile = plan.tile
    if partial and plan.tail.last_tile is not None:
        tile = {**plan.tile, plan.tail.rank: plan.tail.last_tile[plan.tail.rank]}
    group_bytes = sum(work.einsums[_reader(plan, t)].read_elements(block_tile)[t]
                      for t in plan.group_tensors) * word
    tile_bytes = sum(work.einsums[_reader(plan, t)].read_elements(plan.tile)[t] for t in plan.stream_tensors) * word
    last_reader = builder.stream_readers[-1] if builder.stream_readers else plan.order[-1]

    def load(id: str, n_bytes: int, deps: Sequence[Dep]) -> Operation:
        actions = {"dram.read": n_bytes, "global_buffer.write": n_bytes // word if fill else 0}
        return _op(id, "dram", "", math.ceil(dram_cycles(arch, n_bytes)), actions, deps)

    slot_free: tuple[Dep, ...] = (("prev", last_reader),)

    def tiles(finishing: int, regular: int, deps: tuple[Dep, ...]) -> list[Block]:
        out = []
        for last, count in ((True, finishing), (False, regular)):
            if count:
                out.append(Block(tuple(builder.tile(_Role(last, False, False, True), deps,
                                                    None if tile is plan.tile else tile)), count,
                                 "tiles_last" if last else "tiles"))
        return out

    def group(masked: MaskedGroup, count: int, prefetch: bool) -> Block:
        """The group's steps; its first iteration's K/V tile and its query block were loaded during the
        group before it (``group_next``, ``stream_next``), and with ``prefetch`` its last iteration
        loads the next group's. Loaded later in the same group: ``("prev", x)``, the previous group's;
        else the most recent ``x`` before (docs: archsim.schedule)."""
        earlier: Callable[[str], Dep] = (lambda x: ("prev", x)) if prefetch else (lambda x: x)
        q_dep = earlier("group_next")
        next_loads = [load("group_next", group_bytes, slot_free), load("stream_next", tile_bytes, slot_free)]
        steps = _steps(masked)
        items: list = []
        for index, step in enumerate(steps):
            first, last = index == 0, prefetch and index == len(steps) - 1

            def iteration(loads_first: bool, prefetches: bool, repeats: int, name: str) -> Block:
                stream = (load("stream_load", step.iterations * tile_bytes, (("prev", last_reader, 2),)),) \
                    if loads_first else ()
                deps = (q_dep, "stream_load") if loads_first else (q_dep, earlier("stream_next"))
                return Block((*stream, *(next_loads if prefetches else ()), *tiles(step.finishing, step.regular, deps)),
                             repeats, name)

            kind = "iteration_pairs" if step.iterations == 2 else "iterations"
            regular = step.count - first - (last and not (first and step.count == 1))
            if first:   # iterations 1 only: a group's first run (_steps)
                items.append(iteration(False, last and step.count == 1, 1, "iteration_first"))
            if regular:
                items.append(iteration(True, False, regular, kind))
            if last and not (first and step.count == 1):
                items.append(iteration(True, True, 1, "iteration_last"))
        return Block(tuple(items), count, "group")

    # consecutive groups with the same tiles (a window's band past its first W keys) repeat one block
    runs = [(masked, len(list(same))) for masked, same in itertools.groupby(groups)]
    prologue = Block((load("group_next", group_bytes, ()), load("stream_next", tile_bytes, ())), 1, "prologue")

    def head(final: bool) -> tuple[Block, ...]:
        """One head's runs of groups; every group but the very last one prefetches the next group's."""
        if not final:
            return tuple(group(m, n, True) for m, n in runs)
        *before, (last_group, n) = runs
        return (*(group(m, c, True) for m, c in before), *((group(last_group, n - 1, True),) if n > 1 else ()),
                group(last_group, 1, False))

    blocks = [prologue]
    if heads > 1:
        blocks.append(Block(head(False), heads - 1, "heads"))
    blocks.append(Block(head(True), 1, "head_last"))
    return tuple(blocks)


__all__ = ["MaskedGroup", "masked_groups", "masked_nest"]
