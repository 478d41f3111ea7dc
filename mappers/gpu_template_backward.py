"""The backward pass of FlashAttention-2/-3 on a GPU spec: dQ, dK, dV (issue #17).

A backward mapping file (``specs/mappings/gpu-flash2-backward.yaml``, ``gpu-flash3-backward.yaml``;
``target: gpu``, ``gpu.style: backward``) names the kernel's tiles and its dQ accumulation. The
schedule follows the FA2/FA3 backward algorithm (FA2 paper Alg. 2; FA3 §3 and its ``hopper/``
backward kernel); it is written here per operation, not derived from a cascade (a backward cascade
is not in the project yet):

* one CTA per K/V block of ``block_n`` keys of a (batch, head); it loads K_j and V_j once, then walks
  the query blocks of ``block_m`` rows (all of them; causal: those at or below the diagonal), and per
  query block loads Q_i, dO_i and the row statistics LSE_i, D_i (4 B each per row);
* recomputes S = Q_i K_j^T (tensor, 2 bm bn d FLOPs) and P = exp(S - LSE) (one MUFU exp and one FP32
  FMA per score), computes dP = dO_i V_j^T (tensor), dS = P (dP - D) (2 FP32 ops per score), packs P
  and dS to 16 bits (1/2 op per element each) and writes both to SMEM (operands of the next GEMMs),
  then dV += P^T dO_i, dQ_i = dS K_j and dK += dS^T Q_i, in that order as both kernels issue them
  (tensor, 2 bm bn d FLOPs each): 5 GEMMs, so the FLOPs are 2.5x the forward's 2 (FA convention);
* accumulates dQ_i into an FP32 buffer in global memory: ``atomic`` (FA2: one ``atomicAdd`` per
  element by the compute warps: 4 B of L2 traffic and one issue slot per element) or
  ``tma_reduce`` (FA3: dQ_i goes to SMEM and a TMA bulk reduce-add, ``cp.reduce.async.bulk``, adds
  it in L2: 4 B of SMEM write and of L2 traffic per element, no compute issue slots);
* stores dK_j, dV_j (16 bits) at the end.

Around the main kernel: a pre-processing kernel D = rowsum(dO * O) (reads dO and O, writes D and
zeroes the FP32 dQ buffer) and a post-processing kernel converting dQ to 16 bits (reads 4 B, writes
2 B per element); both stream through HBM on every SM, each with the launch gap of
:mod:`mappers.gpu_mechanisms` when ``kernel_launch`` is on.

``in_phase`` (FA2): the warps issue every op of an iteration in order (mma.sync with ldmatrix operand
reads from SMEM: each operand read once per warp partition of the other GEMM dimension, the
``AtomLayout`` of the launch template); the next query block's Q/dO are double-buffered. Each GEMM's
operands are read in k-steps of 16 along its own reduction extent (S, dP: head_dim; dV, dK: block_m;
dQ: block_n); with ``operand_read_completion`` its result waits for the last read and one more k-step
of tensor work, and with ``source_op_order`` P's exp, pack and SMEM store precede the dP GEMM
(mechanisms of :mod:`mappers.gpu_mechanisms`). With ``barrier_drain`` the three ``__syncthreads()`` per
query block become ``latency`` ops (the latencies they expose: :func:`~mappers.gpu_mechanisms.barrier_drain_cycles`)
before the S GEMM (after the previous block's dK GEMM), between dS's SMEM store and the dV GEMM, and
between the dV and dQ GEMMs.
``warp_specialized`` (FA3): a producer loads Q/dO into ``stages`` buffers; the consumers' ops wait
only for their data (wgmma reads SMEM operands itself).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.archsim.schedule import Schedule
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_common import GpuAttention, OpList, Rates, cycles, sm_schedule
from attnsim.mappers.gpu_mechanisms import LANES_PER_WARP_INSTRUCTION, Mechanisms, barrier_drain_cycles, launch_cycles
from attnsim.mappers.gpu_mapping import matches
from attnsim.mappers.mapping_spec import MappingSpec
from attnsim.mappers.workloads import format_validation_error

GEMMS_PER_TILE = 5
"""S = Q K^T, dP = dO V^T, dV += P^T dO, dK += dS^T Q, dQ = dS K."""
STAT_BYTES_PER_ROW = 8
"""LSE and D: one FP32 each per query row."""
ACCUM_BYTES = 4
"""The dQ accumulator is FP32."""
GRAD_BYTES = 2
"""dQ, dK, dV are written in 16 bits."""
MASK_OPS_PER_SCORE = 2
"""Causal mask on a diagonal block, per score: the column-against-row-limit compare and the select of
-inf (FA2 mask.h ``apply_mask_causal``); the forward model's 2 FP32 ops per masked score."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackwardTile(_Section):
    """One backward tiling: K/V block ``block_n`` per CTA, query block ``block_m`` per iteration;
    ``warps_m``: the MMA units (warps for mma.sync, consumer warpgroups for wgmma) along M of (S, dP),
    (dK, dV) and dQ, the rest along N; ``registers_a``: GEMMs whose A operand comes from registers
    (wgmma RS: no SMEM read of A; ``Mma_dKV_is_RS`` in FA3's hopper/mainloop_bwd_sm90_tma_gmma_ws.hpp)."""

    when: dict[Literal["head_dim", "causal", "dtype"], Any] = {}
    block_m: int = Field(ge=1)
    block_n: int = Field(ge=1)
    threads: int = Field(ge=32)
    warps_m: tuple[int, int, int] = (1, 1, 1)
    registers_a: tuple[Literal["S", "dP", "dV", "dK", "dQ"], ...] = ()


