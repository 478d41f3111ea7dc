"""Named schedule mechanisms of the GPU templates behind FP8 and short sequences (issue #17).

Each mechanism is a documented part of a CTA's schedule that a mapping switches on in its
``gpu.mechanisms`` section (all off by default, so a mapping that does not name them is unchanged)
and a study or test switches off one at a time (:func:`with_mechanisms`). None is fitted to a
published point: every cost is an instruction or byte count read from the kernel's source (the
flash-attention repository, cited per constant) priced at the spec's rates and latencies.

``cta_setup``         per work tile, before its first load: the dynamic persistent tile scheduler
                      (FA3 causal) fetches the next tile index with an ``atomicAdd`` on a global
                      counter, one L2 round trip (spec ``l2_latency_cycles``); the static scheduler
                      computes it (no cost).
``epilogue_smem``     the O tile goes registers -> shared memory -> TMA store: the consumers write
                      ``rows x head_dim`` 16-bit elements into SMEM (``stmatrix``, 128 B per port
                      cycle; FP8: 16-bit scalar stores that undo the column permutation, 64 B per warp
                      instruction, one issue slot each) before the store can read them.
``kernel_launch``     one launch gap before the first CTA (:data:`LAUNCH_GAP_S`).
``persistent_overlap`` a persistent kernel's producer loads the next work tile's Q and first K/V
                      tiles while the consumers finish the previous tile's epilogue: a CTA's
                      prologue runs beside the previous CTA's epilogue (on the same SM units) instead
                      of after it.
``fp8_v_transpose``   FP8 WGMMA takes only K-major B operands, so a per-tile input that a contraction
                      reduces over the keys rank (V in ``O += P V``) is transposed in SMEM by the
                      producer warpgroup per K/V tile: ``ldmatrix.trans`` + byte permutes +
                      ``stmatrix`` (:data:`TRANSPOSE_ISSUE_PER_BYTE` issue slots and 2 bytes of SMEM
                      port traffic per byte), before the contraction may read it. The transposed
                      buffer doubles as O's staging buffer (``SharedStorageQKVOVt``), so with
                      ``persistent_overlap`` the next tile's first transpose waits for the O store.
``fp8_accumulator_permute`` the FP32 accumulator of the first GEMM, converted to FP8, is not in the
                      register layout of the second GEMM's A operand: two byte permutes per 8
                      elements (:data:`PERMUTE_OPS_PER_ELEMENT`) on the ALU issue slots.

Forward in-phase mechanism (:data:`IN_PHASE_MECHANISMS`, read by mappers/gpu_template_in_phase.py):

``lagging_fill_order`` FA2's forward issues V's ``cp.async`` load at the top of each K/V iteration, right
                      before the QK GEMM (flash_fwd_kernel.h, v2.5.8: ``copy(gmem_tiled_copy_QKV, tVgV,
                      tVsV)``, ``cp_async_fence``, then ``flash::gemm`` for S), and waits for it only after
                      that GEMM (``cp_async_wait<0>`` before the softmax). The data lands at least an L2
                      latency after the issue, by when the GEMM's ``ldmatrix`` reads are queued at the SMEM
                      port, so V's SMEM write follows the QK GEMM's operand reads on the port. Off, the
                      template's in-order port serves every copy's V write first, so one resident CTA's QK
                      reads wait for the other CTA's V load latency (a wait the kernel does not have).

Backward-pass mechanisms (:data:`BACKWARD_MECHANISMS`, read by mappers/gpu_template_backward.py):

``smem_operand_reads`` the warpgroup MMAs (wgmma) of a warp-specialised backward read their SMEM
                      operands through the SM's shared-memory port (128 B per clock), as the
                      ldmatrix reads of an mma.sync kernel do: per GEMM the A operand once per
                      warpgroup column (unless it comes from registers, ``registers_a``) and B once
                      per warpgroup row of the tile's ``warps_m`` layout; the TMA / cp.async loads
                      of Q, dO, K, V and the dS / dQ staging also use the port, and so do FA2's dQ
                      atomics (RED), whose data cross the L1/TEX data path that shared memory shares
                      (Nsight Compute Kernel Profiling Guide, hardware model: L1/TEX cache and shared
                      memory share the SM's on-chip memory). Off, wgmma operands are free (the tensor
                      rate alone) and loads and atomics do not touch the port.
``source_load_points`` an in-phase backward (FA2) issues the next query block's Q load after dS is
                      computed and its dO load after the dV GEMM (dO has a single SMEM buffer: "we're
                      writing to the same sdO location"), both waited for at the top of the next
                      iteration (``cp_async_wait<0>``; csrc/flash_attn/src/flash_bwd_kernel.h,
                      v2.5.8). Off, both are issued at the start of the iteration (double-buffered).
``operand_read_completion`` a GEMM whose operands are read from SMEM in k-steps (16 deep, the
                      m16n8k16 MMA's K) is software-pipelined: read step s + 1, then MMA step s
                      (``flash::gemm`` in csrc/flash_attn/src/utils.h, v2.5.8), so its result is ready
                      only after its last operand read and one more k-step of tensor work. Off, the
                      result is ready when the tensor work alone is done, even while the port still
                      feeds the GEMM. It binds only where the reads take longer than the tensor work
                      (FA2 on the H100: 128 B/clock against 2731 mma.sync FLOP/clock; not on the A100).
``source_op_order``   an in-phase backward (FA2) issues the scale-and-subtract, exp2, P's pack to 16
                      bits and P's SMEM store before the dP GEMM, and dS's pack and store after it
                      (flash_bwd_kernel.h, v2.5.8: ``scale_apply_exp2``, ``convert_type``, ``copy`` to
                      sP, then ``gemm`` for dP). Off, P's exponentials follow the dP GEMM and P's store
                      joins dS's.
``causal_diagonal_mask`` causal: the query blocks that straddle a K/V block's diagonal
                      (``m_block * kBlockM < (n_block + 1) * kBlockN``: ceil(block_n / block_m) of them,
                      the last a CTA visits) are masked before the exponentials, 2 FP32 ops per score
                      (FA2 mask.h ``apply_mask_causal``). Off, causal only skips the blocks above it.
``barrier_drain``     an in-phase backward (FA2, one CTA of 8 warps per SM) separates the phases of a
                      query block with CTA-wide barriers, where the pipelines drain (no other CTA fills
                      them): :data:`FA2_BARRIERS_PER_ITERATION` ``__syncthreads()`` per query block
                      (compute_dq_dk_dv_1colblock, flash_bwd_kernel.h, v2.5.8, Seq_parallel, Is_V_in_regs
                      and No_double_buffer false for head dims 64 and 128): (1) at the top, after
                      ``cp_async_wait<0>``, before the S GEMM's first ``ldmatrix``; (2) after dS is
                      stored to SMEM, before the dV GEMM reads P^T / dO^T; (3) after the dV GEMM ("we're
                      writing to the same sdO location"), before the dQ GEMM. Each exposes the latency of
                      the dependent instructions around it that the throughput schedule overlaps
                      (:func:`barrier_drain_cycles`): the first ``ldmatrix`` after every barrier (one SMEM
                      latency before the tensor pipe restarts), and before barrier (2) the chain from the
                      dP GEMM's last ``mma.sync`` result through dS = P (dP - D) (FADD, FMUL), the F32 -> F16
                      convert and the ``st.shared`` that the barrier must see performed (PTX ISA
                      ``bar.sync``: prior memory accesses are performed before it completes). Barriers (1)
                      and (3) follow GEMMs whose results are not read across them (dK, dV stay in
                      registers), so only their far side is charged; the ``bar.sync`` instruction's own
                      latency is not charged (no published figure found). No work crosses a barrier: the
                      next block's S operand reads wait for the previous block's dK GEMM (off, the
                      throughput schedule lets them run beside its last k-step). The ``cp_async_wait<0>``
                      before barrier (1) also waits for dO, which the schedule keeps at the dP GEMM
                      (``source_load_points``): the drain adds latency, not that load wait. Latencies:
                      the spec's ``latencies`` section. Off, phases follow one another at the units'
                      throughput.
                      Not for FA3: its consumers' only blocking barrier per query block
                      (``NamedBarrier::sync`` dQEmpty before the dQ wgmma, hopper/
                      mainloop_bwd_sm90_tma_gmma_ws.hpp at bafe2530) is passed with the dK wgmma still in
                      flight (``flash::gemm<..., wg_wait=1>``), so the tensor cores do not drain there.

The exponential rate (MUFU, unchanged while the FP8 tensor rate doubles), the causal diagonal-tile
mask work and the causal wave imbalance are not switches here: they follow from the spec's rates,
the cascade's filter and the launch order (docs/validation.md's ablation switches them through the
spec and the mapping).

Issue slots are charged on the ``fp32`` unit (the ALU lanes): one warp instruction occupies 32 of its
lanes for a cycle, so an instruction costs :data:`LANES_PER_WARP_INSTRUCTION` lane-ops; that is how the
transpose and the permutes compete with the softmax for the SM's schedulers.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from attnsim.archsim.gpu_spec import Latencies
from attnsim.archsim.schedule import Operation

LANES_PER_WARP_INSTRUCTION = 32
"""One warp instruction = 32 threads: 32 FP32-lane op slots of the SM's 128 per cycle."""

