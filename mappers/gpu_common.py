"""What every GPU attention mapper shares: workload, CTA tiling, occupancy, waves, schedule pieces, simulation.

Unit model. One SM is simulated per *CTA group* (the CTAs resident on it at once) over the CTAs' K/V
iterations, on the units

    tensor   tensor cores (FLOPs at the spec's rate x the instruction class's fraction)
    mufu     special-function unit (exp2, reciprocal: ``mufu_ops`` results per clock)
    fp32     FP32/ALU lanes (``fp32_lanes`` ops per clock: max, FMA, add, convert, polynomial exp)
    smem     shared-memory port (``smem_bytes`` per clock: ldmatrix operand reads of mma.sync kernels)
    l2       the SM's share of the L2 bandwidth (every tile load: TMA / cp.async from L2)
    hbm      the SM's share of the HBM bandwidth (first touch of Q, K, V; the O store)
    latency  a pipe with many lanes that only delays (L2 / HBM access latency)

plus one buffer ``tensor_mufu`` of one byte that tensor-core operations and the non-overlapping part
of each exponential claim while they run (calibration constant ``mufu_tensor_overlap``; see the spec),
and per-design shared-memory stage buffers. Mappers only build schedules: the engine
(:func:`archsim.engine.run`) executes them and :func:`studies.gpu.run_gpu_mapping` assembles the result
(issue #11); nothing here computes a latency or runs the engine.

GPU level. CTAs are dispatched in the design's launch order onto ``SMs x resident`` slots, each CTA
occupying its slot for the cycles its CTA-group schedule took on the engine; that dispatch is itself
a :class:`~archsim.schedule.Schedule` (unit ``sm_slot`` with one lane per slot) run on the engine, so
the makespan includes waves (``ceil(CTAs / (SMs x resident))`` for equal CTAs), the tail of the last
wave and the causal imbalance between CTAs (:func:`dispatch_schedule` builds it from the CTA cycles). HBM bandwidth is shared by all SMs through the per-SM
``hbm`` share.

FLOP convention (FA3 §4.1): ``4 * seq^2 * head_dim * heads`` per batch element, halved for causal;
``tflops`` = that / latency_s / 1e12.
"""
from __future__ import annotations

import bisect
import itertools

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from attnsim.archsim.gpu_spec import DTYPE_BYTES, DTYPES, GpuSpec
from attnsim.archsim.schedule import Block, Operation, Schedule
from attnsim.mappers.errors import MappingError

HEAD_DIMS: tuple[int, ...] = (64, 128, 256)
"""Head dimensions the GPU mappers support (those of FA3's benchmarks)."""

FA3_TOKENS = 16384
"""FA3 protocol (§2.1): batch x seqlen = 16k tokens."""
FA3_HIDDEN = 2048
"""FA3 protocol (§2.1): hidden size 2048, so heads = 2048 / head_dim."""

UNITS: tuple[str, ...] = ("tensor", "mufu", "fp32", "smem", "l2", "hbm")
"""The SM units whose utilisation is reported (``latency`` only delays)."""

LATENCY_LANES = 64
"""Lanes of the ``latency`` pipe: enough that latencies never queue behind one another."""

TENSOR_MUFU = "tensor_mufu"
"""Buffer (capacity 1) held by tensor-core work and by the non-overlapping part of each exp."""

# --------------------------------------------------------------------------------------------------
# Workload.


