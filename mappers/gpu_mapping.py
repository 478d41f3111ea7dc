"""The ``gpu:`` section of a ``target: gpu`` mapping file (specs/mappings/gpu-*.yaml), validated.

The shared schema (:mod:`mappers.mapping_spec`) keeps the section free-form; this module validates it
and reads it for :mod:`mappers.gpu_cascade_mapper`. Keys (docs/mapping-gpu.md has the full story)::

    gpu:
      style: in_phase | warp_specialized | multi_pass | recurrent   # the CTA's schedule template
                                  # (recurrent: one CTA walks a cascade's iterative rank, carrying its
                                  # state; mappers.gpu_template_recurrent)
      tensor_instruction: mma.sync | wgmma   # calibration '<instruction>_tensor_fraction' of the spec
      operand_dtype: tf32         # tensor-core operands in TF32 (FP32 in registers), not the workload's dtype
      operand_staging: true       # recurrent: each step's GEMM operands (loaded or computed) pass through
                                  # SMEM, written once and read by the GEMMs (Triton's dot-operand layouts)
      rows_rank: p                # the query rank: block_m rows per CTA, split over the consumers
      keys_rank: m                # the rank each CTA walks in K/V tiles of block_n (its tile rank or
                                  # the rank itself when the cascade does not partition it)
      shapes: {M: seq, P: seq, E: head_dim, F: head_dim}   # workload value of each shape symbol
      tiles:                      # first case whose `when` matches the workload (head_dim, causal, dtype)
        - {when: {head_dim: 64}, block_m: 128, block_n: 128, consumers: 4}
        # a case may set its own `stages` and `cluster` (size) instead of the section's, and
        # `persistent: false` for a kernel without a persistent tile scheduler
      threads_per_consumer: 32    # 32: warps (mma.sync), 128: warpgroups (wgmma)
      producer_warpgroups: 0      # extra warpgroups that only load (warp specialisation)
      registers_per_thread: 255   # or 'split': the register file divided evenly over the CTA's threads
      stages: 1                   # K/V tile buffers in shared memory (1: single, 2: double buffered)
      cluster: {size: 2, when: {causal: false, head_dim: [128, 256]}}   # TMA multicast of K/V tiles
      launch_order: block | longest_first | longest_first_if_causal
      ldmatrix_k_step: 16         # in_phase: operands read from SMEM with ldmatrix in k-steps of 16
      cp_async: true              # in_phase: tile loads write SMEM through the SM's SMEM port
      pingpong / intra_pipeline / warp_specialized: true   # warp_specialized style switches (FA3)
      mechanisms: {cta_setup: true, fp8_v_transpose: true}  # named schedule mechanisms
                                  # (mappers.gpu_mechanisms; all off unless named)
      ops:                        # schedule operations: the Einsums whose work on `unit` each carries,
        - {name: max, unit: fp32, einsums: [LM, BQK]}      # in issue order (default: one per Einsum
                                                           # and unit, in cascade order)
      fold: [RM, PRM]             # per-row Einsums whose latency is not modelled: their readers wait
                                  # for what they read instead
      poly_exp: {einsums: [SLN], fraction: balanced, fp32_ops: 7}   # exp on the FP32 lanes (FuseMax)
      pack_gqa: never | decode | always   # the query heads of a GQA group packed into one CTA's rows
                                  # (one K/V tile load serves the group; 'decode': when q_len = 1)
      split_rank: s               # the cascade's split rank: one CTA per split (or stream-K chunk),
                                  # the Einsums over it after the loop are the merge phase
      splits: {policy: fill_waves, max_splits: 128, slots_per_sm: 2}   # or {policy: fixed, count: 4}
      partition: grid | stream_k  # CTAs per (head, block, split), or the tiles of all heads cut into
                                  # one equal range per resident CTA slot (LeanAttention)
      passes: [[qk, max], [exp, fma, sum], [pv]]          # multi_pass: op groups of each pass (omitted:
                                  # each op in its Einsum's pass from the pass analysis, and spill derived)
      spill: {QK: 4, SN: 2}       # multi_pass: bytes per element of tensors crossing passes
      spill_level: auto           # where they live: auto (FLAT's rule: SMEM if the block's rows fit,
                                  # else L2 if every SM's rows fit there, else HBM), or smem / l2 / hbm
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_mechanisms import Mechanisms
from attnsim.mappers.mapping_spec import MappingSpec
from attnsim.mappers.workloads import format_validation_error

Match = dict[Literal["head_dim", "causal", "dtype"], Any]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def matches(when: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """True when every key of ``when`` equals the fact (a list: the fact is one of its items)."""
    for key, expected in when.items():
        value = facts[key]
        if isinstance(expected, list):
            if value not in expected:
                return False
        elif value != expected:
            return False
    return True


class TileCase(_Section):
    """One CTA tiling and the workloads it applies to."""

    when: Match = {}
    block_m: int = Field(ge=1)
    block_n: int = Field(ge=1)
    consumers: int = Field(ge=1)
    stages: int | None = Field(default=None, ge=1)
    cluster: int | None = Field(default=None, ge=1)
    persistent: bool = True   # false: one CTA per work tile (no persistent scheduler: block order,
                              # no prologue/epilogue overlap)


class Cluster(_Section):
    """CTAs per cluster sharing each K/V tile by TMA multicast, for the workloads ``when`` matches
    (a cluster also needs the CTAs' query blocks to be a multiple of its size)."""

    size: int = Field(ge=1)
    when: Match = {}


class OpGroup(_Section):
    """One schedule operation per consumer and tile: the work of ``einsums`` on ``unit``."""

    name: str = Field(min_length=1)
    unit: Literal["tensor", "mufu", "fp32"]
    einsums: list[str] = Field(min_length=1)


class PolyExp(_Section):
    """Exponentials of ``einsums`` computed as a polynomial of ``fp32_ops`` FP32 ops, in the fraction
    ``fraction`` (``balanced``: the split that balances tensor + exposed MUFU against FP32 work)."""

    einsums: list[str] = Field(min_length=1)
    fraction: float | Literal["balanced"] = "balanced"
    fp32_ops: float = Field(gt=0)


class SplitPolicy(_Section):
    """How many splits the keys of a (batch, head) get (``split_rank`` mappings).

    ``fixed``: ``count``. ``fill_waves``: FlashAttention-2's split-KV heuristic
    (``csrc/flash_attn/flash_api.cpp``, ``num_splits_heuristic``): one split when the CTAs already
    fill ``fill_fraction`` of the CTA slots (SMs x ``slots_per_sm``); otherwise, over the split counts
    up to ``max_splits`` (and the SM count and the tile count) that change the tiles per split, the
    wave efficiency ``waves / ceil(waves)`` of each, and the smallest count reaching
    ``efficiency_fraction`` of the best.
    """

    policy: Literal["fixed", "fill_waves"]
    count: int = Field(default=1, ge=1)
    max_splits: int = Field(default=128, ge=1)
    slots_per_sm: int = Field(default=2, ge=1)
    fill_fraction: float = Field(default=0.8, gt=0)
    efficiency_fraction: float = Field(default=0.85, gt=0, le=1)

    def choose(self, ctas: int, sms: int, n_tiles: int) -> int:
        """The split count for ``ctas`` CTAs without splitting, ``sms`` SMs and ``n_tiles`` K/V tiles."""
        if self.policy == "fixed":
            return min(self.count, n_tiles)
        slots = sms * self.slots_per_sm
        if ctas >= self.fill_fraction * slots:
            return 1
        top = min(self.max_splits, slots, n_tiles)

        def per_split(count: int) -> int:
            return -(-n_tiles // count)

        eligible = [c for c in range(1, top + 1) if c == 1 or per_split(c) != per_split(c - 1)]
        efficiency = {}
        for count in eligible:
            waves = ctas * count / slots
            efficiency[count] = waves / -(-waves // 1)
        best = max(efficiency.values())
        return next(c for c in eligible if efficiency[c] >= self.efficiency_fraction * best)


class GpuSection(_Section):
    """The validated ``gpu:`` section (module docstring)."""

    style: Literal["in_phase", "warp_specialized", "multi_pass", "recurrent"]
    tensor_instruction: Literal["mma.sync", "wgmma"]
    operand_dtype: Literal["tf32"] | None = None   # tensor-core operands other than the workload dtype
    operand_staging: bool = False   # recurrent: every GEMM operand is written to SMEM and read back (Triton)
    rows_rank: str = Field(min_length=1)
    keys_rank: str = Field(min_length=1)
    shapes: dict[str, Literal["seq", "head_dim", "splits", "window"]]
    tiles: list[TileCase] = Field(min_length=1)
    threads_per_consumer: int = Field(ge=1)
    producer_warpgroups: int = Field(default=0, ge=0)
    registers_per_thread: int | Literal["split"] = "split"
    stages: int = Field(default=1, ge=1)
    cluster: Cluster | None = None
    launch_order: Literal["block", "longest_first", "longest_first_if_causal"] = "block"
    ldmatrix_k_step: int | None = None
    cp_async: bool = False
    warp_specialized: bool = True
    pingpong: bool = False
    intra_pipeline: bool = False
    ops: list[OpGroup] = []
    fold: list[str] = []
    poly_exp: PolyExp | None = None
    passes: list[list[str]] | None = None
    spill: dict[str, int] = {}
    spill_level: Literal["auto", "smem", "l2", "hbm"] = "auto"
    pack_gqa: Literal["never", "decode", "always"] = "never"
    split_rank: str | None = None
    splits: SplitPolicy = SplitPolicy(policy="fixed")
    partition: Literal["grid", "stream_k"] = "grid"
    mechanisms: Mechanisms = Mechanisms()

    def gpu_features(self, facts: Mapping[str, Any]) -> dict[str, str]:
        """The GPU features the mapping needs for the workload ``facts`` -> the key that needs it."""
        needs: dict[str, str] = {self.tensor_instruction.replace(".", "_"): "tensor_instruction"}
        if self.style == "warp_specialized" and self.warp_specialized:
            needs.update({"warp_specialization": "style", "tma": "style"})
        if self.cp_async:
            needs["cp_async"] = "cp_async"
        if self.cluster is not None and self.cluster.size > 1 and matches(self.cluster.when, facts):
            needs["clusters"] = "cluster"
        return needs

    def tile_case(self, facts: Mapping[str, Any], where: str) -> TileCase:
        """The first tile case matching ``facts``; MappingError when none does."""
        for case in self.tiles:
            if matches(case.when, facts):
                return case
        raise MappingError(f"{where}: gpu.tiles: no case matches head_dim {facts['head_dim']}, "
                           f"causal {str(facts['causal']).lower()}, dtype {facts['dtype']}")


def gpu_section(mapping: MappingSpec) -> GpuSection:
    """The validated ``gpu:`` section of a ``target: gpu`` mapping; MappingError naming file and key."""
    if mapping.target != "gpu" or mapping.gpu is None:
        raise MappingError(f"{mapping.origin}: target: expected 'gpu' (a GPU mapping), got '{mapping.target}'")
    try:
        return GpuSection.model_validate(mapping.gpu)
    except ValidationError as exc:
        raise MappingError(f"{mapping.origin}: gpu.{format_validation_error(exc)}") from None


def with_switches(section: GpuSection, **switches: bool) -> GpuSection:
    """A copy of ``section`` with schedule switches (pingpong, intra_pipeline, warp_specialized) set."""
    return section.model_copy(update=switches)


__all__ = ["Cluster", "GpuSection", "OpGroup", "PolyExp", "SplitPolicy", "TileCase", "gpu_section", "matches",
           "with_switches"]
