"""The variant references of kernels_ref (numba) beside numpy formulations of the same formulas.

Imported by bench_kernels.py, which prints this table after the softmax one (one run). Workload: one
head, M = P, E = F, float64, seeded normal inputs (scaled by 1/2 so that no variant saturates).
FLOPs: the products of each implementation's own algorithm only -- 4 M P E for a dense quadratic one
(Q K^T and A V; the numpy forms of the causal and windowed variants compute the dense product and
mask it), 4 M W E for the numba window kernel, 4 M E F for a right product or a per-token recurrence
(phi(K)^T V and phi(Q) S; 2D features for Hedgehog); maps, sums and divisions are not counted.
GFLOP/s = FLOPs / best wall time of ``repeats`` runs after a warm-up.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import special

from attnsim import kernels_ref

WINDOW = 256
HEDGEHOG_FEATURES = 32


def _softmax_masked(logits: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    return special.softmax(logits, axis=1)


def _elu1(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def _hedgehog_phi(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    h = x @ w.T
    return np.concatenate([special.softmax(h, axis=1), special.softmax(-h, axis=1)], axis=1)


def cases(size: int, dim: int) -> list[tuple[str, tuple[float, float], Callable[[], np.ndarray],
                                             Callable[[], np.ndarray]]]:
    """(name, (numba FLOPs, numpy FLOPs), numba call, numpy call) per variant reference."""
    rng = np.random.default_rng(2024)
    q, k, v = (rng.standard_normal((size, dim)) * 0.5 for _ in range(3))
    tau = np.abs(rng.standard_normal(size)) + 0.25
    gates = rng.standard_normal(size)
    w = rng.standard_normal((HEDGEHOG_FEATURES, dim)) * 0.5
    causal = np.tril(np.ones((size, size), bool))
    p = np.arange(size)
    window = causal & (p[None, :] > p[:, None] - WINDOW)
    root = np.sqrt(dim)
    quad, lin = (4.0 * size * size * dim,) * 2, (4.0 * size * dim * dim,) * 2
    recurrent = (lin[0], quad[1])                    # numba: per-token recurrence; numpy: dense masked
    s = lambda: q @ k.T  # noqa: E731
    return [
        ("sigmoid-attention", quad, lambda: kernels_ref.sigmoid_attention(q, k, v),
         lambda: special.expit(s() / root - np.log(size)) @ v),
        ("softplus-attention", quad, lambda: kernels_ref.softplus_attention(q, k, v, scale=1 / root),
         lambda: (lambda a: (a @ v) / a.sum(1, keepdims=True))(np.logaddexp(0, s() / root))),
        ("lssa-attention", quad, lambda: kernels_ref.lssa_attention(q, k, v),
         lambda: (lambda a: (a / a.sum(1, keepdims=True)) @ v)(np.logaddexp(0, np.log(size) * s() / root))),
        ("clipped-softmax-attention", quad, lambda: kernels_ref.clipped_softmax_attention(q, k, v),
         lambda: np.clip(1.03 * _softmax_masked(s()) - 0.03, 0, 1) @ v),
        ("selective-temperature-attention", quad, lambda: kernels_ref.selective_temperature_attention(q, k, v, tau),
         lambda: _softmax_masked(tau[:, None] * s()) @ v),
        ("gated-attention", quad, lambda: kernels_ref.gated_attention(q, k, v, gates),
         lambda: special.expit(gates)[:, None] * (_softmax_masked(s()) @ v)),
        ("window-attention", (4.0 * size * WINDOW * dim, quad[1]), lambda: kernels_ref.window_attention(q, k, v, WINDOW),
         lambda: _softmax_masked(s(), window) @ v),
        ("split-k-decode", quad, lambda: kernels_ref.split_k_decode(q, k, v, 4),
         lambda: _softmax_masked(s()) @ v),
        ("linear-attention", lin, lambda: kernels_ref.linear_attention(q, k, v),
         lambda: (lambda pq, pk: (pq @ (pk.T @ v)) / (pq @ pk.sum(0))[:, None])(_elu1(q), _elu1(k))),
        ("causal-linear-attention", recurrent, lambda: kernels_ref.causal_linear_attention(q, k, v),
         lambda: (lambda a: (a @ v) / a.sum(1, keepdims=True))(np.tril(_elu1(q) @ _elu1(k).T))),
        ("hedgehog-attention", (4.0 * size * 2 * HEDGEHOG_FEATURES * dim,) * 2,
         lambda: kernels_ref.hedgehog_attention(q, k, v, w),
         lambda: (lambda pq, pk: (pq @ (pk.T @ v)) / (pq @ pk.sum(0))[:, None])(_hedgehog_phi(q, w), _hedgehog_phi(k, w))),
        ("lightning2-attention", recurrent, lambda: kernels_ref.lightning2_attention(q, k, v),
         lambda: np.tril(s()) @ v),
    ]


def _best_s(call: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    out = call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best, out


def print_table(size: int, dim: int, repeats: int) -> None:
    """Time every variant's numba reference and its numpy formula; print GFLOP/s and their agreement."""
    print(f"\nvariant references, one head, fp64: M = P = {size}, E = F = {dim}; best of {repeats} after a warm-up")
    print(f"{'reference':<34} {'numba ms':>9} {'GFLOP/s':>8} {'numpy ms':>9} {'GFLOP/s':>8} {'max rel diff':>12}")
    missing = set(kernels_ref.VARIANTS)
    for name, flops, numba_call, numpy_call in cases(size, dim):
        missing.discard(name)
        t_numba, a = _best_s(numba_call, repeats)
        t_numpy, b = _best_s(numpy_call, repeats)
        diff = float(np.abs(a - b).max() / np.abs(b).max())
        print(f"{name:<34} {t_numba * 1e3:9.2f} {flops[0] / t_numba / 1e9:8.2f} "
              f"{t_numpy * 1e3:9.2f} {flops[1] / t_numpy / 1e9:8.2f} {diff:12.1e}")
    if missing:
        print(f"not benchmarked: {', '.join(sorted(missing))}")