@dataclass(frozen=True)
class GpuAttention:
    """A forward attention call: ``batch`` x ``heads`` independent (q_len x seq, head_dim) problems.

    Units: ``seq`` in tokens (the key/value length; the query length too unless ``q_len`` is given),
    ``q_len`` in tokens (the queries are the last ``q_len`` positions of the ``seq``-token context:
    1 in decode, a chunk in chunked prefill), ``head_dim`` in elements. ``kv_heads`` K/V heads
    (grouped-query attention: ``heads / kv_heads`` query heads share one; default ``heads``).
    ``dtype`` is the element type of Q, K, V (fp16, bf16, fp8); O is written in 16 bits.
    ``window``: a causal sliding window of that many keys (query at position i sees keys i - window <
    j <= i, Mistral's); the K/V tiles wholly before it are skipped (:func:`cta_work`). None: no window.
    """

    batch: int
    heads: int
    seq: int
    head_dim: int
    causal: bool = False
    dtype: str = "fp16"
    q_len: int | None = None
    kv_heads: int | None = None
    window: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "heads", "seq", "head_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MappingError(f"gpu attention: {name}: expected a positive integer, got {value!r}")
        for name, default in (("q_len", self.seq), ("kv_heads", self.heads)):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, default)
            elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= default:
                raise MappingError(f"gpu attention: {name}: expected a positive integer of at most "
                                   f"{default}, got {value!r}")
        if self.window is not None:
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
                raise MappingError(f"gpu attention: window: expected a positive integer, got {self.window!r}")
            if not self.causal:
                raise MappingError("gpu attention: window: a sliding window looks back from each query; "
                                   "expected causal=True")
        if self.heads % self.kv_heads:
            raise MappingError(f"gpu attention: kv_heads: expected a divisor of heads = {self.heads}, "
                               f"got {self.kv_heads}")
        if self.head_dim not in HEAD_DIMS:
            raise MappingError(f"gpu attention: head_dim: expected one of "
                               f"{', '.join(map(str, HEAD_DIMS))}, got {self.head_dim}")
        if self.dtype not in DTYPES:
            raise MappingError(f"gpu attention: dtype: expected one of {', '.join(DTYPES)}, "
                               f"got {self.dtype!r}")

    @property
    def element_bytes(self) -> int:
        """Bytes per Q/K/V element."""
        return DTYPE_BYTES[self.dtype]

    @property
    def group(self) -> int:
        """Query heads sharing one K/V head (1: multi-head attention)."""
        return self.heads // self.kv_heads

    @property
    def attended_pairs(self) -> float:
        """(query, key) pairs of one head: ``q_len x seq``; causal with ``q_len == seq`` half of it (FA3's
        convention), causal with fewer queries the keys up to each query's position (the queries are the
        last ``q_len`` positions: ``q_len (seq - q_len) + q_len (q_len + 1) / 2``)."""
        q, m = self.q_len, self.seq
        if not self.causal:
            return float(q * m)
        window = self.window
        if window is not None and window < m:   # each query sees min(its keys, window): clipped series
            first = m - q + 1                    # keys the first query sees; the last sees m
            if window <= first:
                return float(window * q)
            below = window - first               # queries that see fewer than window keys
            return (first + window - 1) * below / 2 + window * (q - below)
        if q == m:
            return q * m / 2
        return q * (m - q) + q * (q + 1) / 2

    @property
    def flops(self) -> float:
        """FA3's FLOP count: 4 * attended pairs * head_dim * heads * batch (4 * seq^2 * ... for
        prefill, halved when causal)."""
        return 4.0 * self.attended_pairs * self.head_dim * self.heads * self.batch

    @property
    def kv_cache_bytes(self) -> int:
        """Bytes of K and V of every (batch, K/V head), each read once: ``batch kv_heads seq 2 head_dim``."""
        return self.batch * self.kv_heads * self.seq * 2 * self.head_dim * self.element_bytes


