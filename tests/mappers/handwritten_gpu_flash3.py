"""RETIRED hand-written mapper, kept as the GPU equivalence tests' independent oracle.

FlashAttention-3 on an H100-like GPU: warp-specialised, ping-pong, 2-stage GEMM-softmax pipelining.

One CTA per SM (FA3 launches with one block per multiprocessor and moves registers to the consumers
with ``setmaxnreg``). A *producer* warpgroup loads Q once and K/V tiles into a ``stages``-deep SMEM
ring with TMA; ``consumers`` warpgroups (64 query rows each) run the 1-pass cascade of GA §3.0 on
each K/V tile: S = Q K^T (wgmma), row max, exp (MUFU) with scale-and-subtract and row sum (FP32),
rescale of the O accumulator, O += P V (wgmma). Three switches reproduce FA3's ablation (GA §2.4):

- ``warp_specialized``: a producer issues the loads ahead of the consumers (off: the consumers issue
  the next tile's loads themselves after finishing with the previous stage, and the warpgroups stay
  in phase because they share the load barrier -- no ping-pong);
- ``pingpong``: the consumer warpgroups take turns on the tensor cores (named barriers), so one's
  softmax runs while the other's GEMMs do (off: the warpgroups run in phase);
- ``intra_pipeline``: within a warpgroup, S_{j+1} = Q K_{j+1}^T is issued before O += P_j V_j, so the
  softmax of tile j+1 overlaps the second GEMM of tile j (off: the GEMMs of a tile and its softmax
  follow each other).

Tile sizes are those of FA3's launch template at the paper's release (hopper/flash_fwd_launch_template.h,
Dao-AILab/flash-attention, July 2024): head dim 64: 192 x 128 with 3 consumer warpgroups; 128:
128 x 176 (128 x 128 causal) with 2; 256: 128 x 80 with 2; two K/V stages.
"""
from __future__ import annotations

from dataclasses import dataclass
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

DESIGN = "flash3"
WARPGROUP_THREADS = 128
ROWS_PER_WARPGROUP = 64   # wgmma's M


@dataclass(frozen=True)
class Flash3Options:
    """FA3's scheduling switches (all on = the published kernel)."""

    warp_specialized: bool = True
    pingpong: bool = True
    intra_pipeline: bool = True


