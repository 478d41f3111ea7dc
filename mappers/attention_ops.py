"""Building blocks shared by the attention mappers: per-Einsum operation factories and the loop builder.

A mapper describes ONE logical iteration of a loop (a GEMM fold, a block of query rows, an
``M0 x P0`` tile ...) as a list of :class:`OpTemplate` s, says how many iterations there are, and
:func:`loop_blocks` turns that into :class:`archsim.schedule.Block` s that the engine executes (one
body, repeated, which the engine extrapolates exactly in steady state). Templates carry their exact
duration (a :class:`fractions.Fraction` for DRAM transfers) and their action counts in attnsim's natural
units (ops, words, bytes); nothing here computes a latency.

Two ways of building the loop (``closed_form``):

* ``closed_form=False`` (attnsim's model): a software pipeline. Each template has a ``stage``; stage
  ``s`` of logical iteration ``j`` runs in body iteration ``j + s``, so e.g. the DRAM load of tile
  ``j + 1`` overlaps the compute of tile ``j`` and the store of tile ``j - 1``. The ramp-up and
  ramp-down iterations (pipeline fill and drain) are separate one-shot blocks. Loop-carried
  ``LoopDep`` s express buffer slots (a load waits until the compute two tiles back has freed its
  double-buffered slot). DRAM streams at its bandwidth: in the steady-state body the fractional
  cycles of the transfers are carried from one iteration to the next (as in closed form, below); a
  ramp iteration's transfer takes ``ceil(bytes / bytes-per-cycle)`` cycles.
* ``closed_form=True`` (the artifact's analytical model, fact sheet §4.4): no fill, no drain, no
  buffer stalls. All templates of an iteration sit in one body iteration; every dependency between
  two *different* units becomes loop-carried with a slack of :data:`CLOSED_FORM_SLACK` iterations.
  The units then run decoupled, each at its own pace, but no unit can run unboundedly ahead (so the
  engine still finds the periodic steady state), and the slowest unit never waits: the loop takes
  exactly ``max over units of (sum of that unit's durations)``. DRAM durations keep their fractional
  cycles: the body is split in two blocks whose DRAM durations differ by one cycle, so the total DRAM
  time is ``round(total bytes / bytes-per-cycle)``.

Energy conventions used by every factory here: compute in ops (``pe2d.mac`` ...), global-buffer and
register-file accesses in words, DRAM in bytes (see :mod:`archsim.energy`).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Union

from attnsim.archsim.schedule import Block, LoopDep, Operation, ScheduleError
from attnsim.archsim.spec import Arch
from attnsim.mappers.errors import MappingError

CLOSED_FORM_SLACK = 4
"""Iterations of slack between units in closed-form loops (>= the longest chain of units in a body)."""

THREE_PASS_EINSUMS = ("QK", "GM", "SN", "SD", "A", "AV")
"""Einsum names of the 3-pass cascade (``specs/cascades/attention-3pass.yaml``; the artifact calls GM 'M')."""

ONE_PASS_EINSUMS = ("BQK", "LM", "RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")
"""Einsum names of the 1-pass cascade (``specs/cascades/attention-1pass.yaml``; the artifact writes
``QK`` for ``BQK``)."""

Cycles = Union[int, Fraction]
TemplateDep = Union[str, LoopDep]
"""``"x"``: template ``x`` of the same logical iteration (same or earlier stage); ``LoopDep("x", L)``:
template ``x`` of logical iteration ``j - L`` (a buffer-slot or ordering constraint)."""


@dataclass(frozen=True)
class OpTemplate:
    """One operation of a logical loop iteration.

    Attributes:
        id: unique within the loop (prefix it per loop: ids are looked up across blocks).
        unit: ``"pe2d"``, ``"pe1d"``, ``"dram"`` ...
        cycles: exact duration in cycles (a Fraction for DRAM transfers; compute is an integer).
        stage: software-pipeline stage (0 = first), see the module docstring.
        deps: see :data:`TemplateDep`.
        einsum: tag for per-Einsum activity (``""`` for data movement).
        actions: action counts of one execution, natural units.
        util: fraction of the unit's capacity doing useful work while the op runs.
        fill_cycles: extra cycles of the very first execution only, in pipelined (non-closed-form)
            loops: e.g. a systolic array's fill and drain, paid once per loop rather than per tile.
    """

    id: str
    unit: str
    cycles: Cycles
    stage: int = 0
    deps: tuple[TemplateDep, ...] = ()
    einsum: str = ""
    actions: Mapping[str, float] = field(default_factory=dict)
    util: float = 1.0
    fill_cycles: int = 0


# --------------------------------------------------------------------------------------------------
# Costs.


def op_cycles(arch: Arch, unit: str, op: str, einsum: str = "") -> int:
    """Cycles one PE of ``unit`` (``pe2d`` or ``pe1d``) takes for ``op``; MappingError if it cannot."""
    array = getattr(arch.arrays, unit)
    cycles = array.ops.get(op)
    if cycles is None:
        why = f" (needed by Einsum {einsum})" if einsum else ""
        raise MappingError(f"{arch.origin}: arrays.{unit}.ops: no '{op}' operation{why}; "
                           f"expected one of {', '.join(array.ops.keys())}")
    return cycles


def has_op(arch: Arch, unit: str, op: str) -> bool:
    """Whether ``unit``'s PEs can perform ``op``."""
    return op in getattr(arch.arrays, unit).ops