def fa3_protocol_workload(seq: int, head_dim: int, *, causal: bool = False, dtype: str = "fp16",
                          batch: int | None = None, heads: int | None = None) -> GpuAttention:
    """FA3's benchmark shape (§2.1): batch x seq = 16k tokens, heads = 2048 / head_dim, unless given."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise MappingError(f"gpu attention: seq: expected a positive integer, got {seq!r}")
    if head_dim not in HEAD_DIMS:
        raise MappingError(f"gpu attention: head_dim: expected one of {', '.join(map(str, HEAD_DIMS))}, "
                           f"got {head_dim}")
    return GpuAttention(batch=max(1, FA3_TOKENS // seq) if batch is None else batch,
                        heads=FA3_HIDDEN // head_dim if heads is None else heads,
                        seq=seq, head_dim=head_dim, causal=causal, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# CTA tiling, occupancy, waves.


@dataclass(frozen=True)
class CtaTile:
    """One CTA's tiling and resources.

    ``block_m`` query rows per CTA, ``block_n`` keys per K/V tile, ``consumers`` independent compute
    streams (warpgroups for wgmma kernels, warps for mma.sync kernels), ``threads`` per CTA,
    ``registers_per_thread`` (32-bit), ``smem_bytes`` per CTA, ``stages`` K/V buffers in SMEM,
    ``cluster`` CTAs (on as many SMs) that share each K/V tile load by TMA multicast; ``pack`` query
    heads of a GQA group packed into the CTA's rows (one K/V tile load serves them all; 1: one head per
    CTA); ``splits`` parts the keys of a (batch, head) are split into, one CTA each (split-K).
    """

    block_m: int
    block_n: int
    consumers: int
    threads: int
    registers_per_thread: int
    smem_bytes: int
    stages: int = 2
    cluster: int = 1
    pack: int = 1
    splits: int = 1

    @property
    def rows_per_consumer(self) -> int:
        """Query rows each consumer owns."""
        return self.block_m // self.consumers


@dataclass(frozen=True)
class Occupancy:
    """CTAs resident per SM and what limits them (registers, shared memory)."""

    resident_ctas: int
    by_registers: int
    by_smem: int
    limited_by: str


def occupancy(spec: GpuSpec, tile: CtaTile) -> Occupancy:
    """CTAs per SM = min(register file / CTA registers, SMEM per SM / CTA SMEM); MappingError if 0."""
    storage = spec.storage
    if tile.registers_per_thread > storage.max_registers_per_thread.value:
        raise MappingError(f"gpu tile: registers_per_thread: expected at most "
                           f"{storage.max_registers_per_thread.value}, got {tile.registers_per_thread}")
    if tile.smem_bytes > storage.smem_bytes_per_cta.value:
        raise MappingError(f"gpu tile: smem_bytes: expected at most {storage.smem_bytes_per_cta.value} "
                           f"per CTA, got {tile.smem_bytes}")
    cta_register_bytes = tile.threads * tile.registers_per_thread * 4
    by_registers = storage.register_file_bytes_per_sm.value // cta_register_bytes
    by_smem = storage.smem_bytes_per_sm.value // tile.smem_bytes
    resident = min(by_registers, by_smem)
    if resident < 1:
        raise MappingError(f"gpu tile: a CTA needs {cta_register_bytes} register bytes; the SM has "
                           f"{storage.register_file_bytes_per_sm.value}")
    limited_by = "registers" if by_registers < by_smem else "smem" if by_smem < by_registers else \
        "registers and smem"
    return Occupancy(resident, by_registers, by_smem, limited_by)


def waves(ctas: int, sms: int, resident: int) -> int:
    """ceil(ctas / (sms x resident)): rounds of CTAs when every CTA takes the same time."""
    if ctas < 1 or sms < 1 or resident < 1:
        raise MappingError(f"waves: expected positive counts, got ctas={ctas}, sms={sms}, "
                           f"resident={resident}")
    return -(-ctas // (sms * resident))


def copies_per_sm(ctas: int, sms: int, resident: int) -> int:
    """CTAs each SM runs at once: the resident limit, or fewer when the CTAs do not fill the SMs
    (the block scheduler spreads a grid over the SMs first: ``ceil(ctas / sms)``)."""
    return max(1, min(resident, -(-ctas // sms)))


@dataclass(frozen=True)
class CtaWork:
    """The K/V tiles one CTA processes: ``tiles`` in all, ``masked`` of them on the causal diagonal.

    ``partial``: the CTA covers only part of its query block's keys (a split, a stream-K chunk) and
    stores the partial results the merge reads instead of the outputs. ``segments``: a stream-K CTA
    that walks the tiles of several query blocks one after the other, one :class:`CtaWork` each
    (empty: the CTA is one segment, itself). ``rows``: its real query rows when fewer than
    ``block_m`` (a grid head's ragged last block, 0 for a cluster's padding block), None for a full
    block. The CTA computes its whole block either way (the tensor cores run full tiles); only its
    loads and stores are clipped to the real rows.
    """

    tiles: int
    masked: int
    partial: bool = False
    segments: tuple[CtaWork, ...] = ()
    rows: int | None = None

    def parts(self) -> tuple[CtaWork, ...]:
        """The segments the CTA runs one after the other (itself when it has none)."""
        return self.segments or (self,)


def cta_work(workload: GpuAttention, tile: CtaTile, m_block: int, split: int = 0) -> CtaWork:
    """K/V tiles of query block ``m_block`` (rows m_block*Br ... +Br-1; a ragged last block is padded)
    in split ``split`` of ``tile.splits`` (each split ceil(tiles / splits) consecutive tiles, FA2's
    split-KV kernel; the last may have fewer).

    Non-causal: ceil(seq / Bc) tiles, none masked. Causal: the tiles holding keys 0 ... the position
    of the block's last row; those reaching beyond the block's first row's position are masked
    (partly above the diagonal). Row r of a block sits at position ``seq - q_len + r // pack``.
    """
    n_tiles = -(-workload.seq // tile.block_n)
    per_split = -(-n_tiles // tile.splits)
    low, high = split * per_split, min(n_tiles, (split + 1) * per_split)
    partial = tile.splits > 1
    query = query_rows(workload, tile)
    rows = block_rows(workload, tile, m_block)
    if not workload.causal:
        return CtaWork(high - low, 0, partial, rows=rows)
    offset = workload.seq - workload.q_len
    last_row = min((m_block + 1) * tile.block_m, query) - 1
    tiles = (offset + last_row // tile.pack) // tile.block_n + 1
    first_masked = (offset + (m_block * tile.block_m) // tile.pack) // tile.block_n
    high = min(high, tiles)
    if workload.window is not None:   # the tiles wholly before the first row's window are skipped
        return _window_work(workload, tile, m_block, low, high, first_masked, last_row, partial, rows)
    # a cluster's padding block: every tile, none masked (it loads and stores nothing: rows = 0)
    return CtaWork(max(0, high - low), max(0, high - max(low, first_masked)), partial, rows=rows)


def _window_work(workload: GpuAttention, tile: CtaTile, m_block: int, low: int, high: int, first_masked: int,
                 last_row: int, partial: bool, rows: int | None) -> CtaWork:
    """:func:`cta_work` under a sliding window of W keys: the block's rows at positions a ... b see keys
    a - W + 1 ... b, so its tiles run from the one holding key max(0, a - W + 1); a tile holding a key
    before b - W + 1 is masked at the window's edge, as a tile past a's position is at the diagonal."""
    window = workload.window or workload.seq
    offset = workload.seq - workload.q_len
    first_position = offset + (m_block * tile.block_m) // tile.pack
    last_position = offset + last_row // tile.pack
    low = max(low, max(0, first_position - window + 1) // tile.block_n)
    edge_last = (last_position - window) // tile.block_n if last_position - window >= 0 else -1
    visited = max(0, high - low)
    # unmasked: the tiles strictly between the window's edge and the diagonal
    clean = max(0, min(first_masked, high) - max(edge_last + 1, low))
    return CtaWork(visited, visited - clean, partial, rows=rows)


def block_rows(workload: GpuAttention, tile: CtaTile, m_block: int) -> int | None:
    """Real query rows of block ``m_block`` of a grid head: None when full, fewer for the ragged last
    block, 0 for a cluster's padding block."""
    real = max(0, min(tile.block_m, query_rows(workload, tile) - m_block * tile.block_m))
    return None if real == tile.block_m else real


