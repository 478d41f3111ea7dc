"""RETIRED hand-written mapper, kept as the GPU equivalence tests' independent oracle.

FlashAttention-2 on an H100-like GPU: mma.sync GEMMs, softmax in series, no Hopper-specific features.

Each warp of a CTA owns ``block_m / warps`` query rows and runs, for every K/V tile, in series: S = Q K^T
(mma.sync, operands read from SMEM with ldmatrix), the softmax (row max, scale-and-subtract and row sum
on the FP32 lanes, exp on the MUFU), the rescale of its O accumulator, and O += P V (mma.sync, V from
SMEM). All warps of a CTA work on the same tile between ``__syncthreads`` barriers, and nothing staggers
the CTAs resident on an SM, so the schedule runs every resident CTA's warps in phase: the GEMM, softmax
and GEMM phases of the SM follow each other (GA §2.5.1: FA2's time is closer to the sum of the roofs).
K/V tiles are loaded with cp.async into single SMEM buffers: V_j while S_j and its softmax are computed,
K_{j+1} during O += P_j V_j.

Tensor rate: ``mma_sync_tensor_fraction`` of the peak (the spec's calibration constant). Tile sizes are
those of FA2 v2.5.8's launch template on H100 (csrc/flash_attn/src/flash_fwd_launch_template.h):
head dim 64: 128 x 128; 128: 128 x 64; 256: 64 x 64; 4 warps each, two CTAs per SM (registers).
"""
from __future__ import annotations

from typing import Any

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.archsim.schedule import Schedule
from handwritten_gpu_costs import keys_fill, rows_fill, FP32_OPS_PER_ROW_TILE, FP32_OPS_PER_SCORE, MASK_OPS_PER_SCORE, MUFU_OPS_PER_ROW_TILE
from attnsim.mappers.gpu_common import (
    CtaTile,
    CtaWork,
    GpuAttention,
    GpuMapping,
    OpList,
    Rates,
    hbm_fraction_of_kv,
    launch_order,
    occupancy,
    sm_schedule,
)

DESIGN = "flash2"
WARP_THREADS = 32
MMA_K = 16
"""Reduction depth of one mma.sync.m16n8k16 step."""
REGISTERS_PER_THREAD = 255
"""FA2's forward kernels use the whole per-thread register budget (accumulators for S and O)."""

TILES: dict[int, tuple[int, int, int]] = {64: (128, 128, 4), 128: (128, 64, 4), 256: (64, 64, 4)}
"""head_dim -> (block_m, block_n, warps) of FA2 v2.5.8 on H100 (module docstring)."""


def flash2_tile(spec: GpuSpec, workload: GpuAttention) -> CtaTile:
    """FA2's tile: SMEM holds one Q, one K and one V tile; registers as :data:`REGISTERS_PER_THREAD`."""
    block_m, block_n, warps = TILES[workload.head_dim]
    b, d = workload.element_bytes, workload.head_dim
    return CtaTile(block_m=block_m, block_n=block_n, consumers=warps, threads=warps * WARP_THREADS,
                   registers_per_thread=min(REGISTERS_PER_THREAD,
                                            spec.storage.max_registers_per_thread.value),
                   smem_bytes=(block_m + 2 * block_n) * d * b, stages=1)


