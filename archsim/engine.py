"""Event-driven, cycle-level execution of a :class:`~archsim.schedule.Schedule`, with exact extrapolation.

Semantics (see also ``docs/engine.md``): time advances from one operation end to the next. At each such
cycle the engine first retires every operation ending then (returning buffer bytes, freeing lanes), then
offers each unit's next operation in program order (lowest program position first) the chance to start:
it starts if its unit has a free lane, all its dependencies have finished and every buffer it claims has
room. Starting never frees anything, so one pass per cycle suffices (zero-cycle operations end at once
and trigger another pass in the same cycle).

The schedule is compiled into a loop tree (blocks nest) with every operation instance numbered in
program order; a unit's position is a stack of (block, iteration) frames, so nothing is unrolled.

Extrapolation (``extrapolate=True``). Each time an iteration ``a`` of a repeated block starts (its first
operation instance starts), the engine takes a snapshot of everything that determines the future,
expressed relative to iteration ``a`` and the current cycle: every unit's program position, every
running operation and its remaining cycles, every buffer's fill level. If the snapshot equals the one
taken at iteration ``i < a`` of the same run of that block, the machine is periodic: each further
``p = a - i`` iterations repeat exactly, ``delta`` cycles later. The engine then jumps ``m`` whole
periods (adding ``m x p`` iterations to every program position inside the block and ``m x delta`` to
every time, and ``m`` x the period's executions of each operation to the counts), stopping at least one
iteration before the block's last, and simulates the rest normally. Because the snapshot is the
complete state of a deterministic machine and no operation that the jump skips can observe the block's
end (the last iteration is never skipped), the result equals the full simulation, cycle for cycle and
action for action. Nested blocks extrapolate at every level (inner runs inside each outer iteration,
then the outer loop itself).

Fast path (default): schedules with no buffer claims or releases and one lane per unit are list
scheduling in program order; :class:`_ListScheduler` computes them directly and jumps over runs whose
per-iteration state moves on a line (periodic or drifting), each jump proven by one probe iteration at
its far end (max-plus maps are convex along a line; see its docstring and docs/engine.md). ``fast=False``
gives the event engine below for every schedule.

Schedules in which some unit can run unboundedly ahead of another (nothing couples them: no dependency,
no shared buffer) never repeat relative to a single iteration; they are simulated in full, still exact,
up to ``max_simulated_ops``.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Mapping

from attnsim.archsim.area import area_mm2
from attnsim.archsim.energy import energy_breakdown_pj
from attnsim.archsim.result import Result, TraceRow
from attnsim.archsim.schedule import Block, Operation, Schedule, ScheduleError, normalise_dep
from attnsim.archsim.spec import Arch

_NEVER = math.inf
_MAX_SNAPSHOTS_PER_BLOCK = 20000
_MIN_REPEATS_TO_EXTRAPOLATE = 4


class _Loop:
    """A block of the schedule, compiled. ``length`` = op instances per iteration (nested included)."""

    __slots__ = ("index", "name", "repeats", "items", "length", "depth", "offset", "relevant",
                 "has_unit", "op_lo", "op_hi", "max_lag", "inner_lags")

    def __init__(self, index: int, name: str, repeats: int, depth: int, offset: int) -> None:
        self.index, self.name, self.repeats, self.depth, self.offset = index, name, repeats, depth, offset
        self.items: list = []          # _OpNode | _Loop, in order
        self.length = 0
        self.relevant: list[list] = []  # per unit: the items holding its ops
        self.has_unit: list[bool] = []
        self.op_lo = self.op_hi = 0    # ops of this subtree: indices [op_lo, op_hi)
        self.max_lag = 0               # largest lag of loop-carried deps carried by this loop
        self.inner_lags = False        # a loop inside carries a loop-carried dep (may fall back here)


class _OpNode:
    """One operation of the schedule, compiled."""

    __slots__ = ("index", "op", "unit", "duration", "claims", "releases", "deps", "parent", "path",
                 "offset", "levels", "anchors")

    def __init__(self, index: int, op: Operation, unit: int, parent: _Loop, path: list[_Loop],
                 offset: int) -> None:
        self.index, self.op, self.unit, self.parent, self.path, self.offset = \
            index, op, unit, parent, path, offset
        self.duration = op.duration_cycles
        self.claims: tuple = ()
        self.releases: tuple = ()
        self.deps: tuple = ()
        self.levels: list[tuple[int, int, int, int, int]] = []
        self.anchors: list[_Loop] = []    # repeated loops whose first operation this is


def _offsets_within(node: _OpNode, ancestor: _Loop) -> tuple[int, int]:
    """Offsets of ``node``'s first and last instance within one iteration of ``ancestor``."""
    first = last = node.offset
    for loop in node.path[ancestor.depth + 1:]:
        first += loop.offset
        last += loop.offset + (loop.repeats - 1) * loop.length
    return first, last


