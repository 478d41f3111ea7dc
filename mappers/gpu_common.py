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

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """A forward attention call: ``batch`` x ``heads`` independent (seq x head_dim) problems.

    Units: ``seq`` in tokens (query and key length), ``head_dim`` in elements. ``dtype`` is the element
    type of Q, K, V (fp16, bf16, fp8); O is written in 16 bits.
    """

    batch: int
    heads: int
    seq: int
    head_dim: int
    causal: bool = False
    dtype: str = "fp16"

    def __post_init__(self) -> None:
        for name in ("batch", "heads", "seq", "head_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MappingError(f"gpu attention: {name}: expected a positive integer, got {value!r}")
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
    def flops(self) -> float:
        """FA3's FLOP count: 4 * seq^2 * head_dim * heads * batch, halved when causal."""
        full = 4.0 * self.seq * self.seq * self.head_dim * self.heads * self.batch
        return full / 2 if self.causal else full


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
    ``cluster`` CTAs (on as many SMs) that share each K/V tile load by TMA multicast.
    """

    block_m: int
    block_n: int
    consumers: int
    threads: int
    registers_per_thread: int
    smem_bytes: int
    stages: int = 2
    cluster: int = 1

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


@dataclass(frozen=True)
class CtaWork:
    """The K/V tiles one CTA processes: ``tiles`` in all, ``masked`` of them on the causal diagonal;
    ``rows``: its real query rows when fewer than ``block_m`` (a head's ragged last block, 0 for a
    cluster's padding block), None for a full block. The CTA computes its whole block either way (the
    tensor cores run full tiles); only its loads and stores are clipped to the real rows."""

    tiles: int
    masked: int
    rows: int | None = None


def cta_work(workload: GpuAttention, tile: CtaTile, m_block: int) -> CtaWork:
    """K/V tiles of query block ``m_block`` (rows m_block*Br ... +Br-1; a ragged last block is padded).

    Non-causal: ceil(seq / Bc) tiles, none masked. Causal: the tiles holding keys 0 ... last row of the
    block; those reaching beyond the block's first row are masked (partly above the diagonal).
    """
    n_tiles = -(-workload.seq // tile.block_n)
    real = max(0, min(tile.block_m, workload.seq - m_block * tile.block_m))
    rows = None if real == tile.block_m else real
    if not workload.causal:
        return CtaWork(n_tiles, 0, rows)
    last_row = min((m_block + 1) * tile.block_m, workload.seq) - 1
    tiles = last_row // tile.block_n + 1
    first_masked = (m_block * tile.block_m) // tile.block_n
    return CtaWork(tiles, max(0, tiles - first_masked), rows)   # a cluster's padding block: nothing masked


def active_sms(workload: GpuAttention, tile: CtaTile, resident: int) -> int:
    """SMs that hold at least one CTA: all of ``ctas / resident`` rounded up, at most the GPU's (the caller
    caps at ``spec.sms``)."""
    return -(-(m_blocks(workload, tile) * workload.batch * workload.heads) // max(1, resident))


def m_blocks(workload: GpuAttention, tile: CtaTile) -> int:
    """Query blocks (CTAs) per (batch, head): ceil(seq / block_m), rounded up to a multiple of the
    cluster as FA3 launches them (the blocks past ``seq`` load and store nothing: their rows are clipped)."""
    blocks = -(-workload.seq // tile.block_m)
    return -(-blocks // tile.cluster) * tile.cluster


def launch_order(workload: GpuAttention, tile: CtaTile, *, longest_first: bool) -> list[CtaWork]:
    """Every CTA's work in dispatch order.

    ``longest_first=False``: the hardware's block order, per (batch, head) the m-blocks ascending
    (FA2's grid). ``True``: longest-processing-time first over all CTAs (FA3's persistent scheduler
    for causal masks hands the longest remaining tile to the first free SM); equal CTAs keep their
    block order.
    """
    per_head = [cta_work(workload, tile, m) for m in range(m_blocks(workload, tile))]
    order = per_head * (workload.batch * workload.heads)
    if longest_first:
        order.sort(key=lambda work: -work.tiles)
    return order


def hbm_fraction_of_kv(workload: GpuAttention, tile: CtaTile) -> float:
    """Fraction of the K/V tile bytes the CTAs load that must come from HBM (the rest hits in L2).

    Each (batch, head)'s K and V are read from HBM once and reused from L2 by its other CTAs (they run
    at about the same time and one head's K/V, 4 * seq * head_dim bytes at 16 bits, fits in L2 next to
    the heads in flight). = 1 / (average number of CTAs that read each K/V tile), counted in real keys
    (a causal CTA that stops before the ragged last tile reads whole tiles).
    """
    reads = sum(min(workload.seq, cta_work(workload, tile, m).tiles * tile.block_n)   # real keys each CTA loads
                for m in range(m_blocks(workload, tile)))
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
    def of(cls, spec: GpuSpec, dtype: str, tensor_fraction_name: str, active_sms: int | None = None) -> Rates:
        """Rates for ``dtype`` tensor work at the fraction named ``tensor_fraction_name`` of the peak.

        ``active_sms``: the SMs that hold a CTA (fewer than the GPU's when a call launches fewer CTAs than
        one wave); the L2 and HBM bandwidth is shared among those, not among idle SMs. Default: all."""
        per_clock = spec.per_sm_per_clock
        share = spec.sms / max(1, min(spec.sms, active_sms)) if active_sms is not None else 1.0
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
            unit: str = "mufu") -> tuple[str, ...]:
        """``ops`` exponentials (or reciprocals) on the MUFU. The part that cannot overlap tensor-core
        work (1 - ``mufu_tensor_overlap`` of it) holds the tensor/MUFU buffer while it runs."""
        deps = tuple(deps)
        total = cycles(ops, self.rates.mufu_ops)
        hidden = int(round(total * self.rates.mufu_overlap))
        if hidden:
            deps = (self.add(f"{op_id}_hidden", unit, hidden, deps, einsum=einsum,
                             actions={"mufu.op": ops * hidden / total}),)
        exposed = total - hidden
        self.add(op_id, unit, exposed, deps, einsum=einsum,
                 actions={"mufu.op": ops * exposed / total if total else 0.0},
                 claims={TENSOR_MUFU: 1} if exposed else None,
                 releases={TENSOR_MUFU: 1} if exposed else None)
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
            ends += (self.add(f"{op_id}_smem", "smem", cycles(nbytes, self.rates.smem_bytes), (start,),
                              einsum=einsum, actions={"smem.byte": nbytes}),)
        return ends

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

    ``cta_schedule(work)`` returns the schedule of ``occupancy.resident_ctas`` CTAs that each do
    ``work`` (run together on one SM); ``order`` is every CTA's work in dispatch order.
    """

    design: str
    workload: GpuAttention
    tile: CtaTile
    occupancy: Occupancy
    order: tuple[CtaWork, ...]
    cta_schedule: Callable[[CtaWork], Schedule]
    tensor_instruction: str
    choices: dict[str, Any] = field(default_factory=dict)

    @property
    def ctas(self) -> int:
        """CTAs launched."""
        return len(self.order)


def dispatch_schedule(cta_cycles: Sequence[int], slots: int) -> Schedule:
    """CTAs (cycles each, in dispatch order) onto ``slots`` SM slots: each starts when a slot frees."""
    ops: list[Block] = []
    run_start = 0
    for index in range(1, len(cta_cycles) + 1):   # consecutive equal CTAs become one repeated block
        if index == len(cta_cycles) or cta_cycles[index] != cta_cycles[run_start]:
            ops.append(Block((Operation("cta", "sm_slot", int(cta_cycles[run_start])),),
                             index - run_start, f"ctas{len(ops)}"))
            run_start = index
    return Schedule(blocks=tuple(ops), lanes={"sm_slot": slots}, name="dispatch")


__all__ = ["active_sms", "FA3_HIDDEN", "FA3_TOKENS", "HEAD_DIMS", "LATENCY_LANES", "TENSOR_MUFU", "UNITS", "CtaTile", "CtaWork",
           "GpuAttention", "GpuMapping", "Occupancy", "OpList", "Rates", "cta_work", "cycles", "dispatch_schedule",
           "fa3_protocol_workload", "hbm_fraction_of_kv", "launch_order", "m_blocks", "occupancy", "sm_schedule",
           "waves"]
