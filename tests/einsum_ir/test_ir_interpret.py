"""Interpreter: every built-in attention cascade equals plain numpy softmax attention written here.

Expected values come from numpy code in this file (never from the interpreter itself): random shapes
and values (hypothesis), adversarial logits of +-1e4, all-equal rows, causal masks.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim import einsum_ir
from attnsim.einsum_ir import CascadeError, evaluate, load_cascade_text

ATTENTION = ["attention-3pass", "attention-3pass-deferred", "attention-2pass", "attention-1pass"]
ALL_ATTENTION = ATTENTION + [name + "-causal" for name in ATTENTION]
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


@functools.lru_cache(maxsize=None)
def builtin(name: str):
    return einsum_ir.load_builtin(name)


def numpy_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool) -> np.ndarray:
    """softmax_m(q k^T) v in fp64; q (P,E), k (M,E), v (M,F); causal keeps m <= p + M - P (the P
    queries are the last P of the M positions; m <= p when P = M)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    logits = q @ k.T
    if causal:
        p_index, m_index = np.indices(logits.shape)
        logits = np.where(m_index <= p_index + k.shape[0] - q.shape[0], logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)) @ v


def run_cascade(name: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, m0: int) -> np.ndarray:
    (p, e), (m, f) = q.shape, v.shape
    sizes = {"M": m, "P": p, "E": e, "F": f, "M0": m0}
    return evaluate(builtin(name), sizes, {"Q": q.T, "K": k.T, "V": v.T})["AV"].T


def normwise_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual.astype(np.float64) - expected)) / np.max(np.abs(expected)))


shapes = st.fixed_dictionaries({
    "m0": st.integers(1, 4), "m1": st.integers(1, 4), "p": st.integers(1, 6),
    "e": st.integers(1, 4), "f": st.integers(1, 4), "seed": st.integers(0, 2**16),
})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ALL_ATTENTION)
@settings(max_examples=15, deadline=None)
@given(shape=shapes)
def test_random_shapes_match_numpy_attention(name, dtype, shape):
    rng = np.random.default_rng(shape["seed"])
    m = shape["m0"] * shape["m1"]
    p = min(shape["p"], m) if name.endswith("-causal") else shape["p"]   # causal: P <= M, queries at the end
    q = (2.0 * rng.standard_normal((p, shape["e"]))).astype(dtype)
    k = (2.0 * rng.standard_normal((m, shape["e"]))).astype(dtype)
    v = rng.standard_normal((m, shape["f"])).astype(dtype)
    out = run_cascade(name, q, k, v, shape["m0"])
    assert out.dtype == dtype
    assert np.all(np.isfinite(out))
    expected = numpy_attention(q, k, v, causal=name.endswith("-causal"))
    assert normwise_error(out, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ALL_ATTENTION)
@settings(max_examples=10, deadline=None)
@given(shape=shapes, sign=st.sampled_from([1, -1]))
def test_logits_of_1e4_stay_finite_and_exact(name, dtype, shape, sign):
    # Integer-valued Q and K (|entries| <= 100) make every logit an exact integer in fp32 and fp64, with
    # magnitudes up to 1e4 per product: naive exp would overflow to inf / underflow every weight to 0.
    rng = np.random.default_rng(shape["seed"])
    m = shape["m0"] * shape["m1"]
    p = min(shape["p"], m) if name.endswith("-causal") else shape["p"]   # causal: P <= M, queries at the end
    q = (sign * rng.integers(-100, 101, (p, shape["e"]))).astype(dtype)
    k = rng.integers(-100, 101, (m, shape["e"])).astype(dtype)
    k[0, :] = 100.0 * np.sign(q[0, :] + 0.5)  # query 0 meets a logit of +100 * sum|q| (about 1e4 per e)
    v = rng.standard_normal((m, shape["f"])).astype(dtype)
    out = run_cascade(name, q, k, v, shape["m0"])
    assert np.all(np.isfinite(out))
    expected = numpy_attention(q, k, v, causal=name.endswith("-causal"))
    assert normwise_error(out, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("name", ALL_ATTENTION)
def test_all_equal_rows_average_the_values(name):
    # Every key is the same vector, so each query weighs its visible keys equally: the output is the mean of
    # V over m (over m <= p + M - P when causal), computed here with cumulative sums.
    m, p, e, f, m0 = 12, 9, 3, 2, 4
    rng = np.random.default_rng(7)
    q = rng.standard_normal((p, e))
    k = np.tile(rng.standard_normal((1, e)) * 50.0, (m, 1))
    v = rng.standard_normal((m, f))
    out = run_cascade(name, q, k, v, m0)
    if name.endswith("-causal"):
        visible = np.arange(p) + m - p + 1          # end-aligned: query i at position m - p + i
        expected = np.cumsum(v, axis=0)[visible - 1] / visible[:, None]
    else:
        expected = np.tile(v.mean(axis=0), (p, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [n + "-causal" for n in ATTENTION])
def test_causal_masked_keys_do_not_leak(name):
    # Later keys (m > p) carry logits of +1e4 and huge values: if any masked point leaked into a reduction,
    # the output would be dominated by it. Query p = 0 sees key 0 only, so its output is V[0] exactly.
    m, p, e, f, m0 = 8, 8, 2, 3, 2
    rng = np.random.default_rng(3)
    q = np.ones((p, e))
    k = np.zeros((m, e))
    k[1:, :] = 5e3
    v = rng.standard_normal((m, f))
    v[4:, :] = 1e6
    out = run_cascade(name, q, k, v, m0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], v[0], rtol=1e-12)
    np.testing.assert_allclose(out, numpy_attention(q, k, v, causal=True), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["attention-2pass", "attention-1pass", "attention-2pass-causal",
                                  "attention-1pass-causal"])
@settings(max_examples=20, deadline=None)
@given(m0=st.integers(2, 6), m=st.integers(1, 40))
def test_m_not_a_multiple_of_m0_is_refused(name, m0, m):
    if m % m0 == 0:
        m += 1
    q, k, v = np.zeros((2, 2)), np.zeros((m, 2)), np.zeros((m, 2))
    with pytest.raises(CascadeError, match=rf"M={m} is not divisible by M0={m0} at 'M1: M/M0'; expected M to be"):
        run_cascade(name, q, k, v, m0)


def test_fp32_inputs_give_fp32_everywhere():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (8, 3), (8, 2)))
    out = evaluate(builtin("attention-1pass"), {"M": 8, "P": 4, "E": 3, "F": 2, "M0": 4},
                   {"Q": q.T, "K": k.T, "V": v.T}, keep_intermediates=True)
    assert {a.dtype for a in out.values()} == {np.dtype(np.float32)}


