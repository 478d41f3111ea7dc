"""FROZEN REFERENCE (test-only): the hand-written FuseMax mappers as they were before the generic path
(mappers/cascade_mapper.py + specs/mappings/fusemax*.yaml) replaced them. test_cascade_equivalence.py runs both
and asserts equal results; nothing on the product path imports this file.

The three FuseMax designs of the paper's ablation (fact sheet §4.1-4.3): +Cascade, +Architecture, +Binding.

All three run the 1-pass cascade (paper Cascade 5, ``specs/cascades/attention-1pass.yaml``) with
Mapping 1's loop nest (§4.1)::

    for (b, h, p2):                       # "groups": B*H*P2 of them
        for m1 in range(M1):              # key/value tiles of M0 keys, streamed from DRAM
            for p1 in range(P1):          # query blocks of P0 rows, resident in the global buffer
                tile(m1, p1)              # Eqs. 44-54 on one M0 x P0 tile
        for p1 in range(P1): AV(p1)       # Eq. 55, the deferred division

and build it as a nested :class:`archsim.schedule.Schedule` (group loop > m1 loop > p1 loop) that the
engine executes and extrapolates at every level; nothing is unrolled, and no latency is computed here.
AV of query block ``p1`` needs only that block's final RNV and RD, so it is issued right after the
block's last tile (in the last ``m1`` iteration) rather than in a separate loop: same work, same
order on the 1D array, and its DRAM write leaves as soon as it is ready.

Units are in-order: ``pe2d`` (the ``M0 x P0`` array), ``pe1d`` (the 1D array), ``dram``. Each
operation waits for what the cascade says it reads; the overlap between the arrays is *not* written
into the schedule, it follows from program order and those dependencies:

* **fusemax** (+Binding, §4.2). 2D: BQK (``E`` MAC steps, output-stationary), LM (1, a max down the
  array's columns), SLN (the 2D array's ``exp``: 6 MACs + 1 add, 7 cycles), SLD (1), SLNV (``F``). 1D:
  RM (1), PRM (``exp``, 7), SPD (1), SPNV (``F``), RD (1), RNV (``F``), and AV (``F``) after a block's
  last tile. RD and RNV of tile ``d`` only need SLD/SLNV of ``d``, so the 1D array finishes them
  while the 2D array already runs BQK and LM of tile ``d + 1`` -- Fig. 4's software pipelining
  across epochs. In steady state one tile takes ``max(E + 1, 1 + F) + 1 + 8 + F`` cycles (RM: the 2D
  array waits for it; SLN/SLD overlap PRM/SPD; SLNV overlaps SPNV), and a block's AV adds ``F`` to
  the next tile's first phase: the artifact's closed form
  ``[max(E+1, 1+F+F/M1) + 1 + 8 + F] * u`` (fact sheet §4.4).
* **fusemax-arch** (+Architecture, §4.3). Same arrays and binding, but one tile is fully produced
  and consumed before the next starts: BQK of tile ``d + 1`` waits for RNV of tile ``d``, RNV comes
  after SPNV on the 1D array, and RM waits for LM's reduction to drain down the ``M0`` rows of the
  array (one row per cycle, ``M0`` cycles during which the 2D array idles; the binding hides it). RD
  and AV run during the next tile's BQK. Per tile: ``(E + 1) + M0 + 1 + 8 + 2F``.
* **fusemax-cascade** (+Cascade, §4.3). FLAT's arrays: only BQK and SLNV on the 2D array; LM, SLN,
  SLD (per score, ``M0 * P0 / PEs`` steps each) and RM, PRM, SPD, RD, SPNV, RNV, AV on the 1D array,
  whose exp unit makes SLN and PRM cost ``exp + add`` (the subtract is a separate add: 2 cycles on
  FLAT). The 1D array is the bottleneck and the 2D array runs ahead, so the loop takes the 1D
  array's total: ``4v + (5 + 2F) u + u F / M1``.

Exp and its subtract. FuseMax's arrays have no exp unit: ``exp`` is the arch's ``ops.exp`` cycles of
6 sequential MACs (Taylor series) plus 1 add, and the artifact charges sub-then-exp that much (the add
absorbs the subtract, §3.5 "exp cost", §6.4's SLN/PRM terms). FLAT's exp unit takes its argument
ready, so +Cascade adds an ``add`` for the subtract.

DRAM (one in-order ``dram`` unit, ``ceil(bytes / bytes-per-cycle)`` cycles per transfer). Q is read
once per group, K and V tiles once per ``m1`` per group (``P2`` times in all), AV written once (per
query block, right after its AV). Double buffering: the K/V tile of ``m1 + 1`` is loaded while tile
``m1`` is being used (into the slot freed by ``m1 - 1``); the next group's Q block and first K/V tile
are loaded during the group's last ``m1`` iteration. So in steady state the latency is
``max(DRAM, compute)``. The global buffer then holds two Q blocks and two K/V tiles, one block of
running state: ``choices["glb_peak_bytes"]`` (the artifact's sizing rule, ``mappers.tiling``,
counts one of each).

``MapOptions.closed_form=True`` drops what the closed form ignores, keeping every action: the initial
DRAM loads (pipeline fill), the very last tile's drain (+Binding: its RD and RNV; +Architecture: its
RD and AV, which the closed form counts as hidden behind a BQK) and last AV write -- zero cycles, same
actions -- and +Cascade's fill: the first tile's LM does not wait for its BQK (which the 2D array still
computes, in parallel). Then the simulated cycles equal the closed form exactly for ``E = F`` (all the
paper's models) wherever DRAM keeps up (all 24 model x length points); for +Cascade also
``E <= 4 M0 + 5``, i.e. the first BQK ends before the 1D array needs SLNV's result.

Energy (fact sheet §6.4), action counts per tile: 2D MACs (BQK, SLNV, 6 per SLN exp), adds (SLN, SLD),
max (LM); 1D max (RM), 6 MACs + 1 add per PRM, MACs (SPD, SPNV), adds (RD, RNV), divides (AV); DRAM
bytes; global-buffer words: reads of Q, BK, BV, RM, RD, RNV and the final RNV/RD, writes of the Q/K/V
fills and of RM, RD, RNV; ``pe1d.register_file.write`` for what drains from the 2D array into the 1D
array's register file (LM, SLD, SLNV) plus RM, where the arch has that entry. +Cascade keeps QK and SLN
in the global buffer (FLAT's PEs cannot hold them: 3 reads and 2 writes per score, see
:func:`_cascade_tile`) and charges no register file, like the artifact's FLAT model.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from attnsim.archsim.schedule import Block, Dep, Operation, Schedule
from attnsim.archsim.spec import Arch
from attnsim.mappers.attention_ops import ceil_div, dram_cycles, op_cycles
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.tiling import OnePassTiles, cascade_tiles, fusemax_tiles
from attnsim.mappers.workloads import Workload

Variant = Literal["fusemax", "fusemax-arch", "fusemax-cascade"]

EXP_TAYLOR_MACS = 6
"""MACs of one exp without an exp unit (5th-order Taylor series, paper §V citing Nilsson et al.); with
its one add, the ``6 MAC + 1 add`` that fact sheet §3.5/§6.4 charge per SLN and PRM element."""

RF_WRITE = "pe1d.register_file.write"
OPTIONS = {"fusemax": (), "fusemax-arch": (), "fusemax-cascade": ("glb_sizing_bytes",)}
"""The ``MapOptions.extra`` keys each design accepts."""


# --------------------------------------------------------------------------------------------------
# Sizes and small helpers.


@dataclass(frozen=True)
class _Point:
    """One (workload, seq, arch, tiles) point: the sizes every tile builder reads (elements, cycles)."""

    arch: Arch
    e: int
    f: int
    m0: int
    p0: int
    p1: int
    m1: int
    groups: int
    word: int
    closed_form: bool

    @property
    def scores(self) -> int:
        """Scores of one ``M0 x P0`` tile."""
        return self.m0 * self.p0

    @property
    def query_steps(self) -> int:
        """1D steps to give each of a tile's ``P0`` queries one op: ``ceil(P0 / PEs)``."""
        return ceil_div(self.p0, self.arch.pes_1d)

    @property
    def score_steps(self) -> int:
        """1D steps to give each of a tile's scores one op: ``ceil(M0 P0 / PEs)``."""
        return ceil_div(self.scores, self.arch.pes_1d)

    def cycles(self, unit: str, op: str, einsum: str) -> int:
        """Cycles of one ``op`` on one PE of ``unit`` (MappingError if its PEs cannot do it)."""
        return op_cycles(self.arch, unit, op, einsum)

    def dram(self, n_bytes: int) -> int:
        """Whole cycles the DRAM needs for ``n_bytes``."""
        return math.ceil(dram_cycles(self.arch, n_bytes))


