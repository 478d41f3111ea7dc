"""Schedules: what a mapper asks the engine to execute.

A :class:`Schedule` is a program of :class:`Operation` s on named *units* (``"pe2d"``, ``"pe1d"``,
``"dram"``, ``"glb"`` or any name). Operations are grouped into :class:`Block` s executed one after the
other; a block is a loop: its items (operations and nested blocks) are repeated ``repeats`` times
(iteration 0, 1, ...). The classic shape, built by :meth:`Schedule.loop`, is three blocks: a prologue
(once), a body (``repeats`` times) and an epilogue (once). More blocks describe a sequence of loops
(e.g. a GEMM's full folds, then its edge folds); nested blocks describe loop nests (e.g. for each head:
load Q, then for each key tile: ..., then write the output) without unrolling anything.

Program order is: block by block, iteration by iteration, items in listed order. Each unit
executes its own operations in program order (in-order issue; a unit may have ``lanes`` > 1 to run
several of them at once). An operation starts at the earliest cycle at which

- its unit has a free lane and the unit's previous operation has started,
- every operation it depends on has finished,
- every buffer it claims has room for the claimed bytes.

Dependencies (``Operation.deps``), each one of:

- ``"x"``: the most recent instance of operation ``x`` that precedes this one within the current
  iteration of their innermost common block: ``x`` listed earlier in the same block (same
  iteration), or the last instance of ``x`` in an earlier block or nested block (e.g. an epilogue op
  waiting for the body's last iteration, a body op waiting for the prologue). Depending on an ``x``
  that only comes later is an error (use ``("prev", "x")``);
- ``("prev", "x")`` or ``("prev", "x", lag)`` or :class:`LoopDep` ``("x", lag)``: ``x`` in iteration
  ``i - lag`` of the innermost block that holds both operations (loop-carried, ``lag`` >= 1; ``x``'s
  last instance in that iteration). When ``i - lag < 0`` it falls back to the most recent instance
  of ``x`` before that block started (a software-pipelined prologue copy), or is dropped if there is
  none. Operations named ``x`` in several blocks: the one in the innermost common block wins.

Buffers: ``claims_bytes`` are taken from a named buffer when the operation starts; ``releases_bytes``
are returned when it ends. A release may belong to a later operation than the claim (e.g. a DMA load
claims a tile, the compute that consumes it releases it). Capacities are ``Schedule.buffers_bytes``.

Actions (``Operation.actions``) use attnsim's natural units: compute ops in ops (``"pe2d.mac"``),
buffer and register-file accesses in words (``"global_buffer.read"``), DRAM traffic in bytes
(``"dram.read"``, ``"dram.write"``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Union


class ScheduleError(ValueError):
    """A schedule is malformed (unknown dependency, buffer, negative duration ...) or deadlocks.

    This is a mapper/programming error rather than bad user input; the message is one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))


@dataclass(frozen=True)
class LoopDep:
    """A loop-carried dependency: operation ``op_id`` of the same block, ``lag`` iterations earlier."""

    op_id: str
    lag: int = 1


Dep = Union[str, LoopDep, tuple]
"""``"x"``, ``("prev", "x")``, ``("prev", "x", lag)`` or ``LoopDep("x", lag)``."""


def normalise_dep(dep: Dep) -> LoopDep:
    """Return ``dep`` as a :class:`LoopDep` (lag 0 = same iteration / earlier block)."""
    if isinstance(dep, LoopDep):
        if not isinstance(dep.lag, int) or dep.lag < 0:
            raise ScheduleError(f"dependency {dep!r}: lag must be an integer >= 0")
        return dep
    if isinstance(dep, str):
        return LoopDep(dep, 0)
    if isinstance(dep, tuple) and len(dep) in (2, 3) and dep[0] == "prev" and isinstance(dep[1], str):
        lag = dep[2] if len(dep) == 3 else 1
        if not isinstance(lag, int) or isinstance(lag, bool) or lag < 1:
            raise ScheduleError(f"dependency {dep!r}: lag must be an integer >= 1")
        return LoopDep(dep[1], lag)
    raise ScheduleError(f"dependency {dep!r}: expected 'id', ('prev', 'id'), ('prev', 'id', lag) "
                        f"or LoopDep")


