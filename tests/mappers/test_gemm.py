"""GEMM mapper: closed forms for compute cycles and traffic, invariants, extrapolation, errors."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim import load_arch
from archsim.engine import run
from mappers.errors import MappingError
from mappers.gemm import map_gemm, plan_gemm

MAC_PJ = 17.1645              # fact sheet §3.5: fp16 MAC, Accelergy 45 nm
WORD_BYTES = 2                # fp16
DRAM_BYTES_PER_S = 400 * 2**30
CLOCK_HZ = 940e6


def arch_with(rows: int, cols: int, glb_bytes: int | None = None):
    overrides = {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols}
    if glb_bytes is not None:
        overrides["global_buffer.capacity_bytes"] = glb_bytes
    return load_arch("fusemax-cloud", overrides)


def folds_and_temporal(m, n, k, rows, cols, dataflow):
    spatial_rows, spatial_cols, temporal = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    return math.ceil(spatial_rows / rows) * math.ceil(spatial_cols / cols), temporal


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("m, n, k, rows, cols", [(64, 64, 64, 16, 16), (100, 37, 300, 16, 8),
                                                 (4096, 4096, 4096, 256, 256), (7, 1000, 33, 32, 4)])
def test_compute_cycles_closed_forms(m, n, k, rows, cols, dataflow):
    arch = arch_with(rows, cols)
    folds, temporal = folds_and_temporal(m, n, k, rows, cols, dataflow)
    per_fold = run(map_gemm(m, n, k, arch, dataflow, "per_fold", ideal_dram=True)).cycles
    overlapped = run(map_gemm(m, n, k, arch, dataflow, "overlapped", ideal_dram=True)).cycles
    assert per_fold == folds * (2 * rows + cols + temporal - 2)
    assert overlapped == folds * temporal + 2 * rows + cols - 2


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_traffic_when_everything_fits_is_compulsory(dataflow):
    m, n, k = 200, 300, 100
    result = run(map_gemm(m, n, k, arch_with(16, 16), dataflow), arch_with(16, 16))
    assert result.traffic_bytes == (m * k + k * n + m * n) * WORD_BYTES
    assert result.actions["dram.write"] == m * n * WORD_BYTES


def test_traffic_when_nothing_fits_output_stationary():
    m = n = k = 256
    arch = arch_with(16, 16, glb_bytes=64 * 1024)       # A, B: 128 KiB each, do not fit
    plan = plan_gemm(m, n, k, arch, "os")
    assert plan.resident == ()
    # A re-read for each of the N/16 column tiles, B for each of the M/16 row tiles, C written once
    expected = (16 * m * k + 16 * k * n + m * n) * WORD_BYTES
    assert run(map_gemm(m, n, k, arch, "os"), arch).traffic_bytes == expected


def test_traffic_when_nothing_fits_weight_stationary():
    m = n = k = 256
    arch = arch_with(16, 16, glb_bytes=64 * 1024)
    plan = plan_gemm(m, n, k, arch, "ws")
    assert plan.resident == ()
    k_folds, n_tiles = 16, 16
    # A re-read per N tile; B once; partial sums written by every K fold, read back by all but the first
    expected = (n_tiles * m * k + k * n + k_folds * m * n + (k_folds - 1) * m * n) * WORD_BYTES
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


def test_big_gemm_is_extrapolated():
    arch = load_arch("fusemax-cloud")
    result = run(map_gemm(4096, 4096, 4096, arch, "os"), arch)
    assert result.simulated_ops < 200
    assert result.actions["pe2d.mac"] == 4096**3
    # DRAM-bound here (A and B do not fit 16 MB): the DRAM is busy for the whole traffic
    assert result.cycles >= result.traffic_bytes / (DRAM_BYTES_PER_S / CLOCK_HZ)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("fill_drain", ["per_fold", "overlapped"])
def test_extrapolated_equals_full_for_gemm_schedules(dataflow, fill_drain):
    arch = arch_with(8, 4, glb_bytes=8 * 1024)
    schedule = map_gemm(150, 70, 90, arch, dataflow, fill_drain)
    full, fast = run(schedule, arch, extrapolate=False), run(schedule, arch)
    assert fast.extrapolated_iterations > 0
    assert (fast.cycles, fast.actions, fast.busy_cycles) == (full.cycles, full.actions, full.busy_cycles)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 3000), n=st.integers(1, 3000), k=st.integers(1, 3000),
       rows=st.integers(1, 64), cols=st.integers(1, 64),
       glb_kib=st.sampled_from([64, 256, 1024, 16384]), dataflow=st.sampled_from(["os", "ws", "is"]),
       fill_drain=st.sampled_from(["per_fold", "overlapped"]))
def test_invariants(m, n, k, rows, cols, glb_kib, dataflow, fill_drain):
    arch = arch_with(rows, cols, glb_kib * 1024)
    result = run(map_gemm(m, n, k, arch, dataflow, fill_drain), arch)
    macs = m * n * k
    assert result.cycles >= macs / (rows * cols)
    assert 0.0 <= result.utilisation["pe2d"] <= 1.0
    assert result.utilisation["pe2d"] == pytest.approx(macs / (rows * cols * result.cycles))
    assert result.cycles >= result.traffic_bytes / (DRAM_BYTES_PER_S / CLOCK_HZ)
    assert result.traffic_bytes >= (m * k + k * n + m * n) * WORD_BYTES
    assert result.energy_pj >= macs * MAC_PJ
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