def _op(id: str, unit: str, einsum: str, cycles: int, actions: Mapping[str, float],
        deps: Sequence[Dep] = (), util: float = 1.0) -> Operation:
    """An operation with zero-count actions dropped."""
    return Operation(id=id, unit=unit, duration_cycles=int(cycles), deps=tuple(deps), einsum=einsum,
                     actions={key: value for key, value in actions.items() if value},
                     util=min(1.0, max(0.0, util)))


def _util_1d(pt: _Point, ops: int, per_op: int, cycles: int) -> float:
    """Fraction of the 1D array's PE-cycles busy when ``ops`` ops of ``per_op`` cycles take ``cycles``."""
    return min(1.0, ops * per_op / (pt.arch.pes_1d * cycles)) if cycles else 0.0


def _rf(pt: _Point, words: int) -> dict[str, float]:
    """1D register-file writes, charged only where the architecture prices them."""
    return {RF_WRITE: words} if RF_WRITE in pt.arch.energy else {}


@dataclass(frozen=True)
class _TileRole:
    """Where a tile sits in the loop nest: its block's last ``m1`` (AV follows), the global first, the
    global last tile (the pipeline's fill and drain, dropped in closed-form mode)."""

    last_m1: bool
    first: bool
    final: bool


# --------------------------------------------------------------------------------------------------
# Per-query (1D) Einsums shared by the three designs.


