"""The kernels' Python interface: argument checking, dtype and layout handling, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from attnsim import kernels_ref
from attnsim.kernels_ref import KernelInputError

FUNCTIONS = {
    "3pass": kernels_ref.attention_3pass,
    "2pass": kernels_ref.attention_2pass,
    "1pass": kernels_ref.attention_1pass,
    "fusemax": kernels_ref.attention_fusemax,
}


def small_inputs(dtype=np.float64, num_queries=5, num_keys=7, e=3, f=2):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((num_queries, e)).astype(dtype),
            rng.standard_normal((num_keys, e)).astype(dtype),
            rng.standard_normal((num_keys, f)).astype(dtype))


def expect_error(match, algorithm, *args, **kwargs):
    with pytest.raises(KernelInputError, match=match) as info:
        kernels_ref.attention(*args, algorithm, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    return message


def test_algorithm_names():
    assert kernels_ref.ALGORITHMS == ("3pass", "2pass", "1pass", "fusemax")


@pytest.mark.parametrize("algorithm", ["2-pass", "flash", "", None])
def test_unknown_algorithm_is_refused(algorithm):
    q, k, v = small_inputs()
    with pytest.raises(KernelInputError, match="unknown algorithm") as info:
        kernels_ref.attention(q, k, v, algorithm, tile_m=2)
    assert "3pass, 2pass, 1pass, fusemax" in str(info.value)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@pytest.mark.parametrize("bad_dtype", [np.int64, np.int32, np.float16, np.complex128, np.bool_])
def test_unsupported_dtypes_are_refused_by_name(algorithm, bad_dtype):
    q, k, v = small_inputs()
    message = expect_error(np.dtype(bad_dtype).name, algorithm, q.astype(bad_dtype), k, v, tile_m=2)
    assert "expected float32 or float64" in message


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_mixed_dtypes_are_refused(algorithm):
    q, k, v = small_inputs()
    expect_error("share one dtype", algorithm, q, k.astype(np.float32), v, tile_m=2)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_bad_shapes_are_refused(algorithm):
    q, k, v = small_inputs()
    expect_error("must be 2-D", algorithm, q[0], k, v, tile_m=2)
    expect_error("their E differ", algorithm, q[:, :2], k, v, tile_m=2)
    expect_error("their M differ", algorithm, q, k, v[:-1], tile_m=2)
    expect_error("no empty axis", algorithm, q, k[:0], v[:0], tile_m=2)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused(algorithm, bad_value):
    q, k, v = small_inputs()
    v = v.copy()
    v[1, 1] = bad_value
    expect_error("NaN or infinity", algorithm, q, k, v, tile_m=2)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@pytest.mark.parametrize("bad_tile", [0, -3, 2.5, True, "4"])
def test_bad_tile_sizes_are_refused(algorithm, bad_tile):
    q, k, v = small_inputs()
    expect_error("tile_m must be a positive integer", algorithm, q, k, v, tile_m=bad_tile)


def test_fusemax_requires_a_tile_size():
    q, k, v = small_inputs()
    expect_error("tile_m .* is required", "fusemax", q, k, v)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@pytest.mark.parametrize("bad_scale", [np.nan, np.inf, "0.5", True])
def test_bad_scales_are_refused(algorithm, bad_scale):
    q, k, v = small_inputs()
    expect_error("scale must be a finite real number", algorithm, q, k, v, scale=bad_scale, tile_m=2)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_non_bool_causal_is_refused(algorithm):
    q, k, v = small_inputs()
    expect_error("causal must be a bool", algorithm, q, k, v, causal="yes", tile_m=2)


@pytest.mark.parametrize("algorithm", ["3pass", "2pass", "1pass"])
def test_tile_size_is_optional_except_for_fusemax(algorithm):
    q, k, v = small_inputs()
    assert kernels_ref.attention(q, k, v, algorithm).shape == (5, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_strided_and_fortran_inputs_give_the_contiguous_result(algorithm, dtype):
    q, k, v = small_inputs(dtype, num_queries=9, num_keys=11, e=4, f=3)
    expected = kernels_ref.attention(q, k, v, algorithm, causal=True, tile_m=3)
    wide_q = np.zeros((9, 8), dtype=dtype)
    wide_q[:, ::2] = q
    out = kernels_ref.attention(wide_q[:, ::2], np.asfortranarray(k), np.asfortranarray(v), algorithm,
                                causal=True, tile_m=3)
    assert out.dtype == dtype
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_direct_functions_equal_the_dispatcher(algorithm):
    q, k, v = small_inputs(np.float32)
    np.testing.assert_array_equal(
        FUNCTIONS[algorithm](q, k, v, causal=True, scale=0.5, tile_m=3),
        kernels_ref.attention(q, k, v, algorithm, causal=True, scale=0.5, tile_m=3),
    )


@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_results_are_bit_identical_run_to_run(algorithm):
    rng = np.random.default_rng(5)
    q = rng.standard_normal((300, 16)).astype(np.float32)
    k = rng.standard_normal((400, 16)).astype(np.float32)
    v = rng.standard_normal((400, 16)).astype(np.float32)
    first = kernels_ref.attention(q, k, v, algorithm, causal=True, tile_m=96)
    for _ in range(3):
        np.testing.assert_array_equal(kernels_ref.attention(q, k, v, algorithm, causal=True, tile_m=96), first)


def test_inputs_are_not_modified():
    q, k, v = small_inputs(np.float32)
    copies = [a.copy() for a in (q, k, v)]
    for algorithm in kernels_ref.ALGORITHMS:
        kernels_ref.attention(q, k, v, algorithm, causal=True, scale=3.0, tile_m=2)
    for original, copy in zip((q, k, v), copies):
        np.testing.assert_array_equal(original, copy)
