"""FROZEN REFERENCE (test-only): the hand-written unfused mapper as it was before the generic path
(mappers/cascade_groups.py + specs/mappings/unfused.yaml) replaced it. test_cascade_equivalence.py runs both
and asserts equal results; nothing on the product path imports this file.

Unfused attention (FuseMax paper §VI-A "Unfused", fact sheet §4.4-4.5): three phases in sequence.

1. **QK**: ``B*H`` GEMMs ``QK[m,p] = sum_e Q[e,p] K[e,m]`` on the 2D array, output-stationary with
   ``M`` over the array's rows and ``P`` over its columns (the artifact's Timeloop constraints), ``E``
   temporal: one fold = one ``R x C`` tile of QK in ``E`` MAC steps. Q and K are read from DRAM, QK
   is written to DRAM.
2. **Softmax**: the 3-pass softmax (GM, SN, SD, A: 4 ops per score, :func:`three_pass_softmax`) on the
   1D array, one query row (an M-fibre of QK) at a time: the fibre is read from DRAM into the global
   buffer, processed, and A is written back to DRAM.
3. **AV**: ``B*H`` GEMMs ``AV[f,p] = sum_m A[m,p] V[f,m]`` with ``M`` over the rows, ``P`` over the
   columns and ``F`` temporal (the partial sums over ``M`` reduce down the columns). A and V are read
   from DRAM, AV is written.

Each phase is a software-pipelined loop (load tile ``j+1`` / compute tile ``j`` / store tile ``j-1``,
double-buffered), so its time is ``max(DRAM, compute)`` in steady state; a phase starts when the
previous one has finished (no overlap between phases). The systolic array's fill and drain
(``2R + C - 2`` cycles) is paid once per GEMM phase.

DRAM reuse (the per-head operands are re-read only when they do not fit): in QK a block of ``Pb``
query rows of Q stays in the global buffer while K streams past it, so Q is read once and K
``P / Pb`` times; in AV a block of ``Mb`` keys of V stays while A streams, so V is read once and the
AV partial sums make ``M / Mb - 1`` round trips. ``Pb`` and ``Mb`` are the largest that fit next to
the double-buffered tiles: the whole head up to 64K tokens on the 32 MB FLAT platform (traffic exactly
``4 (|Q| + S)``, fact sheet §4.4), two blocks at 256K and eight at 1M (+0.01-0.02%). Per-head loads
are spread evenly over that head's folds (one body iteration per fold).

Energy (fact sheet §6.4 conventions): MACs for QK and AV, per score one max, two adds, one exp and
one divide; DRAM bytes; global buffer: the softmax's 4 reads and 3 writes per score (the fibre's fill
from DRAM and A's drain to DRAM included). As in the artifact, the GEMMs' operands and results stream
between DRAM and the array without global-buffer accesses (its unfused mappings keep every tensor in
DRAM). Register files are not charged.
"""
from __future__ import annotations

from fractions import Fraction

from attnsim.archsim.schedule import LoopDep, Schedule
from attnsim.archsim.spec import Arch
from attnsim.mappers.attention_ops import (OpTemplate, compute_op, dram_op, last_ops, loop_blocks,
                                   op_cycles, require_multiple, three_pass_softmax)
from attnsim.mappers.designs import MapOptions, MappedAttention
from attnsim.mappers.errors import MappingError
from attnsim.mappers.tiling import spilled_fraction
from attnsim.mappers.workloads import Workload

DESIGN = "unfused"


def _where(workload: Workload, seq: int, arch: Arch) -> str:
    return f"{DESIGN}: {workload.name}, seq {seq}, {arch.name}"


