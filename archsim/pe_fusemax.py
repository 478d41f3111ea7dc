"""PE-level functional simulator of FuseMax's +Binding (paper Mapping 1, Figs. 4-5) on one attention head.

Real fp64 values move through an ``R x C`` 2D array (``R = M0`` key rows, ``C = P0`` query columns), a
``C``-PE 1D array (PE ``c`` owns query column ``c``), a double-buffered global buffer and an in-order DRAM,
one clock cycle at a time. Nothing here computes a latency from a formula: every operation starts in the
first cycle in which its unit is free and the values it reads are in place, and the run ends when the
last value has been written to DRAM.

The program (the binding's loop nest, in the order the hardware issues it)::

    for p2 in range(P2):                                  # query groups of P1*P0 rows (Q block in the GLB)
        for m1 in range(M1):                              # key/value tiles of M0 rows, streamed from DRAM
            for p1 in range(P1):                          # one M0 x P0 tile
                2D column c: BQK LM SLN SLD SLNV          # in order, per column
                1D PE c:     RM PRM SPD SPNV RD RNV       # in order, per PE
                (last m1)    AV, then DRAM stores the P0 x F block

What each PE does with real values (query ``p`` = column ``c``, key ``m`` = row ``r``):

* BQK (``E`` steps of ``bqk_mac`` cycles): output-stationary ``acc[r,c] += Q[p,e] * K[m,e]``. Q enters
  column ``c`` at its top edge; K enters row ``r`` at its left edge.
* LM (``lm_max``): max-reduction down column ``c`` (every PE combines its score with the partial max
  from above); the result drains into 1D PE ``c``.
* RM (``rm_max``), 1D: ``RM = max(RM0, LM)`` (RM0 from the global buffer); RM is sent back up column
  ``c`` for SLN.
* SLN (``sln_exp``): ``acc[r,c] = exp(acc[r,c] - RM)``: the subtract in the first cycle, the value of
  the exponential written in the last.
* SLD (``sld_add``): sum-reduction down column ``c`` into 1D PE ``c``.
* SLNV (``F`` steps of ``slnv_mac``): ``BV[m,f]`` enters row ``r`` at the left edge, every PE multiplies
  it by its SLN and the products are summed down the column into 1D PE ``c`` (``SLNV[p,f]``).
* PRM (``prm_exp``) ``exp(RM0 - RM)``, SPD (``spd_mac``) ``RD0 * PRM``, SPNV (``F x spnv_mac``)
  ``RNV0[f] * PRM``, RD (``rd_add``) ``SLD + SPD``, RNV (``F x rnv_add``) ``SLNV[f] + SPNV[f]``,
  AV (``F x av_div``) ``RNV[f] / RD``: 1D PE ``c`` on its query; RM0, RD0, RNV0 are read from and RM,
  RD, RNV written back to the global buffer's running state.

Dependencies are the data each op reads, plus two buffer slots: DRAM loads the K/V tile of the next
``m1`` (and, in a group's last ``m1``, the next group's Q block and first K/V tile) into the slot freed
by the tile of the previous ``m1`` (after its last SLNV on every column); the Q/K/V values are written
into the slot in the transfer's last cycle, so a too-early read or a too-early overwrite shows up as a
wrong result. So the 2D array computes BQK and LM of tile ``i + 1`` while the 1D array finishes RD and
RNV of tile ``i`` (Fig. 4's software pipelining).

Timing conventions (the engine's and the FuseMax artifact's, see ``docs/engine.md``):

* **exp** is evaluated exactly (libm ``exp``, like :mod:`kernels_ref`) but charged ``sln_exp`` /
  ``prm_exp`` cycles (7 on FuseMax: a 6-MAC Taylor series plus the add that does the subtract) and
  counted as one ``exp`` action each. A 6-MAC Taylor polynomial is accurate only for arguments of
  magnitude below about 1, whereas ``x - RM`` ranges over ``(-inf, 0]``; range reduction would take
  operations the binding does not charge. Exact exp keeps the output comparable to the references at
  1e-12.
* **Column networks** (the ``M0`` direction): the reductions LM, SLD and SLNV and the RM broadcast
  cross a column in one cycle, as the artifact's Timeloop model (one cycle per spatial reduction) and
  the engine's +Binding schedule assume. With nearest-neighbour links the reduction LM -> RM -> SLN is
  a round trip down and up ``R`` rows, which no static skew can hide inside one tile (the engine's
  schedule leaves one cycle between LM and SLN); FuseMax hides it by interleaving tiles (Fig. 4), a
  reordering the engine's schedule does not express.
* **Row operands** (``row_operands``): ``"broadcast"`` drives ``K[m,e]`` and ``BV[m,f]`` to every PE of
  row ``r`` in the cycle they are used: all columns work in lockstep and the cycle count equals the
  engine's. ``"systolic"``: they enter at the left edge and move one PE to the right per cycle (each value
  is tagged and checked where it is used); column ``c`` and its 1D PE then run exactly ``c`` cycles
  behind column 0, and the run takes ``C - 1`` cycles more (the skew drain of the last AV), which the
  engine, like the artifact, does not model; more where DRAM is on the critical path, since a K/V slot
  frees and an AV block is stored only once the last column is done.
* **DRAM** is one in-order unit; each transfer takes the cycles given (``ceil(bytes / bytes-per-cycle)``
  from :meth:`DramCycles.from_arch`); with a generous bandwidth every transfer takes one cycle and only
  the first two loads are ever waited for.

Restrictions: one head; ``M`` a multiple of ``M0``, ``P`` a multiple of ``P1 * P0``; the 1D array has
as many PEs as the 2D array has columns; every duration at least one cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from numba import njit

from attnsim.archsim.spec import Arch

RowOperands = Literal["broadcast", "systolic"]
ROW_OPERANDS: tuple[str, ...] = ("broadcast", "systolic")

OP_COUNT_KEYS: tuple[str, ...] = (
    "pe2d.mac", "pe2d.add", "pe2d.max", "pe2d.exp",
    "pe1d.mac", "pe1d.add", "pe1d.max", "pe1d.exp", "pe1d.div",
    "dram.read_words", "dram.write_words",
)
"""Keys of :attr:`BindingSimResult.op_counts`: operations the PEs performed (an exp is one ``exp``; its
subtract is one ``add``) and words DRAM moved."""

# op kinds (2D: index within a tile's five ops; 1D and DRAM: codes)
_BQK, _LM, _SLN, _SLD, _SLNV = 0, 1, 2, 3, 4
_OPS_2D_PER_TILE = 5
_RM, _PRM, _SPD, _SPNV, _RD, _RNV, _AV = 0, 1, 2, 3, 4, 5, 6
_LOAD_Q, _LOAD_KV, _STORE_AV = 0, 1, 2
_NEVER = 1 << 62

# error codes returned by the kernel
_OK, _TAG_MISMATCH, _NO_PROGRESS = 0, 1, 2


@dataclass(frozen=True)
class BindingOpCycles:
    """Cycles one PE takes per operation of each Einsum (BQK, SLNV, SPNV, RNV, AV: per ``e``/``f`` step).

    Defaults are FuseMax's (``specs/arch/fusemax-cloud.yaml``: 1 per MAC/add/max/div, 7 per exp).
    """

    bqk_mac: int = 1
    lm_max: int = 1
    sln_exp: int = 7
    sld_add: int = 1
    slnv_mac: int = 1
    rm_max: int = 1
    prm_exp: int = 7
    spd_mac: int = 1
    spnv_mac: int = 1
    rd_add: int = 1
    rnv_add: int = 1
    av_div: int = 1

    @classmethod
    def from_arch(cls, arch: Arch) -> BindingOpCycles:
        """The costs in ``arch.arrays.pe2d.ops`` / ``pe1d.ops`` (ValueError naming a missing op)."""
        def cost(unit: str, op: str) -> int:
            ops = getattr(arch.arrays, unit).ops
            if op not in ops:
                raise ValueError(f"{arch.origin}: arrays.{unit}.ops: no '{op}' operation; "
                                 f"the +Binding needs it")
            return int(ops[op])
        return cls(bqk_mac=cost("pe2d", "mac"), lm_max=cost("pe2d", "max"), sln_exp=cost("pe2d", "exp"),
                   sld_add=cost("pe2d", "add"), slnv_mac=cost("pe2d", "mac"), rm_max=cost("pe1d", "max"),
                   prm_exp=cost("pe1d", "exp"), spd_mac=cost("pe1d", "mac"), spnv_mac=cost("pe1d", "mac"),
                   rd_add=cost("pe1d", "add"), rnv_add=cost("pe1d", "add"), av_div=cost("pe1d", "div"))

    def as_array(self) -> np.ndarray:
        """The twelve costs in declaration order (int64)."""
        return np.array([self.bqk_mac, self.lm_max, self.sln_exp, self.sld_add, self.slnv_mac,
                         self.rm_max, self.prm_exp, self.spd_mac, self.spnv_mac, self.rd_add,
                         self.rnv_add, self.av_div], dtype=np.int64)


@dataclass(frozen=True)
class DramCycles:
    """Cycles of one DRAM transfer: a Q block (``P1 P0 x E``), a K/V tile (``M0 x (E + F)``), an AV block
    (``P0 x F``)."""

    q_block: int = 1
    kv_tile: int = 1
    av_block: int = 1

    @classmethod
    def from_arch(cls, arch: Arch, *, e: int, f: int, m0: int, p0: int, p1: int) -> DramCycles:
        """``ceil(bytes / bytes-per-cycle)`` per transfer, exactly (``arch.word_bytes`` per element)."""
        per_cycle = Fraction(arch.dram.bandwidth_bytes_per_s) / Fraction(arch.clock_hz)
        word = arch.word_bytes

        def cycles(elements: int) -> int:
            return math.ceil(Fraction(elements * word) / per_cycle)
        return cls(q_block=cycles(p1 * p0 * e), kv_tile=cycles(m0 * (e + f)), av_block=cycles(p0 * f))


@dataclass(frozen=True)
class BindingSimResult:
    """What the PE-level run produced.

    ``out``: AV (P, F). ``cycles``: clock cycles until the last AV block is in DRAM. ``op_counts``: see
    :data:`OP_COUNT_KEYS`. ``m1``, ``p2``: the key tiles and query groups the run had.
    """

    out: np.ndarray
    cycles: int
    op_counts: dict[str, int] = field(default_factory=dict)
    m1: int = 0
    p2: int = 0


# --------------------------------------------------------------------------------------------------
# The program: which operations each unit runs, in order, and what each waits for.


@dataclass(frozen=True)
class _Program:
    tile_group: np.ndarray      # (T,) p2 of each tile, tiles in issue order
    tile_m1: np.ndarray         # (T,)
    tile_p1: np.ndarray         # (T,)
    bqk_loads: np.ndarray       # (T, 3) DRAM ops BQK waits for (Q block, first K/V tile, this K/V tile)
    rm_op: np.ndarray           # (T,) index of the tile's RM in the 1D program
    ops_1d: np.ndarray          # (N1, 2) kind, tile
    dram_ops: np.ndarray        # (ND, 5) kind, group, m1 or p1, 2D op and 1D op waited for (all columns)


def _build_program(m1: int, p1: int, groups: int) -> _Program:
    """The binding's issue order (module docstring) as per-unit op lists with their dependencies."""
    dram: list[tuple[int, int, int, int, int]] = []
    loads_q: dict[int, int] = {}
    loads_kv: dict[tuple[int, int], int] = {}

    def add_dram(kind: int, group: int, index: int, wait_2d: int = -1, wait_1d: int = -1) -> int:
        dram.append((kind, group, index, wait_2d, wait_1d))
        return len(dram) - 1

    loads_q[0] = add_dram(_LOAD_Q, 0, 0)
    loads_kv[(0, 0)] = add_dram(_LOAD_KV, 0, 0)
    tiles: list[tuple[int, int, int]] = []
    bqk_loads: list[tuple[int, int, int]] = []
    rm_op: list[int] = []
    ops_1d: list[tuple[int, int]] = []
    slot_freed_by = -1   # the previous m1 iteration's last SLNV (2D op index): its K/V slot is free after it
    for group in range(groups):
        for key_tile in range(m1):
            if key_tile < m1 - 1:
                loads_kv[(group, key_tile + 1)] = add_dram(_LOAD_KV, group, key_tile + 1, slot_freed_by)
            elif group < groups - 1:
                loads_q[group + 1] = add_dram(_LOAD_Q, group + 1, 0, slot_freed_by)
                loads_kv[(group + 1, 0)] = add_dram(_LOAD_KV, group + 1, 0, slot_freed_by)
            for block in range(p1):
                tile = len(tiles)
                tiles.append((group, key_tile, block))
                bqk_loads.append((loads_q[group], loads_kv[(group, 0)], loads_kv[(group, key_tile)]))
                rm_op.append(len(ops_1d))
                ops_1d.extend((kind, tile) for kind in (_RM, _PRM, _SPD, _SPNV, _RD, _RNV))
                if key_tile == m1 - 1:
                    ops_1d.append((_AV, tile))
                    add_dram(_STORE_AV, group, block, -1, len(ops_1d) - 1)
            slot_freed_by = _OPS_2D_PER_TILE * (len(tiles) - 1) + _SLNV
    as_array = lambda rows, width: np.array(rows, dtype=np.int64).reshape(-1, width)  # noqa: E731
    tiles_array = as_array(tiles, 3)
    return _Program(tile_group=tiles_array[:, 0].copy(), tile_m1=tiles_array[:, 1].copy(),
                    tile_p1=tiles_array[:, 2].copy(), bqk_loads=as_array(bqk_loads, 3),
                    rm_op=np.array(rm_op, dtype=np.int64), ops_1d=as_array(ops_1d, 2),
                    dram_ops=as_array(dram, 5))