def _frozen_mapping(values: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, eq=False)
class Operation:
    """One operation on one unit.

    Attributes:
        id: name, unique within its block.
        unit: the resource that executes it (``"pe2d"``, ``"dram"`` ...).
        duration_cycles: cycles it occupies one lane of its unit (integer >= 0).
        deps: operations it waits for (see the module docstring).
        einsum: tag for per-Einsum activity (``""`` = untagged).
        actions: action counts in natural units (ops, words, bytes), summed into the result.
        claims_bytes: {buffer: bytes} taken when the operation starts.
        releases_bytes: {buffer: bytes} returned when it ends.
        util: fraction (0..1) of the unit's lanes' capacity doing useful work while it runs (e.g. the
            fraction of 2D-array PE-cycles that are MACs); busy cycles = duration_cycles x util.
    """

    id: str
    unit: str
    duration_cycles: int
    deps: tuple[Dep, ...] = ()
    einsum: str = ""
    actions: Mapping[str, float] = field(default_factory=dict)
    claims_bytes: Mapping[str, int] = field(default_factory=dict)
    releases_bytes: Mapping[str, int] = field(default_factory=dict)
    util: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "deps", tuple(self.deps))
        object.__setattr__(self, "actions", _frozen_mapping(self.actions))
        object.__setattr__(self, "claims_bytes", _frozen_mapping(self.claims_bytes))
        object.__setattr__(self, "releases_bytes", _frozen_mapping(self.releases_bytes))
        where = f"operation '{self.id}'"
        if not isinstance(self.id, str) or not self.id:
            raise ScheduleError(f"operation {self.id!r}: id must be a non-empty string")
        if not isinstance(self.unit, str) or not self.unit:
            raise ScheduleError(f"{where}: unit must be a non-empty string")
        if isinstance(self.duration_cycles, bool) or not isinstance(self.duration_cycles, int) \
                or self.duration_cycles < 0:
            raise ScheduleError(f"{where}: duration_cycles must be an integer >= 0, "
                                f"got {self.duration_cycles!r}")
        if not 0.0 <= float(self.util) <= 1.0:
            raise ScheduleError(f"{where}: util must be in [0, 1], got {self.util!r}")
        for kind, amounts in (("claims_bytes", self.claims_bytes),
                              ("releases_bytes", self.releases_bytes)):
            for buffer, amount in amounts.items():
                if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                    raise ScheduleError(f"{where}: {kind}[{buffer!r}] must be an integer >= 0, "
                                        f"got {amount!r}")
        for action, count in self.actions.items():
            if isinstance(count, bool) or not isinstance(count, (int, float)) or count < 0:
                raise ScheduleError(f"{where}: action {action!r} must be a count >= 0, got {count!r}")
        for dep in self.deps:
            normalise_dep(dep)

    @property
    def busy_cycles(self) -> float:
        """Useful lane-cycles of one execution: duration_cycles x util."""
        return self.duration_cycles * float(self.util)


