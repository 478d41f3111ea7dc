"""GEMM C[M,N] = A[M,K] @ B[K,N] on the 2D systolic array -> an :class:`archsim.schedule.Schedule`.

Folds. The array (R rows x C cols) holds one tile of two GEMM ranks at a time; the third rank is
temporal (``T`` MAC steps per PE):

======== ================ ================ ========= ====================================
dataflow array rows       array cols       temporal  held in the PEs
======== ================ ================ ========= ====================================
``os``   M (tiles of R)   N (tiles of C)   K         C tile (output-stationary)
``ws``   K (tiles of R)   N (tiles of C)   M         B tile (weight-stationary)
``is``   K (tiles of R)   M (tiles of C)   N         A tile, transposed (input-stationary)
======== ================ ================ ========= ====================================

Edge tiles are partial. For WS and IS the K folds of an output tile accumulate partial sums; a fold's
*role* is ``only`` (K fits one fold), ``first``, ``middle`` or ``last``. Folds are executed grouped by
kind (tile shape and role; roles in K order, so every output tile sees first -> middle -> last), which
makes each group a repeated block that the engine extrapolates.

Fold cost (``fill_drain``):

- ``"per_fold"`` (default, SCALE-Sim's convention, reproduced by :mod:`archsim.pe_sim`): every fold
  fills and drains the array on its own: ``2R + C + T - 2`` cycles on the 2D array.
- ``"overlapped"``: consecutive folds stream back to back, a fold occupying the array for ``T``
  cycles; the pipeline fill and drain, ``2R + C - 2`` cycles, are paid once after the last fold
  (an idealisation: the drain of one fold and the preload of the next are assumed hidden).

Data movement (word = ``arch.word_bytes``). Per fold: the streamed operand tiles, the stationary tile
and (WS/IS, roles middle/last) the partial-sum tile are fed from the global buffer into the array; the
fold's outputs are written back to the global buffer. DRAM reuse rule:

- the stationary operand (WS: B, IS: A) is read from DRAM exactly once (each element is in one fold);
- a streamed operand (OS: A and B; WS: A; IS: B) that is *resident* is read from DRAM once, in the
  prologue; otherwise its tile is re-read from DRAM for every fold that uses it;
- outputs: OS writes each output tile once. WS/IS with several K folds: if the output is resident its
  partial sums stay in the global buffer and each output element is written to DRAM once (by the last
  fold); otherwise every fold writes its partial-sum tile and every non-first fold reads it back;
- resident set: among the streamed operands (and the WS/IS output when K needs several folds), the
  subset with the least DRAM traffic whose bytes, plus the double-buffered staging of per-step DRAM
  transfers, fit in the global buffer (ties: the longer chunk, then fewer resident bytes).

Steps (chunks). A fold moves through DRAM in *steps*: the temporal rank is cut into chunks of
``chunk_temporal`` MAC steps, the largest for which 2 x (largest step load) + 2 x (largest step output
going to DRAM) plus the resident bytes fit in the global buffer (usually the whole fold: one step).
Chunking changes no traffic total and no compute total: a fold's fixed ``2R + C - 2`` cycles (per_fold)
are carried by its first step. If not even one-MAC-step chunks fit, MappingError.

Timing. DRAM is one unit moving ``arch.dram_bytes_per_cycle`` bytes per cycle (a transfer takes
ceil(bytes / bytes-per-cycle) cycles). The loop is software-pipelined and double-buffered: iteration j
loads step j+1, computes step j and stores step j's outputs, so the DRAM transfer of step j+1 overlaps
the compute of step j; a load also waits for step j-1 to finish (its staging slot). Global-buffer
bandwidth is not a constraint (not modelled). With ``ideal_dram=True`` every DRAM op takes 0 cycles,
so the schedule's cycles are the 2D array's compute cycles.

Actions: ``pe2d.mac`` (ops), ``global_buffer.read`` / ``global_buffer.write`` (words), ``dram.read`` /
``dram.write`` (bytes). Register-file accesses are not counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

from archsim.schedule import Block, LoopDep, Operation, Schedule
from mappers.errors import MappingError

DATAFLOWS = ("os", "ws", "is")
FILL_DRAIN = ("per_fold", "overlapped")
GLB = "glb"


@dataclass(frozen=True)
class FoldKind:
    """A class of identical folds.

    Attributes:
        rows_used: array rows the fold uses (Sr). cols_used: array columns it uses (Sc).
        temporal: MAC steps per PE (T). role: ``only``/``first``/``middle``/``last`` along K.
    """

    rows_used: int
    cols_used: int
    temporal: int
    role: str


@dataclass(frozen=True)
class Step:
    """A chunk of a fold: ``temporal`` MAC steps; ``opens``/``closes`` = first/last chunk of its fold."""

    fold: FoldKind
    temporal: int
    opens: bool
    closes: bool


@dataclass(frozen=True)
class StepTraffic:
    """Data movement of one step, in words."""

    load_words: int          # DRAM -> global buffer before the step
    store_words: int         # global buffer -> DRAM after the step
    staged_store_words: int  # of store_words, how many wait in double-buffered staging
    fed_words: int           # global buffer -> array
    written_words: int       # array -> global buffer
    macs: int


@dataclass(frozen=True)
class GemmPlan:
    """How a GEMM is folded, chunked, and which operands stay in the global buffer."""

    m: int
    n: int
    k: int
    dataflow: str
    fill_drain: str
    rows: int
    cols: int
    word_bytes: int
    fold_kinds: tuple[tuple[FoldKind, int], ...]    # (kind, count) in execution order
    chunk_temporal: int                            # MAC steps per DRAM step (chunk)
    resident: tuple[str, ...]                      # operand names kept in the global buffer
    resident_bytes: int
    staging_bytes: int
    dram_read_bytes: int
    dram_write_bytes: int

    @property
    def folds(self) -> int:
        """Total number of folds."""
        return sum(count for _, count in self.fold_kinds)

    @property
    def macs(self) -> int:
        """Multiply-accumulates: M x N x K."""
        return self.m * self.n * self.k


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


def fold_kinds(m: int, n: int, k: int, rows: int, cols: int, dataflow: str
               ) -> list[tuple[FoldKind, int]]:
    """The GEMM's folds as (kind, count), in execution order (see the module docstring)."""
    if dataflow == "os":
        return [(FoldKind(sr, sc, k, "only"), nr * nc)
                for sr, nr in _tile_sizes(m, rows) for sc, nc in _tile_sizes(n, cols)]
    cols_extent, temporal = (n, m) if dataflow == "ws" else (m, n)
    return [(FoldKind(sr, sc, temporal, role), nr * nc)
            for sr, role, nr in _k_roles(k, rows) for sc, nc in _tile_sizes(cols_extent, cols)]


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