TRANSPOSE_ISSUE_PER_BYTE = 6 * LANES_PER_WARP_INSTRUCTION / 512
"""FP8 V transpose, per byte of V: per 512 B a warp issues one ``ldmatrix.x4.trans`` (4 x 8x8 b16 =
512 B), four ``prmt`` byte permutes (one per 32-bit register loaded) and one ``stmatrix.x4``: 6 warp
instructions. Source: ``SmemTransposeFp8_64x64`` in hopper/mainloop_fwd_sm90_tma_gmma_ws.hpp
(Dao-AILab/flash-attention commit 5018ac6a, "Fp8 kernel with in-kernel transpose of V in producer",
2024-07-30): per 64x64 atom and thread 2 LDSM (U16x8 trans), 8 ``__byte_perm``, 2 STSM (U32x4)."""

TRANSPOSE_SMEM_BYTES_PER_BYTE = 2.0
"""The transpose reads V from SMEM and writes V^T back: 2 bytes of SMEM port traffic per byte."""

PERMUTE_OPS_PER_ELEMENT = 2 / 8
"""``permute_regs_A_to_C`` (hopper/utils.h, commit 5018ac6a): two ``__byte_perm`` per 8 FP8
elements of P (two 32-bit registers)."""

SCALAR_STORE_BYTES = 64
"""FP8 epilogue: O leaves the registers in 16-bit scalar stores (``UniversalCopy<uint16_t>``,
``TiledCopyrO`` in hopper/epilogue_fwd_sm90_tma.hpp, commit 5018ac6a) that undo the column
permutation: 32 threads x 2 B = 64 B per warp instruction and SMEM port cycle."""

