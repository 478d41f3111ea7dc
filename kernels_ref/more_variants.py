"""numba references for the seed page's remaining attention variants, written from each paper's
equations (not from cascades). Layout as in :mod:`kernels_ref.variants`: q (P, E), k (M, E), v (M, F),
out (P, F); float32 or float64; ``causal``: query p sees key m iff m <= p.

- :func:`lssa_attention` -- Gao & Spratling 2025, "Softplus Attention with Re-weighting" (arXiv:
  2501.13428), first stage (LSSA): ``w_pm = softplus(log(n_p) q_p.k_m / sqrt(E))`` with ``n_p`` the
  number of keys query p sees (the length-dependent, row-dependent scale), then l1 normalisation
  ``out_p = sum_m (w_pm / sum_m' w_pm') v_m`` (normalised weights first, then the product).
- :func:`hedgehog_attention` -- Zhang et al. 2024, "The Hedgehog & the Porcupine" (arXiv:2402.04347),
  Eq. 4: linear attention with the learnable feature map ``phi(x) = [softmax(W x), softmax(-W x)]``
  (``W`` is (D, E), no bias), computed as the right product
  ``out_p = phi(q_p)^T (sum_m phi(k_m) v_m^T) / phi(q_p).(sum_m phi(k_m))``.
- :func:`lightning2_attention` -- Qin et al. 2024, "Lightning Attention-2" (arXiv:2401.04658), Eq. 1-3:
  causal linear attention without a feature map or a normaliser, with decay ``lam``:
  ``S_p = lam S_{p-1} + k_p v_p^T``, ``out_p = q_p^T S_p`` (per-token recurrence; the block form is the
  cascade's business). Needs M == P.
- :func:`gated_attention` -- Bondarenko et al. 2023, "Quantizable Transformers" (arXiv:2306.12929),
  Eq. 5: ``out_p = sigmoid(g_p) softmax_m(q_p.k_m) v`` with ``g_p = G(x_p)`` the gate's logit per token
  (the output of the gate's linear layer, computed before the attention), given as a (P,) array.
- :func:`window_attention` -- sliding-window (Mistral 7B, arXiv:2310.06825 §2) / neighbourhood
  attention: query p sees keys ``p - window < m <= p``; softmax over those.

Every kernel loops in plain numba (no BLAS), so results are bit-identical run to run. Logits carry no
1/sqrt(E) scale unless stated (the FuseMax cascades' convention, paper footnote 4).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from attnsim.kernels_ref._inputs import check_inputs
from attnsim.kernels_ref.errors import KernelInputError
from attnsim.kernels_ref._dot import dot as _dot

__all__ = ["MORE_VARIANTS", "gated_attention", "hedgehog_attention", "lightning2_attention", "lssa_attention",
           "window_attention"]


@numba.njit(cache=True)
def _softplus(x):
    return x + np.log1p(np.exp(-x)) if x > 0 else np.log1p(np.exp(x))


@numba.njit(cache=True)
def _lssa_kernel(q, k, v, causal):
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    root = math.sqrt(q.shape[1])
    for p in range(q.shape[0]):
        visible = min(k.shape[0], p + 1) if causal else k.shape[0]
        kappa = math.log(visible)
        w = np.empty(visible, dtype=q.dtype)
        for m in range(visible):
            w[m] = _softplus(kappa * _dot(q[p], k[m]) / root)
        w = w / w.sum()                       # l1 normalisation first (the paper's order)
        for m in range(visible):
            for f in range(v.shape[1]):
                out[p, f] += w[m] * v[m, f]
    return out


@numba.njit(cache=True)
def _hedgehog_phi(x, w):
    d = w.shape[0]
    h = np.empty(d, dtype=x.dtype)
    for i in range(d):
        h[i] = _dot(w[i], x)
    phi = np.empty(2 * d, dtype=x.dtype)
    top, bottom = h.max(), h.min()
    plus = np.exp(h - top)
    minus = np.exp(bottom - h)
    plus_sum, minus_sum = plus.sum(), minus.sum()
    for i in range(d):
        phi[i] = plus[i] / plus_sum
        phi[d + i] = minus[i] / minus_sum
    return phi


@numba.njit(cache=True)
def _hedgehog_kernel(q, k, v, w):
    features, f_size = 2 * w.shape[0], v.shape[1]
    kv = np.zeros((features, f_size), dtype=q.dtype)
    z = np.zeros(features, dtype=q.dtype)
    for m in range(k.shape[0]):
        phi_k = _hedgehog_phi(k[m], w)
        for e in range(features):
            z[e] += phi_k[e]
            for f in range(f_size):
                kv[e, f] += phi_k[e] * v[m, f]
    out = np.zeros((q.shape[0], f_size), dtype=q.dtype)
    for p in range(q.shape[0]):
        phi_q = _hedgehog_phi(q[p], w)
        denominator = _dot(phi_q, z)
        for f in range(f_size):
            out[p, f] = _dot(phi_q, kv[:, f]) / denominator
    return out


@numba.njit(cache=True)
def _lightning2_kernel(q, k, v, lam):
    e_size, f_size = q.shape[1], v.shape[1]
    state = np.zeros((e_size, f_size), dtype=q.dtype)
    out = np.zeros((q.shape[0], f_size), dtype=q.dtype)
    for p in range(q.shape[0]):
        for e in range(e_size):
            for f in range(f_size):
                state[e, f] = lam * state[e, f] + (k[p, e] * v[p, f] if p < k.shape[0] else 0.0)
        for f in range(f_size):
            out[p, f] = _dot(q[p], state[:, f])
    return out


@numba.njit(cache=True)
def _softmax_window_kernel(q, k, v, first_offset, causal, gates):
    """softmax over keys max(0, p - first_offset) .. (p if causal else M-1), times gates[p]."""
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    for p in range(q.shape[0]):
        last = min(k.shape[0], p + 1) if causal else k.shape[0]
        first = max(0, p - first_offset) if first_offset >= 0 else 0
        logits = np.empty(last - first, dtype=q.dtype)
        for m in range(first, last):
            logits[m - first] = _dot(q[p], k[m])
        weights = np.exp(logits - logits.max())
        weights = gates[p] * weights / weights.sum()
        for m in range(first, last):
            for f in range(v.shape[1]):
                out[p, f] += weights[m - first] * v[m, f]
    return out


def _matrix(function: str, name: str, value: object, dtype: np.dtype, shape: tuple[int | None, ...]) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
    if array.ndim != len(shape) or any(s is not None and a != s for a, s in zip(array.shape, shape)) \
            or not np.isfinite(array).all():
        expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise KernelInputError(f"{function}: {name} has shape {array.shape}; expected {expected} finite values")
    return array


def lssa_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False) -> np.ndarray:
    """LSSA (Gao & Spratling 2025): softplus with the scale log(n_p)/sqrt(E), l1-normalised."""
    inputs = check_inputs("lssa_attention", q, k, v, causal, None, None, 0)
    return _lssa_kernel(inputs.q, inputs.k, inputs.v, inputs.causal)


def hedgehog_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Hedgehog linear attention (Zhang et al. 2024): phi(x) = [softmax(Wx), softmax(-Wx)], W (D, E)."""
    inputs = check_inputs("hedgehog_attention", q, k, v, False, None, None, 0)
    weights = _matrix("hedgehog_attention", "w", w, inputs.q.dtype, (None, inputs.q.shape[1]))
    return _hedgehog_kernel(inputs.q, inputs.k, inputs.v, weights)