def step_traffic(step: Step, dataflow: str, resident: frozenset[str]) -> StepTraffic:
    """Words moved by one step under the reuse rule (module docstring)."""
    fold, t = step.fold, step.temporal
    sr, sc = fold.rows_used, fold.cols_used
    macs = sr * sc * t
    if dataflow == "os":
        load = (0 if "A" in resident else sr * t) + (0 if "B" in resident else t * sc)
        out = sr * sc if step.closes else 0
        return StepTraffic(load_words=load, store_words=out, staged_store_words=out,
                           fed_words=sr * t + t * sc, written_words=out, macs=macs)
    streamed = "A" if dataflow == "ws" else "B"
    out_resident = "C" in resident
    stationary = sr * sc if step.opens else 0
    psum_in = t * sc if fold.role in ("middle", "last") else 0
    load = stationary + (0 if streamed in resident else t * sr) + (0 if out_resident else psum_in)
    final = fold.role in ("only", "last")
    store = t * sc if (final or not out_resident) else 0
    return StepTraffic(load_words=load, store_words=store, staged_store_words=0 if out_resident else store,
                       fed_words=stationary + t * sr + psum_in, written_words=t * sc, macs=macs)


def _operand_words(m: int, n: int, k: int) -> dict[str, int]:
    return {"A": m * k, "B": k * n, "C": m * n}


