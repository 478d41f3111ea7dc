"""FuseMax's binding of the 1-pass cascade on an H100-like GPU.

FuseMax (Nayak et al., MICRO 2024) runs the 1-pass cascade with its softmax overlapped with the GEMMs
of the next tile and computes exponentials on its MAC units instead of a dedicated exp unit. On a GPU
the analogue is: FA3's warp-specialised, ping-pong, 2-stage-pipelined schedule (the softmax of tile j
runs under the GEMMs of tile j+1; :mod:`mappers.gpu_flash3`), with a fraction ``poly_fraction`` of the
exponentials evaluated as a polynomial on the FP32 FMA lanes and the rest on the MUFU.

The split balances the units: per warpgroup and K/V tile, the tensor-core work plus the MUFU work that
cannot overlap it (the spec's ``mufu_tensor_overlap``) is set equal to the FP32 work (softmax plus the
polynomial exponentials), ``f = (T + (1 - o) M - F) / ((1 - o) M + P)``, clamped to [0, 1]; the
closed form only chooses the split, the engine gives the time.
"""
from __future__ import annotations

from dataclasses import dataclass

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.mappers.errors import MappingError
from handwritten_gpu_costs import FP32_OPS_PER_ROW_TILE, FP32_OPS_PER_SCORE
from attnsim.mappers.gpu_common import (
    CtaTile,
    GpuAttention,
    GpuMapping,
    launch_order,
    occupancy,
)
from handwritten_gpu_flash3 import Flash3Options, flash3_tile, wgmma_cta_schedule

DESIGN = "fusemax"

POLY_EXP_FP32_OPS = 7.0
"""FP32/ALU operations of one exp2 as a polynomial: round-down and fraction (2), a degree-3 Horner
polynomial (3 FMA), exponent shift and integer add (2) -- the Cody-Waite form FuseMax's PEs use with
MACs (FuseMax paper §V: exp as 6 MAC + 1 add)."""


@dataclass(frozen=True)
class FusemaxOptions:
    """``poly_fraction``: exponentials on the FMA lanes (None = the balancing split)."""

    poly_fraction: float | None = None

    def __post_init__(self) -> None:
        value = self.poly_fraction
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0.0 <= float(value) <= 1.0):
            raise MappingError(f"fusemax: poly_fraction: expected a number in [0, 1], got {value!r}")


def balanced_poly_fraction(spec: GpuSpec, workload: GpuAttention, tile: CtaTile) -> float:
    """The fraction of exponentials to evaluate on the FP32 lanes so that the tensor-plus-exposed-MUFU
    work of a K/V tile equals its FP32 work (module docstring), in [0, 1]."""
    rows, bn, d = tile.rows_per_consumer, tile.block_n, workload.head_dim
    scores = rows * bn
    tensor = 4.0 * rows * bn * d / (spec.tensor_flops_per_cycle(workload.dtype)
                                    * spec.calibration_value("wgmma_tensor_fraction"))
    mufu = scores / spec.per_sm_per_clock.mufu_ops.value
    lanes = spec.per_sm_per_clock.fp32_lanes.value
    fp32 = (FP32_OPS_PER_SCORE * scores + FP32_OPS_PER_ROW_TILE * rows + rows * d) / lanes
    poly = POLY_EXP_FP32_OPS * scores / lanes
    exposed = (1.0 - spec.calibration_value("mufu_tensor_overlap")) * mufu
    fraction = (tensor + exposed - fp32) / (exposed + poly)
    return min(1.0, max(0.0, fraction))


def map_attention(workload: GpuAttention, spec: GpuSpec, *, options: FusemaxOptions | None = None
                  ) -> GpuMapping:
    """FuseMax's binding of ``workload`` on ``spec`` (module docstring)."""
    options = options or FusemaxOptions()
    tile = flash3_tile(spec, workload)
    occ = occupancy(spec, tile)
    fraction = balanced_poly_fraction(spec, workload, tile) if options.poly_fraction is None \
        else options.poly_fraction
    schedule_options = Flash3Options()
    return GpuMapping(
        design=DESIGN, workload=workload, tile=tile, occupancy=occ,
        order=tuple(launch_order(workload, tile, longest_first=workload.causal)),
        cta_schedule=lambda work: wgmma_cta_schedule(
            spec, workload, tile, work, schedule_options, design=DESIGN,
            exp_ops_per_score=1.0 - fraction, fp32_extra_per_score=fraction * POLY_EXP_FP32_OPS),
        tensor_instruction="wgmma",
        choices={"block_m": tile.block_m, "block_n": tile.block_n, "consumers": tile.consumers,
                 "cluster": tile.cluster, "poly_exp_fraction": round(fraction, 4)})