def _per_query(pt: _Point, id: str, einsum: str, op: str, width: int, actions: Mapping[str, float],
               deps: Sequence[Dep], op_cost: int | None = None) -> Operation:
    """``width`` ops of ``op`` per query for the tile's ``P0`` queries on the 1D array."""
    per_op = pt.cycles("pe1d", op, einsum) if op_cost is None else op_cost
    cycles = pt.query_steps * width * per_op
    return _op(id, "pe1d", einsum, cycles, actions, deps,
               _util_1d(pt, pt.p0 * width, per_op, cycles))


def _rm(pt: _Point, deps: Sequence[Dep]) -> Operation:
    """Eq. 46: RM = max(RM0, LM); reads RM0 and writes RM in the global buffer."""
    return _per_query(pt, "rm", "RM", "max", 1,
                      {"pe1d.max": pt.p0, "global_buffer.read": pt.p0, "global_buffer.write": pt.p0,
                       **_rf(pt, pt.p0)}, deps)


def _spd(pt: _Point) -> Operation:
    """Eq. 51: SPD = RD0 x PRM (reads RD0)."""
    return _per_query(pt, "spd", "SPD", "mac", 1, {"pe1d.mac": pt.p0, "global_buffer.read": pt.p0}, ("prm",))


def _spnv(pt: _Point) -> Operation:
    """Eq. 53: SPNV = RNV0 x PRM, F per query (reads RNV0)."""
    return _per_query(pt, "spnv", "SPNV", "mac", pt.f,
                      {"pe1d.mac": pt.p0 * pt.f, "global_buffer.read": pt.p0 * pt.f}, ("prm",))


def _rd(pt: _Point, drop: bool) -> Operation:
    """Eq. 52: RD = SLD + SPD (writes RD). ``drop``: zero cycles (closed-form drain), same actions."""
    op = _per_query(pt, "rd", "RD", "add", 1, {"pe1d.add": pt.p0, "global_buffer.write": pt.p0},
                    ("sld", "spd"))
    return _dropped(op) if drop else op


def _rnv(pt: _Point, drop: bool) -> Operation:
    """Eq. 54: RNV = SLNV + SPNV, F per query (writes RNV)."""
    op = _per_query(pt, "rnv", "RNV", "add", pt.f,
                    {"pe1d.add": pt.p0 * pt.f, "global_buffer.write": pt.p0 * pt.f}, ("slnv", "spnv"))
    return _dropped(op) if drop else op


