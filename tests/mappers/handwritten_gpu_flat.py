"""FLAT's row-granular fusion with the 3-pass softmax, on an H100-like GPU.

FLAT (Kao et al., ASPLOS 2023) fuses QK, softmax and AV at the granularity of a block of query rows:
the block's whole score rows are produced, normalised and consumed before the next block starts, so
the softmax can use the 3-pass cascade (max, then exp and sum, then the weighted sum) with no running
state. On a GPU one CTA owns ``block_m`` query rows and makes three passes over the K/V tiles:

1. S_j = Q K_j^T (wgmma) and the running row max; S_j (FP32) is kept in SMEM while the block's score
   rows fit next to Q and the K/V stages, and otherwise spilled: to L2 when every SM's score rows fit
   in L2 together, else to HBM;
2. P_j = exp(S_j - max) (MUFU; scale and subtract on FP32) and the row sum; P_j (16-bit) is written
   back where S_j was;
3. O += P_j V_j (wgmma); at the end O is divided by the row sum and stored.

A producer warpgroup loads K (pass 1), V (pass 3) and spilled S/P tiles ahead of the consumers, with
two stages each; the passes of a CTA follow each other (pass 2 needs the final maxima, pass 3 the P
tiles), so the tensor cores idle during pass 2 -- FLAT's cost on a GPU, next to the spill traffic.
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.archsim.schedule import Block, Schedule
from handwritten_gpu_costs import keys_fill, rows_fill, FP32_OPS_PER_SCORE, MASK_OPS_PER_SCORE
from attnsim.mappers.gpu_common import (
    LATENCY_LANES,
    TENSOR_MUFU,
    CtaTile,
    CtaWork,
    GpuAttention,
    GpuMapping,
    OpList,
    Rates,
    hbm_fraction_of_kv,
    launch_order,
    occupancy,
)
from handwritten_gpu_flash3 import ROWS_PER_WARPGROUP, WARPGROUP_THREADS

DESIGN = "flat"
SCORE_BYTES = 4   # S in FP32
PROB_BYTES = 2    # P in 16 bits


def flat_tile(spec: GpuSpec, workload: GpuAttention) -> tuple[CtaTile, str]:
    """FLAT's tile and where the score rows live: ``smem``, ``l2`` or ``hbm`` (module docstring)."""
    d, b = workload.head_dim, workload.element_bytes
    block_m = 64 if d == 256 else 128
    block_n = 128 if d == 64 else 64
    consumers = block_m // ROWS_PER_WARPGROUP
    stages = 2
    threads = (consumers + 1) * WARPGROUP_THREADS
    registers = min(spec.storage.max_registers_per_thread.value,
                    (spec.storage.register_file_bytes_per_sm.value // 4 // threads) // 8 * 8)
    fixed = block_m * d * b + stages * 2 * block_n * d * b
    rows_bytes = block_m * workload.seq * SCORE_BYTES
    if fixed + rows_bytes <= spec.storage.smem_bytes_per_cta.value:
        where, smem = "smem", fixed + rows_bytes
    else:
        smem = fixed + stages * block_m * block_n * SCORE_BYTES   # staging for spilled S/P tiles
        in_flight = spec.sms * rows_bytes
        where = "l2" if in_flight <= spec.storage.l2_bytes.value else "hbm"
    return CtaTile(block_m=block_m, block_n=block_n, consumers=consumers, threads=threads,
                   registers_per_thread=registers, smem_bytes=smem, stages=stages), where


def flat_cta_schedule(spec: GpuSpec, workload: GpuAttention, tile: CtaTile, where: str,
                      work: CtaWork) -> Schedule:
    """One FLAT CTA: its three passes over ``work.tiles`` K/V tiles."""
    rates = Rates.of(spec, workload.dtype, "wgmma_tensor_fraction")
    b, d = workload.element_bytes, workload.head_dim
    bm, bn = tile.block_m, tile.block_n
    scores = bm * bn
    kv_bytes = bn * d * b
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    spill_hbm = 1.0 if where == "hbm" else 0.0
    tile_s, tile_p = scores * SCORE_BYTES, scores * PROB_BYTES
    buffers = {TENSOR_MUFU: 1, "k_stages": tile.stages * kv_bytes, "v_stages": tile.stages * kv_bytes,
               "s_stages": tile.stages * tile_s}

    def spill_out(ops: OpList, op_id: str, nbytes: float, deps: tuple[Any, ...], einsum: str) -> None:
        if where == "smem":
            ops.add(op_id, "smem", max(1, round(nbytes / rates.smem_bytes)), deps, einsum=einsum,
                    actions={"smem.byte": nbytes})
        else:
            ops.store(op_id, nbytes, deps, einsum=einsum, to_hbm=where == "hbm")

    def spill_in(ops: OpList, op_id: str, nbytes: float, deps: tuple[Any, ...], einsum: str
                 ) -> tuple[str, ...]:
        if where == "smem":
            return (ops.add(op_id, "smem", max(1, round(nbytes / rates.smem_bytes)), deps, einsum=einsum,
                            actions={"smem.byte": nbytes}, claims={"s_stages": tile_s}),)
        return ops.load(op_id, nbytes, spill_hbm, deps, claims={"s_stages": tile_s}, einsum=einsum)

    # prologue: Q
    pro = OpList(rates, workload.dtype)
    kfill, rfill = keys_fill(workload.seq, bn, work.tiles), rows_fill(workload.seq, bm, work)
    q = pro.load("ldq", bm * d * b * rfill, 1.0, (), einsum="Q")

    # pass 1: S_j = Q K_j^T, running max, S_j out
    p1 = OpList(rates, workload.dtype)
    k = p1.load("ldk", kv_bytes * kfill, hbm_kv, (), claims={"k_stages": kv_bytes}, einsum="K")
    p1.gemm("qk", 2.0 * scores * d, (*k, *q), einsum="QK", releases={"k_stages": kv_bytes})
    p1.fp32("max", scores, ("qk",), einsum="GM")
    spill_out(p1, "s_out", tile_s * kfill * rfill, ("qk",), "QK")

    # between passes 1 and 2: the mask on the diagonal tiles
    mid = OpList(rates, workload.dtype)
    mid.fp32("mask", MASK_OPS_PER_SCORE * scores * work.masked, ("max",), einsum="GM")

    # pass 2: P_j = exp(S_j - max), row sum, P_j out
    p2 = OpList(rates, workload.dtype)
    s_in = spill_in(p2, "s_in", tile_s * kfill * rfill, ("mask",), "SN")
    p2.exp("exp", scores, s_in, einsum="SN")
    p2.fp32("fma", scores, s_in, einsum="SN", releases={"s_stages": tile_s})
    p2.fp32("sum", (FP32_OPS_PER_SCORE - 2.0) * scores, ("exp", "fma"), einsum="SD")
    spill_out(p2, "p_out", tile_p * kfill * rfill, ("sum",), "SN")

    # pass 3: O += P_j V_j
    p3 = OpList(rates, workload.dtype)
    p_in = spill_in(p3, "p_in", tile_p * kfill * rfill, ("sum",), "AV")
    v = p3.load("ldv", kv_bytes * kfill, hbm_kv, (), claims={"v_stages": kv_bytes}, einsum="V")
    p3.gemm("pv", 2.0 * scores * d, (*p_in, *v), einsum="AV",
            releases={"v_stages": kv_bytes, "s_stages": tile_s})

    # epilogue: divide by the row sum, store O
    epi = OpList(rates, workload.dtype)
    epi.exp("rcp", bm, ("pv",), einsum="AV")
    epi.fp32("scale", bm * d * 1.5, ("rcp",), einsum="AV")
    epi.store("sto", bm * d * 2 * rfill, ("scale",), einsum="AV")

    n = work.tiles
    blocks = (Block(tuple(pro.ops), 1, "prologue"), Block(tuple(p1.ops), n, "pass1"),
              Block(tuple(mid.ops), 1, "mask"), Block(tuple(p2.ops), n, "pass2"),
              Block(tuple(p3.ops), n, "pass3"), Block(tuple(epi.ops), 1, "epilogue"))
    return Schedule(blocks=tuple(block for block in blocks if block.ops), buffers_bytes=buffers,
                    lanes={"latency": LATENCY_LANES}, name=f"{DESIGN} CTA x{n} ({where})")


def map_attention(workload: GpuAttention, spec: GpuSpec, *, options: Any = None) -> GpuMapping:
    """FLAT's mapping of ``workload`` on ``spec`` (module docstring). ``options`` is unused."""
    tile, where = flat_tile(spec, workload)
    occ = occupancy(spec, tile)
    return GpuMapping(
        design=DESIGN, workload=workload, tile=tile, occupancy=occ,
        order=tuple(launch_order(workload, tile, longest_first=workload.causal)),
        cta_schedule=lambda work: flat_cta_schedule(spec, workload, tile, where, work),
        tensor_instruction="wgmma",
        choices={"block_m": tile.block_m, "block_n": tile.block_n, "score_rows_in": where})