def flash2_cta_schedule(spec: GpuSpec, workload: GpuAttention, tile: CtaTile, work: CtaWork,
                        resident: int) -> Schedule:
    """``resident`` FA2 CTAs, each over ``work.tiles`` K/V tiles, in phase on one SM."""
    rates = Rates.of(spec, workload.dtype, "mma_sync_tensor_fraction")
    b, d = workload.element_bytes, workload.head_dim
    bm, bn, warps = tile.block_m, tile.block_n, tile.consumers
    scores = bm * bn
    gemm_flops = 2.0 * bm * bn * d
    kv_bytes = bn * d * b * keys_fill(workload.seq, bn, work.tiles)
    rfill = rows_fill(workload.seq, bm, work)
    qk_smem = (bm + warps * bn) * d * b     # every warp reads its Q rows and the whole K tile
    pv_smem = warps * bn * d * b            # ... and the whole V tile (P stays in registers)
    qk_steps, pv_steps = d // MMA_K, bn // MMA_K   # ldmatrix/mma steps along each GEMM's reduction
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    copies = [f"c{c}" for c in range(resident)]
    n = work.tiles

    def ids(ends: tuple[str, ...], lag: int = 0) -> tuple[Any, ...]:
        return ends if not lag else tuple(("prev", e, lag) for e in ends)

    def softmax(ops: OpList, c: str, masked: bool) -> None:
        extra = MASK_OPS_PER_SCORE * scores if masked else 0.0
        ops.fp32(f"max_{c}", scores + extra, (f"qk_{c}",), einsum="RM")
        ops.exp(f"exp_{c}", scores + MUFU_OPS_PER_ROW_TILE * bm, (f"max_{c}",), einsum="SLN")
        ops.fp32(f"fma_{c}", scores, (f"max_{c}",), einsum="SLN")
        ops.fp32(f"sum_{c}", (FP32_OPS_PER_SCORE - 2.0) * scores + FP32_OPS_PER_ROW_TILE * bm,
                 (f"exp_{c}", f"fma_{c}"), einsum="RD")

    # ---- prologue: Q and K_0 (cp.async), tile 0's S and softmax; V_0
    pro = OpList(rates, workload.dtype)
    ready: dict[str, tuple[Any, ...]] = {}
    for c in copies:
        q = pro.load(f"ldq_{c}", bm * d * b * rfill, 1.0, (), einsum="Q", smem_write=True)
        k0 = pro.load(f"ldk_{c}", kv_bytes, hbm_kv, (), einsum="K", smem_write=True)
        ready[c] = (*q, *k0)
    for c in copies:
        pro.load(f"ldv_{c}", kv_bytes, hbm_kv, (), einsum="V", smem_write=True)
    for c in copies:
        pro.gemm(f"qk_{c}", gemm_flops, ready[c], einsum="QK", smem_bytes=qk_smem, k_steps=qk_steps)
    for c in copies:   # FA2 walks the K/V tiles from the diagonal backwards: the masked ones first
        softmax(pro, c, masked=work.masked > 0)
    if work.masked > 1:   # the other masked tiles' compare/select, charged here (uniform body)
        for c in copies:
            pro.fp32(f"mask_{c}", MASK_OPS_PER_SCORE * scores * (work.masked - 1), (f"max_{c}",),
                     einsum="RM")
    for c in copies:
        pro.fp32(f"rescale_{c}", bm * d, (f"max_{c}",), einsum="RNV")

    # ---- body, tile i = 1 .. n-1: K_i was loaded during PV_{i-1}; V_i loads during S_i
    body = OpList(rates, workload.dtype)
    v_hbm = hbm_kv > 0
    for c in copies:   # O += P_{i-1} V_{i-1}; then K_i may be loaded (K buffer free after S_{i-1})
        v_ready = (f"ldv_{c}_l2", *((f"ldv_{c}_hbm",) if v_hbm else ()))
        body.gemm(f"pv_{c}", gemm_flops, (("prev", f"sum_{c}"), ("prev", f"rescale_{c}"),
                                          *ids(v_ready, 1)), einsum="AV", smem_bytes=pv_smem, k_steps=pv_steps)
    for c in copies:
        body.load(f"ldk_{c}", kv_bytes, hbm_kv, (("prev", f"qk_{c}"),), einsum="K", smem_write=True)
    for c in copies:   # V_i after PV_{i-1} has read V_{i-1}
        body.load(f"ldv_{c}", kv_bytes, hbm_kv, (f"pv_{c}", f"pv_{c}_ldsm"), einsum="V", smem_write=True)
    for c in copies:
        k_ready = (f"ldk_{c}_l2", *((f"ldk_{c}_hbm",) if v_hbm else ()))
        body.gemm(f"qk_{c}", gemm_flops, (*k_ready, f"pv_{c}"), einsum="QK", smem_bytes=qk_smem, k_steps=qk_steps)
    for c in copies:
        softmax(body, c, masked=False)
    for c in copies:
        body.fp32(f"rescale_{c}", bm * d, (f"max_{c}", f"pv_{c}"), einsum="RNV")

    # ---- epilogue: last PV, 1/rowsum, O scaling, O store (via SMEM)
    epi = OpList(rates, workload.dtype)
    for c in copies:
        v_ready = (f"ldv_{c}_l2", *((f"ldv_{c}_hbm",) if v_hbm else ()))
        epi.gemm(f"pv_{c}", gemm_flops, (f"sum_{c}", f"rescale_{c}", *v_ready), einsum="AV",
                 smem_bytes=pv_smem, k_steps=pv_steps)
    for c in copies:
        epi.exp(f"rcp_{c}", bm, (f"pv_{c}",), einsum="AV")
        epi.fp32(f"scale_{c}", bm * d * 1.5, (f"rcp_{c}",), einsum="AV")
    for c in copies:
        epi.store(f"sto_{c}", bm * d * 2 * rfill, (f"scale_{c}",), einsum="AV")
    return sm_schedule(pro.ops, body.ops, n - 1, epi.ops, {}, name=f"{DESIGN} CTA x{n} (x{resident})")


def map_attention(workload: GpuAttention, spec: GpuSpec, *, options: Any = None) -> GpuMapping:
    """FA2's mapping of ``workload`` on ``spec`` (module docstring). ``options`` is unused."""
    tile = flash2_tile(spec, workload)
    occ = occupancy(spec, tile)
    return GpuMapping(
        design=DESIGN, workload=workload, tile=tile, occupancy=occ,
        order=tuple(launch_order(workload, tile, longest_first=False)),
        cta_schedule=lambda work: flash2_cta_schedule(spec, workload, tile, work, occ.resident_ctas),
        tensor_instruction="mma.sync",
        choices={"block_m": tile.block_m, "block_n": tile.block_n, "warps": tile.consumers})