class _Program:
    """A schedule compiled into a loop tree with flat instance numbering.

    Instance numbering: one iteration of a loop spans ``length`` consecutive integers; an operation
    instance's number is the sum, over its enclosing loops, of (offset of the next item in the loop's
    body + iteration x length). Program order is numeric order.
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.units: list[str] = list(schedule.units)
        self.unit_index = {unit: index for index, unit in enumerate(self.units)}
        self.lanes = [schedule.lanes_of(unit) for unit in self.units]
        self.buffers: list[str] = list(schedule.buffers_bytes)
        self.buffer_index = {buffer: index for index, buffer in enumerate(self.buffers)}
        self.capacity = [int(schedule.buffers_bytes[buffer]) for buffer in self.buffers]
        self.loops: list[_Loop] = []
        self.nodes: list[_OpNode] = []
        self.pruned_ids: set[str] = set()
        self.root = _Loop(0, "program", 1, 0, 0)
        self.loops.append(self.root)
        self._fill(self.root, list(schedule.blocks), [self.root])
        self.ops = [node.op for node in self.nodes]
        by_id: dict[str, list[_OpNode]] = {}
        for node in self.nodes:
            by_id.setdefault(node.op.id, []).append(node)
        for node in self.nodes:
            node.deps = self._resolve_deps(node, by_id)
            node.levels = [(loop.offset, loop.repeats, loop.length, *_offsets_within(node, loop))
                           for loop in node.path[1:]]
        for loop in self.loops:
            if loop is not self.root and loop.repeats >= _MIN_REPEATS_TO_EXTRAPOLATE:
                first = loop.items[0]
                while isinstance(first, _Loop):
                    first = first.items[0]
                first.anchors.append(loop)

    def _fill(self, loop: _Loop, items: list, path: list[_Loop]) -> None:
        n_units = len(self.units)
        loop.op_lo = len(self.nodes)
        position = 0
        for item in items:
            if isinstance(item, Block):
                if item.repeats == 0 or item.op_count == 0:
                    self.pruned_ids.update(op.id for op in item.walk())
                    continue
                child = _Loop(len(self.loops), item.name or f"block{len(self.loops)}", item.repeats,
                              loop.depth + 1, position)
                self.loops.append(child)
                self._fill(child, list(item.items), path + [child])
                loop.items.append(child)
                position += child.repeats * child.length
            else:
                node = _OpNode(len(self.nodes), item, self.unit_index[item.unit], loop, path, position)
                node.claims = tuple((self.buffer_index[buf], amount)
                                    for buf, amount in item.claims_bytes.items() if amount)
                node.releases = tuple((self.buffer_index[buf], amount)
                                      for buf, amount in item.releases_bytes.items() if amount)
                self.nodes.append(node)
                loop.items.append(node)
                position += 1
        loop.length = position
        loop.op_hi = len(self.nodes)
        loop.has_unit = [False] * n_units
        loop.relevant = [[] for _ in range(n_units)]
        for item in loop.items:
            for u in range(n_units):
                if (item.unit == u) if isinstance(item, _OpNode) else item.has_unit[u]:
                    loop.relevant[u].append(item)
                    loop.has_unit[u] = True

    @staticmethod
    def _common(node: _OpNode, other: _OpNode) -> tuple[_Loop, int, int]:
        """(innermost common loop, offset of node's branch in its body, offset of other's branch)."""
        depth = 0
        while (depth + 1 < len(node.path) and depth + 1 < len(other.path)
               and node.path[depth + 1] is other.path[depth + 1]):
            depth += 1
        common = node.path[depth]

        def branch(n: _OpNode) -> int:
            return n.offset if len(n.path) == depth + 1 else n.path[depth + 1].offset
        return common, branch(node), branch(other)

    def _resolve_deps(self, node: _OpNode, by_id: dict[str, list[_OpNode]]) -> tuple:
        where = f"block '{node.parent.name}', operation '{node.op.id}'"
        resolved = []
        for raw in node.op.deps:
            dep = normalise_dep(raw)
            candidates = by_id.get(dep.op_id, [])
            if not candidates:
                if dep.op_id in self.pruned_ids:
                    continue   # it only lives in blocks that never execute: nothing to wait for
                raise ScheduleError(f"{where}: depends on unknown operation '{dep.op_id}'")
            if dep.lag == 0:
                best = None
                for other in candidates:
                    common, mine, theirs = self._common(node, other)
                    if theirs < mine:
                        key = (common.depth, _offsets_within(other, common)[1])
                        if best is None or key > best[0]:
                            best = (key, common, other)
                if best is None:
                    raise ScheduleError(f"{where}: depends on '{dep.op_id}', which does not precede it "
                                        f"in the same iteration; use ('prev', '{dep.op_id}') for an "
                                        f"earlier iteration")
                (_, offset), common, other = best
                resolved.append((0, common.depth, offset, other.unit))
            else:
                best = None
                for other in candidates:
                    common, _, _ = self._common(node, other)
                    key = (common.depth, _offsets_within(other, common)[1])
                    if best is None or key > best[0]:
                        best = (key, common, other)
                (_, offset), common, other = best
                if common is self.root:
                    raise ScheduleError(f"{where}: loop-carried dependency on '{dep.op_id}', but no "
                                        f"block holds both operations")
                common.max_lag = max(common.max_lag, dep.lag)
                for loop in node.path[1:common.depth]:
                    loop.inner_lags = True
                resolved.append((1, common.depth, dep.lag, common.length, offset, other.unit,
                                 tuple(candidates)))
        return tuple(resolved)


def _latest_before(node: _OpNode, limit: int) -> int | None:
    """Number of ``node``'s latest instance before instance number ``limit`` (None if none)."""
    base = 0
    for offset, repeats, length, first, last in node.levels:
        start = base + offset
        if start + first >= limit:
            return None
        iteration = min(repeats - 1, (limit - 1 - start - first) // length)
        base = start + iteration * length
        if base + last < limit:
            return base + last
    return None


class _Simulator:
    """The event-driven machine. All times are integer cycles.

    A unit's program position is a stack of frames ``[loop, iteration, position in the loop's
    relevant items, instance number of the iteration's start]``, root first; ``pc_g[u]`` is the
    instance number of its next operation (``_NEVER`` once it has none left).
    """

    def __init__(self, program: _Program, extrapolate: bool, trace: bool,
                 max_simulated_ops: int | None = None) -> None:
        self.p = program
        self.extrapolate = extrapolate
        self.max_simulated_ops = max_simulated_ops
        self.trace: list[TraceRow] | None = [] if trace else None
        n_units = len(program.units)
        self.t = 0
        self.stack: list[list[list]] = [[[program.root, 0, -1, 0]] for _ in range(n_units)]
        self.pc_g: list[float] = [_NEVER] * n_units
        for u in range(n_units):
            self._advance(u)
        self.running: dict[int, tuple[int, _OpNode]] = {}   # instance -> (end cycle, op)
        self.running_count = [0] * n_units
        self.events: list[tuple[int, int]] = []             # heap of (end cycle, instance)
        self.level = [0] * len(program.buffers)
        self.counts = [0] * len(program.nodes)              # executions per op
        self.simulated_ops = 0
        self.extrapolated_iterations = 0
        self.seen: dict[int, tuple[int, dict]] = {}         # loop -> (instance start, snapshots)
        self.jumped: dict[int, int] = {}                    # loop -> instance start already jumped
        self.pending: list[tuple[_Loop, int, int]] = []     # (loop, instance start, iteration)

    # -- program positions -------------------------------------------------------------------
    def _advance(self, u: int) -> None:
        """Move unit ``u`` to its next operation in program order."""
        stack = self.stack[u]
        while stack:
            frame = stack[-1]
            loop = frame[0]
            relevant = loop.relevant[u]
            position = frame[2] + 1
            if position < len(relevant):
                frame[2] = position
                item = relevant[position]
                if isinstance(item, _OpNode):
                    self.pc_g[u] = frame[3] + item.offset
                    return
                stack.append([item, 0, -1, frame[3] + item.offset])
                continue
            if frame[1] + 1 < loop.repeats:
                frame[1] += 1
                frame[2] = -1
                frame[3] += loop.length
                continue
            stack.pop()
        self.pc_g[u] = _NEVER

    def _current(self, u: int) -> _OpNode:
        frame = self.stack[u][-1]
        return frame[0].relevant[u][frame[2]]

    # -- one operation -----------------------------------------------------------------------
    def _try_start(self, u: int) -> bool:
        stack = self.stack[u]
        frame = stack[-1]
        node: _OpNode = frame[0].relevant[u][frame[2]]
        pc_g = self.pc_g
        running = self.running
        for dep in node.deps:
            if dep[0] == 0:
                gd = stack[dep[1]][3] + dep[2]
                ud = dep[3]
            else:
                outer = stack[dep[1]]
                if outer[1] >= dep[2]:
                    gd = outer[3] - dep[2] * dep[3] + dep[4]
                    ud = dep[5]
                else:
                    found = self._fallback(dep[6], outer[3] - outer[1] * dep[3])
                    if found is None:
                        continue
                    gd, ud = found
            if gd >= pc_g[ud] or gd in running:
                return False
        level = self.level
        capacity = self.p.capacity
        for buffer, amount in node.claims:
            if level[buffer] + amount > capacity[buffer]:
                return False
        for buffer, amount in node.claims:
            level[buffer] += amount
        g = pc_g[u]
        end = self.t + node.duration
        running[g] = (end, node)
        heapq.heappush(self.events, (end, g))
        self.running_count[u] += 1
        self.counts[node.index] += 1
        self.simulated_ops += 1
        if self.max_simulated_ops is not None and self.simulated_ops > self.max_simulated_ops:
            raise ScheduleError(self._budget_message())
        if self.trace is not None:
            op = node.op
            self.trace.append(TraceRow(op.unit, op.einsum, op.id, frame[0].name, frame[1], self.t, end))
        if node.anchors and self.extrapolate:
            for loop in node.anchors:   # only the first instance of an iteration of the loop counts
                if all(inner[1] == 0 for inner in stack[loop.depth + 1:]):
                    outer = stack[loop.depth]
                    self.pending.append((loop, outer[3] - outer[1] * loop.length, outer[1]))
        self._advance(u)
        return True

    @staticmethod
    def _fallback(candidates: tuple[_OpNode, ...], limit: int) -> tuple[int, int] | None:
        """(instance, unit) of the most recent instance of any candidate before ``limit``."""
        best = None
        for node in candidates:
            g = _latest_before(node, limit)
            if g is not None and (best is None or g > best[0]):
                best = (g, node.unit)
        return best

    def _retire(self, g: int) -> None:
        end, node = self.running.pop(g)
        self.running_count[node.unit] -= 1
        for buffer, amount in node.releases:
            self.level[buffer] -= amount
            if self.level[buffer] < 0:
                raise ScheduleError(f"operation '{node.op.id}' returns {amount} bytes to buffer "
                                    f"'{self.p.buffers[buffer]}' that were never claimed")

    # -- the event loop ----------------------------------------------------------------------
    def run(self) -> None:
        n_units = len(self.p.units)
        lanes = self.p.lanes
        events = self.events
        while True:
            while True:
                while events and events[0][0] <= self.t:
                    self._retire(heapq.heappop(events)[1])
                candidates = [(self.pc_g[u], u) for u in range(n_units)
                              if self.pc_g[u] != _NEVER and self.running_count[u] < lanes[u]]
                heapq.heapify(candidates)
                while candidates:
                    _, u = heapq.heappop(candidates)
                    if self._try_start(u) and self.pc_g[u] != _NEVER \
                            and self.running_count[u] < lanes[u]:
                        heapq.heappush(candidates, (self.pc_g[u], u))
                if not (events and events[0][0] <= self.t):
                    break
            if self.pending:
                pending = sorted(self.pending, key=lambda entry: entry[0].depth)
                self.pending.clear()
                for loop, instance, iteration in pending:
                    if self._snapshot(loop, instance, iteration):
                        break          # the state moved: later anchors of this cycle are stale
            if not events:
                if any(g != _NEVER for g in self.pc_g):
                    raise ScheduleError(self._deadlock_message())
                return
            self.t = events[0][0]

    # -- extrapolation -----------------------------------------------------------------------
    def _snapshot(self, loop: _Loop, instance: int, a: int) -> bool:
        """Record the state at iteration ``a`` of ``loop``; jump if it repeats. True if it jumped."""
        if self.jumped.get(loop.index) == instance:
            return False
        lo, hi = instance, instance + loop.repeats * loop.length
        inside = [u for u in range(len(self.p.units)) if lo <= self.pc_g[u] < hi]
        if not inside:
            return False
        iterations = [self.stack[u][loop.depth][1] for u in inside]
        if min(iterations) < max(loop.max_lag, 1 if loop.inner_lags else 0):
            return False   # loop-carried dependencies may still fall back before the loop
        current = self.seen.get(loop.index)
        if current is None or current[0] != instance:
            current = (instance, {})
            self.seen[loop.index] = current
        snapshots = current[1]
        if len(snapshots) >= _MAX_SNAPSHOTS_PER_BLOCK:
            return False
        anchor = lo + a * loop.length
        t = self.t
        positions = tuple((0, g - anchor) if lo <= g < hi else (1, g) for g in self.pc_g)
        running = tuple(sorted(((0, g - anchor, end - t) if lo <= g < hi else (1, g, end - t))
                               for g, (end, _) in self.running.items()))
        key = (positions, running, tuple(self.level))
        previous = snapshots.get(key)
        if previous is None:
            snapshots[key] = (a, t, self.counts[loop.op_lo:loop.op_hi])
            return False
        i, t_i, counts_before = previous
        period = a - i
        if period < 1:
            return False
        periods = (loop.repeats - 2 - max(iterations)) // period
        if periods < 1:
            return False
        self._jump(loop, instance, periods, period, t - t_i, counts_before, inside)
        return True

    def _jump(self, loop: _Loop, instance: int, periods: int, period: int, period_cycles: int,
              counts_before: list[int], inside: list[int]) -> None:
        shift_iterations = periods * period
        shift_g = shift_iterations * loop.length
        shift_t = periods * period_cycles
        lo, hi = instance, instance + loop.repeats * loop.length
        for u in inside:
            stack = self.stack[u]
            stack[loop.depth][1] += shift_iterations
            for frame in stack[loop.depth:]:
                frame[3] += shift_g
            self.pc_g[u] += shift_g
        moved = {(g + shift_g if lo <= g < hi else g): (end + shift_t, node)
                 for g, (end, node) in self.running.items()}
        self.running.clear()
        self.running.update(moved)
        self.events[:] = [(end, g) for g, (end, _) in moved.items()]
        heapq.heapify(self.events)
        self.t += shift_t
        for offset, before in enumerate(counts_before):   # only this loop's ops ran in the period
            index = loop.op_lo + offset
            self.counts[index] += periods * (self.counts[index] - before)
        self.extrapolated_iterations += shift_iterations
        self.jumped[loop.index] = instance
        self.seen.pop(loop.index, None)

    def _where(self, u: int) -> str:
        frame = self.stack[u][-1]
        return (f"{self.p.units[u]}: '{self._current(u).op.id}' (block '{frame[0].name}', iteration "
                f"{frame[1]})")

    def _budget_message(self) -> str:
        where = "; ".join(self._where(u) for u in range(len(self.p.units)) if self.pc_g[u] != _NEVER)
        return (f"simulated {self.simulated_ops} operations without finding a periodic steady state "
                f"to extrapolate ({where}): a unit that runs ever further ahead of another usually "
                f"means a missing buffer claim/release or loop-carried dependency between them; "
                f"raise max_simulated_ops to simulate it in full")

    def _deadlock_message(self) -> str:
        p = self.p
        stuck = "; ".join(self._where(u) for u in range(len(p.units)) if self.pc_g[u] != _NEVER)
        levels = ", ".join(f"{name} {level}/{cap} bytes"
                           for name, level, cap in zip(p.buffers, self.level, p.capacity))
        return (f"schedule deadlocks at cycle {self.t}: waiting {stuck}"
                + (f"; buffers {levels}" if levels else ""))


class _FastPathDeclined(Exception):
    """The list-scheduling fast path gave up (its operation budget); the event engine runs instead."""


class _ListScheduler:
    """Fast path for schedules with no buffer claims or releases and one lane per unit.

    Then nothing contends (in-order units, no buffers) and the event engine's start times are those of
    list scheduling in program order: start = max(end of the unit's previous operation, end of every
    dependency), end = start + duration, and cycles = the latest end. Every dependency precedes in
    program order, so one walk computes them. Each iteration of a repeated block is a max-plus map F from
    the state S (the end of the last instance of every operation of the block in the last
    max(lag, 1) iterations) to the next state. When three consecutive states lie on a line
    (S(k) - S(k-1) = S(k-1) - S(k-2) = v), the walk probes an iteration K further on: it installs the
    predicted S(K) = S(k) + (K - k) v, runs iteration K and compares the result with S(k) + (K + 1 - k) v.
    Each component of F(S(k-2) + (j - k + 2) v) is a maximum of affine functions of j, hence convex; it
    equals the affine prediction at j = k-2, k-1 and K, so at every j in between: every skipped
    iteration is exactly the predicted one. The first probe is the block's last iteration (a periodic or
    drifting-to-the-end run costs one probe); otherwise probes gallop (1, 2, 4 ... iterations ahead) and
    bisect the first failure; a failed probe's result is discarded. See docs/engine.md.
    """

    def __init__(self, program: _Program, budget: int | None) -> None:
        self.p = program
        self.budget = budget
        self.end: dict[int, int] = {}
        self.free = [0] * len(program.units)
        self.bases = [0] * (len(program.loops) + 2)
        self.iters = [0] * (len(program.loops) + 2)
        self.ops = 0
        self.extrapolated_iterations = 0
        self.last_offsets: dict[int, tuple] = {}
        self.unit_slots: dict[int, tuple] = {}
        for loop in program.loops:
            nodes = program.nodes[loop.op_lo:loop.op_hi]
            offsets = tuple(_offsets_within(node, loop)[1] if loop is not program.root else 0
                            for node in nodes)
            self.last_offsets[loop.index] = offsets
            last: dict[int, tuple[int, int]] = {}
            for slot, (node, offset) in enumerate(zip(nodes, offsets)):
                if node.unit not in last or offset > last[node.unit][0]:
                    last[node.unit] = (offset, slot)
            self.unit_slots[loop.index] = tuple((u, slot) for u, (_, slot) in last.items())

    def run(self) -> int:
        self._loop(self.p.root, 0, 0)
        return max(self.free) if self.free else 0

    def _state(self, loop: _Loop, run_start: int, k: int, width: int) -> tuple:
        end = self.end
        offsets = self.last_offsets[loop.index]
        out = []
        for j in range(k - width, k):
            base = run_start + j * loop.length
            out.extend(end[base + offset] for offset in offsets)
        return tuple(out)

    def _install(self, loop: _Loop, run_start: int, k: int, width: int, state: tuple) -> None:
        end = self.end
        offsets = self.last_offsets[loop.index]
        n = len(offsets)
        for row, j in enumerate(range(k - width, k)):
            base = run_start + j * loop.length
            for slot, offset in enumerate(offsets):
                end[base + offset] = state[row * n + slot]
        last_row = (width - 1) * n
        for u, slot in self.unit_slots[loop.index]:
            self.free[u] = state[last_row + slot]

    def _iteration(self, loop: _Loop, run_start: int, depth: int, k: int) -> None:
        base = run_start + k * loop.length
        self.iters[depth] = k
        self.bases[depth] = base
        end, free, bases, iters = self.end, self.free, self.bases, self.iters
        for item in loop.items:
            if isinstance(item, _Loop):
                self._loop(item, base + item.offset, depth + 1)
                continue
            t = free[item.unit]
            for dep in item.deps:
                if dep[0] == 0:
                    gd = bases[dep[1]] + dep[2]
                else:
                    it = iters[dep[1]]
                    if it >= dep[2]:
                        gd = bases[dep[1]] - dep[2] * dep[3] + dep[4]
                    else:
                        found = _Simulator._fallback(dep[6], bases[dep[1]] - it * dep[3])
                        if found is None:
                            continue
                        gd = found[0]
                e = end[gd]
                if e > t:
                    t = e
            t += item.duration
            end[base + item.offset] = t
            free[item.unit] = t
            self.ops += 1
        if self.budget is not None and self.ops > self.budget:
            raise _FastPathDeclined

    def _loop(self, loop: _Loop, run_start: int, depth: int) -> None:
        repeats = loop.repeats
        jumpable = loop is not self.p.root and repeats >= _MIN_REPEATS_TO_EXTRAPOLATE
        width = max(loop.max_lag, 1)
        history: list[tuple] = []
        k = 0
        while k < repeats:
            self._iteration(loop, run_start, depth, k)
            k += 1
            if not jumpable or k < width or k >= repeats:
                continue
            history.append(self._state(loop, run_start, k, width))
            if len(history) > 3:
                del history[0]
            # S(k-2), S(k-1), S(k): iteration k-3 >= width ran the generic body (no fallback here)
            if len(history) == 3 and k - 3 >= width:
                s0, s1, s2 = history
                v = tuple(b - a for a, b in zip(s1, s2))
                if all(b - a == d for a, b, d in zip(s0, s1, v)):
                    k = self._jump(loop, run_start, depth, k, width, s2, v)
                    history.clear()

    def _jump(self, loop: _Loop, run_start: int, depth: int, k: int, width: int, state: tuple,
              v: tuple) -> int:
        """From S(k) = ``state`` on the line of slope ``v``: the next iteration to simulate."""
        repeats = loop.repeats

        def predicted(j: int) -> tuple:
            step = j - k
            return tuple(a + step * d for a, d in zip(state, v))

        def probe(K: int) -> bool:
            self._install(loop, run_start, K, width, predicted(K))
            self._iteration(loop, run_start, depth, K)
            return self._state(loop, run_start, K + 1, width) == predicted(K + 1)

        good = k - 1            # S(good + 1) is known exactly
        bad = None
        distance = 1
        if repeats - 1 > k and probe(repeats - 1):   # affine to the end (periodic ones are): one probe
            self.extrapolated_iterations += repeats - 1 - k
            return repeats
        while True:
            K = min(good + distance, repeats - 1)
            if K <= good:
                break
            if probe(K):
                good = K
                distance *= 2
            else:
                bad = K
                break
        while bad is not None and bad - good > 1:
            mid = (good + bad) // 2
            if probe(mid):
                good = mid
            else:
                bad = mid
        if bad is not None:
            self._install(loop, run_start, good + 1, width, predicted(good + 1))
        self.extrapolated_iterations += max(0, good + 1 - k)
        return good + 1


def _sum_by_op(program: _Program, counts: list[int]) -> tuple[dict[str, float], dict[str, float],
                                                               dict[str, dict[str, float]]]:
    """(actions, busy cycles per unit, per-Einsum busy cycles per unit) from execution counts."""
    actions: dict[str, float] = {}
    busy = {unit: 0.0 for unit in program.units}
    per_einsum: dict[str, dict[str, float]] = {}
    for op, count in zip(program.ops, counts):
        if not count:
            continue
        for action, amount in op.actions.items():
            actions[action] = actions.get(action, 0) + amount * count
        busy_op = op.duration_cycles * float(op.util) * count
        busy[op.unit] += busy_op
        einsum_busy = per_einsum.setdefault(op.einsum, {})
        einsum_busy[op.unit] = einsum_busy.get(op.unit, 0.0) + busy_op
    return actions, busy, per_einsum


def _list_schedulable(program: _Program) -> bool:
    """No buffer traffic and one lane per unit: the engine reduces to list scheduling."""
    return all(lanes == 1 for lanes in program.lanes) and \
        not any(node.claims or node.releases for node in program.nodes)


def _instance_counts(program: _Program) -> list[int]:
    """Executions per op when every instance runs: the product of its enclosing repeats."""
    counts = []
    for node in program.nodes:
        count = 1
        for loop in node.path[1:]:
            count *= loop.repeats
        counts.append(count)
    return counts


DEFAULT_MAX_SIMULATED_OPS = 20_000_000


def run(schedule: Schedule, arch: Arch | None = None, *, extrapolate: bool = True,
        trace: bool = False, max_simulated_ops: int | None = DEFAULT_MAX_SIMULATED_OPS,
        fast: bool = True) -> Result:
    """Execute ``schedule``; return cycles, activity, actions and (with ``arch``) energy, area, time.

    Args:
        schedule: the program.
        arch: architecture for energy (``archsim.energy``), area and clock; None gives cycles and
            action counts only.
        extrapolate: detect the periodic steady state of repeated blocks and extrapolate it exactly
            (see the module docstring). Ignored when ``trace`` is True.
        trace: keep every operation's start and end (``Result.timeline``); implies a full simulation.
        max_simulated_ops: give up (ScheduleError) after simulating this many operation instances
            (a guard against schedules that never become periodic and are too long to simulate in
            full); None = no limit.
        fast: with ``extrapolate`` and no ``trace``, run schedules without buffer claims/releases and
            with one lane per unit on the list-scheduling fast path (:class:`_ListScheduler`, exact);
            False = always the event engine (the reference the tests compare against).
    """
    if not isinstance(schedule, Schedule):
        raise ScheduleError(f"expected a Schedule, got {type(schedule).__name__}")
    program = _Program(schedule)
    listed = None
    if fast and extrapolate and not trace and _list_schedulable(program):
        listed = _ListScheduler(program, max_simulated_ops)
        try:
            cycles = listed.run()
        except _FastPathDeclined:
            listed = None
    if listed is not None:
        counts = _instance_counts(program)
        extrapolated, simulated = listed.extrapolated_iterations, listed.ops
    else:
        simulator = _Simulator(program, extrapolate=extrapolate and not trace, trace=trace,
                               max_simulated_ops=max_simulated_ops)
        simulator.run()
        cycles = int(simulator.t) if simulator.simulated_ops else 0
        counts = simulator.counts
        extrapolated, simulated = simulator.extrapolated_iterations, simulator.simulated_ops
    actions, busy, per_einsum = _sum_by_op(program, counts)
    utilisation = {unit: (busy[unit] / (cycles * program.lanes[u]) if cycles else 0.0)
                   for u, unit in enumerate(program.units)}
    traffic_bytes = actions.get("dram.read", 0) + actions.get("dram.write", 0)
    latency_s = energy_pj = area = None
    breakdown: dict[str, float] = {}
    if arch is not None:
        latency_s, energy_pj, breakdown, area = _arch_figures(arch, cycles, actions)
    return Result(cycles=cycles, latency_s=latency_s, busy_cycles=busy, utilisation=utilisation,
                  per_einsum=per_einsum, actions=actions, energy_pj=energy_pj,
                  energy_breakdown_pj=breakdown, traffic_bytes=traffic_bytes, area_mm2=area,
                  extrapolated_iterations=extrapolated, simulated_ops=simulated,
                  timeline=None if listed is not None else simulator.trace)


def _arch_figures(arch: Arch, cycles: int, actions: Mapping[str, float]
                  ) -> tuple[float, float, dict[str, float], float]:
    """(latency_s, energy_pj, energy breakdown in pJ, area_mm2) under ``arch``."""
    breakdown = energy_breakdown_pj(arch, actions)
    return cycles / arch.clock_hz, math.fsum(breakdown.values()), breakdown, area_mm2(arch)
