"""GEMM mapper: closed forms for compute cycles and traffic, loop order, invariants, extrapolation."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.archsim import load_arch
from attnsim.archsim.engine import run
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gemm import map_gemm, plan_gemm
from attnsim.mappers.workloads import load_workload

MAC_PJ = 17.1645              # fact sheet §3.5: fp16 MAC, Accelergy 45 nm
WORD_BYTES = 2                # fp16
DRAM_BYTES_PER_S = 400 * 2**30
CLOCK_HZ = 940e6
SEQ_LENGTHS = (1024, 4096, 16384, 65536, 262144, 1048576)   # the paper's 1K .. 1M


def arch_with(rows: int, cols: int, glb_bytes: int | None = None):
    overrides = {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols}
    if glb_bytes is not None:
        overrides["global_buffer.capacity_bytes"] = glb_bytes
    return load_arch("fusemax-cloud", overrides)


def folds_and_temporal(m, n, k, rows, cols, dataflow):
    spatial_rows, spatial_cols, temporal = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    return math.ceil(spatial_rows / rows) * math.ceil(spatial_cols / cols), temporal


def compulsory_bytes(m, n, k):
    return (m * k + k * n + m * n) * WORD_BYTES


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("m, n, k, rows, cols", [(64, 64, 64, 16, 16), (100, 37, 300, 16, 8),
                                                 (4096, 4096, 4096, 256, 256), (7, 1000, 33, 32, 4),
                                                 (40, 24, 48, 16, 8)])   # three K tiles: first, middle, last
def test_compute_cycles_closed_forms(m, n, k, rows, cols, dataflow):
    arch = arch_with(rows, cols)
    folds, temporal = folds_and_temporal(m, n, k, rows, cols, dataflow)

    def compute_cycles(fill_drain):
        return run(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True)).cycles

    assert compute_cycles("per_fold") == folds * (2 * rows + cols + temporal - 2)
    assert compute_cycles("overlapped") == folds * temporal + 2 * rows + cols - 2
    # SCALE-Sim v3: an OS fold ends with the corner PE's last MAC (no output drain counted);
    # WS/IS folds first shift the stationary tile in (R cycles), like per_fold
    scalesim_fold = temporal + rows + cols - 2 if dataflow == "os" else 2 * rows + cols + temporal - 2
    assert compute_cycles("scalesim") == folds * scalesim_fold


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_traffic_when_everything_fits_is_compulsory(dataflow):
    m, n, k = 200, 300, 100
    result = run(map_gemm(m, n, k, arch_with(16, 16), dataflow), arch_with(16, 16))
    assert result.traffic_bytes == compulsory_bytes(m, n, k)
    assert result.actions["dram.write"] == m * n * WORD_BYTES


def test_output_stationary_keeps_a_row_block_and_restreams_b():
    m = n = k = 256
    # A, B: 128 KiB each, neither fits whole. 40 KiB holds two 16-row A blocks (2 x 8 KiB) and the
    # double-buffered B tile (2 x 8 KiB) but not two 32-row blocks (2 x 16 KiB + 16 KiB + C staging)
    arch = arch_with(16, 16, glb_bytes=40 * 1024)
    plan = plan_gemm(m, n, k, arch, "os")
    assert (plan.outer_rank, plan.mode) == ("M", {"A": "block", "B": "fold", "C": "once"})
    assert plan.block_tiles == 1
    # A read once (a 16-row block stays while all 16 N tiles pass), B re-read for each of the
    # M/16 row blocks, C written once
    expected = (m * k + (m // 16) * k * n + m * n) * WORD_BYTES
    assert run(map_gemm(m, n, k, arch, "os"), arch).traffic_bytes == expected
    assert plan.dram_read_bytes + plan.dram_write_bytes == expected


@pytest.mark.parametrize("m, outer_rank", [(256, "M"), (272, "N")])
def test_multi_tile_blocks_cut_the_re_reads_of_the_other_operand(m, outer_rank):
    # 64 KiB on a 16 x 16 array, n = k = 256: a block of two tiles (32 x 256 words: 16 KiB, two of
    # them double-buffered) plus the double-buffered inner tile (2 x 8 KiB) and three staged C
    # tiles (3 x 1 KiB) is 51 KiB; four tiles (2 x 32 + 16 + 6 KiB) do not fit. The inner tile of
    # each fold serves both tiles of the block, so the re-read operand is read once per 32-row
    # (or 32-column) block instead of once per 16-row tile.
    n = k = 256
    arch = arch_with(16, 16, glb_bytes=64 * 1024)
    plan = plan_gemm(m, n, k, arch, "os", "overlapped")
    assert (plan.outer_rank, plan.block_tiles) == (outer_rank, 2)
    if outer_rank == "M":   # 256 rows: 8 blocks of 32; A read once, B once per block
        expected = (m * k + math.ceil(m / 32) * k * n + m * n) * WORD_BYTES
    else:   # 272 rows: 9 row blocks would re-read B 9 times; 8 column blocks re-read A 8 times
        expected = (math.ceil(n / 32) * m * k + k * n + m * n) * WORD_BYTES
    result = run(map_gemm(m, n, k, arch, "os", "overlapped"), arch)
    assert result.traffic_bytes == expected
    assert plan.dram_read_bytes + plan.dram_write_bytes == expected
    assert result.actions["pe2d.mac"] == m * n * k
    # every operand word reaches the array once per physical fold that uses it
    tiles_m, tiles_n = math.ceil(m / 16), math.ceil(n / 16)
    assert result.actions["global_buffer.read"] == (tiles_n * m * k + tiles_m * k * n + m * n)
    ideal = run(map_gemm(m, n, k, arch, "os", "overlapped", ideal_dram=True)).cycles
    assert ideal == tiles_m * tiles_n * k + 2 * 16 + 16 - 2


@pytest.mark.parametrize("arch_name", ["fusemax-cloud", "flat-cloud"])
@pytest.mark.parametrize("seq", SEQ_LENGTHS)
def test_xlm_linear_layers_reach_full_utilisation(arch_name, seq):
    # FuseMax artifact (fact sheet §4.4): XLM's linear layers run at ideal full utilisation. Neither
    # FFN operand fits the buffer (B: 2048 x 8192 fp16 = 32 MB), so one-tile-tall blocks re-read it
    # once per 256-row tile and stay DRAM-bound (0.86); multi-tile blocks read it once per block.
    # FFN2 (K = 8192) on the 16 MB buffer: one 256-row OS tile of A is 4 MB, so OS cannot stack (a 2-tile
    # block double-buffered is 16 MB). IS stacks along M instead: a block of h 256-column (M) tiles holds
    # h x 256 x N partial-sum words (h MiB), double-buffered while the finished one drains (2h MiB), plus
    # twice a stacked fold's load (B's K tile, 256 x 2048 words = 1 MiB, and h stationary 256 x 256 A
    # tiles): 2h + 2 + h/4 MiB <= 16 MiB gives h = 4, so B is re-read once per 1024 rows and A, C move once.
    arch = load_arch(arch_name)
    for gemm in load_workload("xlm").linear_gemms(seq):
        ideal_cycles = gemm.m * gemm.n * gemm.k / (256 * 256)
        if arch_name == "fusemax-cloud" and gemm.k == 8192:
            result = run(map_gemm(gemm.m, gemm.n, gemm.k, arch, "is", "overlapped"), arch)
            b_reads = math.ceil(gemm.m / 1024)
            traffic = (gemm.m * gemm.k + b_reads * gemm.k * gemm.n + gemm.m * gemm.n) * WORD_BYTES
            assert result.traffic_bytes == traffic
            assert traffic / arch.dram_bytes_per_cycle < ideal_cycles       # so compute-bound
            assert ideal_cycles / result.cycles >= 0.99, (gemm.name, ideal_cycles / result.cycles)
        else:
            result = run(map_gemm(gemm.m, gemm.n, gemm.k, arch, "os", "overlapped"), arch)
            assert ideal_cycles / result.cycles >= 0.97, (gemm.name, ideal_cycles / result.cycles)
        assert result.simulated_ops < 1000


def slow_dram_arch(rows: int, cols: int, glb_bytes: int, dram_bytes_per_s: float = 16e9):
    return load_arch("fusemax-cloud", {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols,
                                       "global_buffer.capacity_bytes": glb_bytes,
                                       "dram.bandwidth_bytes_per_s": dram_bytes_per_s})


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_dram_bound_partial_sums_get_taller_drained_blocks(dataflow):
    # 256^3 on 16 x 16 with 64 KiB and 16 GB/s (17 bytes per cycle at 940 MHz). The basic plan (IS: M
    # outer, one 16-column C block of partial sums, B re-read for each of the 16 M tiles) moves
    # (1 + 16 + 1) x 128 KiB in 139k cycles against 256 folds x (256 + 46) = 77k compute cycles:
    # DRAM-bound. Blocks of two M tiles with drained C: 2 x 32 x 256 words (32 KiB) of partial sums plus
    # twice a stack's load (a 16 x 256 K tile of B and two 16 x 16 stationary A tiles: 9 KiB) = 50 KiB
    # fit; four tiles (64 KiB of partial sums alone) do not. B is then re-read 256 / 32 = 8 times.
    # WS is the same with (A, M) <-> (B, N).
    m = n = k = 256
    arch = slow_dram_arch(16, 16, 64 * 1024)
    basic = (m * k + 16 * k * n + m * n) * WORD_BYTES
    assert basic / arch.dram_bytes_per_cycle > 256 * (256 + 2 * 16 + 16 - 2)
    plan = plan_gemm(m, n, k, arch, dataflow)
    streamed, stationary = ("A", "B") if dataflow == "ws" else ("B", "A")
    assert (plan.outer_rank, plan.block_tiles) == ("N" if dataflow == "ws" else "M", 2)
    assert plan.mode == {streamed: "fold", stationary: "once", "C": "drain"}
    expected = (m * k + 8 * k * n + m * n) * WORD_BYTES
    result = run(map_gemm(m, n, k, arch, dataflow), arch)
    assert result.traffic_bytes == expected
    assert result.actions["dram.write"] == m * n * WORD_BYTES       # every output written once
    assert result.actions["pe2d.mac"] == m * n * k
    # stacking changes no compute: 256 folds of 2R + C + T - 2
    assert run(map_gemm(m, n, k, arch, dataflow, ideal_dram=True)).cycles == 256 * (2 * 16 + 16 + 256 - 2)
    # with the default DRAM (457 bytes per cycle) the basic plan is compute-bound and stays
    assert plan_gemm(m, n, k, arch_with(16, 16, 64 * 1024), dataflow).mode["C"] == "block"


DRAINED_GLB_KIB = (8, 12, 16, 24)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
@pytest.mark.parametrize("fill_drain", ["per_fold", "overlapped", "scalesim"])
@pytest.mark.parametrize("glb_kib", DRAINED_GLB_KIB)
def test_extrapolated_equals_full_for_drained_blocks(dataflow, fill_drain, glb_kib):
    # slow DRAM makes the basic plans DRAM-bound, so the taller / drained candidates are tried; edge
    # tiles along both spatial ranks and three K roles
    arch = slow_dram_arch(8, 4, glb_kib * 1024, 2e9)
    plan = plan_gemm(150, 150, 90, arch, dataflow, fill_drain)
    schedule = map_gemm(150, 150, 90, arch, dataflow, fill_drain)
    full, fast = run(schedule, arch, extrapolate=False), run(schedule, arch)
    assert (fast.cycles, fast.actions, fast.busy_cycles) == (full.cycles, full.actions, full.busy_cycles)
    assert full.actions["dram.read"] == plan.dram_read_bytes
    assert full.actions["dram.write"] == plan.dram_write_bytes
    if plan.mode["C"] == "drain":
        assert plan.dram_write_bytes == 150 * 150 * WORD_BYTES


def test_the_drained_cases_are_exercised():
    # the buffer sizes above reach taller blocks with C drained and with C in one block (else the test
    # above would prove nothing about them)
    seen = {(plan.mode["C"], plan.block_tiles > 1)
            for plan in (plan_gemm(150, 150, 90, slow_dram_arch(8, 4, glb_kib * 1024, 2e9), dataflow)
                         for dataflow in ("ws", "is") for glb_kib in DRAINED_GLB_KIB)}
    assert {("drain", True), ("block", True)} <= seen


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 2000), n=st.integers(1, 2000), k=st.integers(1, 2000),
       rows=st.integers(1, 32), cols=st.integers(1, 32),
       glb_kib=st.sampled_from([16, 64, 256]), dataflow=st.sampled_from(["ws", "is"]),
       fill_drain=st.sampled_from(["per_fold", "overlapped", "scalesim"]))
def test_invariants_with_slow_dram(m, n, k, rows, cols, glb_kib, dataflow, fill_drain):
    arch = slow_dram_arch(rows, cols, glb_kib * 1024, 2e9)
    result = run(map_gemm(m, n, k, arch, dataflow, fill_drain), arch)
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    assert result.actions["pe2d.mac"] == m * n * k
    assert result.actions.get("dram.read", 0) == plan.dram_read_bytes
    assert result.actions["dram.write"] == plan.dram_write_bytes
    assert result.traffic_bytes >= compulsory_bytes(m, n, k)
    assert result.cycles >= result.traffic_bytes / arch.dram_bytes_per_cycle
    assert plan.resident_bytes + plan.staging_bytes <= glb_kib * 1024
    compute = run(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True)).cycles
    assert result.cycles >= compute


def test_linear_layer_shape_moves_every_operand_once():
    # a linear layer in miniature: many rows, B small. A (512 KiB) does not fit 64 KiB, B (12 KiB)
    # does: a block of A rows stays while all N tiles pass, so A, B and C cross DRAM once. (A rule
    # that re-reads a non-resident A for every fold would move A ceil(96/16) = 6 times.)
    m, n, k = 4096, 96, 64
    arch = arch_with(16, 16, glb_bytes=64 * 1024)
    plan = plan_gemm(m, n, k, arch, "os", "overlapped")
    assert (plan.outer_rank, plan.mode) == ("M", {"A": "block", "B": "whole", "C": "once"})
    result = run(map_gemm(m, n, k, arch, "os", "overlapped"), arch)
    assert result.traffic_bytes == compulsory_bytes(m, n, k)
    assert result.actions["dram.read"] == (m * k + k * n) * WORD_BYTES


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_partial_sums_of_one_output_block_stay_on_chip(dataflow):
    m = n = k = 256
    arch = arch_with(16, 16, glb_bytes=64 * 1024)       # no operand fits whole (128 KiB each)
    plan = plan_gemm(m, n, k, arch, dataflow)
    # WS: outer N, the 16 x M partial sums of one N tile stay while its 16 K folds pass; A (streamed
    # per fold) is re-read for each of the 16 N tiles. IS is the same with (A, N) <-> (B, M).
    streamed, stationary = ("A", "B") if dataflow == "ws" else ("B", "A")
    assert plan.outer_rank == ("N" if dataflow == "ws" else "M")
    assert plan.mode == {streamed: "fold", stationary: "once", "C": "block"}
    expected = (16 * m * k + k * n + m * n) * WORD_BYTES
    assert run(map_gemm(m, n, k, arch, dataflow), arch).traffic_bytes == expected


def test_weight_stationary_partial_sums_round_trip_when_they_do_not_fit():
    # 8 x 32 array: an A block (8 K-rows x M) is a quarter of a C block (M x 32 columns). With 96 KiB
    # the A blocks fit double-buffered (2 x 32 KiB) but neither a C block (128 KiB) nor A, B or C
    # whole: K outer, A read once, every one of the 4 K folds writes its partial sums and every fold
    # but the first reads them back
    m, n, k = 2048, 64, 32
    arch = arch_with(8, 32, glb_bytes=96 * 1024)
    plan = plan_gemm(m, n, k, arch, "ws")
    assert (plan.outer_rank, plan.mode) == ("K", {"A": "block", "B": "once", "C": "fold"})
    k_folds = 4
    expected = (m * k + k * n + k_folds * m * n + (k_folds - 1) * m * n) * WORD_BYTES
    assert run(map_gemm(m, n, k, arch, "ws"), arch).traffic_bytes == expected


def test_chunking_keeps_totals():
    # WS with a huge temporal extent (M) must be chunked to fit the global buffer; totals unchanged
    m, n, k = 200_000, 64, 64
    arch = arch_with(16, 16, glb_bytes=256 * 1024)
    plan = plan_gemm(m, n, k, arch, "ws")
    assert plan.chunk_temporal < m
    result = run(map_gemm(m, n, k, arch, "ws", ideal_dram=True), arch)
    assert result.actions["pe2d.mac"] == m * n * k
    folds, temporal = folds_and_temporal(m, n, k, 16, 16, "ws")
    assert result.cycles == folds * (2 * 16 + 16 + temporal - 2)


@pytest.mark.parametrize("arch_name", ["fusemax-cloud", "flat-cloud"])
@pytest.mark.parametrize("seq", SEQ_LENGTHS)
def test_bert_linear_layers_reach_full_utilisation(arch_name, seq):
    # FuseMax artifact (fact sheet §4.4, end-to-end linear layers): the linear layers run at ideal
    # full utilisation. With overlapped folds, OS moves A, B and C once and stays compute-bound.
    arch = load_arch(arch_name)
    for gemm in load_workload("bert-base").linear_gemms(seq):
        result = run(map_gemm(gemm.m, gemm.n, gemm.k, arch, "os", "overlapped"), arch)
        ideal_cycles = gemm.m * gemm.n * gemm.k / (256 * 256)
        assert ideal_cycles / result.cycles >= 0.97, (gemm.name, ideal_cycles / result.cycles)
        assert result.traffic_bytes == compulsory_bytes(gemm.m, gemm.n, gemm.k)
        assert result.simulated_ops < 1000


def test_big_gemm_is_extrapolated():
    arch = load_arch("fusemax-cloud")
    result = run(map_gemm(4096, 4096, 4096, arch, "os"), arch)
    assert result.actions["pe2d.mac"] == 4096**3
    # A and B do not fit 16 MB (B re-read once per 512-row block): the DRAM is busy for the traffic
    assert result.cycles >= result.traffic_bytes / (DRAM_BYTES_PER_S / CLOCK_HZ)
    # 64M x 768 x 3072 (BERT FFN2 at 1M tokens): 262144 row blocks x 3 folds, a few hundred ops
    huge = run(map_gemm(64 * 2**20, 768, 3072, arch, "os", "overlapped"), arch)
    assert huge.simulated_ops < 1000
    assert huge.actions["pe2d.mac"] == 64 * 2**20 * 768 * 3072


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("fill_drain", ["per_fold", "overlapped", "scalesim"])
@pytest.mark.parametrize("glb_kib", [4, 8, 16, 64])
def test_extrapolated_equals_full_for_gemm_schedules(dataflow, fill_drain, glb_kib):
    # 4-64 KiB cover every mode (A/B block with prefetch, whole, fold; C block, whole, fold),
    # chunked folds, partial edge tiles and K roles as outer iterations
    arch = arch_with(8, 4, glb_bytes=glb_kib * 1024)
    schedule = map_gemm(150, 70, 90, arch, dataflow, fill_drain)
    full, fast = run(schedule, arch, extrapolate=False), run(schedule, arch)
    assert fast.extrapolated_iterations > 0
    assert (fast.cycles, fast.actions, fast.busy_cycles) == (full.cycles, full.actions, full.busy_cycles)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 3000), n=st.integers(1, 3000), k=st.integers(1, 3000),
       rows=st.integers(1, 64), cols=st.integers(1, 64),
       glb_kib=st.sampled_from([64, 256, 1024, 16384]), dataflow=st.sampled_from(["os", "ws", "is"]),
       fill_drain=st.sampled_from(["per_fold", "overlapped", "scalesim"]))
def test_invariants(m, n, k, rows, cols, glb_kib, dataflow, fill_drain):
    arch = arch_with(rows, cols, glb_kib * 1024)
    result = run(map_gemm(m, n, k, arch, dataflow, fill_drain), arch)
    macs = m * n * k
    assert result.actions["pe2d.mac"] == macs
    assert result.cycles >= macs / (rows * cols)
    assert 0.0 <= result.utilisation["pe2d"] <= 1.0
    assert result.utilisation["pe2d"] == pytest.approx(macs / (rows * cols * result.cycles))
    assert result.cycles >= result.traffic_bytes / (DRAM_BYTES_PER_S / CLOCK_HZ)
    assert result.traffic_bytes >= compulsory_bytes(m, n, k)
    assert result.actions["dram.write"] >= m * n * WORD_BYTES
    assert result.energy_pj >= macs * MAC_PJ
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    assert result.actions.get("dram.read", 0) == plan.dram_read_bytes
    assert result.actions["dram.write"] == plan.dram_write_bytes
    assert plan.resident_bytes + plan.staging_bytes <= glb_kib * 1024
    compute = run(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True)).cycles
    assert result.cycles >= compute


@pytest.mark.parametrize("args, match", [
    ((0, 4, 4, "os"), "M"), ((4, -3, 4, "os"), "N"), ((4, 4, 2.5, "os"), "K"), ((True, 4, 4, "os"), "M"),
    ((4, 4, 4, "xs"), "dataflow"),
])
def test_mapping_errors(args, match):
    with pytest.raises(MappingError, match=match) as info:
        map_gemm(*args, load_arch("fusemax-cloud"))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_fill_drain_and_tiny_buffer():
    arch = load_arch("fusemax-cloud")
    with pytest.raises(MappingError, match="fill_drain"):
        map_gemm(4, 4, 4, arch, "os", "sometimes")
    with pytest.raises(MappingError, match="capacity_bytes"):
        map_gemm(512, 512, 512, arch_with(256, 256, glb_bytes=1024), "ws")


@pytest.mark.parametrize("dataflow, spatial, temporal", [("os", ("M", "N"), "K"), ("ws", ("K", "N"), "M"),
                                                           ("is", ("K", "M"), "N")])
@pytest.mark.parametrize("m", [256, 272])
def test_loop_order_is_outer_inner_temporal(dataflow, spatial, temporal, m):
    # The mapper's table (gemm.py docstring, SCALE-Sim's dataflows): the two array ranks are the outer
    # and inner loops, in either order, and the third rank is temporal; the outer loop is the rank the
    # plan reports, the inner one the other array rank.
    plan = plan_gemm(m, 256, 256, arch_with(16, 16, glb_bytes=64 * 1024), dataflow)
    outer, inner, last = plan.mapping["loop_order"]
    assert outer == plan.outer_rank and outer in spatial
    assert {outer, inner} == set(spatial)
    assert last == temporal


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("fill_drain", ["per_fold", "overlapped", "scalesim"])
@pytest.mark.parametrize("m, n, k, rows, cols", [(100, 37, 300, 16, 8), (7, 1000, 33, 32, 4)])
def test_planners_compute_estimate_is_the_closed_form(m, n, k, rows, cols, dataflow, fill_drain):
    # the planner decides DRAM-boundness against the array's stall-free cycles: the same closed forms
    # as test_compute_cycles_closed_forms (folds x fold cost, or one fill/drain when overlapped)
    from attnsim.mappers.gemm import _compute_cycles

    folds, temporal = folds_and_temporal(m, n, k, rows, cols, dataflow)
    expected = {"per_fold": folds * (2 * rows + cols + temporal - 2),
                "overlapped": folds * temporal + 2 * rows + cols - 2,
                "scalesim": folds * (temporal + rows + cols - 2 if dataflow == "os"
                                     else 2 * rows + cols + temporal - 2)}[fill_drain]
    assert _compute_cycles(m, n, k, rows, cols, dataflow, fill_drain) == expected


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_dram_boundness_counts_reads_and_writes(dataflow):
    # The planner widens its search when a candidate's DRAM traffic (reads + writes, at the DRAM's
    # bytes per cycle) takes longer than the stall-free compute (the closed form above): the decision
    # flips exactly where (reads + writes) / bytes_per_cycle crosses the compute cycles.
    from attnsim.mappers.gemm import _dram_bound

    m = n = k = 256
    plan = plan_gemm(m, n, k, arch_with(16, 16, glb_bytes=64 * 1024), dataflow)
    reads, writes = plan.dram_read_bytes, plan.dram_write_bytes
    assert reads != writes
    folds, temporal = folds_and_temporal(m, n, k, 16, 16, dataflow)
    compute = folds * (2 * 16 + 16 + temporal - 2)
    candidate = (None,) * 6 + (reads, writes, 1)
    threshold = (reads + writes) / compute            # bytes per cycle at which both take as long
    assert _dram_bound(candidate, m, n, k, 16, 16, dataflow, "per_fold", threshold * 0.999)
    assert not _dram_bound(candidate, m, n, k, 16, 16, dataflow, "per_fold", threshold * 1.001)


@pytest.mark.parametrize("dataflow, glb_kib, c_words", [
    # one 16-column N (WS) / M (IS) tile of partial sums, 16 x 256 words (the C block above)
    ("ws", 64, 16 * 256), ("is", 64, 16 * 256)])
def test_resident_partial_sums_claim_their_block(dataflow, glb_kib, c_words):
    # the on-chip partial sums occupy the global buffer: the resident C claim is the C block's words
    # x the word size, and all the resident claims together are the plan's resident footprint
    arch = arch_with(16, 16, glb_bytes=glb_kib * 1024)
    plan = plan_gemm(256, 256, 256, arch, dataflow)
    assert plan.mode["C"] == "block"
    ops = {op.id: op for block in map_gemm(256, 256, 256, arch, dataflow).blocks for op in block.walk()}
    assert ops["resident_C"].claims_bytes == {"glb": c_words * WORD_BYTES}


def test_drained_partial_sums_claim_two_blocks():
    # drained C (the DRAM-bound 256^3 above): two blocks of 2 x 16 x 256 words, one filling, one
    # draining (32 KiB)
    arch = slow_dram_arch(16, 16, 64 * 1024)
    ops = {op.id: op for block in map_gemm(256, 256, 256, arch, "ws").blocks for op in block.walk()}
    assert ops["resident_C"].claims_bytes == {"glb": 2 * 32 * 256 * WORD_BYTES}


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("m, n, k, glb_kib", [(256, 256, 256, 16), (256, 256, 256, 12), (100, 37, 300, 8)])
def test_no_step_is_computed_before_its_tiles_arrive(dataflow, m, n, k, glb_kib):
    # DRAM-bound (16 GB/s, small buffers): every step's tiles come in one load, in program order, and
    # the array (in order too) computes step j only after load j has ended; the j-th compute in the
    # trace pairs with the j-th load (the prologue's load is step 0's, each step loads the next one)
    arch = slow_dram_arch(16, 16, glb_kib * 1024)
    result = run(map_gemm(m, n, k, arch, dataflow), arch, trace=True)
    loads = [row for row in result.timeline
             if row.unit == "dram" and (row.op_id == "load" or row.op_id.startswith("load_c"))]
    computes = [row for row in result.timeline if row.unit == "pe2d" and row.op_id != "drain"]
    assert len(loads) == len(computes) > 100
    assert all(compute.start_cycle >= load.end_cycle for load, compute in zip(loads, computes))
