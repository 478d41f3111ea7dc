"""The variant references against independent numpy formulas written here (another formulation
where one exists: dense M x P products instead of the kernels' per-row loops and recurrences).

Error measure: max|out - ref| / max|ref|; the kernels accumulate in float64, so float64 agrees to
rounding (achieved about 1e-15; bound 1e-12) and float32 to its input rounding (bound 1e-5).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from attnsim import kernels_ref
from attnsim.kernels_ref import KernelInputError

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def qkv(p=9, m=12, e=5, f=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((p, e)).astype(dtype), rng.standard_normal((m, e)).astype(dtype),
            rng.standard_normal((m, f)).astype(dtype))


def err(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


def causal_mask(p, m):
    return np.arange(m)[None, :] <= np.arange(p)[:, None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_sigmoid_attention(dtype, causal):
    q, k, v = qkv(dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    weights = 1.0 / (1.0 + np.exp(-(q64 @ k64.T / math.sqrt(5) - math.log(12))))
    if causal:
        weights = weights * causal_mask(9, 12)
    out = kernels_ref.sigmoid_attention(q, k, v, causal=causal)
    assert out.dtype == dtype
    assert err(out, weights @ v64) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_attention(dtype):
    q, k, v = qkv(dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    weights = np.log(1.0 + np.exp(0.5 * q64 @ k64.T))
    ref = (weights / weights.sum(axis=1, keepdims=True)) @ v64
    assert err(kernels_ref.softplus_attention(q, k, v, scale=0.5), ref) <= TOLERANCE[dtype]


def _phi(x):
    return np.where(x > 0, x + 1.0, np.exp(x))  # elu(x) + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_attention_equals_the_explicit_left_product(dtype):
    q, k, v = qkv(dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    similarity = _phi(q64) @ _phi(k64).T  # the P x M matrix the right product avoids
    ref = (similarity / similarity.sum(axis=1, keepdims=True)) @ v64
    assert err(kernels_ref.linear_attention(q, k, v), ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_causal_linear_attention_equals_dense_masked(dtype):
    q, k, v = qkv(p=10, m=10, dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    similarity = (_phi(q64) @ _phi(k64).T) * causal_mask(10, 10)
    ref = (similarity / similarity.sum(axis=1, keepdims=True)) @ v64
    assert err(kernels_ref.causal_linear_attention(q, k, v), ref) <= TOLERANCE[dtype]


def _softmax(logits):
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipped_softmax_attention(dtype):
    q, k, v = qkv(dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    # zeta = 1.2 makes the upper clip bite on the peaked rows, gamma = -0.05 the lower on small weights
    logits = 3.0 * q64 @ k64.T
    weights = np.clip((1.2 + 0.05) * _softmax(logits) - 0.05, 0.0, 1.0)
    assert (weights == 0).any() and (weights == 1).any()
    out = kernels_ref.clipped_softmax_attention(q, k, v, scale=3.0, zeta=1.2, gamma=-0.05)
    assert err(out, weights @ v64) <= TOLERANCE[dtype] * 10  # 3x logits amplify float32 rounding


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_selective_temperature_attention(dtype):
    q, k, v = qkv(dtype=dtype)
    q64, k64, v64 = f64(q, k, v)
    tau = np.linspace(0.25, 2.0, 9)
    ref = _softmax(tau[:, None] * (q64 @ k64.T)) @ v64
    out = kernels_ref.selective_temperature_attention(q, k, v, tau.astype(dtype))
    assert err(out, ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize("splits", [1, 3, 12])
def test_split_k_decode_equals_one_softmax(splits):
    q, k, v = qkv(p=2)
    ref = _softmax(q @ k.T) @ v
    assert err(kernels_ref.split_k_decode(q, k, v, splits), ref) <= 1e-12


@pytest.mark.parametrize("call, message", [
    (lambda q, k, v: kernels_ref.split_k_decode(q, k, v, 5), "split_k_decode: num_splits=5; expected a positive "
                                                             "divisor of the 12 keys"),
    (lambda q, k, v: kernels_ref.causal_linear_attention(q, k, v), "causal_linear_attention: q has 9 rows and k 12"),
    (lambda q, k, v: kernels_ref.selective_temperature_attention(q, k, v, np.ones(3)),
     "selective_temperature_attention: temperature has shape (3,)"),
    (lambda q, k, v: kernels_ref.sigmoid_attention(q, k, v, bias=float("nan")), "sigmoid_attention: bias must be"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(KernelInputError) as caught:
        call(*qkv())
    assert str(caught.value).startswith(message)


def test_registry_names_every_variant():
    assert set(kernels_ref.VARIANTS) == {
        "sigmoid-attention", "softplus-attention", "linear-attention", "causal-linear-attention",
        "clipped-softmax-attention", "selective-temperature-attention", "split-k-decode",
        "lssa-attention", "hedgehog-attention", "lightning2-attention", "gated-attention", "window-attention"}