def wgmma_tile(spec: GpuSpec, workload: GpuAttention, block_m: int, block_n: int, consumers: int,
               stages: int = 2, cluster: int = 1) -> CtaTile:
    """A warp-specialised wgmma CTA: ``consumers`` + 1 warpgroups, SMEM = Q + stages x (K + V) tiles,
    the register file split evenly over the threads (one CTA per SM by design)."""
    threads = (consumers + 1) * WARPGROUP_THREADS
    registers = min(spec.storage.max_registers_per_thread.value,
                    (spec.storage.register_file_bytes_per_sm.value // 4 // threads) // 8 * 8)
    b = workload.element_bytes
    d = workload.head_dim
    smem = block_m * d * b + stages * 2 * block_n * d * b
    return CtaTile(block_m=block_m, block_n=block_n, consumers=consumers, threads=threads,
                   registers_per_thread=registers, smem_bytes=smem, stages=stages, cluster=cluster)


def flash3_tile(spec: GpuSpec, workload: GpuAttention) -> CtaTile:
    """FA3's tile for the head dimension (module docstring)."""
    d = workload.head_dim
    if d == 64:
        return wgmma_tile(spec, workload, 192, 128, 3)
    # non-causal head dims 128/256 run in clusters of 2 CTAs (TMA multicast of K/V) when the number of
    # 128-row query blocks is even
    cluster = 2 if not workload.causal and (-(-workload.seq // 128)) % 2 == 0 else 1
    if d == 128:
        return wgmma_tile(spec, workload, 128, 128 if workload.causal else 176, 2, cluster=cluster)
    return wgmma_tile(spec, workload, 128, 80, 2, cluster=cluster)


def _prev(ids: tuple[str, ...], lag: int = 1) -> tuple[Any, ...]:
    return tuple(("prev", i, lag) for i in ids)


def consumer_iteration(ops: OpList, work_rows: int, tile: CtaTile, workload: GpuAttention, *,
                       w: int, masked: bool, k_ready: tuple[Any, ...], v_prev_ready: tuple[Any, ...],
                       releases_k: dict[str, int] | None, releases_v: dict[str, int] | None,
                       exp_ops_per_score: float = 1.0, fp32_extra_per_score: float = 0.0,
                       emit_qk: bool = True, emit_pv: bool = True, emit_softmax: bool = True,
                       rescale_waits_pv: bool | None = None, order: str = "qk_pv",
                       qk_extra_deps: tuple[Any, ...] = ()) -> None:
    """One warpgroup's work on one K/V tile, in the 2-stage-pipelined form (body iteration i):
    qk (tile i), pv (tile i-1, needs the previous softmax and rescale), then the softmax of tile i and
    the rescale of O by its correction factor (after pv). ``order`` 'pv_qk' issues pv first.
    ``exp_ops_per_score`` / ``fp32_extra_per_score`` let FuseMax move exponentials to the FP32 lanes."""
    rows, bn, d = work_rows, tile.block_n, workload.head_dim
    scores = rows * bn
    gemm_flops = 2.0 * rows * bn * d
    tag = f"w{w}"

    def qk() -> None:
        ops.gemm(f"qk_{tag}", gemm_flops, (*k_ready, *qk_extra_deps), einsum="QK", releases=releases_k)

    def pv() -> None:
        ops.gemm(f"pv_{tag}", gemm_flops, (("prev", f"sum_{tag}"), ("prev", f"rescale_{tag}"),
                                           *v_prev_ready), einsum="AV", releases=releases_v)

    if emit_qk and order == "qk_pv":
        qk()
    if emit_pv:
        pv()
    if emit_qk and order == "pv_qk":
        qk()
    if not emit_softmax:
        return
    mask_ops = MASK_OPS_PER_SCORE * scores if masked else 0.0
    ops.fp32(f"max_{tag}", scores + mask_ops, (f"qk_{tag}",), einsum="RM")
    ops.exp(f"exp_{tag}", scores * exp_ops_per_score + MUFU_OPS_PER_ROW_TILE * rows, (f"max_{tag}",),
            einsum="SLN")
    ops.fp32(f"fma_{tag}", scores * (1.0 + fp32_extra_per_score), (f"max_{tag}",), einsum="SLN")
    ops.fp32(f"sum_{tag}", (FP32_OPS_PER_SCORE - 2.0) * scores + FP32_OPS_PER_ROW_TILE * rows,
             (f"exp_{tag}", f"fma_{tag}"), einsum="RD")
    waits_pv = emit_pv if rescale_waits_pv is None else rescale_waits_pv
    rescale_deps: tuple[Any, ...] = (f"max_{tag}",) + ((f"pv_{tag}",) if waits_pv else ())
    ops.fp32(f"rescale_{tag}", rows * d, rescale_deps, einsum="RNV")


def wgmma_cta_schedule(spec: GpuSpec, workload: GpuAttention, tile: CtaTile, work: CtaWork,
                       options: Flash3Options, *, design: str, exp_ops_per_score: float = 1.0,
                       fp32_extra_per_score: float = 0.0) -> Schedule:
    """One FA3-style CTA over ``work.tiles`` K/V tiles (the last ``work.masked`` on the diagonal)."""
    rates = Rates.of(spec, workload.dtype, "wgmma_tensor_fraction")
    b = workload.element_bytes
    d = workload.head_dim
    rows = tile.rows_per_consumer
    consumers = range(tile.consumers)
    k_bytes = v_bytes = tile.block_n * d * b
    q_bytes = tile.block_m * d * b
    hbm_kv = hbm_fraction_of_kv(workload, tile)
    buffers = {"k_stages": tile.stages * k_bytes, "v_stages": tile.stages * v_bytes}
    last = tile.consumers - 1
    pingpong = options.pingpong and options.warp_specialized
    order = "qk_pv" if options.intra_pipeline else "pv_qk"
    extra = {"exp_ops_per_score": exp_ops_per_score, "fp32_extra_per_score": fp32_extra_per_score}
    n = work.tiles

    def loads(ops: OpList, deps_k: tuple[Any, ...], deps_v: tuple[Any, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        k = ops.load("ldk", k_bytes * keys_fill(workload.seq, tile.block_n, work.tiles), hbm_kv, deps_k, claims={"k_stages": k_bytes}, einsum="K",
                     l2_share=1 / tile.cluster)
        v = ops.load("ldv", v_bytes * keys_fill(workload.seq, tile.block_n, work.tiles), hbm_kv, deps_v, claims={"v_stages": v_bytes}, einsum="V",
                     l2_share=1 / tile.cluster)
        return k, v

    def consumers_work(ops: OpList, masked: bool, k_ready: tuple[Any, ...], v_prev: tuple[Any, ...],
                       *, emit_pv: bool, emit_qk: bool = True, barrier: tuple[Any, ...] = ()) -> None:
        common = dict(masked=masked, k_ready=k_ready, v_prev_ready=v_prev, order=order,
                      qk_extra_deps=barrier, **extra)
        if pingpong:   # each warpgroup's GEMMs, then its softmax; the next warpgroup's GEMMs meanwhile
            for w in consumers:
                consumer_iteration(ops, rows, tile, workload, w=w, emit_qk=emit_qk, emit_pv=emit_pv,
                                   releases_k={"k_stages": k_bytes} if w == last and emit_qk else None,
                                   releases_v={"v_stages": v_bytes} if w == last and emit_pv else None,
                                   **common)
            return
        # in phase: every warpgroup's GEMMs (in the chosen order), then every softmax
        first, second = ("qk", "pv") if order == "qk_pv" else ("pv", "qk")
        for phase in (first, second):
            if (phase == "qk" and not emit_qk) or (phase == "pv" and not emit_pv):
                continue
            for w in consumers:
                consumer_iteration(ops, rows, tile, workload, w=w, emit_qk=phase == "qk",
                                   emit_pv=phase == "pv", emit_softmax=False,
                                   releases_k={"k_stages": k_bytes} if w == last and phase == "qk" else None,
                                   releases_v={"v_stages": v_bytes} if w == last and phase == "pv" else None,
                                   **common)
        for w in consumers:
            consumer_iteration(ops, rows, tile, workload, w=w, emit_qk=False, emit_pv=False,
                               rescale_waits_pv=emit_pv, releases_k=None, releases_v=None,
                               **{**common, "v_prev_ready": ()})

    # ---- prologue: Q, K_0, V_0; tile 0's QK and softmax. FA3 walks the K/V tiles from the diagonal
    # backwards, so the masked tiles come first: tile 0 is masked when any is, and the compare/select
    # work of the other masked tiles is charged here too (the body stays uniform)
    pro = OpList(rates, workload.dtype)
    q = pro.load("ldq", q_bytes * rows_fill(workload.seq, tile.block_m, work), 1.0, (), einsum="Q")
    k0, v0 = loads(pro, (), ())
    consumers_work(pro, masked=work.masked > 0, k_ready=(*q, *k0), v_prev=(), emit_pv=False)
    if work.masked > 1:
        pro.fp32("mask", MASK_OPS_PER_SCORE * (work.masked - 1) * tile.block_m * tile.block_n,
                 tuple(f"max_w{w}" for w in consumers), einsum="RM")

    # ---- body: tiles 1 .. n-1 (tile i's QK and softmax, tile i-1's PV)
    body = OpList(rates, workload.dtype)
    if options.warp_specialized:
        k, v = loads(body, (), ())
    else:   # the consumers issue the loads after finishing with the previous tile
        k, v = loads(body, tuple(("prev", f"qk_w{w}") for w in consumers),
                     tuple(("prev", f"pv_w{w}") for w in consumers))
    # without warp specialisation every iteration ends at a CTA-wide barrier (the consumers must agree
    # that a stage is free before they reload it): the next S = Q K^T waits for all of this iteration
    barrier = () if options.warp_specialized else tuple(
        ("prev", f"{op}_w{w}") for w in consumers for op in ("sum", "rescale", "pv"))
    consumers_work(body, masked=False, k_ready=k, v_prev=_prev(v), emit_pv=True, barrier=barrier)

    # ---- epilogue: last PV, final 1/rowsum and O scaling, O store
    epi = OpList(rates, workload.dtype)
    for w in consumers:
        epi.gemm(f"pv_w{w}", 2.0 * rows * tile.block_n * d,
                 (f"sum_w{w}", f"rescale_w{w}", "ldv_l2", *(("ldv_hbm",) if hbm_kv > 0 else ())),
                 einsum="AV", releases={"v_stages": v_bytes} if w == last else None)
        epi.exp(f"rcp_w{w}", rows, (f"pv_w{w}",), einsum="AV")
        epi.fp32(f"scale_w{w}", rows * d * 1.5, (f"rcp_w{w}",), einsum="AV")
    epi.store("sto", tile.block_m * d * 2 * rows_fill(workload.seq, tile.block_m, work), tuple(f"scale_w{w}" for w in consumers), einsum="AV")
    return sm_schedule(pro.ops, body.ops, n - 1, epi.ops, buffers, name=f"{design} CTA x{n}")


def map_attention(workload: GpuAttention, spec: GpuSpec, *, options: Flash3Options | None = None
                  ) -> GpuMapping:
    """FA3's mapping of ``workload`` on ``spec`` (see the module docstring)."""
    options = options or Flash3Options()
    tile = flash3_tile(spec, workload)
    occ = occupancy(spec, tile)
    return GpuMapping(
        design=DESIGN, workload=workload, tile=tile, occupancy=occ,
        order=tuple(launch_order(workload, tile, longest_first=workload.causal)),
        cta_schedule=lambda work: wgmma_cta_schedule(spec, workload, tile, work, options, design=DESIGN),
        tensor_instruction="wgmma",
        choices={"block_m": tile.block_m, "block_n": tile.block_n, "consumers": tile.consumers,
                 "stages": tile.stages, "cluster": tile.cluster, "warp_specialized": options.warp_specialized,
                 "pingpong": options.pingpong, "intra_pipeline": options.intra_pipeline})