def _av(pt: _Point, drop: bool) -> Operation:
    """Eq. 55: AV = RNV / RD, F divides per query (reads the final RNV and RD)."""
    op = _per_query(pt, "av", "AV", "div", pt.f,
                    {"pe1d.div": pt.p0 * pt.f, "global_buffer.read": pt.p0 * pt.f + pt.p0}, ("rd", "rnv"))
    return _dropped(op) if drop else op


def _av_store(pt: _Point, drop: bool) -> Operation:
    """AV of one query block (``P0 x F`` words) to DRAM, as soon as it is computed."""
    n_bytes = pt.p0 * pt.f * pt.word
    return _op("av_store", "dram", "", 0 if drop else pt.dram(n_bytes), {"dram.write": n_bytes}, ("av",))


def _dropped(op: Operation) -> Operation:
    """``op`` with zero cycles: what closed-form mode does to the pipeline's fill and drain."""
    return Operation(id=op.id, unit=op.unit, duration_cycles=0, deps=op.deps, einsum=op.einsum,
                     actions=dict(op.actions), util=0.0)


def _exp_actions(unit: str, elements: int) -> dict[str, float]:
    """Sub-then-exp without an exp unit: 6 MACs + 1 add per element (§6.4)."""
    return {f"{unit}.mac": EXP_TAYLOR_MACS * elements, f"{unit}.add": elements}


# --------------------------------------------------------------------------------------------------
# The tiles of the three designs: each returns one tile's operations in program order.


def _bqk(pt: _Point, deps: Sequence[Dep], glb_write_words: int = 0) -> Operation:
    """Eq. 44 on the 2D array, output-stationary: ``E`` MAC steps; reads Q (P0 x E) and BK (M0 x E)."""
    mac = pt.cycles("pe2d", "mac", "BQK")
    return _op("bqk", "pe2d", "BQK", pt.e * mac,
               {"pe2d.mac": pt.scores * pt.e, "global_buffer.read": pt.p0 * pt.e + pt.m0 * pt.e,
                "global_buffer.write": glb_write_words}, deps)


def _lm_2d(pt: _Point) -> Operation:
    """LM on the 2D array: the max over the M0 PE rows of the tile's BQK scores."""
    return _op("lm", "pe2d", "LM", pt.cycles("pe2d", "max", "LM"), {"pe2d.max": pt.scores, **_rf(pt, pt.p0)},
               ("bqk",))


def _after_rm_2d(pt: _Point) -> list[Operation]:
    """SLN (exp as 6 MACs + 1 add), SLD and SLNV on the 2D array, once RM is known."""
    return [
        _op("sln", "pe2d", "SLN", pt.cycles("pe2d", "exp", "SLN"), _exp_actions("pe2d", pt.scores), ("rm",)),
        _op("sld", "pe2d", "SLD", pt.cycles("pe2d", "add", "SLD"), {"pe2d.add": pt.scores, **_rf(pt, pt.p0)},
            ("sln",)),
        _op("slnv", "pe2d", "SLNV", pt.f * pt.cycles("pe2d", "mac", "SLNV"),
            {"pe2d.mac": pt.scores * pt.f, "global_buffer.read": pt.m0 * pt.f, **_rf(pt, pt.p0 * pt.f)},
            ("sln",)),
    ]


def _binding_tile(pt: _Point, role: _TileRole, data_deps: Sequence[Dep]) -> list[Operation]:
    """+Binding: 2D BQK LM SLN SLD SLNV; 1D RM PRM SPD SPNV RD RNV (AV), in that order per unit."""
    drain = pt.closed_form and role.final
    ops = [
        _bqk(pt, data_deps),
        _lm_2d(pt),
        _rm(pt, ("lm",)),
        *_after_rm_2d(pt),
        _per_query(pt, "prm", "PRM", "exp", 1, _exp_actions("pe1d", pt.p0), ("rm",)),
        _spd(pt),
        _spnv(pt),
        _rd(pt, drain),
        _rnv(pt, drain),
    ]
    if role.last_m1:
        ops += [_av(pt, False), _av_store(pt, drain)]
    return ops


