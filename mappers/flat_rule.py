"""FLAT's tile choice from FLAT's own rule, for any (workload, length, architecture) the table lacks.

FLAT (Kao et al.) fuses QK, softmax and AV row block by row block and keeps the block's score rows on
chip when they fit. The rule: the largest row block ``P1`` (a multiple of the 2D array's columns that
divides the length) whose live tensors fit the global buffer --

    (E + F) * P1            the block's Q rows and AV rows
    + 2 * M * P1            its QK and A rows (the M-fibres the 3-pass softmax re-reads)
    + 2 * (E + F) * max(R, C)   double-buffered K/V tiles

words. Then QK and A live on chip, granularity ``row``, output/output stationarity, Q, K, V, AV in
DRAM, no spill. When not even ``P1 = C`` fits, QK and A go to DRAM (what FLAT's table does from 256K,
§2.5), stationarity weight/weight, Q and AV on chip, and ``P1`` is the largest block whose Q and AV rows
fit next to the K/V tiles, at most :data:`MAX_ROWS_OFF_CHIP` (the table's choice in that regime).

The published table (``specs/mappings/flat-cloud.yaml``) stays authoritative at its six lengths: it is
the output of FLAT's own search, which also trades granularity and spill, and this rule does not
reproduce all of it (tests/mappers/test_flat_rule.py states where it does and where it does not).
"""
from __future__ import annotations

from attnsim.archsim.spec import Arch
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flat_config import FlatConfig, Placement, StationarityChoice
from attnsim.mappers.workloads import Workload

MAX_ROWS_OFF_CHIP = 1024
"""P1 when QK and A live in DRAM: the table's value at 256K and 1M for both model classes (§4.5)."""

SOURCE = "mappers.flat_rule: the largest row block whose live tensors fit the global buffer"


def live_words(workload: Workload, seq: int, arch: Arch, p1: int, scores_on_chip: bool) -> int:
    """Words live in the global buffer for a block of ``p1`` query rows (module docstring)."""
    e, f = workload.head_dim_e, workload.head_dim_f
    staging = 2 * (e + f) * max(arch.arrays.pe2d.rows, arch.arrays.pe2d.cols)
    return (e + f) * p1 + (2 * seq * p1 if scores_on_chip else 0) + staging


def _largest_block(workload: Workload, seq: int, arch: Arch, scores_on_chip: bool, cap: int | None) -> int:
    cols, capacity, word = arch.arrays.pe2d.cols, arch.global_buffer.capacity_bytes, arch.word_bytes
    best = 0
    for p1 in range(cols, seq + 1, cols):
        if cap is not None and p1 > cap:
            break
        if seq % p1:
            continue
        if live_words(workload, seq, arch, p1, scores_on_chip) * word > capacity:
            break
        best = p1
    return best


def flat_rule_config(workload: Workload, seq: int, arch: Arch) -> FlatConfig:
    """FLAT's configuration by the rule (module docstring); MappingError when nothing fits."""
    where = f"flat: {workload.name}, seq {seq}, {arch.name}"
    if seq % arch.arrays.pe2d.cols:
        raise MappingError(f"{where}: sequence length {seq} is not divisible by arrays.pe2d.cols = "
                           f"{arch.arrays.pe2d.cols}; expected a multiple of it (a row block spans the columns)")
    p1 = _largest_block(workload, seq, arch, True, None)
    if p1:
        placement = Placement(Q="dram", K="dram", V="dram", QK="chip", A="chip", AV="dram")
        stationarity = StationarityChoice(QK="output", AV="output")
        spill: float | None = 0.0
    else:
        p1 = _largest_block(workload, seq, arch, False, MAX_ROWS_OFF_CHIP)
        if not p1:
            need = live_words(workload, seq, arch, arch.arrays.pe2d.cols, False) * arch.word_bytes
            raise MappingError(f"{where}: nothing fits in global_buffer.capacity_bytes = "
                               f"{arch.global_buffer.capacity_bytes}: a block of {arch.arrays.pe2d.cols} rows "
                               f"with its K/V tiles takes {need} bytes")
        placement = Placement(Q="chip", K="dram", V="dram", QK="dram", A="dram", AV="chip")
        stationarity = StationarityChoice(QK="weight", AV="weight")
        spill = None
    return FlatConfig(model_class=f"E={workload.head_dim_e}, F={workload.head_dim_f}", seq=seq,
                      placement=placement, stationarity=stationarity, granularity="row", p1_rows=p1,
                      spill_fraction=spill, source=SOURCE, inferred={})


__all__ = ["MAX_ROWS_OFF_CHIP", "SOURCE", "flat_rule_config", "live_words"]