def _staging_bytes(kinds: list[tuple[FoldKind, int]], chunk: int, dataflow: str,
                   resident: frozenset[str], word_bytes: int) -> int:
    """Double-buffered staging for chunks of ``chunk`` MAC steps: 2 x max load + 2 x max staged store."""
    loads, stores = [0], [0]
    for fold, _ in kinds:
        for step, _ in _steps_of(fold, min(chunk, fold.temporal)):
            traffic = step_traffic(step, dataflow, resident)
            loads.append(traffic.load_words)
            stores.append(traffic.staged_store_words)
    return 2 * word_bytes * (max(loads) + max(stores))


def _largest_chunk(kinds: list[tuple[FoldKind, int]], dataflow: str, resident: frozenset[str],
                   word_bytes: int, room_bytes: int) -> int:
    """Largest chunk (MAC steps) whose staging fits ``room_bytes``; 0 if none does."""
    longest = max(fold.temporal for fold, _ in kinds)

    def fits(chunk: int) -> bool:
        return _staging_bytes(kinds, chunk, dataflow, resident, word_bytes) <= room_bytes

    if fits(longest):
        return longest
    if not fits(1):
        return 0
    low, high = 1, longest            # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def plan_gemm(m: int, n: int, k: int, arch, dataflow: str, fill_drain: str = "per_fold") -> GemmPlan:
    """Fold and chunk the GEMM and choose the resident operands (see the module docstring)."""
    m, n, k = _positive_int("M", m), _positive_int("N", n), _positive_int("K", k)
    if dataflow not in DATAFLOWS:
        raise MappingError(f"gemm: unknown dataflow {dataflow!r} (known: {', '.join(DATAFLOWS)})")
    if fill_drain not in FILL_DRAIN:
        raise MappingError(f"gemm: unknown fill_drain {fill_drain!r} (known: {', '.join(FILL_DRAIN)})")
    rows, cols = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols
    word_bytes = arch.word_bytes
    capacity = arch.global_buffer.capacity_bytes
    kinds = fold_kinds(m, n, k, rows, cols, dataflow)
    words = _operand_words(m, n, k)
    if dataflow == "os":
        candidates = ["A", "B"]
    else:
        candidates = ["A" if dataflow == "ws" else "B"]
        if any(kind.role != "only" for kind, _ in kinds):
            candidates.append("C")
    best = None
    for size in range(len(candidates) + 1):
        for chosen in combinations(candidates, size):
            resident = frozenset(chosen)
            resident_bytes = sum(words[name] for name in resident) * word_bytes
            if resident_bytes > capacity:
                continue
            chunk = _largest_chunk(kinds, dataflow, resident, word_bytes, capacity - resident_bytes)
            if chunk == 0:
                continue
            whole = [(step_traffic(Step(fold, fold.temporal, True, True), dataflow, resident), count)
                     for fold, count in kinds]
            reads = (sum(words[name] for name in resident if name != "C")
                     + sum(traffic.load_words * count for traffic, count in whole)) * word_bytes
            writes = sum(traffic.store_words * count for traffic, count in whole) * word_bytes
            rank = (reads + writes, -chunk, resident_bytes)
            if best is None or rank < best[0]:
                best = (rank, resident, chunk, reads, writes)
    if best is None:
        needed = _staging_bytes(kinds, 1, dataflow, frozenset(), word_bytes)
        raise MappingError(f"gemm: global_buffer.capacity_bytes = {capacity} cannot hold the "
                           f"double-buffered tiles of even one-step chunks ({needed} bytes needed for "
                           f"{dataflow} on {rows}x{cols})")
    _, resident, chunk, reads, writes = best
    return GemmPlan(m=m, n=n, k=k, dataflow=dataflow, fill_drain=fill_drain, rows=rows, cols=cols,
                    word_bytes=word_bytes, fold_kinds=tuple(kinds), chunk_temporal=chunk,
                    resident=tuple(sorted(resident)),
                    resident_bytes=sum(words[name] for name in resident) * word_bytes,
                    staging_bytes=_staging_bytes(kinds, chunk, dataflow, resident, word_bytes),
                    dram_read_bytes=reads, dram_write_bytes=writes)


