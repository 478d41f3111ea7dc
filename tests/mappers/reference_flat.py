"""FROZEN REFERENCE (test-only): the hand-written FLAT mapper (with FLAT's rule, formerly mappers/flat_rule.py)
as it was before the generic path (mappers/cascade_groups.py + specs/mappings/flat.yaml) replaced it.
test_cascade_equivalence.py runs both and asserts equal results; nothing on the product path imports this file.

FLAT (Kao et al.), as the FuseMax artifact runs it (fact sheet §4.4-4.5): row-granular fusion.

The loop runs over ``(b, h, block of P1 query rows)``; per block:

* **QK** on the 2D array, mapped by the configuration's stationarity (``output``: ``M`` over the
  rows, the block's ``P1`` queries over the columns, ``E`` temporal -- the sheet's "256 x 256
  spatial"; ``weight``: K held, ``E`` x ``M`` spatial, queries streamed; ``input``: Q held);
* the **3-pass softmax** (GM, SN, SD, A; 4 ops per score) on the 1D array;
* **AV** on the 2D array (``output``: ``F`` over the rows, ``P1`` over the columns, ``M`` temporal,
  so only ``F / rows`` of the array works -- the sheet's "F x 256 spatial"; ``weight``: V held,
  ``M`` x ``F`` spatial; ``input``: A held, ``M`` x ``P1`` spatial, ``F`` temporal).

Everything overlaps (software pipeline over blocks: the DRAM, the 2D array and the 1D array each
work on a different block), so in steady state the latency is ``max(DRAM, 2D, 1D)``.

DRAM traffic follows the FLAT configuration of the point (``mappers.flat_config``, default table
``flat-cloud``; choose another with ``MapOptions(extra={"flat_table": name_or_path})``; at a length or
head width the table does not list, FLAT's rule, :mod:`mappers.flat_rule`). A tensor placed in DRAM is
*streamed*: it is not buffered in the global buffer, only in the PEs' one-word registers, so it is
re-read from DRAM by every array tile that uses it -- once per iteration of each loop that does not index
it but runs outside one that does (the loop-nest re-fetch rule of Timeloop, which the FuseMax artifact and
FLAT's own code apply; derivation in docs/validation.md). Per block of ``P1`` query rows:

* QK output-stationary (``M`` on the rows, ``P1`` on the columns, ``E`` temporal): Q's rows are
  re-read for each of the ``ceil(M / rows)`` key tiles, K for each of the ``ceil(P1 / cols)`` query
  tiles; weight-stationary (K held in the PEs, queries streamed): Q once, K once per block; input-
  stationary (Q held): Q once, K once per query tile;
* AV output-stationary (``F`` on the rows, ``P1`` on the columns, ``M`` temporal): V re-read for each
  of the ``ceil(P1 / cols)`` query tiles; weight-stationary (V held): once per block; input-stationary
  (A held): once per query tile; A is read once per F tile (``ceil(F / rows)``);
* placed on chip, Q, K or V is read from DRAM once (per head, or per block with row granularity for
  K and V) and re-read from the global buffer as above; AV is written once;
* the score fibres: QK written by QK and read by GM and SN, SN written and read by A, A written and
  read by AV. In DRAM (QK and A placed off chip, the DRAM-bound regime at >= 256K): QK's write and
  GM's read, A's write and AV's read go to DRAM (4 S), SN's fibre stays in the buffer;
* spilling: a fraction ``s`` of the on-chip score fibres does not fit, and ``s`` of every global-buffer
  access of an on-chip tensor becomes a DRAM access (on-chip inputs and outputs are then read /
  written from DRAM ``1 - s`` of the time): 7 ``s S`` at most of the fibres' traffic. ``s`` is the
  configuration's ``spill_fraction``; where the table gives none, the §2.5 rule
  ``1 - min(1, available / (2 M))`` with ``available`` the global buffer left per query row of the block.

Energy (fact sheet §6.4): MACs for QK and AV; per score max, add, exp, add, divide; DRAM bytes; global
buffer 4 reads and 3 writes per score (QK written by the 2D array, read by GM and SN; SN written and
read by A; A written, read by AV). As in the artifact's FLAT model, Q/K/V/AV staging is not charged
to the global buffer, nor are register files.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from attnsim.archsim.schedule import LoopDep, Schedule
from attnsim.archsim.spec import Arch
from attnsim.mappers.attention_ops import (OpTemplate, ceil_div, compute_op, dram_op, loop_blocks, op_cycles,
                                   spatial_util, three_pass_softmax)
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flat_config import FlatConfig, Placement, StationarityChoice, flat_config, load_flat_table
from attnsim.mappers.tiling import spilled_fraction
from reference_unfused import check_options
from attnsim.mappers.workloads import Workload

DESIGN = "flat"
OPTIONS = ("flat_table",)


def qk_cycles(stationarity: str, e: int, m: int, p1: int, rows: int, cols: int) -> int:
    """MAC steps of QK for one block of ``p1`` query rows (``e x m x p1`` MACs) on ``rows x cols``."""
    if stationarity == "output":
        return ceil_div(m, rows) * ceil_div(p1, cols) * e
    if stationarity == "weight":
        return ceil_div(e, rows) * ceil_div(m, cols) * p1
    return ceil_div(e, rows) * ceil_div(p1, cols) * m


def av_cycles(stationarity: str, f: int, m: int, p1: int, rows: int, cols: int) -> int:
    """MAC steps of AV for one block of ``p1`` query rows (``f x m x p1`` MACs) on ``rows x cols``."""
    if stationarity == "output":
        return ceil_div(f, rows) * ceil_div(p1, cols) * m
    if stationarity == "weight":
        return ceil_div(m, rows) * ceil_div(f, cols) * p1
    return ceil_div(m, rows) * ceil_div(p1, cols) * f


def _spill(config: FlatConfig, workload: Workload, seq: int, arch: Arch) -> float:
    """Spilled fraction of the on-chip score fibres (0 when QK and A both live in DRAM)."""
    if not (config.on_chip("QK") or config.on_chip("A")):
        return 0.0
    if config.spill_fraction is not None:
        return config.spill_fraction
    word, p1 = arch.word_bytes, config.p1_rows
    resident = (workload.head_dim_e + workload.head_dim_f) * p1 * word   # the block's Q rows and AV
    available_per_row = (arch.global_buffer.capacity_bytes - resident) / p1
    return spilled_fraction(available_per_row, seq, word)


@dataclass(frozen=True)
class BlockTraffic:
    """DRAM words one block of ``P1`` query rows moves (module docstring: re-fetch and spill rules)."""

    inputs_read: Fraction   # Q, K, V (re-fetches of streamed operands; spilled buffer re-reads)
    qk_read: Fraction       # QK read back (GM from DRAM, or the spilled share of GM's and SN's reads)
    qk_write: Fraction
    a_read: Fraction        # A read by AV, SN read by A (spilled share)
    a_write: Fraction       # A written, SN written (spilled share)
    output_write: Fraction  # AV


def _rereads(stationarity: str, operand: str, m: int, p1: int, rows: int, cols: int) -> int:
    """How many of one block's array tiles read ``operand``'s slice (module docstring)."""
    if operand == "Q":   # the block's query rows, needed by every key tile unless Q is held or streamed once
        return ceil_div(m, rows) if stationarity == "output" else 1
    return 1 if stationarity == "weight" else ceil_div(p1, cols)   # K in QK, V in AV: per query tile


def _block_traffic(config: FlatConfig, e: int, f: int, m: int, p1: int, rows: int, cols: int,
                   blocks_per_head: int, spill: Fraction) -> BlockTraffic:
    """DRAM words of one block (``Fraction`` so that totals over all blocks stay exact)."""
    scores = p1 * m
    inputs = Fraction(0)
    for operand, words in (("Q", e * p1), ("K", e * m), ("V", f * m)):
        stationarity = config.stationarity.AV if operand == "V" else config.stationarity.QK
        rereads = _rereads(stationarity, operand, m, p1, rows, cols)
        if config.on_chip(operand):
            # filled from DRAM once (K and V: once per head); re-read from the buffer, s of it from DRAM
            fill = Fraction(words) if operand == "Q" else Fraction(words, blocks_per_head)
            inputs += fill * (1 - spill) + spill * words * rereads
        else:
            inputs += Fraction(words * rereads)   # streamed: every tile that uses it reads it
    a_reads_by_av = ceil_div(f, rows) * scores
    if config.on_chip("QK"):
        qk_write, qk_read = spill * scores, 2 * spill * scores          # QK by QK; GM and SN read it
    else:
        qk_write, qk_read = Fraction(scores), Fraction(scores)          # QK to DRAM, GM reads it back
    if config.on_chip("A"):
        a_write, a_read = 2 * spill * scores, spill * (scores + a_reads_by_av)   # SN and A; A and AV
    else:
        a_write, a_read = Fraction(scores), Fraction(a_reads_by_av)
    output = Fraction(f * p1)   # on chip: (1 - s) to DRAM directly, s through the spilled buffer
    return BlockTraffic(inputs, qk_read, qk_write, a_read, a_write, output)


def _table(options: MapOptions):  # type: ignore[no-untyped-def]
    name = options.extra.get("flat_table")
    return load_flat_table(name) if name else None


def _config(workload: Workload, seq: int, arch: Arch, options: MapOptions) -> FlatConfig:
    """The table's configuration where it has the point (FLAT's own search), else FLAT's rule
    (:mod:`mappers.flat_rule`: the largest row block whose live tensors fit)."""
    table = _table(options) or load_flat_table()
    try:
        model_class = table.class_for(workload)
    except MappingError:
        return flat_rule_config(workload, seq, arch)
    if seq in table.seq_lengths(model_class):
        return flat_config(workload, seq, table)
    return flat_rule_config(workload, seq, arch)


def map_attention(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """Schedule of FLAT for ``workload`` at sequence length ``seq`` (M = P) on ``arch``.

    Raises MappingError when the FLAT table has no configuration for the point, ``seq`` is not a
    multiple of the configuration's ``P1``, or a block's resident tiles do not fit.
    """
    check_options(options, DESIGN, OPTIONS)
    seq = workload.check_seq(seq)
    config = _config(workload, seq, arch, options)
    where = f"{DESIGN}: {workload.name}, seq {seq}, {arch.name}"
    e, f, m, p1 = workload.head_dim_e, workload.head_dim_f, seq, config.p1_rows
    if seq % p1:
        raise MappingError(f"{where}: sequence length {seq} is not divisible by the configuration's "
                           f"p1_rows = {p1}; expected a multiple of {p1}")
    rows, cols, word = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols, arch.word_bytes
    capacity = arch.global_buffer.capacity_bytes
    resident_bytes = ((e + f) * p1 + 2 * (e + f) * max(rows, cols)) * word
    if resident_bytes > capacity:
        raise MappingError(f"{where}: a block of {p1} query rows (Q and AV) plus double-buffered K/V "
                           f"tiles takes {resident_bytes} bytes, more than global_buffer.capacity_bytes "
                           f"= {capacity}")
    heads = workload.batch * workload.heads
    blocks_per_head = seq // p1
    iterations = heads * blocks_per_head
    scores = p1 * m                                            # one block's scores
    spill = _spill(config, workload, seq, arch)

    traffic = _block_traffic(config, e, f, m, p1, rows, cols, blocks_per_head,
                             Fraction(spill).limit_denominator(1 << 20))
    mac = op_cycles(arch, "pe2d", "mac", "QK")
    qk_steps = qk_cycles(config.stationarity.QK, e, m, p1, rows, cols)
    av_steps = av_cycles(config.stationarity.AV, f, m, p1, rows, cols)
    fill = 2 * rows + cols - 2
    templates: list[OpTemplate] = [
        dram_op("fl:in", arch, read_bytes=traffic.inputs_read * word, stage=0, deps=(LoopDep("fl:QK", 2),)),
        compute_op("fl:QK", "pe2d", "QK", qk_steps * mac,
                   {"pe2d.mac": e * scores, "global_buffer.write": scores}, stage=1, deps=("fl:in",),
                   util=spatial_util(e * scores, rows * cols, qk_steps), fill_cycles=fill),
        dram_op("fl:qk_io", arch, read_bytes=traffic.qk_read * word, write_bytes=traffic.qk_write * word, stage=2,
                deps=("fl:QK",)),
        *three_pass_softmax("fl:", arch, p1, m, stage=3, first_deps=("fl:qk_io", "fl:QK")),
        dram_op("fl:a_io", arch, read_bytes=traffic.a_read * word, write_bytes=traffic.a_write * word, stage=4,
                deps=("fl:A",)),
        compute_op("fl:AV", "pe2d", "AV", av_steps * mac,
                   {"pe2d.mac": f * scores, "global_buffer.read": scores}, stage=5,
                   deps=("fl:a_io", "fl:A"), util=spatial_util(f * scores, rows * cols, av_steps),
                   fill_cycles=fill),
        dram_op("fl:out", arch, write_bytes=traffic.output_write * word, stage=6, deps=("fl:AV",)),
    ]
    blocks = loop_blocks(templates, iterations, closed_form=options.closed_form, name="fl")
    schedule = Schedule(blocks=tuple(blocks), name=f"{DESIGN} {workload.name} seq {seq}")
    choices = {
        "flat_table": config.source, "model_class": config.model_class,
        "placement": config.placement.model_dump(), "stationarity": config.stationarity.model_dump(),
        "granularity": config.granularity, "p1_rows": p1, "spill_fraction": spill,
        "row_blocks": iterations, "inferred": sorted(config.inferred),
    }
    return MappedAttention(design=DESIGN, schedule=schedule, einsums_2d=("QK", "AV"),
                           einsums_1d=("GM", "SN", "SD", "A"), choices=choices)




# --- FLAT's rule (formerly mappers/flat_rule.py, frozen) ---

MAX_ROWS_OFF_CHIP = 1024

RULE_SOURCE = "mappers.flat_rule: the largest row block whose live tensors fit the global buffer"


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
                      spill_fraction=spill, source=RULE_SOURCE, inferred={})