LAUNCH_GAP_S = 2.0e-6
"""Estimate: the GPU-side gap between back-to-back kernels on one stream when the host launches
ahead (benchmark loops of 100 calls): "a few microseconds" per launch (torchedup.dev kernel launch
overhead; devbytes.co.in: 5-20 us of host work, hidden by asynchronous queueing except for the
device's own command fetch and set-up). Not fitted: 2 us is the low end of "a few"."""

MECHANISMS: tuple[str, ...] = ("cta_setup", "epilogue_smem", "kernel_launch", "persistent_overlap",
                               "fp8_v_transpose", "fp8_accumulator_permute")
"""The switchable mechanisms, in the order docs/validation.md's ablation lists them."""

BACKWARD_MECHANISMS: tuple[str, ...] = ("smem_operand_reads", "source_load_points", "operand_read_completion",
                                        "source_op_order", "causal_diagonal_mask", "barrier_drain")
"""The backward template's mechanisms (module docstring); docs/validation.md's backward ablation."""


IN_PHASE_MECHANISMS: tuple[str, ...] = ("lagging_fill_order",)
"""The forward in-phase template's mechanisms (module docstring)."""


class Mechanisms(BaseModel):
    """The ``gpu.mechanisms`` section: which named mechanisms the schedule includes (module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cta_setup: bool = False
    epilogue_smem: bool = False
    kernel_launch: bool = False
    persistent_overlap: bool = False
    fp8_v_transpose: bool = False
    fp8_accumulator_permute: bool = False
    smem_operand_reads: bool = False
    source_load_points: bool = False
    operand_read_completion: bool = False
    source_op_order: bool = False
    causal_diagonal_mask: bool = False
    barrier_drain: bool = False
    lagging_fill_order: bool = False


FA2_BARRIERS_PER_ITERATION = 3
"""``__syncthreads()`` per query block of FA2's backward main loop (flash_bwd_kernel.h, v2.5.8,
``compute_dq_dk_dv_1colblock``, the traits of run_mha_bwd_hdim64 / hdim128 with >= 144 KB SMEM:
Is_V_in_regs false, No_double_buffer false, Seq_parallel; the ``!Double_buffer`` and ``Is_last``
barriers are not taken): top of the loop (after ``cp_async_wait<0>``), after dS's SMEM store, after
the dV GEMM."""

DS_DEPENDENT_FP32_INSTRUCTIONS = 3
"""Dependent FP32-pipe instructions from dP's accumulator to dS's 16-bit value in FA2's backward:
``dP - D`` (FADD), ``P * (...)`` (FMUL) (``pointwise_mult`` in flash_bwd_kernel.h, v2.5.8) and the
F32 -> F16 pack (``convert_type``)."""


def barrier_drain_cycles(latencies: Latencies) -> dict[str, int]:
    """Exposed cycles at each of FA2's :data:`FA2_BARRIERS_PER_ITERATION` barriers per query block
    (module docstring, ``barrier_drain``), from a spec's ``latencies`` section (SM clock cycles):
    ``top`` and ``dV`` the first ``ldmatrix`` after the barrier; ``dS`` the dP ``mma.sync`` result, the
    dS FP32 chain, the ``st.shared`` before the barrier and the ``ldmatrix`` after it."""
    smem, mma, fp32 = (latencies.smem_cycles.value, latencies.mma_sync_cycles.value,
                       latencies.fp32_cycles.value)
    return {"top": smem, "dS": mma + DS_DEPENDENT_FP32_INSTRUCTIONS * fp32 + smem + smem, "dV": smem}


def with_mechanisms(section: Any, **switches: bool) -> Any:
    """A copy of a GPU section with some mechanisms set (unknown names: ValueError)."""
    known = MECHANISMS + BACKWARD_MECHANISMS + IN_PHASE_MECHANISMS
    unknown = sorted(set(switches) - set(known))
    if unknown:
        raise ValueError(f"mechanisms: unknown {', '.join(unknown)} (expected {', '.join(known)})")
    return section.model_copy(update={"mechanisms": section.mechanisms.model_copy(update=switches)})


def launch_cycles(mechanisms: Mechanisms, clock_hz: float) -> int:
    """Cycles of the launch gap before the first CTA (0 with ``kernel_launch`` off)."""
    return round(LAUNCH_GAP_S * clock_hz) if mechanisms.kernel_launch else 0


def transposed_inputs(plan: Any, keys_ranks: Iterable[str]) -> list[str]:
    """Per-tile inputs some contraction reduces over a keys rank (V of ``O += P V``): MN-major as
    stored (each key's features contiguous), so FP8 WGMMA needs them transposed."""
    keys = set(keys_ranks)
    work = plan.work
    out: list[str] = []
    for tensor in work.tile_inputs:
        for group in plan.readers_of_input(tensor):
            einsums = [work.cascade.einsum(p.einsum) for p in group.pieces if p.kind == "main"]
            if group.unit == "tensor" and any(keys & set(e.reduced_ranks) for e in einsums):
                out.append(tensor)
                break
    return out


def permute_ops(group: Any, extents: Mapping[str, int]) -> float:
    """FP8 accumulator permutes charged to ``group``: per element its converts pack for a
    contraction (``convert`` pieces; each converts one element per 1/2 op)."""
    converted = sum(p.work(extents) / p.per_point for p in group.pieces if p.kind == "convert" and p.per_point)
    return PERMUTE_OPS_PER_ELEMENT * converted


def renamed_copy(ops: Iterable[Operation], prefix: str) -> list[Operation]:
    """The ops with ids ``prefix + id``, keeping only dependencies among themselves and no stage-buffer
    claims or releases except the tensor/MUFU buffer's (a previous CTA's epilogue, replayed beside
    this CTA's prologue)."""
    ops = list(ops)
    ids = {op.id for op in ops}

    def keep(buffers: Mapping[str, int]) -> dict[str, int]:
        return {k: v for k, v in buffers.items() if k == "tensor_mufu"}

    out = []
    for op in ops:
        deps = tuple(prefix + d for d in op.deps if isinstance(d, str) and d in ids)
        out.append(Operation(prefix + op.id, op.unit, op.duration_cycles, deps, einsum=op.einsum,
                             actions=dict(op.actions), claims_bytes=keep(op.claims_bytes),
                             releases_bytes=keep(op.releases_bytes)))
    return out


__all__ = ["BACKWARD_MECHANISMS", "DS_DEPENDENT_FP32_INSTRUCTIONS", "FA2_BARRIERS_PER_ITERATION", "IN_PHASE_MECHANISMS",
           "barrier_drain_cycles", "LANES_PER_WARP_INSTRUCTION", "LAUNCH_GAP_S", "MECHANISMS", "Mechanisms", "PERMUTE_OPS_PER_ELEMENT",
           "SCALAR_STORE_BYTES", "TRANSPOSE_ISSUE_PER_BYTE", "TRANSPOSE_SMEM_BYTES_PER_BYTE", "launch_cycles",
           "permute_ops", "renamed_copy", "transposed_inputs", "with_mechanisms"]