def fold_steps(plan: GemmPlan, fold: FoldKind) -> list[Step]:
    """The steps (chunks) of one fold, in order."""
    steps: list[Step] = []
    for step, count in _steps_of(fold, min(plan.chunk_temporal, fold.temporal)):
        steps.extend([step] * count)
    return steps


def _dram_cycles(n_bytes: int, bytes_per_cycle: float, ideal: bool) -> int:
    return 0 if (ideal or n_bytes == 0) else math.ceil(n_bytes / bytes_per_cycle)


def map_gemm(m: int, n: int, k: int, arch, dataflow: str, fill_drain: str = "per_fold", *,
             ideal_dram: bool = False, einsum: str = "gemm") -> Schedule:
    """Schedule of the GEMM C[M,N] = A[M,K] @ B[K,N] on ``arch``'s 2D array.

    Args:
        m, n, k: GEMM dimensions (positive integers).
        arch: an :class:`archsim.spec.Arch` (2D array shape, word size, global buffer, DRAM).
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.
        fill_drain: ``"per_fold"`` or ``"overlapped"`` (module docstring).
        ideal_dram: DRAM ops take 0 cycles (cycles = 2D-array compute cycles).
        einsum: tag of every operation.

    Raises:
        MappingError: non-positive dimension, unknown dataflow or fill_drain, global buffer too small.
    """
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    return _ScheduleBuilder(plan, arch, ideal_dram, einsum).build()