# --------------------------------------------------------------------------------------------------
# The cycle-stepped machine.


@njit(cache=True)
def _duration_2d(kind: int, e: int, f: int, cyc: np.ndarray) -> int:
    if kind == _BQK:
        return e * cyc[0]
    if kind == _LM:
        return cyc[1]
    if kind == _SLN:
        return cyc[2]
    if kind == _SLD:
        return cyc[3]
    return f * cyc[4]


@njit(cache=True)
def _duration_1d(kind: int, f: int, cyc: np.ndarray) -> int:
    if kind == _RM:
        return cyc[5]
    if kind == _PRM:
        return cyc[6]
    if kind == _SPD:
        return cyc[7]
    if kind == _SPNV:
        return f * cyc[8]
    if kind == _RD:
        return cyc[9]
    if kind == _RNV:
        return f * cyc[10]
    return f * cyc[11]


@njit(cache=True)
def _run_binding(q, k, v, m0, p0, p1, m1, groups, cyc, dram_cyc, systolic,
                 tile_group, tile_m1, tile_p1, bqk_loads, rm_op, ops_1d, dram_ops):
    """Step the machine cycle by cycle; return (out, cycles, op counts, error code)."""
    n_queries, e_dim = q.shape
    f_dim = v.shape[1]
    rows, cols = m0, p0
    block = p1 * p0                                   # query rows of one group's Q block
    n_tiles = tile_group.shape[0]
    n2 = n_tiles * 5
    n1 = ops_1d.shape[0]
    nd = dram_ops.shape[0]
    step_width = max(e_dim, f_dim)

    # global buffer: double-buffered Q block and K/V tile, running state, AV
    q_glb = np.zeros((2, block, e_dim))
    k_glb = np.zeros((2, rows, e_dim))
    v_glb = np.zeros((2, rows, f_dim))
    rm_state = np.full(n_queries, -np.inf)            # RM (Eq. 41), RD (42), RNV (43) per query
    rd_state = np.zeros(n_queries)
    rnv_state = np.zeros((n_queries, f_dim))
    av_glb = np.zeros((n_queries, f_dim))
    out = np.zeros((n_queries, f_dim))                # DRAM
    # 2D PE registers, row-operand pipeline, column-network registers
    acc = np.zeros((rows, cols))                      # BQK, then SLN
    diff = np.zeros((rows, cols))                     # BQK - RM, SLN's exp argument
    row_val = np.zeros((rows, cols))                  # K / BV at each PE (systolic: shifted right)
    row_tag = np.full(cols, -1, dtype=np.int64)
    rm_col = np.zeros(cols)                           # RM sent up each column
    # 1D PE registers
    lm_in = np.zeros(cols)
    sld_in = np.zeros(cols)
    slnv_in = np.zeros((cols, f_dim))
    rm_old = np.zeros(cols)
    prm_arg = np.zeros(cols)
    prm = np.zeros(cols)
    spd = np.zeros(cols)
    spnv = np.zeros((cols, f_dim))
    counts = np.zeros(11, dtype=np.int64)

    end2 = np.full((n2, cols), _NEVER, dtype=np.int64)
    end1 = np.full((n1, cols), _NEVER, dtype=np.int64)
    endd = np.full(nd, _NEVER, dtype=np.int64)
    pc2 = np.zeros(cols, dtype=np.int64)              # next op to start
    cur2 = np.full(cols, -1, dtype=np.int64)          # op started last
    start2 = np.zeros(cols, dtype=np.int64)
    pc1 = np.zeros(cols, dtype=np.int64)
    cur1 = np.full(cols, -1, dtype=np.int64)
    start1 = np.zeros(cols, dtype=np.int64)
    pcd = 0
    curd = -1

    budget = 0                                        # every op instance in series: an upper bound
    for j in range(n2):
        budget += cols * _duration_2d(j % 5, e_dim, f_dim, cyc)
    for j in range(n1):
        budget += cols * _duration_1d(ops_1d[j, 0], f_dim, cyc)
    for j in range(nd):
        budget += dram_cyc[dram_ops[j, 0]]

    now = 0
    while True:
        if systolic:                                   # row operands move one PE to the right
            for c in range(cols - 1, 0, -1):
                for r in range(rows):
                    row_val[r, c] = row_val[r, c - 1]
                row_tag[c] = row_tag[c - 1]
            row_tag[0] = -1
        # ---- issue: each unit starts its next op if free and everything it reads is in place
        if pcd < nd and (curd < 0 or endd[curd] <= now):
            ready = True
            wait2 = dram_ops[pcd, 3]
            wait1 = dram_ops[pcd, 4]
            for c in range(cols):
                if (wait2 >= 0 and end2[wait2, c] > now) or (wait1 >= 0 and end1[wait1, c] > now):
                    ready = False
            if ready:
                curd = pcd
                endd[pcd] = now + dram_cyc[dram_ops[pcd, 0]]
                pcd += 1
        for c in range(cols):
            j = pc2[c]
            if j < n2 and (cur2[c] < 0 or end2[cur2[c], c] <= now):
                tile = j // 5
                kind = j % 5
                ready = True
                if kind == _BQK:
                    for x in range(3):
                        if endd[bqk_loads[tile, x]] > now:
                            ready = False
                elif kind == _SLN:
                    ready = end1[rm_op[tile], c] <= now
                if ready and systolic and c > 0 and (kind == _BQK or kind == _SLNV):
                    # a systolic column starts when the first row operand reaches it
                    ready = row_tag[c] == (tile * 2 + (1 if kind == _SLNV else 0)) * step_width
                if ready:
                    cur2[c] = j
                    start2[c] = now
                    end2[j, c] = now + _duration_2d(kind, e_dim, f_dim, cyc)
                    pc2[c] = j + 1
        for c in range(cols):
            j = pc1[c]
            if j < n1 and (cur1[c] < 0 or end1[cur1[c], c] <= now):
                kind = ops_1d[j, 0]
                tile = ops_1d[j, 1]
                ready = True
                if kind == _RM:
                    ready = end2[tile * 5 + _LM, c] <= now
                elif kind == _RD:
                    ready = end2[tile * 5 + _SLD, c] <= now
                elif kind == _RNV:
                    ready = end2[tile * 5 + _SLNV, c] <= now
                if ready:
                    cur1[c] = j
                    start1[c] = now
                    end1[j, c] = now + _duration_1d(kind, f_dim, cyc)
                    pc1[c] = j + 1

        # ---- execute cycle `now`
        if curd >= 0 and endd[curd] == now + 1:      # a transfer's data lands in its last cycle
            kind = dram_ops[curd, 0]
            group = dram_ops[curd, 1]
            index = dram_ops[curd, 2]
            if kind == _LOAD_Q:
                q_glb[group % 2] = q[group * block:(group + 1) * block]
                counts[9] += block * e_dim
            elif kind == _LOAD_KV:
                slot = (group * m1 + index) % 2
                k_glb[slot] = k[index * rows:(index + 1) * rows]
                v_glb[slot] = v[index * rows:(index + 1) * rows]
                counts[9] += rows * (e_dim + f_dim)
            else:
                first = group * block + index * p0
                out[first:first + p0] = av_glb[first:first + p0]
                counts[10] += p0 * f_dim

        for c in range(cols):
            j = cur2[c]
            if j < 0 or end2[j, c] <= now:
                continue
            tile = j // 5
            kind = j % 5
            step = now - start2[c]
            group = tile_group[tile]
            slot = (group * m1 + tile_m1[tile]) % 2
            if kind == _BQK or kind == _SLNV:
                cost = cyc[0] if kind == _BQK else cyc[4]
                if step % cost != 0:
                    continue
                index = step // cost                   # e (BQK) or f (SLNV)
                tag = (tile * 2 + (1 if kind == _SLNV else 0)) * step_width + index
                if systolic and c > 0:
                    if row_tag[c] != tag:
                        return out, now, counts, _TAG_MISMATCH
                else:                                  # the left edge (or every PE, broadcast)
                    for r in range(rows):
                        row_val[r, c] = k_glb[slot, r, index] if kind == _BQK else v_glb[slot, r, index]
                    row_tag[c] = tag
                if kind == _BQK:
                    q_val = q_glb[group % 2, tile_p1[tile] * p0 + c, index]  # top edge of column c
                    for r in range(rows):
                        acc[r, c] = (acc[r, c] if index > 0 else 0.0) + q_val * row_val[r, c]
                    counts[0] += rows
                else:
                    partial = 0.0                      # products summed down the column
                    for r in range(rows):
                        partial += acc[r, c] * row_val[r, c]
                    slnv_in[c, index] = partial
                    counts[0] += rows
            elif kind == _LM:
                if step == 0:
                    partial = -np.inf
                    for r in range(rows):
                        partial = max(partial, acc[r, c])
                    lm_in[c] = partial
                    counts[2] += rows
            elif kind == _SLN:
                if step == 0:
                    for r in range(rows):
                        diff[r, c] = acc[r, c] - rm_col[c]
                    counts[1] += rows
                if step == cyc[2] - 1:
                    for r in range(rows):
                        acc[r, c] = math.exp(diff[r, c])
                    counts[3] += rows
            else:                                      # SLD
                if step == 0:
                    partial = 0.0
                    for r in range(rows):
                        partial += acc[r, c]
                    sld_in[c] = partial
                    counts[1] += rows

        for c in range(cols):
            j = cur1[c]
            if j < 0 or end1[j, c] <= now:
                continue
            kind = ops_1d[j, 0]
            tile = ops_1d[j, 1]
            step = now - start1[c]
            query = tile_group[tile] * block + tile_p1[tile] * p0 + c
            if kind == _RM:
                if step == 0:
                    rm_old[c] = rm_state[query]
                    rm_state[query] = max(rm_old[c], lm_in[c])
                    rm_col[c] = rm_state[query]
                    counts[6] += 1
            elif kind == _PRM:
                if step == 0:
                    prm_arg[c] = rm_old[c] - rm_state[query]
                    counts[5] += 1
                if step == cyc[6] - 1:
                    prm[c] = math.exp(prm_arg[c])
                    counts[7] += 1
            elif kind == _SPD:
                if step == 0:
                    spd[c] = rd_state[query] * prm[c]
                    counts[4] += 1
            elif kind == _SPNV:
                if step % cyc[8] == 0:
                    index = step // cyc[8]
                    spnv[c, index] = rnv_state[query, index] * prm[c]
                    counts[4] += 1
            elif kind == _RD:
                if step == 0:
                    rd_state[query] = sld_in[c] + spd[c]
                    counts[5] += 1
            elif kind == _RNV:
                if step % cyc[10] == 0:
                    index = step // cyc[10]
                    rnv_state[query, index] = slnv_in[c, index] + spnv[c, index]
                    counts[5] += 1
            else:                                      # AV
                if step % cyc[11] == 0:
                    index = step // cyc[11]
                    av_glb[query, index] = rnv_state[query, index] / rd_state[query]
                    counts[8] += 1

        now += 1
        finished = pcd == nd and (curd < 0 or endd[curd] <= now)
        for c in range(cols):
            if pc2[c] < n2 or (cur2[c] >= 0 and end2[cur2[c], c] > now):
                finished = False
            if pc1[c] < n1 or (cur1[c] >= 0 and end1[cur1[c], c] > now):
                finished = False
        if finished:
            return out, now, counts, _OK
        if now > budget:
            return out, now, counts, _NO_PROGRESS