def _largest_block(extent: int, step: int, fits) -> int:  # type: ignore[no-untyped-def]
    """Largest multiple of ``step`` dividing ``extent`` for which ``fits(block)``; 0 if none."""
    best = 0
    for count in range(1, extent // step + 1):
        block = count * step
        if extent % block == 0 and fits(block):
            best = block
    return best


def check_options(options: MapOptions, design: str, allowed: tuple[str, ...] = ()) -> None:
    """MappingError for options the design does not support (causal masking, unknown extras)."""
    if options.causal:
        raise MappingError(f"{design}: causal masking is not supported by this design; expected causal=False")
    unknown = sorted(set(options.extra) - set(allowed))
    if unknown:
        known = ", ".join(allowed) or "none"
        raise MappingError(f"{design}: unknown option '{unknown[0]}' (known: {known})")


def _qk_phase(workload: Workload, seq: int, arch: Arch, where: str) -> tuple[list[OpTemplate], int, dict]:
    rows, cols, word = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols, arch.word_bytes
    e, m, p = workload.head_dim_e, seq, seq
    heads = workload.batch * workload.heads
    capacity = arch.global_buffer.capacity_bytes
    staging_words = 2 * (e * rows + rows * cols)          # K tile in, QK tile out, double-buffered
    q_block = _largest_block(p, cols, lambda b: (e * b + staging_words) * word <= capacity)
    if not q_block:
        raise MappingError(f"{where}: QK: global_buffer.capacity_bytes = {capacity} cannot hold "
                           f"{cols} query rows of Q plus the double-buffered K and QK tiles "
                           f"({(e * cols + staging_words) * word} bytes)")
    folds_per_head = (m // rows) * (p // cols)
    k_reads = p // q_block
    read_words_per_head = e * p + e * m * k_reads
    mac = op_cycles(arch, "pe2d", "mac", "QK")
    templates = [
        dram_op("qk:load", arch, read_bytes=Fraction(read_words_per_head * word, folds_per_head), stage=0,
                deps=(LoopDep("qk:QK", 2),)),
        compute_op("qk:QK", "pe2d", "QK", e * mac, {"pe2d.mac": rows * cols * e}, stage=1,
                   deps=("qk:load",), fill_cycles=2 * rows + cols - 2),
        dram_op("qk:store", arch, write_bytes=rows * cols * word, stage=2, deps=("qk:QK",)),
    ]
    choices = {"qk_folds": heads * folds_per_head, "qk_query_block_rows": q_block, "qk_k_reads": k_reads}
    return templates, heads * folds_per_head, choices


def _softmax_phase(workload: Workload, seq: int, arch: Arch, where: str) -> tuple[list[OpTemplate], int, dict]:
    word = arch.word_bytes
    m = seq
    rows_total = workload.batch * workload.heads * seq
    capacity = arch.global_buffer.capacity_bytes
    available = capacity - 2 * m * word                  # prefetch of the next fibre, drain of the last A
    spill = spilled_fraction(available, m, word)
    # A spilled part of the fibre is read again from DRAM for pass 2 (SN), and SN's spilled part
    # makes a round trip to pass 3 (A): 2 extra words read and 1 written per spilled score.
    spilled_scores = Fraction(spill).limit_denominator(1 << 20) * m
    softmax = three_pass_softmax("sm:", arch, 1, m, stage=1, first_deps=("sm:load",))
    templates = [
        dram_op("sm:load", arch, read_bytes=(m + 2 * spilled_scores) * word, stage=0,
                deps=(LoopDep("sm:GM", 2),), extra_actions={"global_buffer.write": m}),
        *softmax,
        dram_op("sm:store", arch, write_bytes=(m + spilled_scores) * word, stage=2, deps=("sm:A",),
                extra_actions={"global_buffer.read": m}),
    ]
    return templates, rows_total, {"softmax_rows": rows_total, "softmax_spill_fraction": spill}


def _av_phase(workload: Workload, seq: int, arch: Arch, where: str) -> tuple[list[OpTemplate], int, dict]:
    rows, cols, word = arch.arrays.pe2d.rows, arch.arrays.pe2d.cols, arch.word_bytes
    f, m, p = workload.head_dim_f, seq, seq
    heads = workload.batch * workload.heads
    capacity = arch.global_buffer.capacity_bytes
    staging_words = 2 * (rows * cols + f * cols)         # A tile in, AV partial tile, double-buffered
    v_block = _largest_block(m, rows, lambda b: (f * b + staging_words) * word <= capacity)
    if not v_block:
        raise MappingError(f"{where}: AV: global_buffer.capacity_bytes = {capacity} cannot hold "
                           f"{rows} keys of V plus the double-buffered A and AV tiles "
                           f"({(f * rows + staging_words) * word} bytes)")
    folds_per_head = (m // rows) * (p // cols)
    round_trips = m // v_block - 1                        # partial sums leave and come back
    read_words_per_head = rows * cols * folds_per_head + f * m + f * p * round_trips
    write_words_per_head = f * p * (round_trips + 1)
    mac = op_cycles(arch, "pe2d", "mac", "AV")
    templates = [
        dram_op("av:load", arch, read_bytes=Fraction(read_words_per_head * word, folds_per_head), stage=0,
                deps=(LoopDep("av:AV", 2),)),
        compute_op("av:AV", "pe2d", "AV", f * mac, {"pe2d.mac": rows * cols * f}, stage=1,
                   deps=("av:load",), fill_cycles=2 * rows + cols - 2),
        dram_op("av:store", arch, write_bytes=Fraction(write_words_per_head * word, folds_per_head), stage=2,
                deps=("av:AV",)),
    ]
    choices = {"av_folds": heads * folds_per_head, "av_value_block_keys": v_block,
               "av_partial_round_trips": round_trips}
    return templates, heads * folds_per_head, choices


def map_attention(workload: Workload, seq: int, arch: Arch, *, options: MapOptions) -> MappedAttention:
    """Schedule of unfused attention for ``workload`` at sequence length ``seq`` (M = P) on ``arch``.

    Raises MappingError when ``seq`` is not a multiple of the 2D array's rows and columns or a phase's
    double-buffered tiles do not fit in the global buffer.
    """
    check_options(options, DESIGN)
    seq = workload.check_seq(seq)
    where = _where(workload, seq, arch)
    require_multiple(seq, arch.arrays.pe2d.rows, "sequence length", "arrays.pe2d.rows", where)
    require_multiple(seq, arch.arrays.pe2d.cols, "sequence length", "arrays.pe2d.cols", where)
    blocks = []
    choices: dict = {}
    after: tuple[str, ...] = ()
    for name, build in (("qk", _qk_phase), ("sm", _softmax_phase), ("av", _av_phase)):
        templates, iterations, phase_choices = build(workload, seq, arch, where)
        blocks.extend(loop_blocks(templates, iterations, closed_form=options.closed_form, name=name,
                                  after=after))
        after = last_ops(templates)
        choices.update(phase_choices)
    schedule = Schedule(blocks=tuple(blocks), name=f"{DESIGN} {workload.name} seq {seq}")
    return MappedAttention(design=DESIGN, schedule=schedule, einsums_2d=("QK", "AV"),
                           einsums_1d=("GM", "SN", "SD", "A"), choices=choices)


__all__ = ["DESIGN", "check_options", "map_attention"]
