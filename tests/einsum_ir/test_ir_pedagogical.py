"""Pedagogical cascades 1-3 (paper §III): all compute Z = sum_k(A_k B_k) * sum_k(A_k)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim import einsum_ir
from attnsim.einsum_ir import evaluate


def z_of(name: str, a: np.ndarray, b: np.ndarray) -> float:
    return float(evaluate(einsum_ir.load_builtin(name), {"K": a.size}, {"A": a, "B": b})["Z"])


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_cascade3_equals_cascade1_equals_closed_form(k, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.5, k), rng.uniform(-1.5, 1.5, k)
    b[0] = 1.0  # RY_1 = A_0 B_0 != 0: Cascade 3 divides by RY_k for k >= 1 (and drops the k = 0 ratio)
    closed_form = np.sum(a * b) * np.sum(a)
    z1, z2, z3 = (z_of(name, a, b) for name in ("cascade1", "cascade2", "cascade3"))
    scale = np.sum(np.abs(a * b)) * np.sum(a)
    assert abs(z1 - closed_form) <= 1e-13 * scale
    assert abs(z2 - closed_form) <= 1e-13 * scale
    assert abs(z3 - z1) <= 1e-11 * scale


def test_cascade3_small_case_by_hand():
    # A = (1, 2, 3), B = (1, 1, 1): RY = 0, 1, 3, 6; S = 0, 1, 3, 6; RZ_k = RY_k * S_k = 0, 1, 9, 36.
    a, b = np.array([1.0, 2.0, 3.0]), np.ones(3)
    cascade = einsum_ir.load_builtin("cascade3")
    out = evaluate(cascade, {"K": 3}, {"A": a, "B": b}, keep_intermediates=True)
    np.testing.assert_allclose(out["RY"], [0.0, 1.0, 3.0, 6.0], rtol=1e-15)
    np.testing.assert_allclose(out["RZ"], [0.0, 1.0, 9.0, 36.0], rtol=1e-15)
    assert float(out["Z"]) == pytest.approx(36.0, rel=1e-15)


@pytest.mark.parametrize("name", ["cascade1", "cascade2", "cascade3"])
def test_fp32_stays_fp32(name):
    a = np.linspace(0.5, 1.5, 16, dtype=np.float32)
    out = evaluate(einsum_ir.load_builtin(name), {"K": 16}, {"A": a, "B": a})["Z"]
    assert out.dtype == np.float32
    assert float(out) == pytest.approx(float(np.sum(a.astype(np.float64) ** 2) * np.sum(a.astype(np.float64))),
                                       rel=1e-5)
