"""Every kernel against a plain numpy softmax attention written here, and against closed forms.

Error measure: max|out - ref| / max|ref| (normwise relative), at most 1e-5 for float32 and 1e-12
for float64. The reference is computed in float64 from the very same (possibly float32) inputs.
Large-logit cases use integer-valued q and k (|entries| <= 100, E <= 16) and power-of-two scales,
so that their logits (up to about 1.6e5) are exact in float32 too: with inexact logits of size 1e4
no float32 kernel could reach 1e-5, whatever its algorithm (softmax amplifies a logit error d into a
relative weight error d, and float32 rounds 1e4 to within 5e-4).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim import kernels_ref
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = (np.float32, np.float64)
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def reference_attention(q, k, v, causal, scale):
    """softmax_m(scale * q k^T with keys m > p removed under causal) @ v, in float64."""
    logits = q.astype(np.float64) @ k.astype(np.float64).T
    if scale is not None:
        logits = logits * float(q.dtype.type(scale))  # the kernels use the scale rounded to their dtype
    if causal:
        num_queries, num_keys = logits.shape
        logits[np.arange(num_keys)[None, :] > np.arange(num_queries)[:, None]] = -np.inf
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ v.astype(np.float64)


def normwise_error(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def assert_matches(out, ref, dtype):
    assert out.dtype == dtype
    assert out.shape == ref.shape
    assert np.isfinite(out).all()
    assert normwise_error(out, ref) <= TOLERANCE[dtype]


shapes = st.fixed_dictionaries({
    "num_queries": st.integers(1, 96),
    "num_keys": st.integers(1, 96),
    "e": st.integers(1, 16),
    "f": st.integers(1, 16),
    "tile_m": st.integers(1, 100),
    "seed": st.integers(0, 2**32 - 1),
})
scales = st.one_of(st.none(), st.sampled_from([0.125, 0.3, 1.7, -0.5]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@SETTINGS
@given(shape=shapes, scale=scales)
def test_random_inputs_match_numpy(algorithm, causal, dtype, shape, scale):
    rng = np.random.default_rng(shape["seed"])
    q = rng.standard_normal((shape["num_queries"], shape["e"])).astype(dtype)
    k = rng.standard_normal((shape["num_keys"], shape["e"])).astype(dtype)
    v = rng.standard_normal((shape["num_keys"], shape["f"])).astype(dtype)
    out = kernels_ref.attention(q, k, v, algorithm, causal=causal, scale=scale, tile_m=shape["tile_m"])
    assert_matches(out, reference_attention(q, k, v, causal, scale), dtype)
    if causal:  # query 0 sees key 0 only
        np.testing.assert_allclose(out[0], v[0], rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@SETTINGS
@given(shape=shapes, scale=st.sampled_from([None, 0.25, 0.5, 2.0]))
def test_huge_exact_logits_match_numpy(algorithm, causal, dtype, shape, scale):
    rng = np.random.default_rng(shape["seed"])
    q = rng.integers(-100, 101, (shape["num_queries"], shape["e"])).astype(dtype)
    k = rng.integers(-100, 101, (shape["num_keys"], shape["e"])).astype(dtype)
    v = rng.standard_normal((shape["num_keys"], shape["f"])).astype(dtype)
    out = kernels_ref.attention(q, k, v, algorithm, causal=causal, scale=scale, tile_m=shape["tile_m"])
    assert_matches(out, reference_attention(q, k, v, causal, scale), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_logits_of_plus_and_minus_1e4(algorithm, causal, dtype):
    # E = 1: logits are q*k exactly: +1e4 and -1e4 in every row, plus a 0 and a tie.
    q = np.array([[100.0], [-100.0], [1.0], [0.0]], dtype=dtype)
    k = np.array([[100.0], [-100.0], [0.0], [100.0], [-100.0]], dtype=dtype)
    v = np.arange(10, dtype=dtype).reshape(5, 2)
    for tile_m in (1, 2, 3, 5, 8):
        out = kernels_ref.attention(q, k, v, algorithm, causal=causal, tile_m=tile_m)
        assert_matches(out, reference_attention(q, k, v, causal, None), dtype)
    if not causal:  # rows 0 and 1: the two tied keys at +1e4 share the weight; row 3: uniform
        expected = np.array([(v[0] + v[3]) / 2, (v[1] + v[4]) / 2, (v[0] + v[3]) / 2, v.mean(axis=0)])
        np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@SETTINGS
@given(shape=shapes, logit_level=st.sampled_from([0.0, 1.0, 1e4, -1e4]))
def test_all_equal_logits_give_the_mean_of_visible_values(algorithm, causal, dtype, shape, logit_level):
    # Identical key rows make every logit of a query row equal: softmax is uniform, so row p is the
    # mean of v over the keys it sees (all of them, or keys 0..p under causal).
    rng = np.random.default_rng(shape["seed"])
    num_queries, num_keys = shape["num_queries"], shape["num_keys"]
    q = np.full((num_queries, 1), logit_level / 100.0, dtype=dtype)
    k = np.full((num_keys, 1), 100.0, dtype=dtype)
    v = rng.standard_normal((num_keys, shape["f"])).astype(dtype)
    out = kernels_ref.attention(q, k, v, algorithm, causal=causal, tile_m=shape["tile_m"])
    v64 = v.astype(np.float64)
    if causal:
        visible = np.minimum(np.arange(num_queries) + 1, num_keys)
        expected = np.cumsum(v64, axis=0)[visible - 1] / visible[:, None]
    else:
        expected = np.broadcast_to(v64.mean(axis=0), (num_queries, shape["f"]))
    assert_matches(out, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
@pytest.mark.parametrize(("num_queries", "num_keys", "tile_m"), [(3, 40, 4), (40, 3, 2), (2, 64, 5), (300, 9, 512)])
def test_causal_with_more_keys_than_queries_and_fully_masked_tiles(algorithm, dtype, num_queries, num_keys, tile_m):
    # With num_keys > num_queries most key tiles are fully masked for every query.
    rng = np.random.default_rng(7)
    q = (10 * rng.standard_normal((num_queries, 4))).astype(dtype)
    k = (10 * rng.standard_normal((num_keys, 4))).astype(dtype)
    v = rng.standard_normal((num_keys, 3)).astype(dtype)
    out = kernels_ref.attention(q, k, v, algorithm, causal=True, tile_m=tile_m)
    assert_matches(out, reference_attention(q, k, v, True, None), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("algorithm", kernels_ref.ALGORITHMS)
def test_constant_values_are_reproduced(algorithm, causal, dtype):
    # Softmax weights sum to 1, so if every row of v is c, every output row is c.
    rng = np.random.default_rng(3)
    q = rng.standard_normal((37, 8)).astype(dtype)
    k = rng.standard_normal((53, 8)).astype(dtype)
    c = np.array([1.5, -2.0, 0.25], dtype=dtype)
    v = np.tile(c, (53, 1))
    out = kernels_ref.attention(q, k, v, algorithm, causal=causal, scale=0.7, tile_m=10)
    assert_matches(out, np.tile(c.astype(np.float64), (37, 1)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_one_pass_across_several_query_and_key_blocks(causal, dtype):
    # Larger than one 256-row query block and several key blocks, with a ragged last block each.
    rng = np.random.default_rng(11)
    q = rng.standard_normal((600, 16)).astype(dtype)
    k = rng.standard_normal((700, 16)).astype(dtype)
    v = rng.standard_normal((700, 8)).astype(dtype)
    for tile_m in (None, 100, 700, 1000):
        out = kernels_ref.attention_1pass(q, k, v, causal=causal, scale=0.25, tile_m=tile_m)
        assert_matches(out, reference_attention(q, k, v, causal, 0.25), dtype)