class BackwardSection(_Section):
    """The ``gpu:`` section of a backward mapping (module docstring)."""

    style: Literal["backward"]
    schedule: Literal["in_phase", "warp_specialized"]
    tensor_instruction: Literal["mma.sync", "wgmma"]
    tiles: list[BackwardTile] = Field(min_length=1)
    dq_accumulation: Literal["atomic", "tma_reduce"]
    stages: int = Field(default=2, ge=1)
    mechanisms: Mechanisms = Mechanisms()

    def tile(self, workload: GpuAttention, where: str) -> BackwardTile:
        facts = {"head_dim": workload.head_dim, "causal": workload.causal, "dtype": workload.dtype}
        for case in self.tiles:
            if matches(case.when, facts):
                return case
        raise MappingError(f"{where}: gpu.tiles: no case matches head_dim {workload.head_dim}, "
                           f"causal {str(workload.causal).lower()}, dtype {workload.dtype}")


def backward_section(mapping: MappingSpec) -> BackwardSection:
    """The validated backward section; MappingError naming the file and key."""
    if mapping.target != "gpu" or mapping.gpu is None or mapping.gpu.get("style") != "backward":
        raise MappingError(f"{mapping.origin}: gpu.style: expected 'backward' (a backward GPU mapping)")
    try:
        return BackwardSection.model_validate(mapping.gpu)
    except ValidationError as exc:
        raise MappingError(f"{mapping.origin}: gpu.{format_validation_error(exc)}") from None


def backward_flops(workload: GpuAttention) -> float:
    """FA convention: 2.5 x the forward FLOPs (5 GEMMs of 2 seq^2 d against 2); halved when causal."""
    return 2.5 * workload.flops


@dataclass(frozen=True)
class BackwardMapping:
    """The schedules of one backward call: the main kernel's CTA groups and the two helper kernels."""

    workload: GpuAttention
    tile: BackwardTile
    order: tuple[int, ...]                 # query blocks each CTA visits, in dispatch order
    cta_schedule: Any                      # (query blocks) -> Schedule
    helper_schedules: tuple[Schedule, ...]  # pre- and post-processing, one SM's share each
    launch_cycles: int
    choices: dict[str, Any]

    @property
    def flops(self) -> float:
        return backward_flops(self.workload)