class _ScheduleBuilder:
    """Turns a :class:`GemmPlan` into the software-pipelined block program."""

    def __init__(self, plan: GemmPlan, arch, ideal_dram: bool, einsum: str) -> None:
        self.plan = plan
        self.rows, self.cols = plan.rows, plan.cols
        self.word_bytes = plan.word_bytes
        self.bytes_per_cycle = arch.dram_bytes_per_cycle
        self.ideal_dram = ideal_dram
        self.einsum = einsum
        self.resident = frozenset(plan.resident)
        self.capacity = arch.global_buffer.capacity_bytes

    def _traffic(self, step: Step) -> StepTraffic:
        return step_traffic(step, self.plan.dataflow, self.resident)

    def _compute_cycles(self, step: Step) -> int:
        if self.plan.fill_drain == "per_fold" and step.opens:
            return 2 * self.rows + self.cols - 2 + step.temporal
        return step.temporal

    def _load(self, step: Step, op_id: str, staging_dep) -> Operation:
        load_bytes = self._traffic(step).load_words * self.word_bytes
        return Operation(
            id=op_id, unit="dram", einsum=self.einsum,
            duration_cycles=_dram_cycles(load_bytes, self.bytes_per_cycle, self.ideal_dram),
            deps=() if staging_dep is None else (staging_dep,),
            actions=_nonzero({"dram.read": load_bytes,
                              "global_buffer.write": load_bytes // self.word_bytes}),
            claims_bytes=_nonzero({GLB: load_bytes}))

    def _fold(self, step: Step, op_id: str, load_dep) -> Operation:
        traffic = self._traffic(step)
        duration = self._compute_cycles(step)
        util = traffic.macs / (self.rows * self.cols * duration) if duration else 0.0
        return Operation(
            id=op_id, unit="pe2d", einsum=self.einsum, duration_cycles=duration,
            deps=(load_dep, *self._resident_deps()), util=util,
            actions=_nonzero({"pe2d.mac": traffic.macs, "global_buffer.read": traffic.fed_words,
                              "global_buffer.write": traffic.written_words}),
            claims_bytes=_nonzero({GLB: traffic.staged_store_words * self.word_bytes}),
            releases_bytes=_nonzero({GLB: traffic.load_words * self.word_bytes}))

    def _store(self, step: Step, op_id: str, after: str) -> Operation:
        traffic = self._traffic(step)
        store_bytes = traffic.store_words * self.word_bytes
        return Operation(
            id=op_id, unit="dram", einsum=self.einsum,
            duration_cycles=_dram_cycles(store_bytes, self.bytes_per_cycle, self.ideal_dram),
            deps=(after,),
            actions=_nonzero({"dram.write": store_bytes, "global_buffer.read": traffic.store_words}),
            releases_bytes=_nonzero({GLB: traffic.staged_store_words * self.word_bytes}))

    def _resident_deps(self) -> tuple[str, ...]:
        return tuple(f"resident_{name}" for name in sorted(self.resident) if name != "C")

    def _prologue(self, first: Step) -> list[Operation]:
        plan = self.plan
        words = _operand_words(plan.m, plan.n, plan.k)
        ops = []
        for name in sorted(self.resident):
            n_bytes = words[name] * self.word_bytes
            if name == "C":   # on-chip partial sums: space only, no DRAM traffic
                ops.append(Operation(id="resident_C", unit="dram", duration_cycles=0,
                                     einsum=self.einsum, claims_bytes={GLB: n_bytes}))
                continue
            ops.append(Operation(
                id=f"resident_{name}", unit="dram", einsum=self.einsum,
                duration_cycles=_dram_cycles(n_bytes, self.bytes_per_cycle, self.ideal_dram),
                actions={"dram.read": n_bytes, "global_buffer.write": words[name]},
                claims_bytes={GLB: n_bytes}))
        ops.append(self._load(first, "load", None))
        return ops

    def _fold_ops(self, fold: FoldKind, next_first: Step | None) -> list[Operation]:
        """One fold as software-pipelined (load next step, compute step, store step) triples.

        The triple of the fold's last step loads ``next_first`` (the next fold's first step; None
        for the very last fold) under the id ``load``, and its compute and store are ``fold`` and
        ``store``: the ids that the next block's first triple refers to across the block boundary.
        Inner steps use ``load_c<i>``/``fold_c<i>``/``store_c<i>``.
        """
        steps = fold_steps(self.plan, fold)
        last = len(steps) - 1
        ops: list[Operation] = []
        for i, step in enumerate(steps):
            load_id = "load" if i == last else f"load_c{i + 1}"
            load_step = next_first if i == last else steps[i + 1]
            if load_step is not None:     # its staging slot is the one of the step two back
                ops.append(self._load(load_step, load_id,
                                      LoopDep("fold", 1) if i == 0 else f"fold_c{i - 1}"))
            if i > 0:
                load_dep = f"load_c{i}"
            else:
                load_dep = LoopDep("load", 1) if next_first is not None else "load"
            fold_id = "fold" if i == last else f"fold_c{i}"
            ops.append(self._fold(step, fold_id, load_dep))
            if i == last and next_first is None and self.plan.fill_drain == "overlapped":
                ops.append(Operation(id="drain", unit="pe2d", einsum=self.einsum, deps=(fold_id,),
                                     duration_cycles=2 * self.rows + self.cols - 2, util=0.0))
                fold_id = "drain"
            ops.append(self._store(step, "store" if i == last else f"store_c{i}", fold_id))
        return ops

    def build(self) -> Schedule:
        kinds = self.plan.fold_kinds
        first_step = fold_steps(self.plan, kinds[0][0])[0]
        blocks = [Block(tuple(self._prologue(first_step)), 1, "prologue")]
        for index, (fold, count) in enumerate(kinds):
            own_first = fold_steps(self.plan, fold)[0]
            if count > 1:
                blocks.append(Block(tuple(self._fold_ops(fold, own_first)), count - 1,
                                    f"folds{index}"))
            following = fold_steps(self.plan, kinds[index + 1][0])[0] if index + 1 < len(kinds) else None
            name = f"folds{index}_next" if following is not None else "epilogue"
            blocks.append(Block(tuple(self._fold_ops(fold, following)), 1, name))
        return Schedule(blocks=tuple(blocks), buffers_bytes={GLB: self.capacity},
                        name=f"gemm {self.plan.m}x{self.plan.n}x{self.plan.k} {self.plan.dataflow} "
                             f"{self.plan.fill_drain}")


def _nonzero(values: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in values.items() if value}


__all__ = ["DATAFLOWS", "FILL_DRAIN", "FoldKind", "GemmPlan", "MappingError", "Step", "StepTraffic",
           "fold_kinds", "fold_steps", "map_gemm", "plan_gemm", "step_traffic"]
