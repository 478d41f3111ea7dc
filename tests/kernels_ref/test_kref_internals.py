"""Pieces of the 1-pass kernel: the vectorisable exponential and the online-softmax update's guards."""
from __future__ import annotations

import numpy as np
import pytest

from attnsim.kernels_ref._fastexp import exp_constants, exp_nonpositive_array
from attnsim.kernels_ref.one_pass import online_softmax_update

# Largest relative error allowed against numpy's float64 exp: a few units in the last place.
EXP_TOLERANCE = {np.float32: 3e-7, np.float64: 6e-16}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_exp_matches_numpy_exp(dtype):
    rng = np.random.default_rng(1)
    y = np.concatenate([-rng.uniform(0, 80, 20000), -rng.uniform(0, 1, 2000), -np.logspace(-30, 1, 500)])
    y = y.astype(dtype)
    expected = np.exp(y.astype(np.float64))
    out = exp_nonpositive_array(y, exp_constants(dtype))
    assert out.dtype == dtype
    assert np.max(np.abs(out - expected) / expected) <= EXP_TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_exp_special_values(dtype):
    y = np.array([0.0, -0.0, -np.inf, -1e4, -1e30, -800.0], dtype=dtype)
    out = exp_nonpositive_array(y, exp_constants(dtype))
    np.testing.assert_array_equal(out, np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_exp_flushes_only_below_its_threshold(dtype):
    # exp(-80) ~ 1.8e-35 is representable in both dtypes and must not be flushed to zero.
    out = exp_nonpositive_array(np.array([-80.0], dtype=dtype), exp_constants(dtype))
    assert abs(out[0] / np.exp(-80.0) - 1.0) <= EXP_TOLERANCE[dtype]


def fresh_state(rows, dtype):
    return (np.full(rows, -np.inf, dtype=dtype), np.zeros(rows, dtype=dtype),
            np.empty(rows, dtype=dtype), np.empty(rows, dtype=dtype), np.empty(rows, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fully_masked_block_leaves_a_fresh_state_unchanged(dtype):
    # Keys 10..13 against query rows 0..3 under causal: every score is masked.
    scores = np.full((4, 4), 1e4, dtype=dtype)
    running_max, running_den, new_max, block_den, alpha = fresh_state(4, dtype)
    online_softmax_update(scores, 10, 0, True, dtype(1.0), running_max, running_den, new_max, block_den,
                          alpha, exp_constants(dtype))
    assert np.all(running_max == -np.inf)
    np.testing.assert_array_equal(running_den, np.zeros(4))
    np.testing.assert_array_equal(alpha, np.ones(4))
    np.testing.assert_array_equal(scores, np.zeros((4, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fully_masked_block_leaves_a_running_state_unchanged(dtype):
    scores = np.full((3, 2), -5.0, dtype=dtype)
    running_max = np.array([2.0, -1e4], dtype=dtype)
    running_den = np.array([1.5, 3.0], dtype=dtype)
    new_max, block_den, alpha = (np.empty(2, dtype=dtype) for _ in range(3))
    online_softmax_update(scores, 5, 0, True, dtype(1.0), running_max, running_den, new_max, block_den,
                          alpha, exp_constants(dtype))
    np.testing.assert_array_equal(running_max, [2.0, -1e4])
    np.testing.assert_array_equal(running_den, [1.5, 3.0])
    np.testing.assert_array_equal(alpha, [1.0, 1.0])
    np.testing.assert_array_equal(scores, np.zeros((3, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_rescales_by_the_new_maximum(dtype):
    # One query row, running max 0 and denominator 2; new block logits [1, 3] scaled by 2 -> [2, 6].
    scores = np.array([[1.0], [3.0]], dtype=dtype)
    running_max = np.array([0.0], dtype=dtype)
    running_den = np.array([2.0], dtype=dtype)
    new_max, block_den, alpha = (np.empty(1, dtype=dtype) for _ in range(3))
    online_softmax_update(scores, 0, 0, False, dtype(2.0), running_max, running_den, new_max, block_den,
                          alpha, exp_constants(dtype))
    rtol = 10 * EXP_TOLERANCE[dtype]
    np.testing.assert_allclose(running_max, [6.0])
    np.testing.assert_allclose(alpha, [np.exp(-6.0)], rtol=rtol)
    np.testing.assert_allclose(scores[:, 0], [np.exp(-4.0), 1.0], rtol=rtol)
    np.testing.assert_allclose(running_den, [2 * np.exp(-6.0) + np.exp(-4.0) + 1.0], rtol=rtol)
