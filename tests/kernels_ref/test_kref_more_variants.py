"""The issue-16 variant references (kernels_ref.more_variants) and their cascades against independent
numpy formulas: dense (P x M) formulations, the left product for linear attention, a dense masked
product for causal linear attention."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from attnsim import einsum_ir, kernels_ref
from attnsim.einsum_ir.passes import analyze_passes
from attnsim.kernels_ref import KernelInputError
from tests.einsum_ir.builtin_cascades import builtin

TOL = 1e-12   # fp64: the achieved error is ~1e-15 relative (normwise); margin x1000


def qkv(p=48, m=48, e=16, f=8, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((p, e)) * scale, rng.standard_normal((m, e)) * scale, rng.standard_normal((m, f)))


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def lssa_numpy(q, k, v, causal):
    p_size, m_size = q.shape[0], k.shape[0]
    mask = np.tril(np.ones((p_size, m_size), bool)) if causal else np.ones((p_size, m_size), bool)
    n = mask.sum(axis=1, keepdims=True)
    w = np.where(mask, np.logaddexp(0.0, np.log(n) * (q @ k.T) / np.sqrt(q.shape[1])), 0.0)
    return (w / w.sum(axis=1, keepdims=True)) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_lssa_matches_dense_numpy(causal):
    q, k, v = qkv(scale=2.0)
    assert rel(kernels_ref.lssa_attention(q, k, v, causal=causal), lssa_numpy(q, k, v, causal)) < TOL


def hedgehog_phi(x, w):
    h = x @ w.T
    return np.concatenate([special.softmax(h, axis=1), special.softmax(-h, axis=1)], axis=1)


def test_hedgehog_matches_the_left_product():
    q, k, v = qkv()
    w = np.random.default_rng(5).standard_normal((12, q.shape[1]))
    a = hedgehog_phi(q, w) @ hedgehog_phi(k, w).T          # the explicit P x M matrix
    expected = (a @ v) / a.sum(axis=1, keepdims=True)
    assert rel(kernels_ref.hedgehog_attention(q, k, v, w), expected) < TOL


@pytest.mark.parametrize("lam", [1.0, 0.9])
def test_lightning2_matches_a_dense_masked_product(lam):
    q, k, v = qkv()
    p = np.arange(q.shape[0])
    decay = np.where(p[:, None] >= p[None, :], lam ** (p[:, None] - p[None, :]).clip(0), 0.0)
    expected = ((q @ k.T) * decay) @ v
    assert rel(kernels_ref.lightning2_attention(q, k, v, lam=lam), expected) < TOL


@pytest.mark.parametrize("keys", [20, 48, 70])
def test_lightning2_with_other_key_counts_matches_a_dense_masked_product(keys):
    # query p sees keys m <= p: tril of the P x M score matrix, as the other causal references
    q, _, _ = qkv()
    rng = np.random.default_rng(11)
    k, v = rng.standard_normal((keys, q.shape[1])), rng.standard_normal((keys, 5))
    p, m = np.arange(q.shape[0])[:, None], np.arange(keys)[None, :]
    expected = ((q @ k.T) * (m <= p)) @ v
    assert rel(kernels_ref.lightning2_attention(q, k, v), expected) < TOL


@pytest.mark.parametrize("causal", [False, True])
def test_gated_attention_matches_numpy(causal):
    q, k, v = qkv(scale=1.5)
    g = np.random.default_rng(3).standard_normal(q.shape[0]) * 3
    logits = q @ k.T
    if causal:
        logits = np.where(np.tril(np.ones_like(logits, bool)), logits, -np.inf)
    expected = special.expit(g)[:, None] * (special.softmax(logits, axis=1) @ v)
    assert rel(kernels_ref.gated_attention(q, k, v, g, causal=causal), expected) < TOL


@pytest.mark.parametrize("window", [1, 7, 48, 100])
def test_window_attention_matches_masked_softmax(window):
    q, k, v = qkv(scale=1.5)
    p = np.arange(q.shape[0])
    mask = (p[None, :] <= p[:, None]) & (p[None, :] > p[:, None] - window)
    expected = special.softmax(np.where(mask, q @ k.T, -np.inf), axis=1) @ v
    assert rel(kernels_ref.window_attention(q, k, v, window), expected) < TOL


@pytest.mark.parametrize("call, message", [
    (lambda q, k, v: kernels_ref.hedgehog_attention(q, k, v, np.ones((4, 3))), "hedgehog_attention: w has shape (4, 3)"),
    (lambda q, k, v: kernels_ref.lightning2_attention(q, k, v, lam=1.5), "lightning2_attention: lam must be"),
    (lambda q, k, v: kernels_ref.gated_attention(q, k, v, np.ones(3)), "gated_attention: gate_logits has shape"),
    (lambda q, k, v: kernels_ref.window_attention(q, k, v, 0), "window_attention: window must be"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(KernelInputError) as caught:
        call(*qkv())
    assert str(caught.value).startswith(message)


# --- the cascades, through the interpreter, against the same numpy formulas ---------------------

def layout(q, k, v):
    return {"Q": q.T.copy(), "K": k.T.copy(), "V": v.T.copy()}


@pytest.mark.parametrize("name", ["softplus-lssa", "softplus-lssa-normalised"])
def test_lssa_cascades_match_numpy(name):
    q, k, v = qkv(scale=2.0)
    out = einsum_ir.evaluate(builtin(name), {"M": 48, "P": 48, "E": 16, "F": 8}, layout(q, k, v))["AV"]
    assert rel(out.T, lssa_numpy(q, k, v, False)) < TOL


def test_lightning2_cascade_matches_a_dense_masked_product():
    q, k, v = qkv()
    out = einsum_ir.evaluate(builtin("lightning2-causal"), {"N": 48, "B": 8, "E": 16, "F": 8}, layout(q, k, v))["AV"]
    assert rel(out.T, np.tril(q @ k.T) @ v) < TOL


def test_window_cascade_skips_whole_tiles_before_the_window():
    q, k, v = qkv(p=64, m=64, scale=4.0)   # window 12 < tile 16: tiles wholly before the window occur
    p = np.arange(64)
    mask = (p[None, :] <= p[:, None]) & (p[None, :] > p[:, None] - 12)
    expected = special.softmax(np.where(mask, q @ k.T, -np.inf), axis=1) @ v
    out = einsum_ir.evaluate(builtin("window-attention"), {"M": 64, "P": 64, "E": 16, "F": 8, "M0": 16, "W": 12},
                             layout(q, k, v))["AV"]
    assert np.isfinite(out).all() and rel(out.T, expected) < TOL


def test_hedgehog_and_gated_cascades_match_numpy():
    q, k, v = qkv()
    rng = np.random.default_rng(9)
    w, g = rng.standard_normal((12, 16)), rng.standard_normal(48) * 3
    a = hedgehog_phi(q, w) @ hedgehog_phi(k, w).T
    out = einsum_ir.evaluate(builtin("hedgehog-attention"), {"M": 48, "P": 48, "E": 16, "F": 8, "D": 12},
                             {**layout(q, k, v), "W": w})["AV"]
    assert rel(out.T, (a @ v) / a.sum(axis=1, keepdims=True)) < TOL
    gated = einsum_ir.evaluate(builtin("gated-attention"), {"M": 48, "P": 48, "E": 16, "F": 8, "M0": 16},
                               {**layout(q, k, v), "GL": g})["AV"]
    expected = special.expit(g)[:, None] * (special.softmax(q @ k.T, axis=1) @ v)
    assert rel(gated.T, expected) < TOL


@pytest.mark.parametrize("name, passes", [("softplus-lssa", 1), ("softplus-lssa-normalised", 2),
                                          ("hedgehog-attention", 1), ("lightning2-causal", 1),
                                          ("gated-attention", 1), ("window-attention", 1),
                                          ("sigmoid-attention-causal", 1)])
def test_pass_counts(name, passes):
    # deferring the l1 division makes LSSA 1-pass; normalising first needs the row sum first (2 passes)
    assert analyze_passes(builtin(name)).passes == passes