def _query_blocks(workload: GpuAttention, tile: BackwardTile) -> list[int]:
    """Query blocks each K/V block's CTA visits (per head, in K/V block order)."""
    m_blocks = -(-workload.seq // tile.block_m)
    n_blocks = -(-workload.seq // tile.block_n)
    if not workload.causal:
        return [m_blocks] * n_blocks
    return [m_blocks - (j * tile.block_n) // tile.block_m for j in range(n_blocks)]


def map_backward(mapping: MappingSpec, workload: GpuAttention, spec: GpuSpec) -> BackwardMapping:
    """The backward schedules of ``workload`` with ``mapping`` on ``spec`` (no engine run)."""
    section = backward_section(mapping)
    tile = section.tile(workload, mapping.origin)
    fraction = {"mma.sync": "mma_sync_tensor_fraction", "wgmma": "wgmma_tensor_fraction"}[section.tensor_instruction]
    rates = Rates.of(spec, workload.dtype, fraction)
    per_head = _query_blocks(workload, tile)
    order = tuple(per_head * (workload.batch * workload.heads))
    if workload.causal:
        order = tuple(sorted(order, reverse=True))
    readers = sum(per_head) / (-(-workload.seq // tile.block_m))   # CTAs reading each query block
    drain: dict[str, int] | None = None
    if section.mechanisms.barrier_drain and section.schedule == "in_phase":
        if spec.latencies is None:
            raise MappingError(f"{mapping.origin}: gpu.mechanisms.barrier_drain: the spec {spec.name} has no "
                               "latencies section (smem_cycles, mma_sync_cycles, fp32_cycles)")
        drain = barrier_drain_cycles(spec.latencies)

    def schedule(blocks: int) -> Schedule:
        return _cta_schedule(section, tile, rates, workload, blocks, 1.0 / readers, drain)

    return BackwardMapping(workload, tile, order, schedule, _helpers(workload, spec, rates),
                           launch_cycles(section.mechanisms, spec.clock_hz),
                           {"block_m": tile.block_m, "block_n": tile.block_n, "schedule": section.schedule,
                            "dq_accumulation": section.dq_accumulation, "mapping": mapping.name})


def _cta_schedule(section: BackwardSection, tile: BackwardTile, rates: Rates, workload: GpuAttention,
                  blocks: int, hbm_q: float, drain: Mapping[str, int] | None = None) -> Schedule:
    """One CTA over ``blocks`` query blocks: the prologue loads K_j, V_j and query block 0; each body
    iteration loads query block i + 1 (into the buffer block i - 1 used) and computes block i; the
    epilogue computes the last block and stores dK_j, dV_j. ``drain``: cycles exposed at each of FA2's
    barriers per query block (``top``, ``dS``, ``dV``; :func:`barrier_drain_cycles`), None: none."""
    bm, bn, d, b = tile.block_m, tile.block_n, workload.head_dim, workload.element_bytes
    in_phase = section.schedule == "in_phase"
    units = tile.threads // 32 if in_phase else max(1, (tile.threads - 128) // 128)   # warps / consumer WGs
    gemm = 2.0 * bm * bn * d
    scores = bm * bn
    q_bytes, stat_bytes = bm * d * b, bm * STAT_BYTES_PER_ROW

    mech = section.mechanisms
    smem_reads = in_phase or mech.smem_operand_reads     # ldmatrix (mma.sync) or wgmma operand reads
    smem_fill = mech.smem_operand_reads   # the loads (TMA, cp.async) write Q, dO, K, V into SMEM

    def loads(ops: OpList, deps: dict[str, list[Any]]) -> dict[str, tuple[str, ...]]:
        return {"Q": ops.load("ldQ", q_bytes + stat_bytes, hbm_q, deps.get("Q", [])),
                "dO": ops.load("ldDO", q_bytes, hbm_q, deps.get("dO", []))}

    def fills(ops: OpList, ends: dict[str, tuple[str, ...]]) -> None:
        """The TMA's writes of the loaded Q and dO into SMEM, on the port after the block's own SMEM
        work in issue order (the in-order port must not hold the consumers' reads behind a load's
        latency; the data is for the next block)."""
        if smem_fill:
            for tensor, nbytes in (("Q", q_bytes + stat_bytes), ("dO", q_bytes)):
                ops.add(f"fill{tensor}", "smem", cycles(nbytes, rates.smem_bytes), ends[tensor],
                        einsum=tensor, actions={"smem.byte": nbytes})

    def compute(ops: OpList, data: dict[str, list[Any]], kv: list[Any],
                next_loads: bool = False, masked_blocks: int = 0) -> dict[str, tuple[str, ...]]:
        """One query block's ops in issue order; ``next_loads``: the next block's Q load is issued
        right after dS and its dO load right after the dV GEMM (the memory pipeline keeps that order);
        returns those loads' ids."""
        chain: list[str] = []
        issued: dict[str, tuple[str, ...]] = {}

        def serial(deps: list[Any]) -> list[Any]:
            return deps + (chain[-1:] if in_phase else [])

        def mma(name: str, deps: list[Any], a_elems: int, b_elems: int, warps_m: int, reduced: int) -> None:
            """One GEMM reducing over ``reduced`` elements (k-steps of 16: the m16n8k16 MMA's K)."""
            smem = 0.0
            if smem_reads:   # A read once per unit column (unless in registers), B once per unit row
                warps_n = max(1, units // warps_m)
                smem = ((0 if name in tile.registers_a else a_elems * warps_n) + b_elems * warps_m) * b
            steps = max(1, reduced // 16) if smem else 1
            if mech.operand_read_completion and smem and steps > 1:
                # software-pipelined k-steps (flash::gemm): read step s + 1, then MMA step s; the last
                # step's MMA follows the last read, so the GEMM's result waits for every operand read
                body = ops.gemm(f"{name}_k", gemm * (steps - 1) / steps, serial(deps), einsum=name,
                                smem_bytes=smem, k_steps=steps)
                ops.gemm(name, gemm / steps, list(body), einsum=name)
            else:
                ops.gemm(name, gemm, serial(deps), einsum=name, smem_bytes=smem, k_steps=steps)
            chain.append(name)

        wm_sdp, wm_dkv, wm_dq = tile.warps_m
        # P and dS go to SMEM as the next GEMMs' operands; with dV and dK in RS only dS (dQ's A operand)
        staged = 1 if mech.smem_operand_reads and {"dV", "dK"} <= set(tile.registers_a) else 2
        s_deps = data["Q"] + kv
        if drain:   # barrier (1): __syncthreads after the previous block's dK GEMM (first iteration: no
            # previous dK, dropped); the S GEMM's first ldmatrix follows it. Its cp_async_wait<0> also waits
            # for dO, which the schedule keeps at the dP GEMM (source_load_points): the drain is latency only
            s_deps = s_deps + [ops.add("bar_top", "latency", drain["top"], data["Q"] + [("prev", "dK")],
                                       einsum="S")]
        mma("S", s_deps, bm * d, bn * d, wm_sdp, d)
        s_ready = ["S"]
        if masked_blocks:   # the diagonal blocks' causal mask, between S and the exponentials
            ops.fp32("mask", MASK_OPS_PER_SCORE * scores * masked_blocks, serial(["S"]), einsum="P")
            chain.append("mask")
            s_ready = ["S", "mask"]
        if in_phase and mech.source_op_order:
            # FA2 (flash_bwd_kernel.h): scale-and-subtract, exp2, P packed to 16 bits and stored to SMEM,
            # all before the dP GEMM is issued; then dS = P (dP - D), packed and stored
            ops.fp32("Pfma", scores, serial(["S"]), einsum="P")
            chain.append("Pfma")
            ops.exp("P", scores, serial(["Pfma"]), einsum="P")
            chain.append("P")
            ops.fp32("Ppack", 0.5 * scores, serial(["P"]), einsum="P")
            chain.append("Ppack")
            ops.add("P_smem", "smem", cycles(scores * GRAD_BYTES, rates.smem_bytes), serial(["Ppack"]),
                    einsum="P", actions={"smem.byte": scores * GRAD_BYTES})
            mma("dP", data["dO"] + kv, bm * d, bn * d, wm_sdp, d)
            ops.fp32("dS", 2.5 * scores, serial(["dP"]), einsum="dS")   # sub, mul, 1/2 pack
            chain.append("dS")
            if next_loads:
                issued["Q"] = ops.load("ldQ", q_bytes + stat_bytes, hbm_q, ["dS"])
            ops.add("PdS_smem", "smem", cycles(scores * GRAD_BYTES, rates.smem_bytes), ["dS", "P_smem"],
                    einsum="dS", actions={"smem.byte": scores * GRAD_BYTES})
        else:
            mma("dP", data["dO"] + kv, bm * d, bn * d, wm_sdp, d)
            ops.exp("P", scores, serial(s_ready), einsum="P")
            chain.append("P")
            ops.fp32("Pfma", scores, s_ready, einsum="P")
            ops.fp32("dS", 3.0 * scores, serial(["P", "Pfma", "dP"]), einsum="dS")   # sub, mul, 2 x 1/2 pack
            chain.append("dS")
            if next_loads:
                issued["Q"] = ops.load("ldQ", q_bytes + stat_bytes, hbm_q, ["dS"])
            ops.add("PdS_smem", "smem", cycles(staged * scores * GRAD_BYTES, rates.smem_bytes), ["dS"],
                    einsum="dS", actions={"smem.byte": staged * scores * GRAD_BYTES})
        staged_at = ["PdS_smem"]
        if drain:   # barrier (2): dP result -> dS chain -> st.shared, __syncthreads, then ldmatrix
            staged_at = [ops.add("bar_dS", "latency", drain["dS"], ["PdS_smem"], einsum="dS")]
        mma("dV", staged_at, bn * bm, bm * d, wm_dkv, bm)
        if next_loads:
            issued["dO"] = ops.load("ldDO", q_bytes, hbm_q, ["dV"])
        dq_deps = staged_at
        if drain:   # barrier (3): __syncthreads after the dV GEMM (sdO is reloaded), then the dQ ldmatrix
            dq_deps = staged_at + [ops.add("bar_dV", "latency", drain["dV"], ["dV"], einsum="dQ")]
        mma("dQ", dq_deps, bm * bn, bn * d, wm_dq, bn)   # dQ before dK, as both kernels issue them
        accum = bm * d * ACCUM_BYTES
        if section.dq_accumulation == "atomic":   # one atomicAdd (RED.F32) per element and thread
            ops.add("dQ_issue", "fp32", cycles(bm * d, rates.fp32_ops), serial(["dQ"]), einsum="dQ")
            sent = ["dQ_issue"]
            if mech.smem_operand_reads:   # the REDs' data crosses the L1/TEX data path SMEM shares
                sent = [ops.add("dQ_l1", "smem", cycles(accum, rates.smem_bytes), ["dQ_issue"], einsum="dQ",
                                actions={"smem.byte": accum})]
            ops.store("dQacc", accum, sent, einsum="dQ", to_hbm=False)
        else:   # registers -> SMEM, then a TMA bulk reduce-add into L2
            ops.add("dQ_smem", "smem", cycles(accum, rates.smem_bytes), ["dQ"], einsum="dQ",
                    actions={"smem.byte": accum})
            ops.store("dQacc", accum, ["dQ_smem"], einsum="dQ", to_hbm=False)
            if mech.smem_operand_reads:   # the TMA reads dQ back from SMEM, asynchronously
                deferred.append(("dQ_tma_read", accum, "dQ_smem"))
        mma("dK", staged_at, bn * bm, bm * d, wm_dkv, bm)
        return issued

    deferred: list[tuple[str, float, str]] = []

    def flush(ops: OpList) -> None:
        """SMEM work of asynchronous units (the TMA), after the block's own SMEM work in issue order."""
        for op_id, nbytes, after in deferred:
            ops.add(op_id, "smem", cycles(nbytes, rates.smem_bytes), [after], einsum="dQ",
                    actions={"smem.byte": nbytes})
        deferred.clear()

    pro, body, epi = OpList(rates, workload.dtype), OpList(rates, workload.dtype), OpList(rates, workload.dtype)
    kv = list(pro.load("ldKV", 2 * bn * d * b, 1.0, (), smem_write=smem_fill))
    first = loads(pro, {})
    fills(pro, first)
    if blocks > 1:
        previous = {t: [("prev", i) for i in ids] + ([("prev", f"fill{t}")] if smem_fill else [])
                    for t, ids in first.items()}
        if in_phase and mech.source_load_points:
            # FA2: this iteration computes block i and, as the source issues them, loads block i + 1's
            # Q once dS is computed and its dO once the dV GEMM has read the single dO buffer
            fills(body, compute(body, previous, kv, next_loads=True))
            flush(body)
        else:
            # the buffer of block i + 1 is the one block i + 1 - stages used; with 2 stages, block i - 1's
            reuse = ("prev", "dK") if section.stages > 1 else "dK"
            nxt = loads(body, {"Q": [reuse], "dO": [("prev", "dV") if section.stages > 1 else "dV"]})
            compute(body, previous, kv)
            fills(body, nxt)
            flush(body)
    last = {t: list(ids) + ([f"fill{t}"] if smem_fill else []) for t, ids in first.items()}
    # causal: the query blocks a K/V block's CTA visits last straddle the diagonal and are masked
    # (FA2 ``apply_mask_causal`` when m_block * kBlockM < (n_block + 1) * kBlockN; FA3 the same test);
    # their mask work is charged with the last block's (the order within the CTA's last blocks aside)
    diagonal = min(blocks, -(-bn // bm)) if workload.causal and mech.causal_diagonal_mask else 0
    compute(epi, last, kv, masked_blocks=diagonal)   # the most recent load of each
    flush(epi)
    epi.fp32("dKV_pack", 2 * bn * d * 0.5, [], einsum="dK")   # dK, dV packed to 16 bits
    epi.store("stKV", 2 * bn * d * GRAD_BYTES, ["dKV_pack", "dK", "dV"], einsum="dK")
    return sm_schedule(pro.ops, body.ops, blocks - 1, epi.ops, {}, name=f"backward CTA x{blocks}")


def _helpers(workload: GpuAttention, spec: GpuSpec, rates: Rates) -> tuple[Schedule, ...]:
    """Pre-processing (read dO and O, write D, zero dQ's FP32 buffer) and post-processing (read dQ in
    FP32, write it in 16 bits), one SM's share of the bytes each."""
    elements = workload.batch * workload.heads * workload.seq * workload.head_dim
    rows = workload.batch * workload.heads * workload.seq
    pre_read = 2 * elements * workload.element_bytes / spec.sms
    pre_write = (rows * 4 + elements * ACCUM_BYTES) / spec.sms
    post_read, post_write = elements * ACCUM_BYTES / spec.sms, elements * GRAD_BYTES / spec.sms
    out = []
    for name, read, write in (("preprocess", pre_read, pre_write), ("postprocess", post_read, post_write)):
        ops = OpList(rates, workload.dtype)
        ops.load("rd", read, 1.0, ())
        ops.store("wr", write, [])
        out.append(sm_schedule(ops.ops, (), 0, (), {}, name=name))
    return tuple(out)


__all__ = ["BackwardMapping", "BackwardSection", "BackwardTile", "GEMMS_PER_TILE", "MASK_OPS_PER_SCORE",
           "backward_flops", "backward_section", "map_backward"]
