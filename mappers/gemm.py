"""GEMM C[M,N] = A[M,K] @ B[K,N] on the 2D systolic array -> an :class:`archsim.schedule.Schedule`.

Folds. The array (R rows x C cols) holds one tile of two GEMM ranks at a time; the third rank is
temporal (``T`` MAC steps per PE). Each dataflow puts one operand on (array-row rank, T), one on
(array-col rank, T) and one on (array-row rank, array-col rank):

======== ========= ========= ======== ============ ============ =================================
dataflow array row array col temporal (row, T)     (col, T)     (row, col): held in the PEs
======== ========= ========= ======== ============ ============ =================================
``os``   M         N         K        A            B            C (output-stationary)
``ws``   K         N         M        A            C (psums)    B (weight-stationary)
``is``   K         M         N        B            C (psums)    A, transposed (input-stationary)
======== ========= ========= ======== ============ ============ =================================

Tiles are R along the array-row rank and C along the array-col rank (edge tiles partial). For WS and
IS the K folds of an output tile accumulate partial sums; a fold's *role* is ``only`` (K fits one
fold), ``first``, ``middle`` or ``last``, and every output tile sees its folds in K order.

Loop order. The folds form a two-level nest: an *outer* loop over the tiles of one spatial rank and,
inside each outer iteration, an *inner* loop over all tiles of the other spatial rank (e.g. OS with
M outer: for each 256-row block of A, sweep every N tile). The operand indexed by the outer rank and
T (the *outer operand*: OS M-outer: A; OS N-outer: B; WS/IS K-outer: A/B; WS N-outer, IS M-outer: the
partial sums of C) is reused by all folds of one outer iteration; the other (rank, T) operand (the
*inner operand*) is reused across outer iterations. Schedules are nests of repeated blocks (one per
kind of outer iteration, holding one block per kind of fold), never unrolled.

DRAM reuse rule (word = ``arch.word_bytes``). Each (rank, T) operand has a *mode*:

- outer operand, ``block``: one outer tile's block (tile x T words) stays in the global buffer for
  its outer iteration, so the operand is read from DRAM exactly once. Double-buffered: the block of
  the next outer iteration is prefetched during the current one, cut into one piece per fold
  (``block // folds`` words, the last fold taking the remainder), each piece riding on that fold's
  look-ahead load. For C (WS/IS partial sums) the block holds the outer tile's partial sums: every
  output element is written once, by its last K fold, and never read back;
- inner operand, ``whole``: kept entirely in the global buffer (inputs read once, in the
  prologue; C: partial sums on chip, each output written once);
- either, ``fold``: inputs: the tile is re-read from DRAM for every fold that uses it; C: every
  fold writes its partial-sum tile and every non-first fold reads it back;
- ``once``: every element is in exactly one fold (the stationary WS/IS operand, read when its fold
  opens; OS's C, written when its fold closes; WS/IS's C when K fits one fold);
- C of WS/IS as the outer operand (extended candidates, below), ``drain``: two C blocks; one takes the
  outer tile's partial sums (never read back, as in ``block``) while the other, finished by the
  previous outer iteration, is written back to DRAM piece by piece, one piece (``block // folds``
  words, the last fold taking the remainder) riding on each fold's first store, the mirror image of
  the input prefetch. No output waits in the staging space; the last block is written after the last
  fold. Every output element is written once.

Block height. An outer block may be ``h`` = 1, 2, 4, 8 ... array tiles tall (the edge block holds
what is left): for OS along either spatial rank; for WS/IS (extended candidates) along the array-col
rank, where the outer operand is C (WS N-outer, IS M-outer; the block's tiles are side by side along
the columns). Each inner step is then a *stacked fold*: the ``h`` physical folds of the block on one
inner tile (OS: the B or A tile; WS/IS: one K tile of the streamed operand, each physical fold with
its own stationary tile and partial sums), run back to back while that tile stays in the staging
space, so an inner operand in ``fold`` mode is read once per block instead of once per tile (B of OS
M-outer and of IS M-outer: ceil(M / hR) or ceil(M / hC) times). A stacked fold is never chunked (its
whole inner tile is one double-buffered step load) and costs ``h`` x (``T`` + the fold's fixed cycles),
exactly its ``h`` physical folds: no loop order, height or chunk changes the compute cycles. ``h`` > 1
is only considered when the inner operand is in ``fold`` mode (otherwise it cuts no traffic).

Footprint: the whole inner operand, plus the outer blocks (two of the largest block for inputs with
more than one outer iteration and for C ``drain``, else one), plus staging of the per-step transfers
(2 x largest step load + 3 x largest staged store; prefetch pieces land in the next block's space,
which the first piece's load claims whole).

Choice: the plan with the least DRAM traffic (reads + writes) whose global-buffer footprint fits, over
both loop orders, the OS block heights and the modes above (the *basic* candidates). Ties: the longer
chunk, then the lower block, then fewer resident bytes, then M/K-outer before N/M-outer. Where no
basic candidate fits or the chosen one is DRAM-bound (its traffic / ``arch.dram_bytes_per_cycle`` >
its compute cycles under ``fill_drain``), the *extended* candidates join: WS/IS partial-sum-side
blocks of ``h`` >= 2 tiles (C ``block`` or ``drain``) and of one tile with C ``drain``; one replaces
the basic plan only if it ranks strictly lower (less traffic; same tie order). They cost no compute
cycles, so they can only help a DRAM-bound plan; elsewhere they would change nothing but the traffic
figure, and the basic plans (and every number derived from them) stay as they are. Examples: the
encoder linear layers (M = batch x seq rows, B of at most a few MB) get OS M-outer, A block, B whole:
A, B and C each cross the DRAM interface once. If B does not fit either, B is re-read once per row
block (M / hR times; or, N-outer, A once per block of h column tiles: XLM's FFN1, B 2048 x 8192, gets
4-tile blocks on 16 MB). XLM's FFN2 (K = 8192, N = 2048, B 32 MB) on 16 MB: OS cannot stack (a
256 x 8192 tile is 4 MB, a 2-tile block double-buffered 16 MB) and stays DRAM-bound (0.86 of ideal);
IS M-outer with 4-tile blocks and C ``drain`` (2 x 4 MB of partial sums + 2 x 1.5 MB of B tile and
stationary A tiles) re-reads B once per 1024 rows and is compute-bound.

Steps (chunks). A fold moves through DRAM in *steps*: the temporal rank is cut into chunks of
``chunk_temporal`` MAC steps: the fewest equal chunks for which the staging above fits (usually the
whole fold: one step). Chunking changes no traffic total and no compute total: a fold's fixed
fill/drain cycles are carried by its first step. If not even one-MAC-step chunks fit, MappingError.

Fold cost (``fill_drain``):

- ``"per_fold"`` (default; what :mod:`archsim.pe_sim` simulates PE by PE): every fold fills and
  drains the array on its own: ``2R + C + T - 2`` cycles for every dataflow (OS: the accumulators
  are shifted out of the array after the corner PE's last MAC, R cycles; WS/IS: the stationary tile
  is shifted in first, R cycles).
- ``"scalesim"``: SCALE-Sim v3's counting: OS folds cost ``T + R + C - 2`` (the fold ends with the
  corner PE's last MAC; no output drain is counted), WS/IS folds ``2R + C + T - 2`` as above. Folds
  never overlap. (SCALE-Sim prints the last cycle's 0-based index, one less than this count.)
- ``"overlapped"``: consecutive folds stream back to back, a fold occupying the array for ``T``
  cycles; the pipeline fill and drain, ``2R + C - 2`` cycles, are paid once after the last fold
  (an idealisation: the drain of one fold and the preload of the next are assumed hidden).

Timing. DRAM is one in-order unit moving ``arch.dram_bytes_per_cycle`` bytes per cycle (a transfer
takes ceil(bytes / bytes-per-cycle) cycles). The prologue loads the whole inner operand and the first
outer block. The loop is software-pipelined and double-buffered: iteration j loads step j+1 (plus
its prefetch piece), computes step j and stores step j-1's outputs, so the DRAM transfers overlap the
compute of step j and a large output write never delays the load the array needs next; a load also
waits for step j-1 to finish (its staging slot), and the last fold of an outer iteration frees that
iteration's block. Global-buffer bandwidth is not a constraint (not modelled). With
``ideal_dram=True`` every DRAM op takes 0 cycles, so the schedule's cycles are the 2D array's compute
cycles.

C ``drain``: the partial sums of an outer iteration's first fold may start landing in the block
copy whose last piece (``1 / folds`` of it) is still queued for DRAM (the copies are claimed once, in
the prologue, not per piece).

Not modelled: taller blocks for WS/IS along K (the outer operand A/B) and for WS/IS with C in
``fold`` mode; blocking of the temporal rank (OS: K with partial sums kept in the buffer, which
would let OS stack on XLM's FFN2 too); single-buffered outer blocks and inner tiles streamed chunk
by chunk into the chunks a stack frees. So OS GEMMs whose tiles along the temporal rank are large
against the buffer stay DRAM-bound where two 2-tile blocks plus two inner tiles do not fit: XLM's
FFN2 with OS on 16 MB reaches 0.86 of ideal (it needs 24 MB; 0.998 on 32 MB); IS reaches ideal there
(above). (4096^3 on 16 MB: 2-tile blocks, 0.99 overlapped.)

Actions: ``pe2d.mac`` (ops), ``global_buffer.read`` / ``global_buffer.write`` (words), ``dram.read`` /
``dram.write`` (bytes). Register-file accesses are not counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

from attnsim.archsim.schedule import Block, LoopDep, Operation, Schedule
from attnsim.mappers.errors import MappingError

DATAFLOWS = ("os", "ws", "is")
FILL_DRAIN = ("per_fold", "overlapped", "scalesim")
GLB = "glb"

RANKS = {"os": ("M", "N", "K"), "ws": ("K", "N", "M"), "is": ("K", "M", "N")}
"""dataflow -> (GEMM rank on the array rows, rank on the array cols, temporal rank)."""

OPERANDS = {"os": ("A", "B", "C"), "ws": ("A", "C", "B"), "is": ("B", "C", "A")}
"""dataflow -> (operand on (row rank, T), operand on (col rank, T), operand on (row rank, col rank))."""

OUTER_SIDES = ("rows", "cols")


@dataclass(frozen=True)
class FoldKind:
    """A class of identical folds.

    Attributes:
        rows_used: array rows the fold uses (Sr). cols_used: array columns it uses (Sc).
        temporal: MAC steps per PE (T). role: ``only``/``first``/``middle``/``last`` along K.
        stack_rows, stack_cols: a *stacked* fold (OS blocks taller than one tile) is that many
            physical folds along the array rows / cols, run back to back on one inner tile:
            ``rows_used``/``cols_used`` are then the totals over the stack (at most
            ``stack x`` the array side).
    """

    rows_used: int
    cols_used: int
    temporal: int
    role: str
    stack_rows: int = 1
    stack_cols: int = 1

    @property
    def physical(self) -> int:
        """Physical array folds in this (possibly stacked) fold."""
        return self.stack_rows * self.stack_cols


@dataclass(frozen=True)
class OuterGroup:
    """``count`` identical outer iterations: an outer tile of ``tile`` elements and its folds.

    ``role`` is the outer tile's K role when the outer rank is K (WS/IS), else ``only``; ``folds`` is
    one iteration's inner loop as (kind, count) in execution order.
    """

    tile: int
    role: str
    count: int
    folds: tuple[tuple[FoldKind, int], ...]

    @property
    def folds_per_iteration(self) -> int:
        """Folds in one outer iteration."""
        return sum(count for _, count in self.folds)


@dataclass(frozen=True)
class Step:
    """A chunk of a fold: ``temporal`` MAC steps; ``opens``/``closes`` = first/last chunk of its fold."""

    fold: FoldKind
    temporal: int
    opens: bool
    closes: bool


@dataclass(frozen=True)
class StepTraffic:
    """Data movement of one step, in words (prefetch pieces of outer blocks not included)."""

    load_words: int          # DRAM -> global buffer before the step
    store_words: int         # global buffer -> DRAM after the step
    staged_store_words: int  # of store_words, how many wait in the staging space
    fed_words: int           # global buffer -> array
    written_words: int       # array -> global buffer
    macs: int


@dataclass(frozen=True)
class GemmPlan:
    """How a GEMM is folded, ordered and chunked, and what stays in the global buffer."""

    m: int
    n: int
    k: int
    dataflow: str
    fill_drain: str
    rows: int
    cols: int
    word_bytes: int
    outer_rank: str                                 # GEMM rank of the outer loop ("M", "N" or "K")
    outer_groups: tuple[OuterGroup, ...]            # the nest, in execution order
    modes: tuple[tuple[str, str], ...]             # (("A", mode), ("B", mode), ("C", mode))
    chunk_temporal: int                            # MAC steps per DRAM step (chunk)
    resident_bytes: int                            # whole operands + outer blocks in the buffer
    staging_bytes: int
    dram_read_bytes: int
    dram_write_bytes: int
    block_tiles: int = 1                           # outer block height, in array tiles

    @property
    def mode(self) -> dict[str, str]:
        """Operand name -> ``block``, ``drain``, ``whole``, ``fold`` or ``once`` (module docstring)."""
        return dict(self.modes)

    @property
    def resident(self) -> tuple[str, ...]:
        """Operands kept in the global buffer across folds (``whole``, ``block``, ``drain``), sorted."""
        return tuple(sorted(name for name, mode in self.modes if mode in ("whole", "block", "drain")))

    @property
    def fold_kinds(self) -> tuple[tuple[FoldKind, int], ...]:
        """Every kind of physical array fold with its total count (stacked folds counted one by one;
        independent of the loop order and block height)."""
        return tuple(fold_kinds(self.m, self.n, self.k, self.rows, self.cols, self.dataflow))

    @property
    def folds(self) -> int:
        """Total number of folds."""
        return sum(count for _, count in self.fold_kinds)

    @property
    def macs(self) -> int:
        """Multiply-accumulates: M x N x K."""
        return self.m * self.n * self.k

    @property
    def mapping(self) -> dict[str, object]:
        """The chosen mapping as plain data: loop order (outer, inner and temporal GEMM rank), operand
        modes, block height (array tiles per outer block), chunk (MAC steps per DRAM step) and the
        largest fold's number of chunks, global-buffer footprint (bytes)."""
        row_rank, col_rank, temporal_rank = RANKS[self.dataflow]
        inner_rank = col_rank if self.outer_rank == row_rank else row_rank
        longest = max(fold.temporal for fold, _ in self.fold_kinds)
        return {"dataflow": self.dataflow, "loop_order": [self.outer_rank, inner_rank, temporal_rank],
                "modes": self.mode, "block_tiles": self.block_tiles, "chunk_temporal": self.chunk_temporal,
                "chunks_per_fold": math.ceil(longest / min(self.chunk_temporal, longest)),
                "resident_bytes": self.resident_bytes, "staging_bytes": self.staging_bytes}

    @property
    def description(self) -> str:
        """One line, e.g. ``M-outer, A block, B whole, C once``."""
        height = f" ({self.block_tiles}-tile blocks)" if self.block_tiles > 1 else ""
        modes = ", ".join(f"{name} {mode}" for name, mode in self.modes)
        return f"{self.outer_rank}-outer{height}, {modes}"


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MappingError(f"gemm: {name}: expected a positive integer, got {value!r}")
    return value