def _arch_tile(pt: _Point, role: _TileRole, data_deps: Sequence[Dep]) -> list[Operation]:
    """+Architecture: as +Binding, but BQK waits for the previous tile's RNV, RM for LM's drain down
    the ``M0`` rows, and the 1D order is RM PRM SPD SPNV RNV RD (AV)."""
    drain = pt.closed_form and role.final
    ops = [
        _bqk(pt, (*data_deps, ("prev", "rnv"))),
        _lm_2d(pt),
        # LM's reduction leaves the array one PE row per cycle; nothing overlaps it without the binding
        _op("lm_drain", "pe2d", "LM", pt.m0, {}, ("lm",), util=0.0),
        _rm(pt, ("lm_drain",)),
        *_after_rm_2d(pt),
        _per_query(pt, "prm", "PRM", "exp", 1, _exp_actions("pe1d", pt.p0), ("rm",)),
        _spd(pt),
        _spnv(pt),
        _rnv(pt, False),
        _rd(pt, drain),
    ]
    if role.last_m1:
        ops += [_av(pt, drain), _av_store(pt, drain)]
    return ops


def _cascade_tile(pt: _Point, role: _TileRole, data_deps: Sequence[Dep]) -> list[Operation]:
    """+Cascade: 2D BQK SLNV; 1D LM RM SLN SLD PRM SPD RD SPNV RNV (AV), FLAT's exp unit.

    Global buffer per score: BQK writes QK, LM and SLN read it, SLN writes SLN (SLD sums it as it is
    produced), SLNV reads it -- 3 reads and 2 writes per score on top of FuseMax's per-query traffic.
    """
    steps = pt.score_steps
    scores = pt.scores
    sub_exp = pt.cycles("pe1d", "exp", "SLN") + pt.cycles("pe1d", "add", "SLN")

    def per_score(id: str, einsum: str, cost: int, actions: Mapping[str, float], deps: Sequence[Dep]
                  ) -> Operation:
        return _op(id, "pe1d", einsum, steps * cost, actions, deps,
                   _util_1d(pt, scores, cost, steps * cost))

    ops = [
        _bqk(pt, data_deps, glb_write_words=scores),
        # closed-form mode drops the pipeline fill: the 1D array starts as if the first tile's QK were
        # already there (the 2D array still computes it, in parallel)
        per_score("lm", "LM", pt.cycles("pe1d", "max", "LM"),
                  {"pe1d.max": scores, "global_buffer.read": scores},
                  () if pt.closed_form and role.first else ("bqk",)),
        _rm(pt, ("lm",)),
        per_score("sln", "SLN", sub_exp,
                  {"pe1d.exp": scores, "pe1d.add": scores, "global_buffer.read": scores,
                   "global_buffer.write": scores}, ("rm",)),
        per_score("sld", "SLD", pt.cycles("pe1d", "add", "SLD"), {"pe1d.add": scores}, ("sln",)),
        _op("slnv", "pe2d", "SLNV", pt.f * pt.cycles("pe2d", "mac", "SLNV"),
            {"pe2d.mac": scores * pt.f, "global_buffer.read": pt.m0 * pt.f + scores}, ("sln",)),
        _per_query(pt, "prm", "PRM", "exp", 1, {"pe1d.exp": pt.p0, "pe1d.add": pt.p0}, ("rm",),
                   op_cost=pt.cycles("pe1d", "exp", "PRM") + pt.cycles("pe1d", "add", "PRM")),
        _spd(pt),
        _rd(pt, False),
        _spnv(pt),
        _rnv(pt, False),
    ]
    # no drain to drop: SLNV (2D) ends while the 1D array is still busy with SLD
    if role.last_m1:
        ops += [_av(pt, False), _av_store(pt, pt.closed_form and role.final)]
    return ops


TileBuilder = Callable[[_Point, _TileRole, Sequence[Dep]], list[Operation]]


# --------------------------------------------------------------------------------------------------
# The loop nest.