def test_input_shape_is_checked():
    message = r"attention-3pass.yaml:4: input Q has shape \(3, 4\) at 'Q'; expected shape \(E, P\) = \(4, 3\)"
    with pytest.raises(CascadeError, match=message):
        evaluate(builtin("attention-3pass"), {"M": 5, "P": 3, "E": 4, "F": 2},
                 {"Q": np.zeros((3, 4)), "K": np.zeros((4, 5)), "V": np.zeros((2, 5))})


def test_default_size_runs_every_builtin_attention_cascade():
    # The size the CLI uses by default; all eight cascades agree with numpy within 1e-12 (fp64).
    m = p = 1024
    rng = np.random.default_rng(11)
    q, k, v = rng.standard_normal((p, 64)), rng.standard_normal((m, 64)), rng.standard_normal((m, 64))
    for causal in (False, True):
        expected = numpy_attention(q, k, v, causal)
        for name in ATTENTION:
            full = name + ("-causal" if causal else "")
            assert normwise_error(run_cascade(full, q, k, v, 256), expected) <= 1e-12, full


# --- presence semantics on small cascades written here ---------------------------------------------

def small(einsums: str, inputs: str = "X", outputs: str = "Y", ranks: str = "m: M, p: P") -> einsum_ir.Cascade:
    text = (f"name: s\nranks: {{{ranks}}}\ninputs: [{inputs}]\noutputs: [{outputs}]\neinsums: |\n"
            + "".join(f"  {line.strip()}\n" for line in einsums.strip().splitlines()))
    return load_cascade_text(text, source="<small>")


X = np.arange(1.0, 13.0).reshape(3, 4) - 20.0  # X[m,p], M=3, P=4, all negative
LOWER = np.arange(3)[:, None] <= np.arange(4)[None, :]  # m <= p


def test_filtered_points_are_absent_and_read_as_zero():
    out = evaluate(small("Y[m,p] = X[m,p] * 2 where m <= p"), {"M": 3, "P": 4}, {"X": X})["Y"]
    np.testing.assert_array_equal(out, np.where(LOWER, 2 * X, 0.0))


def test_union_maps_treat_absent_operands_as_identity():
    cascade = small("""
        T[m,p] = X[m,p] where m <= p
        Y[m,p] = T[m,p] + 1
        Z[m,p] = max(T[m,p], C[p])
        W[m,p] = T[m,p] - T[m,p]
    """, inputs="X, C", outputs="Y, Z, W")
    c = np.array([-5.0, 100.0, 0.5, 7.0])
    out = evaluate(cascade, {"M": 3, "P": 4}, {"X": X, "C": c})
    np.testing.assert_array_equal(out["Y"], np.where(LOWER, X + 1, 1.0))  # a constant is present everywhere
    np.testing.assert_array_equal(out["Z"], np.where(LOWER, np.maximum(X, c), c))
    np.testing.assert_array_equal(out["W"], np.zeros((3, 4)))  # absent where T is absent: read as 0


def test_intersection_maps_are_absent_if_any_operand_is():
    cascade = small("""
        T[m,p] = X[m,p] where m <= p
        Y[m,p] = exp(T[m,p]) * X[m,p]
    """)
    out = evaluate(cascade, {"M": 3, "P": 4}, {"X": X})["Y"]
    np.testing.assert_allclose(out, np.where(LOWER, np.exp(X) * X, 0.0), rtol=1e-15)


UPPER = np.arange(3)[:, None] > np.arange(4)[None, :]  # m > p: empty for p = 2, 3