def lightning2_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """Causal linear attention of Lightning Attention-2 (no feature map, no normaliser), decay ``lam``:
    query p sees keys m <= p, weighted lam^(p - m) (the causal convention of the other references: with
    fewer keys than queries the last queries see them all, keys past the last query are never seen)."""
    inputs = check_inputs("lightning2_attention", q, k, v, True, None, None, 0)
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 < float(lam) <= 1.0:
        raise KernelInputError(f"lightning2_attention: lam must be a number in (0, 1], got {lam!r}")
    return _lightning2_kernel(inputs.q, inputs.k, inputs.v, inputs.q.dtype.type(lam))


def gated_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, gate_logits: np.ndarray,
                    causal: bool = False) -> np.ndarray:
    """Gated attention (Bondarenko et al. 2023): sigmoid(gate_logits[p]) times softmax attention (no logit scale)."""
    inputs = check_inputs("gated_attention", q, k, v, causal, None, None, 0)
    logits = _matrix("gated_attention", "gate_logits", gate_logits, inputs.q.dtype, (inputs.q.shape[0],))
    small = np.exp(-np.abs(logits))   # sigmoid without overflow: 1/(1+e^-g) for g >= 0, e^g/(1+e^g) else
    gates = np.where(logits >= 0, 1 / (1 + small), small / (1 + small)).astype(inputs.q.dtype)
    return _softmax_window_kernel(inputs.q, inputs.k, inputs.v, -1, inputs.causal, gates)


def window_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int) -> np.ndarray:
    """Causal sliding-window softmax attention: query p sees keys p - window < m <= p (no logit scale)."""
    inputs = check_inputs("window_attention", q, k, v, True, None, None, 0)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise KernelInputError(f"window_attention: window must be a positive integer, got {window!r}")
    gates = np.ones(inputs.q.shape[0], dtype=inputs.q.dtype)
    return _softmax_window_kernel(inputs.q, inputs.k, inputs.v, int(window) - 1, True, gates)


MORE_VARIANTS = {
    "lssa-attention": lssa_attention,
    "hedgehog-attention": hedgehog_attention,
    "lightning2-attention": lightning2_attention,
    "gated-attention": gated_attention,
    "window-attention": window_attention,
}
"""The references of this module by name (merged into ``kernels_ref.VARIANTS``)."""