def _tile_sizes(extent: int, size: int) -> list[tuple[int, int]]:
    """[(tile size, how many tiles)] covering ``extent`` with tiles of ``size`` (last one partial)."""
    full, rest = divmod(extent, size)
    return [(s, n) for s, n in ((size, full), (rest, 1 if rest else 0)) if n]


def _k_roles(k_extent: int, rows: int) -> list[tuple[int, str, int]]:
    """[(tile size, role, count)] of the K tiles along the array rows, in K order."""
    n_tiles = math.ceil(k_extent / rows)
    last = k_extent - (n_tiles - 1) * rows
    if n_tiles == 1:
        return [(last, "only", 1)]
    roles = [(rows, "first", 1)]
    if n_tiles > 2:
        roles.append((rows, "middle", n_tiles - 2))
    roles.append((last, "last", 1))
    return roles


def outer_groups(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, outer_side: str,
                 height: int = 1) -> list[OuterGroup]:
    """The fold nest: outer loop over blocks of ``height`` tiles of the array-``outer_side`` rank
    (module docstring; ``height`` > 1 only for OS: each fold is then a stack of ``height`` physical
    folds, fewer in the edge block)."""
    extents = {"M": m, "N": n, "K": k}
    row_rank, col_rank, temporal_rank = RANKS[dataflow]
    temporal = extents[temporal_rank]
    if height > 1 and dataflow != "os":
        if outer_side != "cols":
            raise MappingError(f"gemm: {dataflow} outer blocks of {height} tiles are only planned along "
                               f"the array-col rank")
        groups = []
        for block, count in _tile_sizes(extents[col_rank], height * cols):
            stack = math.ceil(block / cols)
            folds = tuple((FoldKind(sr, block, temporal, role, stack_cols=stack), n_rows)
                          for sr, role, n_rows in _k_roles(k, rows))
            groups.append(OuterGroup(block, "only", count, folds))
        return groups
    if height > 1:
        inner_tiles = _tile_sizes(extents[col_rank if outer_side == "rows" else row_rank],
                                  cols if outer_side == "rows" else rows)
        outer_extent, outer_size = (m, rows) if outer_side == "rows" else (n, cols)
        groups = []
        for block, count in _tile_sizes(outer_extent, height * outer_size):
            stack = math.ceil(block / outer_size)
            if outer_side == "rows":
                folds = tuple((FoldKind(block, sc, temporal, "only", stack_rows=stack), n_cols)
                              for sc, n_cols in inner_tiles)
            else:
                folds = tuple((FoldKind(sr, block, temporal, "only", stack_cols=stack), n_rows)
                              for sr, n_rows in inner_tiles)
            groups.append(OuterGroup(block, "only", count, folds))
        return groups
    if row_rank == "K" and dataflow != "os":
        row_tiles = _k_roles(k, rows)
    else:
        row_tiles = [(size, "only", count) for size, count in _tile_sizes(extents[row_rank], rows)]
    col_tiles = [(size, "only", count) for size, count in _tile_sizes(extents[col_rank], cols)]
    if outer_side == "rows":
        return [OuterGroup(sr, role, count, tuple((FoldKind(sr, sc, temporal, role), n_cols)
                                                  for sc, _, n_cols in col_tiles))
                for sr, role, count in row_tiles]
    return [OuterGroup(sc, "only", count, tuple((FoldKind(sr, sc, temporal, role), n_rows)
                                                for sr, role, n_rows in row_tiles))
            for sc, _, count in col_tiles]