@pytest.mark.parametrize("op, identity", [("sum", 0.0), ("max", -np.inf), ("min", np.inf)])
def test_reduction_over_only_absent_values_gives_the_identity(op, identity):
    # T is absent where m <= p, so for p = 2, 3 the reduction over m sees no present point.
    cascade = small(f"""
        T[m,p] = X[m,p] where m > p
        Y[p] = T[m,p] :: {op}
    """)
    out = evaluate(cascade, {"M": 3, "P": 4}, {"X": X})["Y"]
    ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[op]
    expected = ufunc.reduce(np.where(UPPER, X, identity), axis=0)
    np.testing.assert_array_equal(out, expected)
    assert out[2] == identity and out[3] == identity and out[0] == ufunc.reduce(X[1:, 0])


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_filter_on_a_reduction_makes_empty_output_points_absent(op):
    # The filter restricts the iteration space: for p = 2, 3 no (m, p) passes, so Y[p] is absent (reads 0).
    out = evaluate(small(f"Y[p] = X[m,p] :: {op} where m > p"), {"M": 3, "P": 4}, {"X": X})["Y"]
    ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[op]
    np.testing.assert_array_equal(out[:2], [ufunc.reduce(X[1:, 0]), ufunc.reduce(X[2:, 1])])
    np.testing.assert_array_equal(out[2:], [0.0, 0.0])


def test_filtered_contraction_is_absent_downstream():
    # QK-like contraction over e with a filter on (m, p): masked points must not enter a later max.
    cascade = small("""
        S[m,p] = A[e,m] * B[e,p] where m <= p
        Y[p] = S[m,p] :: max
    """, inputs="A, B", ranks="e: E, m: M, p: P")
    a, b = -np.ones((2, 3)), np.ones((2, 4))  # every product is negative: an absent 0 would win the max
    out = evaluate(cascade, {"E": 2, "M": 3, "P": 4}, {"A": a, "B": b})["Y"]
    np.testing.assert_array_equal(out, [-2.0, -2.0, -2.0, -2.0])


def test_division_by_zero_is_absent_not_nan():
    d = np.array([2.0, 0.0, 4.0, 0.0])
    out = evaluate(small("Y[m,p] = X[m,p] / D[p]", inputs="X, D"), {"M": 3, "P": 4}, {"X": X, "D": d})["Y"]
    np.testing.assert_array_equal(out, np.where(d != 0, X / np.where(d == 0, 1, d), 0.0))


def test_masked_product_sum_skips_infinite_values_at_absent_points():
    # T is absent for m > p; V is inf at m = 2: a sum over m of T*V must skip the absent points (no 0*inf).
    cascade = small("""
        T[m,p] = X[m,p] where m <= p
        Y[p] = T[m,p] * V[m]
    """, inputs="X, V")
    v = np.array([1.0, 2.0, np.inf])
    out = evaluate(cascade, {"M": 3, "P": 4}, {"X": X, "V": v})["Y"]
    expected = np.array([X[0, 0], X[0, 1] + 2 * X[1, 1], -np.inf, -np.inf])  # X < 0
    np.testing.assert_array_equal(out, expected)


def test_chunked_evaluation_matches_unchunked(monkeypatch):
    # A sum over m of a non-product expression is broadcast over (f, m, p); force tiny chunks.
    cascade = small("""
        Y[f,p] = exp(X[m,p] - G[p]) * V[f,m]
        Z = exp(X[m,p] / 10) :: sum
        W[m,p] = X[m,p] * G[p] + 1
    """, inputs="X, G, V", outputs="Y, Z, W", ranks="f: F, m: M, p: P")
    rng = np.random.default_rng(5)
    x, g, v = rng.standard_normal((30, 20)), rng.standard_normal(20), rng.standard_normal((7, 30))
    sizes = {"F": 7, "M": 30, "P": 20}
    expected_y = np.einsum("mp,fm->fp", np.exp(x - g), v)
    expected_z = np.exp(x / 10).sum()
    import attnsim.einsum_ir.interpret as interpret
    for chunk in (interpret.CHUNK_ELEMENTS, 64, 1):
        monkeypatch.setattr(interpret, "CHUNK_ELEMENTS", chunk)
        out = evaluate(cascade, sizes, {"X": x, "G": g, "V": v})
        np.testing.assert_allclose(out["Y"], expected_y, rtol=1e-12)
        np.testing.assert_allclose(out["Z"], expected_z, rtol=1e-12)
        np.testing.assert_allclose(out["W"], x * g + 1, rtol=1e-15)


def test_affine_index_beyond_the_tensor_is_an_error():
    cascade = small("Y[m] = X[m+1]", ranks="m: M")
    # X's extent is inferred as M+1 from its only reference, so a too-short input is a shape error
    with pytest.raises(CascadeError, match=r"input X has shape \(3,\) at 'X'; expected shape \(M \+ 1\) = \(4,\)"):
        evaluate(cascade, {"M": 3}, {"X": np.zeros(3)})
    np.testing.assert_array_equal(evaluate(cascade, {"M": 3}, {"X": np.arange(4.0)})["Y"], [1.0, 2.0, 3.0])