@dataclass(frozen=True, eq=False)
class Block:
    """A loop: ``items`` (operations and nested blocks) executed ``repeats`` times in a row.

    ``repeats`` = 0 skips the block. Operation ids must be unique among a block's direct items.
    """

    items: tuple[Operation | Block, ...]
    repeats: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 0:
            raise ScheduleError(f"block '{self.name}': repeats must be an integer >= 0, "
                                f"got {self.repeats!r}")
        seen: set[str] = set()
        for item in self.items:
            if isinstance(item, Block):
                continue
            if not isinstance(item, Operation):
                raise ScheduleError(f"block '{self.name}': expected Operation or Block, got {item!r}")
            if item.id in seen:
                raise ScheduleError(f"block '{self.name}': duplicate operation id '{item.id}'")
            seen.add(item.id)

    @property
    def ops(self) -> tuple[Operation, ...]:
        """The block's direct operations (not those of nested blocks)."""
        return tuple(item for item in self.items if isinstance(item, Operation))

    def walk(self) -> Iterator[Operation]:
        """Every operation in the block and its nested blocks, in listed order."""
        for item in self.items:
            if isinstance(item, Block):
                yield from item.walk()
            else:
                yield item

    @property
    def op_count(self) -> int:
        """Operation instances one execution of the block runs (all repeats, nested included)."""
        per_iteration = sum(item.op_count if isinstance(item, Block) else 1 for item in self.items)
        return self.repeats * per_iteration


@dataclass(frozen=True, eq=False)
class Schedule:
    """A program for the engine: blocks in order, buffer capacities, unit lane counts.

    Attributes:
        blocks: executed in order; see :meth:`loop` for the prologue/body/epilogue shape.
        buffers_bytes: capacity in bytes of every buffer that an operation claims or releases.
        lanes: {unit: number of operations it can run at once}; units not listed have 1 lane.
        name: free text for reports.
    """

    blocks: tuple[Block, ...]
    buffers_bytes: Mapping[str, int] = field(default_factory=dict)
    lanes: Mapping[str, int] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "buffers_bytes", _frozen_mapping(self.buffers_bytes))
        object.__setattr__(self, "lanes", _frozen_mapping(self.lanes))
        for buffer, capacity in self.buffers_bytes.items():
            if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
                raise ScheduleError(f"buffer '{buffer}': capacity must be an integer >= 0 bytes, "
                                    f"got {capacity!r}")
        for unit, lanes in self.lanes.items():
            if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
                raise ScheduleError(f"unit '{unit}': lanes must be an integer >= 1, got {lanes!r}")
        for block in self.blocks:
            if not isinstance(block, Block):
                raise ScheduleError(f"schedule: expected Block, got {block!r}")
            for op in block.walk():
                for buffer, amount in (*op.claims_bytes.items(), *op.releases_bytes.items()):
                    if buffer not in self.buffers_bytes:
                        raise ScheduleError(f"operation '{op.id}': unknown buffer '{buffer}' "
                                            f"(declared: {', '.join(self.buffers_bytes) or 'none'})")
                for buffer, amount in op.claims_bytes.items():
                    if amount > self.buffers_bytes[buffer]:
                        raise ScheduleError(f"operation '{op.id}': claims {amount} bytes of buffer "
                                            f"'{buffer}', more than its capacity "
                                            f"{self.buffers_bytes[buffer]} bytes")

    @classmethod
    def loop(cls, body: Iterable[Operation], repeats: int, *, prologue: Iterable[Operation] = (),
             epilogue: Iterable[Operation] = (), buffers_bytes: Mapping[str, int] | None = None,
             lanes: Mapping[str, int] | None = None, name: str = "") -> Schedule:
        """Prologue once, ``body`` ``repeats`` times, epilogue once."""
        return cls(blocks=(Block(tuple(prologue), 1, "prologue"), Block(tuple(body), repeats, "body"),
                           Block(tuple(epilogue), 1, "epilogue")),
                   buffers_bytes=dict(buffers_bytes or {}), lanes=dict(lanes or {}), name=name)

    @property
    def units(self) -> tuple[str, ...]:
        """Every unit that runs an operation, in order of first appearance."""
        seen: dict[str, None] = {}
        for block in self.blocks:
            for op in block.walk():
                seen.setdefault(op.unit, None)
        return tuple(seen)

    def lanes_of(self, unit: str) -> int:
        """Number of lanes of ``unit`` (1 unless declared)."""
        return int(self.lanes.get(unit, 1))

    @property
    def op_count(self) -> int:
        """Number of operation instances the schedule executes (blocks x repeats)."""
        return sum(block.op_count for block in self.blocks)