def _flatten(groups) -> tuple[tuple[FoldKind, int], ...]:
    totals: dict[FoldKind, int] = {}
    for group in groups:
        for kind, count in group.folds:
            totals[kind] = totals.get(kind, 0) + group.count * count
    return tuple(totals.items())


def fold_kinds(m: int, n: int, k: int, rows: int, cols: int, dataflow: str
               ) -> list[tuple[FoldKind, int]]:
    """Every kind of fold of the GEMM with its count (independent of the loop order)."""
    return list(_flatten(outer_groups(m, n, k, rows, cols, dataflow, "rows")))


def _steps_of(fold: FoldKind, chunk: int) -> list[tuple[Step, int]]:
    """[(step, count)] of one fold cut into chunks of ``chunk`` MAC steps."""
    n_chunks = math.ceil(fold.temporal / chunk)
    if n_chunks == 1:
        return [(Step(fold, fold.temporal, True, True), 1)]
    runs = [(Step(fold, chunk, True, False), 1)]
    if n_chunks > 2:
        runs.append((Step(fold, chunk, False, False), n_chunks - 2))
    runs.append((Step(fold, fold.temporal - (n_chunks - 1) * chunk, False, True), 1))
    return runs


def step_traffic(step: Step, dataflow: str, modes: dict[str, str]) -> StepTraffic:
    """Words moved by one step under the reuse rule (module docstring), prefetch pieces excluded."""
    fold, t = step.fold, step.temporal
    sr, sc = fold.rows_used, fold.cols_used
    macs = sr * sc * t
    if dataflow == "os":
        load = (sr * t if modes["A"] == "fold" else 0) + (t * sc if modes["B"] == "fold" else 0)
        out = sr * sc if step.closes else 0
        return StepTraffic(load_words=load, store_words=out, staged_store_words=out,
                           fed_words=sr * t * fold.stack_cols + t * sc * fold.stack_rows,
                           written_words=out, macs=macs)
    streamed = OPERANDS[dataflow][0]
    psums = modes["C"]
    stationary = sr * sc if step.opens else 0
    psum_in = t * sc if fold.role in ("middle", "last") else 0
    load = stationary + (t * sr if modes[streamed] == "fold" else 0) + (psum_in if psums == "fold" else 0)
    final = fold.role in ("only", "last") and psums != "drain"   # drain: pieces write the block
    store = t * sc if (final or psums == "fold") else 0
    return StepTraffic(load_words=load, store_words=store,
                       staged_store_words=0 if psums == "whole" else store,
                       fed_words=stationary + t * sr * fold.stack_cols + psum_in, written_words=t * sc,
                       macs=macs)