def bytes_per_cycle(arch: Arch) -> Fraction:
    """DRAM bandwidth in bytes per cycle, exactly (bandwidth and clock are exact binary floats)."""
    return _bytes_per_cycle(arch.dram.bandwidth_bytes_per_s, arch.clock_hz)


@functools.lru_cache(maxsize=64)
def _bytes_per_cycle(bandwidth_bytes_per_s: float, clock_hz: float) -> Fraction:
    return Fraction(bandwidth_bytes_per_s) / Fraction(clock_hz)


def dram_cycles(arch: Arch, n_bytes: float | Fraction) -> Fraction:
    """Exact cycles DRAM needs to move ``n_bytes``."""
    return Fraction(n_bytes) / bytes_per_cycle(arch)


def ceil_div(a: int, b: int) -> int:
    """Ceiling of ``a / b`` for positive integers."""
    return -(-a // b)


def require_multiple(value: int, tile: int, what: str, tile_name: str, where: str) -> None:
    """MappingError unless ``value`` is a positive multiple of ``tile``."""
    if value % tile:
        raise MappingError(f"{where}: {what} {value} is not divisible by {tile_name} = {tile}; "
                           f"expected a multiple of {tile}")


def compute_op(id: str, unit: str, einsum: str, cycles: int, actions: Mapping[str, float], *,
               stage: int = 0, deps: Sequence[TemplateDep] = (), util: float = 1.0,
               fill_cycles: int = 0) -> OpTemplate:
    """A compute operation (integer cycles); actions with zero counts are dropped."""
    if cycles < 0 or int(cycles) != cycles:
        raise ScheduleError(f"operation '{id}': expected a whole number of cycles >= 0, got {cycles}")
    return OpTemplate(id=id, unit=unit, cycles=int(cycles), stage=stage, deps=tuple(deps), einsum=einsum,
                      actions=_nonzero(actions), util=min(1.0, max(0.0, float(util))),
                      fill_cycles=int(fill_cycles))


def dram_op(id: str, arch: Arch, *, read_bytes: float | Fraction = 0, write_bytes: float | Fraction = 0,
            stage: int = 0, deps: Sequence[TemplateDep] = (), einsum: str = "",
            extra_actions: Mapping[str, float] | None = None) -> OpTemplate:
    """A DRAM transfer of ``read_bytes`` (DRAM -> chip) and ``write_bytes`` (chip -> DRAM).

    Bytes may be fractional where a per-tensor transfer is amortised over the iterations that share it
    (e.g. a head's Q, loaded once, spread over that head's tiles). ``extra_actions`` adds e.g. the
    global-buffer words the transfer fills or drains.
    """
    actions = {"dram.read": float(read_bytes), "dram.write": float(write_bytes), **(extra_actions or {})}
    return OpTemplate(id=id, unit="dram", cycles=dram_cycles(arch, Fraction(read_bytes) + Fraction(write_bytes)),
                      stage=stage, deps=tuple(deps), einsum=einsum, actions=_nonzero(actions))


def spatial_util(useful_ops: float, lanes: int, cycles: int, op_cost: int = 1) -> float:
    """Fraction of ``lanes`` x ``cycles`` PE-cycles busy with ``useful_ops`` ops of ``op_cost`` cycles."""
    if cycles <= 0:
        return 0.0
    return min(1.0, useful_ops * op_cost / (lanes * cycles))


def _nonzero(actions: Mapping[str, float]) -> dict[str, float]:
    return {key: value for key, value in actions.items() if value}


# --------------------------------------------------------------------------------------------------
# Einsum factories.


def elementwise_1d(id: str, arch: Arch, einsum: str, elements: int, per_element: Mapping[str, int],
                   cycle_op: str, *, stage: int = 0, deps: Sequence[TemplateDep] = (),
                   glb_read_words: float = 0, glb_write_words: float = 0) -> OpTemplate:
    """``elements`` independent element operations spread over the 1D array's PEs.

    ``per_element``: actions per element by op (e.g. ``{"add": 1, "exp": 1}`` for FLAT's
    sub-then-exp); ``cycle_op``: the op whose cycle count paces the element (the others are taken to
    be pipelined with it). Cycles = ceil(elements / PEs) x cycles(cycle_op).
    """
    for op in per_element:
        op_cycles(arch, "pe1d", op, einsum)
    lanes = arch.pes_1d
    steps = ceil_div(elements, lanes)
    cost = op_cycles(arch, "pe1d", cycle_op, einsum)
    actions: dict[str, float] = {f"pe1d.{op}": count * elements for op, count in per_element.items()}
    actions["global_buffer.read"] = glb_read_words
    actions["global_buffer.write"] = glb_write_words
    return compute_op(id, "pe1d", einsum, steps * cost, actions, stage=stage, deps=deps,
                      util=spatial_util(elements, lanes, steps * cost, cost))


def three_pass_softmax(prefix: str, arch: Arch, rows: int, fibre: int, *, stage: int,
                       first_deps: Sequence[TemplateDep] = (), glb: bool = True) -> list[OpTemplate]:
    """The 3-pass softmax (GM, SN, SD, A; fact sheet §1.2) of ``rows`` M-fibres of ``fibre`` scores on
    the 1D array, one Einsum after the other, 1 op per element each (4 per element in all, §4.4).

    Actions per element (fact sheet §6.4): GM one ``max``; SN one ``add`` (the subtract) and one
    ``exp``; SD one ``add``; A one ``div``. Global buffer (words, ``glb=True``): GM reads QK; SN reads
    QK and writes SN (SD sums SN as it is produced); A reads SN and writes A -- with QK's write by the
    producer and A's read by the consumer, the 3-pass cascade's 4 reads and 3 writes per score (§6.4).
    """
    n = rows * fibre
    word = 1 if glb else 0
    gm = elementwise_1d(f"{prefix}GM", arch, "GM", n, {"max": 1}, "max", stage=stage, deps=first_deps,
                        glb_read_words=word * n)
    sn = elementwise_1d(f"{prefix}SN", arch, "SN", n, {"add": 1, "exp": 1}, "exp", stage=stage,
                        deps=(f"{prefix}GM",), glb_read_words=word * n, glb_write_words=word * n)
    sd = elementwise_1d(f"{prefix}SD", arch, "SD", n, {"add": 1}, "add", stage=stage, deps=(f"{prefix}SN",))
    a = elementwise_1d(f"{prefix}A", arch, "A", n, {"div": 1}, "div", stage=stage, deps=(f"{prefix}SD",),
                       glb_read_words=word * n, glb_write_words=word * n)
    return [gm, sn, sd, a]


# --------------------------------------------------------------------------------------------------
# The loop builder.


def loop_blocks(templates: Sequence[OpTemplate], iterations: int, *, closed_form: bool, name: str,
                after: Sequence[str] = (), decoupled: Sequence[str] | None = None) -> list[Block]:
    """Blocks executing ``iterations`` logical iterations of ``templates`` (module docstring).

    ``after``: ids of operations in earlier blocks that must all have finished before any operation
    of this loop starts (e.g. the previous phase's last operations). The ids of ``templates`` must
    be unique within the whole schedule (prefix them per loop).
    ``decoupled``: in closed-form loops, the units whose dependencies are relaxed to the slack
    (default: every unit). A dataflow whose compute is serial by design (FlashAttention-2's
    GEMM -> softmax -> GEMM) passes ``("dram",)`` so that only its memory overlaps.
    """
    if iterations < 1:
        raise ScheduleError(f"loop '{name}': expected at least one iteration, got {iterations}")
    _check_templates(templates, name)
    blocks: list[Block] = []
    start_id = f"{name}:start"
    if after:
        first_unit = min(templates, key=lambda t: (t.stage, templates.index(t))).unit
        blocks.append(Block((Operation(id=start_id, unit=first_unit, duration_cycles=0,
                                       deps=tuple(after)),), 1, f"{name}:start"))
        templates = [replace(t, deps=(*t.deps, start_id)) for t in templates]
    if closed_form:
        blocks.extend(_closed_form_blocks(templates, iterations, name, decoupled))
    else:
        blocks.extend(_pipelined_blocks(templates, iterations, name))
    return blocks


def last_ops(templates: Sequence[OpTemplate]) -> tuple[str, ...]:
    """Ids of the last template on each unit: what a following phase waits for (with ``after``)."""
    last: dict[str, str] = {}
    for template in sorted(templates, key=lambda t: t.stage):
        last[template.unit] = template.id
    return tuple(last.values())


def _check_templates(templates: Sequence[OpTemplate], name: str) -> None:
    """ScheduleError (a mapper bug, not bad user input) for ids or dependencies the builder cannot place."""
    position = {t.id: i for i, t in enumerate(templates)}
    if len(position) != len(templates):
        raise ScheduleError(f"loop '{name}': duplicate template ids")
    stage = {t.id: t.stage for t in templates}
    for i, template in enumerate(templates):
        for dep in template.deps:
            target = dep.op_id if isinstance(dep, LoopDep) else dep
            if target not in position:
                continue  # an operation of an earlier block (e.g. the loop's start barrier)
            if isinstance(dep, str):
                if stage[target] > template.stage or (stage[target] == template.stage and position[target] >= i):
                    raise ScheduleError(f"loop '{name}': '{template.id}' depends on '{target}' of the same "
                                       "iteration, which must be in an earlier stage or listed earlier")
            elif dep.lag < 1 or dep.lag + template.stage - stage[target] < 0:
                raise ScheduleError(f"loop '{name}': '{template.id}' depends on LoopDep{(target, dep.lag)}, "
                                   "which would be in the future of the software pipeline")


def _operation(template: OpTemplate, deps: Iterable, cycles: int) -> Operation:
    return Operation(id=template.id, unit=template.unit, duration_cycles=cycles, deps=tuple(deps),
                     einsum=template.einsum, actions=dict(template.actions), util=template.util)


# -- attnsim's pipelined loop -------------------------------------------------------------------------

def _pipelined_blocks(templates: Sequence[OpTemplate], n: int, name: str) -> list[Block]:
    stages = max(t.stage for t in templates) + 1
    stage_of = {t.id: t.stage for t in templates}
    order = {t.id: i for i, t in enumerate(templates)}
    slots = n + stages - 1
    seen: set[str] = set()
    blocks: list[Block] = []
    slot = 0
    while slot < slots:
        active = {s for s in range(stages) if 0 <= slot - s <= n - 1}
        repeats = n - slot if len(active) == stages else 1   # full slots run up to slot n - 1
        if slot == stages - 1 and any(t.fill_cycles and t.stage == slot for t in templates):
            repeats = 1   # a last-stage op's first execution carries its fill: keep it out of the body
        members = sorted((t for t in templates if t.stage in active),
                         key=lambda t: (-t.stage, order[t.id]))
        in_block = {t.id for t in members}
        full = len(active) == stages and repeats > 1
        segments = (_exact_segments(members, repeats) if full
                    else [(0, 1, {t.id: math.ceil(t.cycles) for t in members})])
        deps_of = {}
        for template in members:
            deps = []
            for dep in template.deps:
                target, lag = (dep.op_id, dep.lag) if isinstance(dep, LoopDep) else (dep, 0)
                if target not in stage_of:        # outside the loop: keep as is
                    deps.append(target)
                    continue
                body_lag = lag + template.stage - stage_of[target]
                if target in in_block:
                    deps.append(target if body_lag == 0 else LoopDep(target, body_lag))
                elif target in seen:              # an instance in an earlier ramp block
                    deps.append(target)
                # else: that iteration does not exist (before the loop's first): nothing to wait for
            deps_of[template.id] = deps
        label = "body" if len(active) == stages else ("fill" if slot < stages - 1 else "drain")
        for first, count, durations in segments:
            ops = []
            for template in members:
                cycles = durations[template.id]
                if template.fill_cycles and slot == template.stage:   # its first execution
                    util = template.util * cycles / (cycles + template.fill_cycles) if cycles else 0.0
                    template = replace(template, util=util)
                    cycles += template.fill_cycles
                ops.append(_operation(template, deps_of[template.id], cycles))
            blocks.append(Block(tuple(ops), count, f"{name}:{label}{slot + first}"))
        seen |= in_block
        slot += repeats
    return blocks


# -- the closed-form loop -------------------------------------------------------------------------------

def _closed_form_blocks(templates: Sequence[OpTemplate], n: int, name: str,
                        decoupled: Sequence[str] | None) -> list[Block]:
    unit_of = {t.id: t.unit for t in templates}

    def relaxed(a: str, b: str) -> bool:
        return a != b and (decoupled is None or a in decoupled or b in decoupled)

    order = {t.id: i for i, t in enumerate(templates)}
    members = sorted(templates, key=lambda t: (t.stage, order[t.id]))
    deps_of: dict[str, list] = {}
    for template in members:
        deps = []
        for dep in template.deps:
            target, lag = (dep.op_id, dep.lag) if isinstance(dep, LoopDep) else (dep, 0)
            if target not in unit_of:
                deps.append(target)
            elif relaxed(unit_of[target], template.unit):
                deps.append(LoopDep(target, max(lag, CLOSED_FORM_SLACK)))
            elif lag == 0:
                deps.append(target)
            elif unit_of[target] != template.unit:
                deps.append(LoopDep(target, lag))
            # a same-unit loop-carried dependency is implied by in-order issue
        deps_of[template.id] = deps
    return [Block(tuple(_operation(template, deps_of[template.id], durations[template.id])
                        for template in members), count, f"{name}:body{first}")
            for first, count, durations in _exact_segments(members, n)]


def _exact_segments(members: Sequence[OpTemplate], n: int) -> list[tuple[int, int, dict[str, int]]]:
    """``n`` iterations of ``members`` as (first iteration, count, {id: whole cycles}) segments.

    Fractional durations (DRAM transfers) keep their exact total: per unit, every op gets the floor
    of its duration and the unit's first fractional op (the carrier) the whole cycles carried over,
    spread evenly: ``round(n x unit's exact cycles per iteration)`` cycles in all. Usually two
    segments, whose carrier durations differ by one cycle.
    """
    base = {t.id: math.floor(t.cycles) for t in members}
    extra_each: dict[str, int] = {}
    extra_first: dict[str, int] = {}
    by_unit: dict[str, list[OpTemplate]] = {}
    for template in members:
        by_unit.setdefault(template.unit, []).append(template)
    for unit_templates in by_unit.values():
        fractional = [t for t in unit_templates if Fraction(t.cycles).denominator != 1]
        if not fractional:
            continue
        exact_total = n * sum(Fraction(t.cycles) for t in unit_templates)
        carry = _round_half_up(exact_total) - n * sum(base[t.id] for t in unit_templates)
        carrier = fractional[0].id
        extra_each[carrier], extra_first[carrier] = divmod(carry, n)
    cuts = sorted({0, n, *extra_first.values()})
    segments = []
    for lo, hi in zip(cuts, cuts[1:]):
        durations = {}
        for template in members:
            cycles = base[template.id] + extra_each.get(template.id, 0)
            if lo < extra_first.get(template.id, 0):
                cycles += 1
            durations[template.id] = cycles
        segments.append((lo, hi - lo, durations))
    return segments


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


__all__ = ["CLOSED_FORM_SLACK", "ONE_PASS_EINSUMS", "OpTemplate", "THREE_PASS_EINSUMS", "bytes_per_cycle",
           "ceil_div", "compute_op", "dram_cycles", "dram_op", "elementwise_1d", "has_op", "last_ops",
           "loop_blocks", "op_cycles", "require_multiple", "spatial_util", "three_pass_softmax"]
