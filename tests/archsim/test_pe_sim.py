"""PE-level systolic simulator: numerics against numpy, cycles against the closed form and the engine."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.archsim import load_arch
from attnsim.archsim.engine import run
from attnsim.archsim.pe_sim import simulate_gemm
from attnsim.mappers.gemm import map_gemm

SHAPES = [  # (M, N, K, rows, cols): single fold, partial folds, multi-fold, skinny, 2x2 .. 16x16
    (2, 2, 2, 2, 2), (4, 4, 4, 4, 4), (3, 5, 7, 4, 4), (16, 16, 16, 16, 16), (9, 11, 13, 4, 8),
    (33, 17, 9, 8, 4), (1, 1, 1, 16, 16), (5, 40, 3, 2, 16), (40, 3, 21, 16, 2), (20, 20, 50, 3, 5),
]


def per_fold_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    """The per-fold convention, written independently: folds x (2R + C + T - 2) (skew/fill, T MAC
    steps, output drain). SCALE-Sim counts the same for WS/IS; for OS it omits the R-cycle drain."""
    spatial_rows, spatial_cols, temporal = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    folds = math.ceil(spatial_rows / rows) * math.ceil(spatial_cols / cols)
    return folds * (2 * rows + cols + temporal - 2)


def engine_compute_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> int:
    arch = load_arch("fusemax-cloud", {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols})
    return run(map_gemm(m, n, k, arch, dataflow, "per_fold", ideal_dram=True)).cycles


def random_operands(m: int, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # small integers: every partial sum is exact in float64, so equality is exact
    return (rng.integers(-4, 5, (m, k)).astype(np.float64), rng.integers(-4, 5, (k, n)).astype(np.float64))


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("m, n, k, rows, cols", SHAPES)
def test_pe_sim_computes_the_gemm_and_matches_scalesim_and_the_engine(m, n, k, rows, cols, dataflow):
    a, b = random_operands(m, n, k, seed=m * 1000 + n * 10 + k)
    c, cycles = simulate_gemm(a, b, rows, cols, dataflow)
    np.testing.assert_array_equal(c, a @ b)
    assert cycles == per_fold_cycles(m, n, k, rows, cols, dataflow)
    assert cycles == engine_compute_cycles(m, n, k, rows, cols, dataflow)


def test_pe_sim_real_values():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((13, 6)), rng.standard_normal((6, 10))
    for dataflow in ("os", "ws", "is"):
        c, _ = simulate_gemm(a, b, 4, 3, dataflow)
        np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 24), n=st.integers(1, 24), k=st.integers(1, 24), rows=st.integers(2, 16),
       cols=st.integers(2, 16), dataflow=st.sampled_from(["os", "ws", "is"]))
def test_pe_sim_property(m, n, k, rows, cols, dataflow):
    a, b = random_operands(m, n, k, seed=1)
    c, cycles = simulate_gemm(a, b, rows, cols, dataflow)
    np.testing.assert_array_equal(c, a @ b)
    assert cycles == engine_compute_cycles(m, n, k, rows, cols, dataflow)


def test_pe_sim_rejects_bad_input():
    a = np.ones((2, 3))
    with pytest.raises(ValueError):
        simulate_gemm(a, np.ones((4, 2)), 2, 2, "os")
    with pytest.raises(ValueError):
        simulate_gemm(a, np.ones((3, 2)), 2, 2, "xs")
    with pytest.raises(ValueError):
        simulate_gemm(a, np.ones((3, 2)), 2, 2, "os", fill_drain="overlapped")