def _operand_words(m: int, n: int, k: int) -> dict[str, int]:
    return {"A": m * k, "B": k * n, "C": m * n}


def _block_words(group: OuterGroup) -> int:
    """Words of one outer block: the outer tile x the temporal extent."""
    return group.tile * group.folds[0][0].temporal


def _prefetches(groups: list[OuterGroup], modes: dict[str, str], outer_operand: str) -> bool:
    """Whether the outer operand's blocks are prefetched piece by piece: an input in block mode with
    more than one outer iteration."""
    return (modes[outer_operand] == "block" and outer_operand != "C"
            and sum(group.count for group in groups) > 1)


def _pieces(block_words: int, folds: int) -> tuple[int, int]:
    """(piece of every fold but the last, piece of the last fold) splitting ``block_words``."""
    base = block_words // folds
    return base, block_words - base * (folds - 1)


def _staging_bytes(kinds, chunk: int, dataflow: str, modes: dict[str, str], word_bytes: int) -> int:
    """Staging for chunks of ``chunk`` MAC steps: 2 x max step load + 3 x max staged store (a step's
    outputs wait while the next step computes; module docstring). Prefetch pieces land in the
    next outer block's space, counted in the resident bytes."""
    loads, stores = [0], [0]
    for fold, _ in kinds:
        for step, _ in _steps_of(fold, min(chunk, fold.temporal)):
            traffic = step_traffic(step, dataflow, modes)
            loads.append(traffic.load_words)
            stores.append(traffic.staged_store_words)
    return word_bytes * (2 * max(loads) + 3 * max(stores))


def _largest_chunk(kinds, dataflow: str, modes: dict[str, str], word_bytes: int, room_bytes: int) -> int:
    """Chunk (MAC steps) for ``room_bytes`` of staging: the fewest chunks that fit, all of one length
    but the last (possibly a few steps shorter); 0 if not even one-step chunks fit."""
    longest = max(fold.temporal for fold, _ in kinds)

    def fits(chunk: int) -> bool:
        return _staging_bytes(kinds, chunk, dataflow, modes, word_bytes) <= room_bytes

    if fits(longest):
        return longest
    if not fits(1):
        return 0
    low, high = 1, longest            # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return math.ceil(longest / math.ceil(longest / low))   # <= low: balanced chunks still fit


def _mode_choices(operand: str, is_outer: bool, has_psums: bool, extended: bool = False) -> tuple[str, ...]:
    if operand == "C" and not has_psums:
        return ("once",)
    if operand == "C" and is_outer and extended:
        return ("fold", "block", "drain")
    return ("fold", "block") if is_outer else ("fold", "whole")


def _resident_bytes(groups: list[OuterGroup], modes: dict[str, str], outer_operand: str,
                    words: dict[str, int], word_bytes: int) -> int:
    """Whole operands plus outer blocks (two for prefetched inputs), bytes."""
    total = sum(words[name] for name, mode in modes.items() if mode == "whole")
    if modes[outer_operand] in ("block", "drain"):
        copies = 2 if (_prefetches(groups, modes, outer_operand) or modes[outer_operand] == "drain") else 1
        total += copies * max(_block_words(group) for group in groups)
    return total * word_bytes


