"""A GEMM ``C[M,N] = A[M,K] @ B[K,N]`` on a GPU spec, from first principles (no fitted efficiency).

The linear layers of an LLM (QKV, output projection, FFN) are GEMMs whose rows ``M`` are the tokens of
the step (``batch`` in decode, ``batch x prompt`` in prefill) and whose ``B`` is a weight matrix. This
module prices one such GEMM the way a tiled tensor-core kernel (CUTLASS / cuBLAS) runs it:

* **Tiles and CTAs.** The output is cut into ``block_m x block_n`` tiles, one CTA each (edge tiles padded:
  a decode GEMM with ``M = 8`` rows still costs a 64-row tile on the tensor cores). With ``split_k = s``
  the reduction is cut into ``s`` chunks run by ``s`` CTAs per tile, and a second kernel adds the fp32
  partial tiles. Candidate CTA tiles: :data:`BLOCKS` (CUTLASS's tensor-op tile shapes, 64x64 to 128x256;
  ``cutlass/tools/library/scripts/generator.py``); split counts: powers of two up to what fills one wave.
  The candidate with the lowest latency is taken, as a library's heuristic or autotuner would.
* **Waves.** One CTA per SM at a time (:data:`CTAS_PER_SM`); ``ceil(CTAs / SMs)`` waves of equal CTAs.
* **Tensor time per CTA.** ``2 block_m block_n ceil(K / s)`` FLOPs at the SM's dense tensor rate times the
  spec's named fraction of the instruction the GPU has (``wgmma_tensor_fraction`` where it has wgmma,
  else ``mma_sync_tensor_fraction``; both cited in the spec and shared by every point).
* **HBM bytes.** ``A``, ``B`` and ``C`` once each, plus re-reads: the CTAs of one wave cover about a
  square block of ``w_m x w_n`` tiles (rasterisation with swizzling) and share their ``A`` rows and ``B``
  columns through L2, so ``A`` is read once per column block (``ceil(grid_n / w_n)`` times) and ``B`` once
  per row block (``ceil(grid_m / w_m)`` times) -- unless the operand fits in half of L2, when it is read
  once. Split-K adds the fp32 partials (written, then read by the reduction kernel).
* **HBM time per CTA.** Its share of the bytes at one SM's share of the peak bandwidth
  (:attr:`archsim.gpu_spec.GpuSpec.hbm_bytes_per_cycle_per_sm`, the rule of the attention mappers: an idle
  SM does not lend its share to the busy ones), plus one HBM latency for the first tile.
* **CTA time** = ``max(tensor, HBM)`` (a multi-stage pipeline overlaps loads with MMAs) + the latency;
  the kernel = waves x CTA time; with split-K, plus the reduction kernel's bytes at the full bandwidth.

The bound named is ``tensor`` or ``hbm``: whichever of the two per-CTA times is larger.

Not modelled: kernel launch gaps, several CTAs per SM, L2 bandwidth, the epilogue's activation (a few
element-wise ops per output). By construction the latency is never below ``bytes / peak HBM`` nor below
``FLOPs / peak tensor`` (the two bounds the tests derive independently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from attnsim.archsim.gpu_spec import DTYPE_BYTES, GpuSpec
from attnsim.mappers.errors import MappingError

BLOCKS: tuple[tuple[int, int], ...] = ((64, 64), (64, 128), (128, 128), (128, 256))
"""Candidate CTA tiles (block_m, block_n): CUTLASS's tensor-op GEMM tile shapes for sm80 / sm90
(``tools/library/scripts/generator.py`` tile descriptions span 64x64 to 128x256)."""

CTAS_PER_SM = 1
"""CTAs of a GEMM resident on one SM at a time (a 128x256 tile with a 3-4 stage pipeline fills the
shared memory; smaller tiles are charged the same, which can only overstate their time)."""

PARTIAL_BYTES = 4
"""Bytes of one split-K partial sum (fp32 accumulators)."""

OUTPUT_BYTES = 2
"""Bytes of one output element (fp16/bf16 activations)."""


@dataclass(frozen=True)
class GpuGemm:
    """One GEMM's predicted execution on a GPU. Units in the names; ``bound`` is ``tensor`` or ``hbm``."""

    m: int
    n: int
    k: int
    dtype: str
    block_m: int
    block_n: int
    split_k: int
    ctas: int
    waves: int
    flops: float
    hbm_bytes: float
    weight_bytes: float
    cycles: int
    latency_s: float
    tensor_cycles_per_cta: int
    hbm_cycles_per_cta: int
    bound: str

    def report(self) -> dict[str, object]:
        """A flat JSON-ready mapping of the fields."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def tensor_fraction_name(spec: GpuSpec) -> str:
    """The calibration entry of the GEMM instruction the GPU has: wgmma where present, else mma.sync."""
    return "wgmma_tensor_fraction" if spec.has_feature("wgmma") else "mma_sync_tensor_fraction"


def _wave_block(grid_m: int, grid_n: int, tiles_per_wave: int) -> tuple[int, int]:
    """(w_m, w_n): the about-square block of output tiles one wave covers (swizzled rasterisation)."""
    w_m = min(grid_m, max(1, math.isqrt(tiles_per_wave)))
    w_n = min(grid_n, max(1, tiles_per_wave // w_m))
    if w_n == grid_n:                       # a whole row of tiles fits: take more rows instead
        w_m = min(grid_m, max(1, tiles_per_wave // grid_n))
    return w_m, w_n


def _candidate(m: int, n: int, k: int, spec: GpuSpec, dtype: str, block: tuple[int, int], split: int) -> GpuGemm:
    block_m, block_n = block
    element = DTYPE_BYTES[dtype]
    grid_m, grid_n = math.ceil(m / block_m), math.ceil(n / block_n)
    tiles = grid_m * grid_n
    ctas = tiles * split
    slots = spec.sms * CTAS_PER_SM
    waves = math.ceil(ctas / slots)
    w_m, w_n = _wave_block(grid_m, grid_n, max(1, slots // split))
    a_bytes, b_bytes, c_bytes = m * k * element, k * n * element, m * n * OUTPUT_BYTES
    half_l2 = spec.storage.l2_bytes.value / 2
    a_reads = 1 if a_bytes <= half_l2 else math.ceil(grid_n / w_n)
    b_reads = 1 if b_bytes <= half_l2 else math.ceil(grid_m / w_m)
    partial_bytes = split * m * n * PARTIAL_BYTES if split > 1 else 0
    main_bytes = a_bytes * a_reads + b_bytes * b_reads + (partial_bytes if split > 1 else c_bytes)
    k_chunk = math.ceil(k / split)
    rate = spec.tensor_flops_per_cycle(dtype) * spec.calibration_value(tensor_fraction_name(spec))
    if rate <= 0:
        raise MappingError(f"{spec.origin}: calibration.{tensor_fraction_name(spec)}: expected a positive "
                           f"tensor-core fraction for GEMMs, got {spec.calibration_value(tensor_fraction_name(spec))}")
    tensor_cycles = math.ceil(2.0 * block_m * block_n * k_chunk / rate)
    hbm_cycles = math.ceil(main_bytes / ctas / spec.hbm_bytes_per_cycle_per_sm)
    latency = spec.memory.hbm_latency_cycles.value
    cycles = waves * (max(tensor_cycles, hbm_cycles) + latency)
    hbm_bytes = float(main_bytes)
    if split > 1:   # the reduction kernel: read every partial, write C, over all SMs at the full bandwidth
        reduce_bytes = partial_bytes + c_bytes
        cycles += math.ceil(reduce_bytes / (spec.hbm_bytes_per_cycle_per_sm * spec.sms)) + latency
        hbm_bytes += reduce_bytes
    return GpuGemm(m=m, n=n, k=k, dtype=dtype, block_m=block_m, block_n=block_n, split_k=split, ctas=ctas,
                   waves=waves, flops=2.0 * m * n * k, hbm_bytes=hbm_bytes, weight_bytes=float(b_bytes),
                   cycles=cycles, latency_s=cycles / spec.clock_hz, tensor_cycles_per_cta=tensor_cycles,
                   hbm_cycles_per_cta=hbm_cycles, bound="tensor" if tensor_cycles > hbm_cycles else "hbm")


def _splits(tiles: int, k: int, slots: int) -> list[int]:
    """Split-K counts to try: 1, then powers of two while the grid stays within one wave and every
    chunk keeps at least 256 of the reduction (a shorter chunk is mostly pipeline fill)."""
    splits, split = [1], 2
    while tiles * split <= slots and k // split >= 256:
        splits.append(split)
        split *= 2
    return splits


def gpu_gemm(m: int, n: int, k: int, spec: GpuSpec, dtype: str = "fp16") -> GpuGemm:
    """The fastest candidate (tile, split-K) for ``C[m,n] = A[m,k] @ B[k,n]`` on ``spec`` (module docstring).

    Ties go to the earlier candidate (smaller tile, fewer splits). MappingError on a non-positive size
    or an unknown dtype."""
    for name, value in (("m", m), ("n", n), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MappingError(f"gpu gemm: {name}: expected a positive integer, got {value!r}")
    if dtype not in DTYPE_BYTES:
        raise MappingError(f"gpu gemm: dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    return _cached(m, n, k, spec, dtype)


@lru_cache(maxsize=1024)
def _cached(m: int, n: int, k: int, spec: GpuSpec, dtype: str) -> GpuGemm:
    slots = spec.sms * CTAS_PER_SM
    best: GpuGemm | None = None
    for block in BLOCKS:
        tiles = math.ceil(m / block[0]) * math.ceil(n / block[1])
        for split in _splits(tiles, k, slots):
            candidate = _candidate(m, n, k, spec, dtype, block, split)
            if best is None or candidate.cycles < best.cycles:
                best = candidate
    assert best is not None
    return best


__all__ = ["BLOCKS", "CTAS_PER_SM", "GpuGemm", "gpu_gemm", "tensor_fraction_name"]