def query_rows(workload: GpuAttention, tile: CtaTile) -> int:
    """Query rows per CTA-grid head: ``q_len``, times the heads of a GQA group packed together."""
    return workload.q_len * tile.pack


def grid_heads(workload: GpuAttention, tile: CtaTile) -> int:
    """(batch, head) pairs of the CTA grid: every query head, or every K/V head when groups are packed."""
    return workload.batch * workload.heads // tile.pack


def m_blocks(workload: GpuAttention, tile: CtaTile) -> int:
    """Query blocks (CTAs) per grid head: ceil(query rows / block_m), rounded up to a multiple of the
    cluster as FA3 launches them (the blocks past the rows load and store nothing: they are clipped)."""
    blocks = -(-query_rows(workload, tile) // tile.block_m)
    return -(-blocks // tile.cluster) * tile.cluster


def head_ctas(workload: GpuAttention, tile: CtaTile) -> list[CtaWork]:
    """The CTAs of one grid head in FA2's block order: per split, the m-blocks ascending."""
    return [cta_work(workload, tile, m, s) for s in range(tile.splits) for m in range(m_blocks(workload, tile))]


def launch_order(workload: GpuAttention, tile: CtaTile, *, longest_first: bool) -> list[CtaWork]:
    """Every CTA's work in dispatch order.

    ``longest_first=False``: the hardware's block order, per (batch, head) the m-blocks ascending
    (FA2's grid). ``True``: longest-processing-time first over all CTAs (FA3's persistent scheduler
    for causal masks hands the longest remaining tile to the first free SM); equal CTAs keep their
    block order.
    """
    order = head_ctas(workload, tile) * grid_heads(workload, tile)
    if longest_first:
        order.sort(key=lambda work: -work.tiles)
    return order


def stream_k_order(workload: GpuAttention, tile: CtaTile, ctas: int) -> list[CtaWork]:
    """LeanAttention's stream-K partition: the K/V tiles of every (grid head, query block), laid end to
    end, cut into ``ctas`` equal ranges (the first ``total % ctas`` one tile longer), one per CTA; a
    range that crosses a block boundary is several segments, and a segment that does not cover its
    block's tiles is partial (merged afterwards). Causal: each block contributes the tiles up to its last
    row (:func:`cta_work`), the last ``masked`` of which are on the diagonal; a segment counts the
    diagonal tiles it covers."""
    blocks_per_head = m_blocks(workload, tile)
    head = [cta_work(workload, replace(tile, splits=1), m) for m in range(blocks_per_head)]
    ends = list(itertools.accumulate(w.tiles for w in head))   # per grid head, cumulative
    per_head = ends[-1] if ends else 0
    heads = grid_heads(workload, tile)
    total = heads * per_head
    ctas = max(1, min(ctas, total))
    order: list[CtaWork] = []
    start = 0
    for c in range(ctas):
        end = start + total // ctas + (1 if c < total % ctas else 0)
        segments, position = [], start
        while position < end:
            h, within = divmod(position, per_head)
            m = bisect.bisect_right(ends, within)
            block_start = h * per_head + (ends[m - 1] if m else 0)
            block = head[m]
            stop = min(end, block_start + block.tiles)
            first_masked = block_start + block.tiles - block.masked
            masked = max(0, stop - max(position, first_masked))
            segments.append(CtaWork(stop - position, masked, stop - position < block.tiles, rows=block.rows))
            position = stop
        order.append(segments[0] if len(segments) == 1 else   # rows: per segment
                     CtaWork(end - start, sum(s.masked for s in segments), any(s.partial for s in segments),
                             tuple(segments)))
        start = end
    return order


def block_tiles(workload: GpuAttention, tile: CtaTile) -> list[int]:
    """K/V tiles of each query block of every grid head, in :func:`stream_k_order`'s order (all
    ``ceil(seq / block_n)``; causal: up to each block's last row)."""
    head = [cta_work(workload, replace(tile, splits=1), m).tiles for m in range(m_blocks(workload, tile))]
    return head * grid_heads(workload, tile)


def merge_parts(order: Sequence[CtaWork], per_block: int | Sequence[int]) -> list[int]:
    """Partials per query block that a merge combines, from a stream-K order (:func:`stream_k_order`):
    the partial segments of a block follow each other and together cover its tiles (``per_block``: one
    count for every block, or one per block in order, :func:`block_tiles`)."""
    sizes = per_block if not isinstance(per_block, int) else None
    parts: list[int] = []
    covered = 0
    block = 0
    for work in order:
        for segment in work.parts():
            need = sizes[block] if sizes is not None else per_block
            if not segment.partial:
                block += 1
                continue
            if covered == 0:
                parts.append(0)
            parts[-1] += 1
            covered += segment.tiles
            if covered >= need:   # type: ignore[operator]
                covered = 0
                block += 1
    return parts


def hbm_fraction_of_kv(workload: GpuAttention, tile: CtaTile) -> float:
    """Fraction of the K/V tile bytes the CTAs load that must come from HBM (the rest hits in L2).

    Each grid head's K and V are read from HBM once and reused from L2 by its other CTAs (they run
    at about the same time and one head's K/V, 4 * seq * head_dim bytes at 16 bits, fits in L2 next to
    the heads in flight). = 1 / (average number of CTAs that read each K/V tile), counted in real keys
    (a causal CTA that stops before the ragged last tile reads whole tiles). A grid head is a query
    head unless a GQA group is packed into the CTAs' rows: query heads of one group in different CTAs
    each read the group's K/V from HBM (their reuse through L2 is not modelled).
    """
    reads = sum(min(workload.seq, work.tiles * tile.block_n) for work in head_ctas(workload, tile))
    return workload.seq / reads


# --------------------------------------------------------------------------------------------------
# Schedule pieces.


def cycles(work: float, per_cycle: float) -> int:
    """Cycles to do ``work`` at ``per_cycle`` per cycle: ceil, and >= 1 when there is work."""
    if work <= 0:
        return 0
    return max(1, math.ceil(work / per_cycle - 1e-9))


@dataclass(frozen=True)
class Rates:
    """Per-SM rates (per tensor-clock cycle) and latencies a mapper needs, from the spec."""

    tensor_flops: float
    mufu_ops: float
    fp32_ops: float
    smem_bytes: float
    l2_bytes: float
    hbm_bytes: float
    l2_latency: int
    hbm_latency: int
    mufu_overlap: float

    @classmethod
    def of(cls, spec: GpuSpec, dtype: str, tensor_fraction_name: str) -> Rates:
        """Rates for ``dtype`` tensor work at the fraction named ``tensor_fraction_name`` of the peak.

        The L2 and HBM bandwidth is a fixed per-SM share (``1 / sms`` of the peak): an SM left idle by
        a grid smaller than one wave does not lend its share to the busy ones -- the starvation that
        split-K decode (Flash-Decoding, LeanAttention) exists to avoid. Under-filled SMs run fewer CTAs
        at once instead (:func:`copies_per_sm`)."""
        per_clock = spec.per_sm_per_clock
        share = 1.0
        return cls(tensor_flops=spec.tensor_flops_per_cycle(dtype) * spec.calibration_value(tensor_fraction_name),
                   mufu_ops=per_clock.mufu_ops.value, fp32_ops=per_clock.fp32_lanes.value,
                   smem_bytes=per_clock.smem_bytes.value, l2_bytes=spec.l2_bytes_per_cycle_per_sm * share,
                   hbm_bytes=spec.hbm_bytes_per_cycle_per_sm * share,
                   l2_latency=spec.memory.l2_latency_cycles.value,
                   hbm_latency=spec.memory.hbm_latency_cycles.value,
                   mufu_overlap=spec.calibration_value("mufu_tensor_overlap"))


class OpList:
    """Builds the operations of one block; every helper returns the id(s) to depend on."""

    def __init__(self, rates: Rates, dtype: str) -> None:
        self.rates = rates
        self.dtype = dtype
        self.ops: list[Operation] = []

    def add(self, op_id: str, unit: str, duration: int, deps: Iterable[Any] = (), *,
            einsum: str = "", actions: Mapping[str, float] | None = None,
            claims: Mapping[str, int] | None = None, releases: Mapping[str, int] | None = None) -> str:
        """Append one operation; returns its id."""
        self.ops.append(Operation(op_id, unit, int(duration), tuple(deps), einsum=einsum,
                                  actions=dict(actions or {}), claims_bytes=dict(claims or {}),
                                  releases_bytes=dict(releases or {})))
        return op_id

    def gemm(self, op_id: str, flops: float, deps: Iterable[Any], *, einsum: str,
             smem_bytes: float = 0.0, k_steps: int = 1,
             releases: Mapping[str, int] | None = None) -> tuple[str, ...]:
        """A tensor-core GEMM of ``flops`` FLOPs holding the tensor/MUFU buffer while it runs.

        ``smem_bytes``: operands the warps read from SMEM into registers (ldmatrix, mma.sync kernels),
        in ``k_steps`` steps along the reduction rank, software-pipelined: step 0's read comes first,
        the others run alongside the tensor work on the ``smem`` unit. Returns the ids to wait on."""
        deps = tuple(deps)
        ends: tuple[str, ...] = ()
        if smem_bytes > 0:
            first = smem_bytes / max(1, k_steps)
            deps = (self.add(f"{op_id}_ldsm0", "smem", cycles(first, self.rates.smem_bytes), deps,
                             einsum=einsum, actions={"smem.byte": first}),)
            rest = smem_bytes - first
            if rest > 0:
                ends += (self.add(f"{op_id}_ldsm", "smem", cycles(rest, self.rates.smem_bytes), deps,
                                  einsum=einsum, actions={"smem.byte": rest}),)
        ends = (self.add(op_id, "tensor", cycles(flops, self.rates.tensor_flops), deps, einsum=einsum,
                         actions={f"tensor.flop_{self.dtype}": flops}, claims={TENSOR_MUFU: 1},
                         releases={TENSOR_MUFU: 1, **(releases or {})}),) + ends
        return ends

    def exp(self, op_id: str, ops: float, deps: Iterable[Any], *, einsum: str,
            unit: str = "mufu", releases: Mapping[str, int] | None = None) -> tuple[str, ...]:
        """``ops`` exponentials (or reciprocals) on the MUFU. The part that cannot overlap tensor-core
        work (1 - ``mufu_tensor_overlap`` of it) holds the tensor/MUFU buffer while it runs;
        ``releases``: buffers (SMEM stages) freed when it finishes."""
        deps = tuple(deps)
        total = cycles(ops, self.rates.mufu_ops)
        hidden = int(round(total * self.rates.mufu_overlap))
        if hidden:
            deps = (self.add(f"{op_id}_hidden", unit, hidden, deps, einsum=einsum,
                             actions={"mufu.op": ops * hidden / total}),)
        exposed = total - hidden
        freed = {**({TENSOR_MUFU: 1} if exposed else {}), **(releases or {})}
        self.add(op_id, unit, exposed, deps, einsum=einsum,
                 actions={"mufu.op": ops * exposed / total if total else 0.0},
                 claims={TENSOR_MUFU: 1} if exposed else None,
                 releases=freed or None)
        return (op_id,)

    def fp32(self, op_id: str, ops: float, deps: Iterable[Any], *, einsum: str,
             releases: Mapping[str, int] | None = None) -> tuple[str, ...]:
        """``ops`` FP32/ALU operations on the FP32 lanes."""
        return (self.add(op_id, "fp32", cycles(ops, self.rates.fp32_ops), tuple(deps), einsum=einsum,
                         actions={"fp32.op": ops}, releases=releases),)

    def load(self, op_id: str, nbytes: float, hbm_fraction: float, deps: Iterable[Any], *,
             claims: Mapping[str, int] | None = None, einsum: str = "",
             l2_share: float = 1.0, smem_write: bool = False) -> tuple[str, ...]:
        """A tile load through L2 (``hbm_fraction`` of the bytes first from HBM): the access latency
        (on the ``latency`` pipe, claiming ``claims``), then the transfer on the SM's L2 share and, for
        the HBM part, on its HBM share. ``l2_share``: the fraction of the L2 reads this SM issues (1/2
        when a cluster of 2 multicasts the tile). ``smem_write``: the data is written into SMEM through
        the ``smem`` port (cp.async), alongside the transfer. Returns the ids to wait on."""
        latency = self.rates.hbm_latency if hbm_fraction > 0 else self.rates.l2_latency
        start = self.add(f"{op_id}_lat", "latency", latency, tuple(deps), einsum=einsum, claims=claims)
        l2_bytes = nbytes * l2_share
        ends = (self.add(f"{op_id}_l2", "l2", cycles(l2_bytes, self.rates.l2_bytes), (start,),
                         einsum=einsum, actions={"l2.byte": l2_bytes}),)
        if hbm_fraction > 0:
            hbm_bytes = nbytes * hbm_fraction
            ends += (self.add(f"{op_id}_hbm", "hbm", cycles(hbm_bytes, self.rates.hbm_bytes), (start,),
                              einsum=einsum, actions={"hbm.byte": hbm_bytes}),)
        if smem_write:
            ends += (self.smem_write(op_id, nbytes, einsum=einsum),)
        return ends

    def smem_write(self, op_id: str, nbytes: float, *, einsum: str = "") -> str:
        """The SMEM write of load ``op_id``'s data (cp.async) on the ``smem`` port, once its access latency
        has passed; emitted apart from the load, it takes the port at this point of the program order."""
        return self.add(f"{op_id}_smem", "smem", cycles(nbytes, self.rates.smem_bytes), (f"{op_id}_lat",),
                        einsum=einsum, actions={"smem.byte": nbytes})

    def store(self, op_id: str, nbytes: float, deps: Iterable[Any], *, einsum: str = "",
              to_hbm: bool = True) -> tuple[str, ...]:
        """Write ``nbytes`` through L2 (and on to HBM unless ``to_hbm`` is False); posted: no latency
        is waited for."""
        deps = tuple(deps)
        ends = (self.add(f"{op_id}_l2", "l2", cycles(nbytes, self.rates.l2_bytes), deps, einsum=einsum,
                         actions={"l2.byte": nbytes}),)
        if to_hbm:
            ends += (self.add(f"{op_id}_hbm", "hbm", cycles(nbytes, self.rates.hbm_bytes), deps,
                              einsum=einsum, actions={"hbm.byte": nbytes}),)
        return ends


def sm_schedule(prologue: Sequence[Operation], body: Sequence[Operation], repeats: int,
                epilogue: Sequence[Operation], buffers_bytes: Mapping[str, int], name: str) -> Schedule:
    """One CTA group's schedule: prologue, ``repeats`` K/V iterations, epilogue; shared SM units."""
    buffers = {TENSOR_MUFU: 1, **buffers_bytes}
    return Schedule(blocks=(Block(tuple(prologue), 1, "prologue"), Block(tuple(body), repeats, "body"),
                            Block(tuple(epilogue), 1, "epilogue")),
                    buffers_bytes=buffers, lanes={"latency": LATENCY_LANES}, name=name)


# --------------------------------------------------------------------------------------------------
# The mapping (what a GPU mapper returns; studies.gpu.run_gpu_mapping runs it).


@dataclass(frozen=True)
class GpuMapping:
    """A GPU mapper's output: the tiling it chose and how to build each CTA group's schedule.

    ``cta_schedule(work[, copies])`` returns the schedule of ``copies`` (default
    ``occupancy.resident_ctas``) CTAs that each do ``work`` (run together on one SM; a stream-K CTA
    runs its segments one after the other);
    ``order`` is every CTA's work in dispatch order. ``merges``: the partials of each query block that
    the merge phase combines after the CTAs (split-K, stream-K; empty: no merge), one merge CTA each,
    whose schedule ``merge_schedule(parts)`` gives.
    """

    design: str
    workload: GpuAttention
    tile: CtaTile
    occupancy: Occupancy
    order: tuple[CtaWork, ...]
    cta_schedule: Callable[..., Schedule]
    tensor_instruction: str
    choices: dict[str, Any] = field(default_factory=dict)
    merges: tuple[int, ...] = ()
    merge_schedule: Callable[[int], Schedule] | None = None
    launch_cycles: int = 0
    """Cycles before the first CTA starts (the kernel launch gap; mechanism ``kernel_launch``)."""

    @property
    def ctas(self) -> int:
        """CTAs launched."""
        return len(self.order)


def dispatch_schedule(cta_cycles: Sequence[int], slots: int, launch_cycles: int = 0) -> Schedule:
    """CTAs (cycles each, in dispatch order) onto ``slots`` SM slots: each starts when a slot frees,
    the first after ``launch_cycles`` (the kernel launch gap, on a ``launch`` unit)."""
    ops: list[Block] = []
    if launch_cycles > 0:
        ops.append(Block((Operation("launch", "launch", int(launch_cycles)),), 1, "launch"))
    run_start = 0
    for index in range(1, len(cta_cycles) + 1):   # consecutive equal CTAs become one repeated block
        if index == len(cta_cycles) or cta_cycles[index] != cta_cycles[run_start]:
            deps = ("launch",) if launch_cycles > 0 and run_start == 0 else ()
            ops.append(Block((Operation("cta", "sm_slot", int(cta_cycles[run_start]), deps),),
                             index - run_start, f"ctas{len(ops)}"))
            run_start = index
    return Schedule(blocks=tuple(ops), lanes={"sm_slot": slots}, name="dispatch")


__all__ = ["FA3_HIDDEN", "FA3_TOKENS", "HEAD_DIMS", "LATENCY_LANES", "TENSOR_MUFU", "UNITS", "CtaTile", "CtaWork",
           "GpuAttention", "GpuMapping", "Occupancy", "OpList", "Rates", "block_rows", "copies_per_sm", "cta_work", "cycles",
           "dispatch_schedule", "fa3_protocol_workload", "grid_heads", "hbm_fraction_of_kv", "head_ctas",
           "block_tiles", "launch_order", "m_blocks", "merge_parts", "occupancy", "query_rows", "sm_schedule", "stream_k_order",
           "waves"]