def plan_gemm(m: int, n: int, k: int, arch, dataflow: str, fill_drain: str = "per_fold") -> GemmPlan:
    """Fold, order and chunk the GEMM and choose the operand modes (see the module docstring)."""
    m, n, k = _positive_int("M", m), _positive_int("N", n), _positive_int("K", k)
    if dataflow not in DATAFLOWS:
        raise MappingError(f"gemm: unknown dataflow {dataflow!r} (known: {', '.join(DATAFLOWS)})")
    if fill_drain not in FILL_DRAIN:
        raise MappingError(f"gemm: unknown fill_drain {fill_drain!r} (known: {', '.join(FILL_DRAIN)})")
    rows, cols = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols
    word_bytes = arch.word_bytes
    capacity = arch.global_buffer.capacity_bytes
    row_operand, col_operand, spatial_operand = OPERANDS[dataflow]
    has_psums = dataflow != "os" and k > rows
    best = _best_candidate(m, n, k, rows, cols, dataflow, word_bytes, capacity,
                           _nest_choices(m, n, rows, cols, dataflow), extended=False)
    extended = _extended_nest_choices(m, n, cols, dataflow)
    if extended and (best is None or _dram_bound(best, m, n, k, rows, cols, dataflow, fill_drain,
                                                 arch.dram_bytes_per_cycle)):
        with_tall = _best_candidate(m, n, k, rows, cols, dataflow, word_bytes, capacity, extended,
                                    extended=True)
        if with_tall is not None and (best is None or with_tall[0] < best[0]):
            best = with_tall
    if best is None:
        kinds = _flatten(outer_groups(m, n, k, rows, cols, dataflow, "rows"))
        modes = {row_operand: "fold", col_operand: _mode_choices(col_operand, False, has_psums)[0],
                 spatial_operand: "once"}   # nothing resident
        needed = _staging_bytes(kinds, 1, dataflow, modes, word_bytes)
        raise MappingError(f"gemm: global_buffer.capacity_bytes = {capacity} cannot hold the "
                           f"double-buffered tiles of even one-step chunks ({needed} bytes needed for "
                           f"{dataflow} on {rows}x{cols})")
    return _plan_of(m, n, k, rows, cols, dataflow, fill_drain, word_bytes, best)


def _best_candidate(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, word_bytes: int,
                    capacity: int, choices: list[tuple[tuple[int, str], int]], extended: bool
                    ) -> tuple | None:
    """Over ``choices`` (loop orders and block heights) and the operand modes: the fitting plan of
    least DRAM traffic as ``(rank, outer side, groups, modes, chunk, resident bytes, read bytes,
    write bytes, height)``, ties broken by ``rank`` (module docstring); None if none fits."""
    best = None
    for candidate in _candidates(m, n, k, rows, cols, dataflow, word_bytes, capacity, choices, extended):
        if best is None or candidate[0] < best[0]:
            best = candidate
    return best


def _candidates(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, word_bytes: int,
                capacity: int, choices: list[tuple[tuple[int, str], int]], extended: bool):  # type: ignore[no-untyped-def]
    """Every fitting plan over ``choices`` and the operand modes, in the tuple form of
    :func:`_best_candidate`, in enumeration order."""
    words = _operand_words(m, n, k)
    row_operand, col_operand, spatial_operand = OPERANDS[dataflow]
    has_psums = dataflow != "os" and k > rows
    for (side_index, outer_side), height in choices:
        groups = outer_groups(m, n, k, rows, cols, dataflow, outer_side, height)
        kinds = _flatten(groups)
        outer_operand, inner_operand = ((row_operand, col_operand) if outer_side == "rows"
                                        else (col_operand, row_operand))
        for outer_mode, inner_mode in product(_mode_choices(outer_operand, True, has_psums, extended),
                                              _mode_choices(inner_operand, False, has_psums)):
            if extended and height == 1 and outer_mode != "drain":
                continue    # already a basic candidate
            if height > 1 and inner_mode != "fold":
                continue    # taller blocks only cut the re-reads of a per-fold inner operand
            modes = {spatial_operand: "once", outer_operand: outer_mode, inner_operand: inner_mode}
            resident_bytes = _resident_bytes(groups, modes, outer_operand, words, word_bytes)
            if resident_bytes > capacity:
                continue
            if height > 1:   # a stack keeps its inner tile whole: one step per fold, no chunking
                temporal = kinds[0][0].temporal
                fits = (_staging_bytes(kinds, temporal, dataflow, modes, word_bytes)
                        <= capacity - resident_bytes)
                chunk = temporal if fits else 0
            else:
                chunk = _largest_chunk(kinds, dataflow, modes, word_bytes, capacity - resident_bytes)
            if chunk == 0:
                continue
            whole = [(step_traffic(Step(fold, fold.temporal, True, True), dataflow, modes), count)
                     for fold, count in kinds]
            reads = (sum(words[name] for name, mode in modes.items()
                         if mode in ("whole", "block") and name != "C")
                     + sum(traffic.load_words * count for traffic, count in whole)) * word_bytes
            writes = (sum(traffic.store_words * count for traffic, count in whole)
                      + (words["C"] if modes["C"] == "drain" else 0)) * word_bytes
            rank = (reads + writes, -chunk, height, resident_bytes, side_index)
            yield (rank, outer_side, groups, modes, chunk, resident_bytes, reads, writes, height)


def _plan_of(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, fill_drain: str, word_bytes: int,
             candidate: tuple) -> GemmPlan:
    """The :class:`GemmPlan` of one candidate tuple (:func:`_candidates`)."""
    _, outer_side, groups, modes, chunk, resident_bytes, reads, writes, height = candidate
    row_rank, col_rank, _ = RANKS[dataflow]
    return GemmPlan(m=m, n=n, k=k, dataflow=dataflow, fill_drain=fill_drain, rows=rows, cols=cols,
                    word_bytes=word_bytes, outer_rank=row_rank if outer_side == "rows" else col_rank,
                    outer_groups=tuple(groups), modes=tuple((name, modes[name]) for name in "ABC"),
                    chunk_temporal=chunk, resident_bytes=resident_bytes,
                    staging_bytes=_staging_bytes(_flatten(groups), chunk, dataflow, modes, word_bytes),
                    dram_read_bytes=reads, dram_write_bytes=writes, block_tiles=height)


def gemm_candidates(m: int, n: int, k: int, arch, dataflow: str, fill_drain: str = "per_fold"
                    ) -> list[GemmPlan]:
    """Every plan of the GEMM that fits ``arch``'s global buffer under ``dataflow``: both loop orders,
    every block height and operand mode, basic and extended (module docstring), each with its
    largest fitting chunk; :func:`plan_gemm` picks one of these (the least traffic). For a mapping
    search (:mod:`mappers.search.gemm_search`)."""
    m, n, k = _positive_int("M", m), _positive_int("N", n), _positive_int("K", k)
    if dataflow not in DATAFLOWS:
        raise MappingError(f"gemm: unknown dataflow {dataflow!r} (known: {', '.join(DATAFLOWS)})")
    if fill_drain not in FILL_DRAIN:
        raise MappingError(f"gemm: unknown fill_drain {fill_drain!r} (known: {', '.join(FILL_DRAIN)})")
    rows, cols, word_bytes = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols, arch.word_bytes
    capacity = arch.global_buffer.capacity_bytes
    plans = []
    for choices, extended in ((_nest_choices(m, n, rows, cols, dataflow), False),
                              (_extended_nest_choices(m, n, cols, dataflow), True)):
        for candidate in _candidates(m, n, k, rows, cols, dataflow, word_bytes, capacity, choices, extended):
            plans.append(_plan_of(m, n, k, rows, cols, dataflow, fill_drain, word_bytes, candidate))
    return plans