def _nest(pt: _Point, tile: TileBuilder) -> tuple[Block, ...]:
    """Prologue (first Q block and K/V tile), then the groups: first, middle (repeated), last.

    Operation ids are shared between blocks; dependencies resolve by the rules of
    :mod:`archsim.schedule` (innermost common block; a loop-carried dependency in an iteration with
    no predecessor falls back to the most recent instance before the loop started). Ids:
    ``q_next``/``kv_next``: the Q block and first K/V tile of the *next* group, loaded during a
    group's last ``m1`` iteration (the prologue loads group 0's); ``kv_load``: the K/V tile of
    ``m1 + 1``, loaded during ``m1`` into the slot ``m1 - 1`` freed.
    """
    word = pt.word
    q_bytes = pt.p1 * pt.p0 * pt.e * word
    kv_bytes = pt.m0 * (pt.e + pt.f) * word

    def load(id: str, n_bytes: int, deps: Sequence[Dep], drop: bool = False) -> Operation:
        return _op(id, "dram", "", 0 if drop else pt.dram(n_bytes),
                   {"dram.read": n_bytes, "global_buffer.write": n_bytes // word}, deps)

    slot_free = (("prev", "slnv"),)   # the last SLNV of the previous m1 iteration (or before the loop)

    def tiles(role_first: bool, role_final: bool, last_m1: bool, data_deps: Sequence[Dep]) -> list[Block]:
        """The P1 tiles of one m1 iteration; the global first/last tile split off when present."""
        blocks: list[Block] = []
        remaining = pt.p1
        if role_first:
            blocks.append(Block(tuple(tile(pt, _TileRole(last_m1, True, role_final and remaining == 1),
                                           data_deps)), 1, "tile_first"))
            remaining -= 1
        middle = remaining - (1 if role_final and remaining else 0)
        if middle:
            blocks.append(Block(tuple(tile(pt, _TileRole(last_m1, False, False), data_deps)), middle, "tiles"))
        if role_final and remaining:
            blocks.append(Block(tuple(tile(pt, _TileRole(last_m1, False, True), data_deps)), 1, "tile_last"))
        return blocks

    def group(first: bool, last: bool, repeats: int, name: str) -> Block:
        # Q and the group's first K/V tile come from the previous group's prefetch (lag 1 in the
        # group loop) -- or, in the last group, which prefetches nothing, the most recent one.
        q_dep: Dep = "q_next" if last else ("prev", "q_next")
        kv_first_dep: Dep = "kv_next" if last else ("prev", "kv_next")
        items: list = []
        regular = pt.m1 - 1
        if regular:
            m1_deps = (q_dep, kv_first_dep, ("prev", "kv_load"))
            body = lambda first_tile: (load("kv_load", kv_bytes, slot_free),  # noqa: E731
                                       *tiles(first_tile, False, False, m1_deps))
            if first:
                items.append(Block(body(True), 1, "m1_first"))
                regular -= 1
            if regular:
                items.append(Block(body(False), regular, "m1"))
        last_deps = (q_dep, kv_first_dep) + (("kv_load",) if pt.m1 > 1 else ())
        prefetch = [] if last else [load("q_next", q_bytes, slot_free), load("kv_next", kv_bytes, slot_free)]
        items.append(Block((*prefetch, *tiles(first and pt.m1 == 1, last, True, last_deps)), 1, "m1_last"))
        return Block(tuple(items), repeats, name)

    prologue = Block((load("q_next", q_bytes, (), drop=pt.closed_form),
                      load("kv_next", kv_bytes, (), drop=pt.closed_form)), 1, "prologue")
    blocks = [prologue]
    if pt.groups == 1:
        blocks.append(group(True, True, 1, "group_only"))
    else:
        blocks.append(group(True, False, 1, "group_first"))
        if pt.groups > 2:
            blocks.append(group(False, False, pt.groups - 2, "groups"))
        blocks.append(group(False, True, 1, "group_last"))
    return tuple(blocks)


# --------------------------------------------------------------------------------------------------
# Entry points.


_TILES: dict[str, TileBuilder] = {"fusemax": _binding_tile, "fusemax-arch": _arch_tile,
                                  "fusemax-cascade": _cascade_tile}
_EINSUMS = {
    "fusemax": (("BQK", "LM", "SLN", "SLD", "SLNV"), ("RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")),
    "fusemax-arch": (("BQK", "LM", "SLN", "SLD", "SLNV"), ("RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")),
    "fusemax-cascade": (("BQK", "SLNV"), ("LM", "RM", "SLN", "SLD", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")),
}


def _check_options(options: MapOptions, design: str) -> None:
    if options.causal:
        raise MappingError(f"{design}: causal masking is not supported by this design; expected causal=False")
    unknown = sorted(set(options.extra) - set(OPTIONS[design]))
    if unknown:
        raise MappingError(f"{design}: unknown option '{unknown[0]}' "
                           f"(known: {', '.join(OPTIONS[design]) or 'none'})")


def _cascade_sizing_arch(arch: Arch, options: MapOptions, design: str) -> Arch:
    """The architecture whose global buffer sizes +Cascade's ``P1`` (option ``glb_sizing_bytes``)."""
    value = options.extra.get("glb_sizing_bytes")
    if value is None:
        return arch
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MappingError(f"{design}: option glb_sizing_bytes: expected a positive integer number of "
                           f"bytes, got {value!r}")
    return arch.with_overrides({"global_buffer.capacity_bytes": value})


def _map(design: Variant, workload: Workload, seq: int, arch: Arch, options: MapOptions) -> MappedAttention:
    _check_options(options, design)
    seq = workload.check_seq(seq)
    if design == "fusemax-cascade":
        tiles: OnePassTiles = cascade_tiles(_cascade_sizing_arch(arch, options, design), workload, seq)
    else:
        tiles = fusemax_tiles(arch, workload, seq)
    groups = workload.batch * workload.heads * tiles.p2
    pt = _Point(arch=arch, e=workload.head_dim_e, f=workload.head_dim_f, m0=tiles.m0, p0=tiles.p0,
                p1=tiles.p1, m1=tiles.m1, groups=groups, word=arch.word_bytes,
                closed_form=options.closed_form)
    blocks = _nest(pt, _TILES[design])
    schedule = Schedule(blocks=blocks, name=f"{design} {workload.name} seq {seq}")
    word = arch.word_bytes
    per_query = tiles.glb_bytes_per_query
    glb_peak = (2 * tiles.query_block * workload.head_dim_e * word          # Q, double-buffered
                + tiles.query_block * (per_query - workload.head_dim_e * word)  # running state (+ QK/SLN)
                + 2 * tiles.m0 * (workload.head_dim_e + workload.head_dim_f) * word)  # K/V, double-buffered
    einsums_2d, einsums_1d = _EINSUMS[design]
    choices = {
        "m0": tiles.m0, "m1": tiles.m1, "p0": tiles.p0, "p1": tiles.p1, "p2": tiles.p2,
        "p1_bound": tiles.p1_bound, "groups": groups, "tiles": groups * tiles.m1 * tiles.p1,
        "glb_sizing_bytes": tiles.glb_capacity_bytes, "glb_rule_bytes": tiles.glb_used_bytes,
        "glb_peak_bytes": glb_peak, "glb_capacity_bytes": arch.global_buffer.capacity_bytes,
        "binding": {**{x: "pe2d" for x in einsums_2d}, **{x: "pe1d" for x in einsums_1d}},
    }
    return MappedAttention(design=design, schedule=schedule, einsums_2d=einsums_2d, einsums_1d=einsums_1d,
                           choices=choices)


def map_binding(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """FuseMax (+Binding): Mapping 1 with the 2D/1D software pipeline (module docstring).

    Raises MappingError when ``seq`` is not a multiple of the 2D array's rows and columns, when not even
    one K/V tile and one block of queries fit in the global buffer, when the arrays lack an op the
    binding needs (the 2D array needs max and exp), or for unsupported options.
    """
    return _map("fusemax", workload, seq, arch, options)


def map_architecture(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """+Architecture: FuseMax's arrays, one tile produced and consumed before the next (module docstring)."""
    return _map("fusemax-arch", workload, seq, arch, options)


def map_cascade(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """+Cascade: the 1-pass cascade on FLAT's arrays, 2D and 1D overlapped (module docstring).

    ``P1`` follows :func:`mappers.tiling.cascade_tiles` with the global buffer of ``arch``, or of
    ``options.extra["glb_sizing_bytes"]`` bytes (16 MiB reproduces the artifact, which sizes +Cascade
    with FuseMax's buffer: P2 = 1, 1, 2, 8, 32, 128 for E = F = 64 at 1K ... 1M).
    """
    return _map("fusemax-cascade", workload, seq, arch, options)


__all__ = ["EXP_TAYLOR_MACS", "OPTIONS", "map_architecture", "map_binding", "map_cascade"]