# --------------------------------------------------------------------------------------------------
# Entry point.


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"simulate_fusemax_binding: {name} must be a positive integer, got {value!r}")
    return int(value)


def simulate_fusemax_binding(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, m0: int, p0: int, p1: int,
                             pes_1d: int | None = None, op_cycles: BindingOpCycles | None = None,
                             dram_cycles: DramCycles | None = None,
                             row_operands: RowOperands = "broadcast") -> BindingSimResult:
    """Run one head of FuseMax's +Binding on an ``m0 x p0`` 2D array and a ``p0``-PE 1D array.

    Args:
        q: (P, E) queries, k: (M, E) keys, v: (M, F) values; computed in float64, no logit scale.
        m0: 2D array rows = keys per tile (``M`` must be a multiple). p0: 2D array columns = queries
            per tile. p1: query blocks per group resident in the global buffer (``P`` must be a
            multiple of ``p1 * p0``; there are ``P / (p1 p0)`` groups, the ``P2`` of Mapping 1).
        pes_1d: 1D array size; must equal ``p0`` (None = ``p0``).
        op_cycles: per-Einsum operation costs in cycles (default FuseMax's, see
            :meth:`BindingOpCycles.from_arch`). dram_cycles: cycles per transfer (default 1 each).
        row_operands: ``"broadcast"`` or ``"systolic"`` (module docstring).

    Returns: AV, total cycles and operation counts (:class:`BindingSimResult`).
    Raises ValueError (one line) on shapes or sizes the simulator does not support.
    """
    op_cycles = op_cycles or BindingOpCycles()
    dram_cycles = dram_cycles or DramCycles()
    arrays = []
    for name, array in (("q", q), ("k", k), ("v", v)):
        array = np.ascontiguousarray(array, dtype=np.float64)
        if array.ndim != 2 or 0 in array.shape:
            raise ValueError(f"simulate_fusemax_binding: {name} must be a non-empty 2-D array, "
                             f"got shape {np.shape(array)}")
        arrays.append(array)
    q, k, v = arrays
    if q.shape[1] != k.shape[1] or k.shape[0] != v.shape[0]:
        raise ValueError(f"simulate_fusemax_binding: shapes q {q.shape}, k {k.shape}, v {v.shape} do not "
                         f"form attention (expected q (P, E), k (M, E), v (M, F))")
    m0, p0, p1 = _positive("m0", m0), _positive("p0", p0), _positive("p1", p1)
    pes = p0 if pes_1d is None else _positive("pes_1d", pes_1d)
    if pes != p0:
        raise ValueError(f"simulate_fusemax_binding: pes_1d = {pes} but the 2D array has {p0} columns; "
                         f"expected one 1D PE per column")
    if row_operands not in ROW_OPERANDS:
        raise ValueError(f"simulate_fusemax_binding: row_operands {row_operands!r}; expected one of "
                         f"{', '.join(ROW_OPERANDS)}")
    n_keys, n_queries = k.shape[0], q.shape[0]
    if n_keys % m0:
        raise ValueError(f"simulate_fusemax_binding: M = {n_keys} keys is not a multiple of m0 = {m0}")
    if n_queries % (p1 * p0):
        raise ValueError(f"simulate_fusemax_binding: P = {n_queries} queries is not a multiple of "
                         f"p1 * p0 = {p1 * p0}")
    costs = op_cycles.as_array()
    transfers = np.array([dram_cycles.q_block, dram_cycles.kv_tile, dram_cycles.av_block], dtype=np.int64)
    for value in (*costs, *transfers):
        if isinstance(value, (bool, np.bool_)) or int(value) < 1:
            raise ValueError(f"simulate_fusemax_binding: every op and transfer must take at least one "
                             f"cycle, got {op_cycles} / {dram_cycles}")
    m1, groups = n_keys // m0, n_queries // (p1 * p0)
    program = _build_program(m1, p1, groups)
    out, cycles, counts, error = _run_binding(
        q, k, v, m0, p0, p1, m1, groups, costs, transfers, row_operands == "systolic",
        program.tile_group, program.tile_m1, program.tile_p1, program.bqk_loads, program.rm_op,
        program.ops_1d, program.dram_ops)
    if error == _TAG_MISMATCH:
        raise RuntimeError(f"simulate_fusemax_binding: a row operand reached a PE in the wrong cycle "
                           f"(cycle {cycles}): the systolic skew is broken")
    if error == _NO_PROGRESS:
        raise RuntimeError(f"simulate_fusemax_binding: no completion after {cycles} cycles")
    return BindingSimResult(out=out, cycles=int(cycles),
                            op_counts={key: int(value) for key, value in zip(OP_COUNT_KEYS, counts)},
                            m1=m1, p2=groups)


__all__ = ["BindingOpCycles", "BindingSimResult", "DramCycles", "OP_COUNT_KEYS", "ROW_OPERANDS",
           "simulate_fusemax_binding"]