def schedule_of_plan(plan: GemmPlan, arch, *, ideal_dram: bool = False, einsum: str = "gemm") -> Schedule:
    """The schedule of an explicit :class:`GemmPlan` (e.g. one of :func:`gemm_candidates`)."""
    return _ScheduleBuilder(plan, arch, ideal_dram, einsum).build()


def _compute_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, fill_drain: str) -> int:
    """The 2D array's cycles with DRAM never stalling (closed form of the module docstring's fold
    cost; the same for every loop order, block height and chunk)."""
    fixed = fold_fixed_cycles(rows, cols, dataflow, fill_drain)
    cycles = sum((fold.temporal + fixed) * count for fold, count in fold_kinds(m, n, k, rows, cols, dataflow))
    return cycles + (2 * rows + cols - 2 if fill_drain == "overlapped" else 0)


def _dram_bound(candidate: tuple, m: int, n: int, k: int, rows: int, cols: int, dataflow: str,
                fill_drain: str, bytes_per_cycle: float) -> bool:
    """Whether ``candidate``'s DRAM traffic takes longer than the array's compute cycles."""
    reads, writes = candidate[6], candidate[7]
    return (reads + writes) / bytes_per_cycle > _compute_cycles(m, n, k, rows, cols, dataflow, fill_drain)


def _nest_choices(m: int, n: int, rows: int, cols: int, dataflow: str
                  ) -> list[tuple[tuple[int, str], int]]:
    """[((side index, outer side), block height in tiles)]: every loop order with height 1 and, for
    OS, heights 2, 4, 8 ... up to the first that covers the whole outer rank."""
    choices = []
    for side in enumerate(OUTER_SIDES):
        choices.append((side, 1))
        if dataflow == "os":
            tiles = math.ceil(m / rows) if side[1] == "rows" else math.ceil(n / cols)
            choices.extend((side, height) for height in _heights(tiles))
    return choices


def _extended_nest_choices(m: int, n: int, cols: int, dataflow: str) -> list[tuple[tuple[int, str], int]]:
    """WS/IS only: outer blocks of 2, 4, 8 ... tiles along the array-col rank (the partial-sum
    side: WS N-outer, IS M-outer), up to the first that covers the whole rank."""
    if dataflow == "os":
        return []
    tiles = math.ceil((n if dataflow == "ws" else m) / cols)
    return [((1, "cols"), height) for height in (1, *_heights(tiles))]


def _heights(tiles: int) -> list[int]:
    """Block heights 2, 4, 8 ... up to the first that covers ``tiles`` (none if ``tiles`` is 1)."""
    heights, height = [], 2
    while height // 2 < tiles:
        heights.append(height)
        height *= 2
    return heights


def fold_steps(plan: GemmPlan, fold: FoldKind) -> list[Step]:
    """The steps (chunks) of one fold, in order."""
    steps: list[Step] = []
    for step, count in _steps_of(fold, min(plan.chunk_temporal, fold.temporal)):
        steps.extend([step] * count)
    return steps


def fold_fixed_cycles(rows: int, cols: int, dataflow: str, fill_drain: str) -> int:
    """Cycles a fold costs beyond its T MAC steps under ``fill_drain`` (module docstring)."""
    if fill_drain == "overlapped":
        return 0
    if fill_drain == "scalesim" and dataflow == "os":
        return rows + cols - 2
    return 2 * rows + cols - 2


def _dram_cycles(n_bytes: int, bytes_per_cycle: float, ideal: bool) -> int:
    return 0 if (ideal or n_bytes == 0) else math.ceil(n_bytes / bytes_per_cycle)


def map_gemm(m: int, n: int, k: int, arch, dataflow: str, fill_drain: str = "per_fold", *,
             ideal_dram: bool = False, einsum: str = "gemm") -> Schedule:
    """Schedule of the GEMM C[M,N] = A[M,K] @ B[K,N] on ``arch``'s 2D array.

    Args:
        m, n, k: GEMM dimensions (positive integers).
        arch: an :class:`archsim.spec.Arch` (2D array shape, word size, global buffer, DRAM).
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.
        fill_drain: ``"per_fold"``, ``"scalesim"`` or ``"overlapped"`` (module docstring).
        ideal_dram: DRAM ops take 0 cycles (cycles = 2D-array compute cycles).
        einsum: tag of every operation.

    Raises:
        MappingError: non-positive dimension, unknown dataflow or fill_drain, global buffer too small.
    """
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    return _ScheduleBuilder(plan, arch, ideal_dram, einsum).build()


def _repetitions(count: int) -> list[tuple[bool, bool, int]]:
    """``count`` repetitions of an item as runs (first repetition?, last repetition?, how many)."""
    if count == 1:
        return [(True, True, 1)]
    middle = [(False, False, count - 2)] if count > 2 else []
    return [(True, False, 1), *middle, (False, True, 1)]


class _ScheduleBuilder:
    """Turns a :class:`GemmPlan` into the software-pipelined loop nest.

    Every step is a triple (load step j+1, compute step j, store step j-1): a store waits behind the
    next step's load in the in-order DRAM queue, so a large output write does not delay the load
    that the array needs next. Repetitions whose neighbours (previous step, next step, prefetch
    piece) differ are split into runs, so every block's iterations are identical.
    """

    def __init__(self, plan: GemmPlan, arch, ideal_dram: bool, einsum: str) -> None:
        self.plan = plan
        self.rows, self.cols = plan.rows, plan.cols
        self.word_bytes = plan.word_bytes
        self.bytes_per_cycle = arch.dram_bytes_per_cycle
        self.ideal_dram = ideal_dram
        self.einsum = einsum
        self.modes = plan.mode
        self.capacity = arch.global_buffer.capacity_bytes
        row_operand, col_operand, _ = OPERANDS[plan.dataflow]
        self.outer_operand = row_operand if plan.outer_rank == RANKS[plan.dataflow][0] else col_operand
        self.prefetch = _prefetches(list(plan.outer_groups), self.modes, self.outer_operand)
        self.outer_is_input_block = self.modes[self.outer_operand] == "block" and self.outer_operand != "C"
        self.drains = self.modes["C"] == "drain"   # C blocks written back piece by piece
        self.fixed_cycles = fold_fixed_cycles(self.rows, self.cols, plan.dataflow, plan.fill_drain)

    # -- steps -------------------------------------------------------------------------------
    def _traffic(self, step: Step) -> StepTraffic:
        return step_traffic(step, self.plan.dataflow, self.modes)

    def _first(self, fold: FoldKind) -> Step:
        return fold_steps(self.plan, fold)[0]

    def _last(self, fold: FoldKind) -> Step:
        return fold_steps(self.plan, fold)[-1]

    def _load_key(self, step: Step | None) -> tuple:
        return (None,) if step is None else (self._traffic(step).load_words,)

    def _store_key(self, step: Step | None) -> tuple:
        if step is None:
            return (None,)
        traffic = self._traffic(step)
        return (traffic.store_words, traffic.staged_store_words)

    # -- operations --------------------------------------------------------------------------
    def _load(self, step: Step, op_id: str, staging_dep, piece_words: int = 0,
              reserve_words: int = 0) -> Operation:
        """Load ``step``'s tiles plus ``piece_words`` of the next outer block; claim the tiles and
        ``reserve_words`` (the whole next block, claimed by its first piece's load)."""
        tile_bytes = self._traffic(step).load_words * self.word_bytes
        load_bytes = tile_bytes + piece_words * self.word_bytes
        return Operation(
            id=op_id, unit="dram", einsum=self.einsum,
            duration_cycles=_dram_cycles(load_bytes, self.bytes_per_cycle, self.ideal_dram),
            deps=() if staging_dep is None else (staging_dep,),
            actions=_nonzero({"dram.read": load_bytes,
                              "global_buffer.write": load_bytes // self.word_bytes}),
            claims_bytes=_nonzero({GLB: tile_bytes + reserve_words * self.word_bytes}))

    def _compute(self, step: Step, op_id: str, load_dep, frees_block_words: int) -> Operation:
        traffic = self._traffic(step)
        physical = step.fold.physical   # a stacked fold runs its physical folds back to back
        duration = physical * (step.temporal + (self.fixed_cycles if step.opens else 0))
        util = traffic.macs / (self.rows * self.cols * duration) if duration else 0.0
        return Operation(
            id=op_id, unit="pe2d", einsum=self.einsum, duration_cycles=duration,
            deps=(load_dep, *self._prologue_deps()), util=util,
            actions=_nonzero({"pe2d.mac": traffic.macs, "global_buffer.read": traffic.fed_words,
                              "global_buffer.write": traffic.written_words}),
            claims_bytes=_nonzero({GLB: traffic.staged_store_words * self.word_bytes}),
            releases_bytes=_nonzero({GLB: (traffic.load_words + frees_block_words) * self.word_bytes}))

    def _store(self, step: Step, op_id: str, after, drain_words: int = 0) -> Operation:
        """Store ``step``'s outputs plus ``drain_words`` of the previous outer iteration's C block."""
        traffic = self._traffic(step)
        store_words = traffic.store_words + drain_words
        store_bytes = store_words * self.word_bytes
        return Operation(
            id=op_id, unit="dram", einsum=self.einsum,
            duration_cycles=_dram_cycles(store_bytes, self.bytes_per_cycle, self.ideal_dram),
            deps=(after,),
            actions=_nonzero({"dram.write": store_bytes, "global_buffer.read": store_words}),
            releases_bytes=_nonzero({GLB: traffic.staged_store_words * self.word_bytes}))

    def _prologue_deps(self) -> tuple[str, ...]:
        names = [f"resident_{name}" for name, mode in sorted(self.modes.items())
                 if mode == "whole" and name != "C"]
        if self.outer_is_input_block:
            names.append(f"block_{self.outer_operand}")
        return tuple(names)

    def _prologue(self, first: Step) -> list[Operation]:
        plan = self.plan
        words = _operand_words(plan.m, plan.n, plan.k)
        ops = []
        for name, mode in sorted(self.modes.items()):
            if mode not in ("whole", "block", "drain"):
                continue
            if name == "C":   # on-chip partial sums: space only, no DRAM traffic
                n_words = words["C"] if mode == "whole" else max(map(_block_words, plan.outer_groups))
                n_words *= 2 if mode == "drain" else 1   # one block filling, one draining
                ops.append(Operation(id="resident_C", unit="dram", duration_cycles=0,
                                     einsum=self.einsum, claims_bytes={GLB: n_words * self.word_bytes}))
                continue
            n_words = words[name] if mode == "whole" else _block_words(plan.outer_groups[0])
            n_bytes = n_words * self.word_bytes
            ops.append(Operation(
                id=f"{'resident' if mode == 'whole' else 'block'}_{name}", unit="dram",
                einsum=self.einsum,
                duration_cycles=_dram_cycles(n_bytes, self.bytes_per_cycle, self.ideal_dram),
                actions={"dram.read": n_bytes, "global_buffer.write": n_words},
                claims_bytes={GLB: n_bytes}))
        ops.append(self._load(first, "load", None))
        return ops

    def _fold_ops(self, fold: FoldKind, prev_step: Step | None, next_first: Step | None,
                  piece_words: int, reserve_words: int, frees_block_words: int,
                  drain_words: int = 0, final_drain_words: int = 0) -> list[Operation]:
        """One fold as software-pipelined (load step j+1, compute step j, store step j-1) triples.

        ``prev_step`` is the step before the fold's first (None for the very first fold) and
        ``next_first`` the step after its last (None for the very last fold). The last triple loads
        ``next_first`` plus ``piece_words`` of the next outer block under the id ``load`` and claims
        ``reserve_words`` (the next block's whole space, claimed by its first piece, so that buffer
        levels repeat from fold to fold). The last compute is ``fold`` and the first triple's store
        (of ``prev_step``) is ``store``: the ids that a block's first triple refers to across the
        block boundary (loop-carried, falling back to the latest instance before the block). Inner
        steps use ``load_c<i>``/``fold_c<i>``/``store_c<i>``. The last compute frees
        ``frees_block_words`` (the outer block); the very last fold also stores its own last step
        (``store_final``) after the drain, if any. C in ``drain`` mode: the first triple's store also
        writes ``drain_words`` of the previous outer iteration's C block, and ``store_final`` the
        ``final_drain_words`` of the last one.
        """
        steps = fold_steps(self.plan, fold)
        last = len(steps) - 1
        ops: list[Operation] = []
        for i, step in enumerate(steps):
            load_step = next_first if i == last else steps[i + 1]
            if load_step is not None:     # its staging slot is the one of the step two back
                ops.append(self._load(load_step, "load" if i == last else f"load_c{i + 1}",
                                      LoopDep("fold", 1) if i == 0 else f"fold_c{i - 1}",
                                      piece_words if i == last else 0,
                                      reserve_words if i == last else 0))
            if i > 0:
                load_dep = f"load_c{i}"
            else:   # the look-ahead load of the previous iteration, or the latest one before
                load_dep = LoopDep("load", 1) if next_first is not None else "load"
            compute_id = "fold" if i == last else f"fold_c{i}"
            ops.append(self._compute(step, compute_id, load_dep, frees_block_words if i == last else 0))
            if i > 0:
                ops.append(self._store(steps[i - 1], f"store_c{i - 1}", f"fold_c{i - 1}"))
            elif prev_step is not None:
                ops.append(self._store(prev_step, "store", LoopDep("fold", 1), drain_words))
            if i == last and next_first is None:
                final_id = compute_id
                if self.plan.fill_drain == "overlapped":
                    ops.append(Operation(id="drain", unit="pe2d", einsum=self.einsum, deps=(compute_id,),
                                         duration_cycles=2 * self.rows + self.cols - 2, util=0.0))
                    final_id = "drain"
                ops.append(self._store(step, "store_final", final_id, final_drain_words))
        return ops

    # -- the nest ----------------------------------------------------------------------------
    def _outer_body(self, group: OuterGroup, prev_step: Step | None, following: OuterGroup | None,
                    name: str, drained_words: int = 0) -> tuple[Block, ...]:
        """One outer iteration of ``group``: its folds, prefetching ``following``'s block and (C in
        ``drain`` mode) writing back ``drained_words``, the previous iteration's C block."""
        next_first = self._first(following.folds[0][0]) if following is not None else None
        block_words = _block_words(following) if (self.prefetch and following is not None) else 0
        piece, last_piece = _pieces(block_words, group.folds_per_iteration)
        drain_piece, last_drain_piece = _pieces(drained_words, group.folds_per_iteration)
        final_drain = _block_words(group) if (self.drains and following is None) else 0
        frees = _block_words(group) if self.outer_is_input_block else 0
        folds = group.folds
        runs = []
        for index, (fold, count) in enumerate(folds):
            is_last_kind = index + 1 == len(folds)
            for first_rep, last_rep, reps in _repetitions(count):
                before = (self._last(fold) if not first_rep else
                          self._last(folds[index - 1][0]) if index > 0 else prev_step)
                after = (self._first(fold) if not last_rep else
                         self._first(folds[index + 1][0]) if not is_last_kind else next_first)
                ends_body = is_last_kind and last_rep
                opens_body = index == 0 and first_rep
                key = (index, self._store_key(before), self._load_key(after),
                       last_piece if ends_body else piece, block_words if opens_body else 0,
                       frees if ends_body else 0, last_drain_piece if ends_body else drain_piece,
                       final_drain if ends_body else 0)
                runs.append(((key, before, after), reps))
        blocks = []
        for number, ((key, before, after), reps) in enumerate(_merged_runs(runs)):
            index, _, _, piece_words, reserve_words, frees_words, drain_words, final_words = key
            blocks.append(Block(tuple(self._fold_ops(folds[index][0], before, after, piece_words,
                                                     reserve_words, frees_words, drain_words,
                                                     final_words)),
                                reps, f"{name}.f{number}"))
        return tuple(blocks)

    def build(self) -> Schedule:
        groups = self.plan.outer_groups
        first_step = self._first(groups[0].folds[0][0])
        blocks = [Block(tuple(self._prologue(first_step)), 1, "prologue")]
        runs = []
        for index, group in enumerate(groups):
            for first_rep, last_rep, reps in _repetitions(group.count):
                previous = group if not first_rep else (groups[index - 1] if index > 0 else None)
                following = group if not last_rep else (groups[index + 1] if index + 1 < len(groups)
                                                        else None)
                prev_step = self._last(previous.folds[-1][0]) if previous is not None else None
                next_first = self._first(following.folds[0][0]) if following is not None else None
                next_block = _block_words(following) if (self.prefetch and following is not None) else 0
                drained = _block_words(previous) if (self.drains and previous is not None) else 0
                key = (index, self._store_key(prev_step), self._load_key(next_first), next_block,
                       following is None, drained)
                runs.append(((key, prev_step, following), reps))
        for number, ((key, prev_step, following), reps) in enumerate(_merged_runs(runs)):
            name = f"outer{number}"
            blocks.append(Block(self._outer_body(groups[key[0]], prev_step, following, name, key[5]),
                                reps, name))
        return Schedule(blocks=tuple(blocks), buffers_bytes={GLB: self.capacity},
                        name=f"gemm {self.plan.m}x{self.plan.n}x{self.plan.k} {self.plan.dataflow} "
                             f"{self.plan.fill_drain} ({self.plan.description})")


def _merged_runs(runs: list[tuple[tuple, int]]) -> list[tuple[tuple, int]]:
    """Adjacent runs ``((key, *payload), repetitions)`` with equal keys merged (first payload kept)."""
    merged: list[tuple[tuple, int]] = []
    for item, count in runs:
        if merged and merged[-1][0][0] == item[0]:
            merged[-1] = (merged[-1][0], merged[-1][1] + count)
        else:
            merged.append((item, count))
    return merged


def _nonzero(values: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in values.items() if value}


__all__ = ["DATAFLOWS", "FILL_DRAIN", "FoldKind", "GemmPlan", "MappingError", "OPERANDS", "OuterGroup",
           "RANKS", "Step", "StepTraffic", "fold_fixed_cycles", "fold_kinds", "fold_steps", "gemm_candidates",
           "map_gemm", "outer_groups", "plan_gemm", "schedule_of_plan", "step_traffic"]
