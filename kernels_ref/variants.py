"""numba references for attention variants, written from each paper's equations (not from cascades).

Layout as in the softmax kernels: q (P, E), k (M, E), v (M, F), out (P, F); float32 or float64 (the
output keeps the dtype); ``causal``: query p sees key m iff m <= p. ``scale`` multiplies the logits.

- :func:`sigmoid_attention` -- Ramapuram et al. 2024, "Theory, Analysis, and Best Practices for
  Sigmoid Self-Attention" (arXiv:2409.04431), Eq. 2 with the bias of §3.4:
  ``out_p = sum_m sigmoid(scale * q_p.k_m + b) v_m``, ``scale = 1/sqrt(E)``, ``b = -log(M)`` by default.
- :func:`softplus_attention` -- the first (normalisation) stage of Gao et al. 2025, "Softplus
  Attention with Re-weighting" (arXiv:2501.13428): softmax's exp replaced by softplus, then
  l1-normalisation: ``out_p = sum_m softplus(s_pm) v_m / sum_m softplus(s_pm)``, ``s = scale * q.k``
  (the paper's length-dependent scale is the caller's ``scale``).
- :func:`linear_attention` -- Katharopoulos et al. 2020, "Transformers are RNNs" (arXiv:2006.16236),
  Eq. 6 with phi(x) = elu(x) + 1 (Eq. 7), computed as the right product
  ``out_p = phi(q_p) (sum_m phi(k_m) v_m^T) / phi(q_p).(sum_m phi(k_m))``.
- :func:`causal_linear_attention` -- the same paper's recurrent form (Eqs. 16-20): running
  ``S_p = S_{p-1} + phi(k_p) v_p^T`` and ``z_p = z_{p-1} + phi(k_p)``; needs M == P.
- :func:`clipped_softmax_attention` -- Bondarenko et al. 2023, "Quantizable Transformers" (arXiv:
  2306.12929), Eq. 4.1: ``clip((zeta - gamma) softmax(s) + gamma, 0, 1) @ v``.
- :func:`selective_temperature_attention` -- per-query temperature (Zhang et al. 2024, "Selective
  Attention", arXiv:2411.12892, query-temperature scaling): ``softmax_m(tau_p * scale * q_p.k_m) @ v``,
  ``tau`` a (P,) array.
- :func:`split_k_decode` -- Flash-Decoding (Dao et al. 2023): keys in ``num_splits`` equal splits;
  per split a local max, denominator and numerator; merged with the rescaling ``exp(m_s - max_s m_s)``.

Every kernel loops over query rows in plain numba (no BLAS), so results are bit-identical run to run.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from attnsim.kernels_ref._inputs import check_inputs
from attnsim.kernels_ref.errors import KernelInputError
from attnsim.kernels_ref._dot import dot as _dot
from attnsim.kernels_ref.more_variants import MORE_VARIANTS

__all__ = [
    "VARIANTS", "causal_linear_attention", "clipped_softmax_attention", "linear_attention", "selective_temperature_attention",
    "sigmoid_attention", "softplus_attention", "split_k_decode",
]


@numba.njit(cache=True)
def _sigmoid_kernel(q, k, v, causal, scale, bias):
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    one = 1.0
    for p in range(q.shape[0]):
        visible = min(k.shape[0], p + 1) if causal else k.shape[0]
        for m in range(visible):
            x = scale * _dot(q[p], k[m]) + bias
            w = one / (one + np.exp(-x)) if x >= 0 else np.exp(x) / (one + np.exp(x))
            for f in range(v.shape[1]):
                out[p, f] += w * v[m, f]
    return out


@numba.njit(cache=True)
def _softplus_kernel(q, k, v, causal, scale):
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    one = 1.0
    for p in range(q.shape[0]):
        visible = min(k.shape[0], p + 1) if causal else k.shape[0]
        denominator = 0.0
        for m in range(visible):
            x = scale * _dot(q[p], k[m])
            w = x + np.log1p(np.exp(-x)) if x > 0 else np.log1p(np.exp(x))  # log(1 + e^x), stable
            denominator += w
            for f in range(v.shape[1]):
                out[p, f] += w * v[m, f]
        for f in range(v.shape[1]):
            out[p, f] /= denominator
    return out


@numba.njit(cache=True)
def _elu_plus_one(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = x[i] + 1 if x[i] > 0 else np.exp(x[i])
    return out


@numba.njit(cache=True)
def _linear_kernel(q, k, v):
    e_size, f_size = q.shape[1], v.shape[1]
    kv = np.zeros((e_size, f_size), dtype=q.dtype)
    z = np.zeros(e_size, dtype=q.dtype)
    for m in range(k.shape[0]):
        phi_k = _elu_plus_one(k[m])
        for e in range(e_size):
            z[e] += phi_k[e]
            for f in range(f_size):
                kv[e, f] += phi_k[e] * v[m, f]
    out = np.zeros((q.shape[0], f_size), dtype=q.dtype)
    for p in range(q.shape[0]):
        phi_q = _elu_plus_one(q[p])
        denominator = _dot(phi_q, z)
        for f in range(f_size):
            out[p, f] = _dot(phi_q, kv[:, f]) / denominator
    return out


@numba.njit(cache=True)
def _causal_linear_kernel(q, k, v):
    e_size, f_size = q.shape[1], v.shape[1]
    state = np.zeros((e_size, f_size), dtype=q.dtype)
    z = np.zeros(e_size, dtype=q.dtype)
    out = np.zeros((q.shape[0], f_size), dtype=q.dtype)
    for p in range(q.shape[0]):
        phi_k = _elu_plus_one(k[p])
        for e in range(e_size):
            z[e] += phi_k[e]
            for f in range(f_size):
                state[e, f] += phi_k[e] * v[p, f]
        phi_q = _elu_plus_one(q[p])
        denominator = _dot(phi_q, z)
        for f in range(f_size):
            out[p, f] = _dot(phi_q, state[:, f]) / denominator
    return out


@numba.njit(cache=True)
def _softmax_row(q_row, k, visible, scale, temperature):
    logits = np.empty(visible, dtype=k.dtype)
    for m in range(visible):
        logits[m] = temperature * scale * _dot(q_row, k[m])
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


@numba.njit(cache=True)
def _clipped_kernel(q, k, v, causal, scale, zeta, gamma):
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    for p in range(q.shape[0]):
        visible = min(k.shape[0], p + 1) if causal else k.shape[0]
        a = _softmax_row(q[p], k, visible, scale, 1.0)
        for m in range(visible):
            w = min(max((zeta - gamma) * a[m] + gamma, 0.0), 1.0)
            for f in range(v.shape[1]):
                out[p, f] += w * v[m, f]
    return out


@numba.njit(cache=True)
def _temperature_kernel(q, k, v, causal, scale, tau):
    out = np.zeros((q.shape[0], v.shape[1]), dtype=q.dtype)
    for p in range(q.shape[0]):
        visible = min(k.shape[0], p + 1) if causal else k.shape[0]
        a = _softmax_row(q[p], k, visible, scale, tau[p])
        for m in range(visible):
            for f in range(v.shape[1]):
                out[p, f] += a[m] * v[m, f]
    return out


@numba.njit(cache=True)
def _split_k_kernel(q, k, v, scale, num_splits):
    split = k.shape[0] // num_splits
    f_size = v.shape[1]
    out = np.zeros((q.shape[0], f_size), dtype=q.dtype)
    local_max = np.empty(num_splits, dtype=q.dtype)
    local_den = np.empty(num_splits, dtype=q.dtype)
    local_num = np.empty((num_splits, f_size), dtype=q.dtype)
    for p in range(q.shape[0]):
        for s in range(num_splits):  # independent partials: one thread block per split on a GPU
            logits = np.empty(split, dtype=q.dtype)
            for j in range(split):
                logits[j] = scale * _dot(q[p], k[s * split + j])
            local_max[s] = logits.max()
            weights = np.exp(logits - local_max[s])
            local_den[s] = weights.sum()
            for f in range(f_size):
                acc = 0.0
                for j in range(split):
                    acc += weights[j] * v[s * split + j, f]
                local_num[s, f] = acc
        global_max = local_max.max()  # the merge over splits
        denominator = 0.0
        for s in range(num_splits):
            w = np.exp(local_max[s] - global_max)
            denominator += w * local_den[s]
            for f in range(f_size):
                out[p, f] += w * local_num[s, f]
        for f in range(f_size):
            out[p, f] /= denominator
    return out


def _real(function: str, name: str, value: object, dtype: np.dtype) -> np.floating:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or \
            not math.isfinite(float(value)):
        raise KernelInputError(f"{function}: {name} must be a finite real number, got {value!r}")
    return dtype.type(value)


def sigmoid_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False,
                      scale: float | None = None, bias: float | None = None) -> np.ndarray:
    """Sigmoid attention (Ramapuram et al. 2024); ``scale`` None -> 1/sqrt(E), ``bias`` None -> -log(M)."""
    inputs = check_inputs("sigmoid_attention", q, k, v, causal, 1.0, None, 0)
    dtype = inputs.q.dtype
    scale_value = _real("sigmoid_attention", "scale", 1 / math.sqrt(inputs.q.shape[1]) if scale is None else scale,
                        dtype)
    bias_value = _real("sigmoid_attention", "bias", -math.log(inputs.k.shape[0]) if bias is None else bias, dtype)
    return _sigmoid_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, scale_value, bias_value)


def softplus_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False,
                       scale: float | None = None) -> np.ndarray:
    """Softplus attention with l1-normalisation (Gao et al. 2025, first stage); ``scale`` None -> 1."""
    inputs = check_inputs("softplus_attention", q, k, v, causal, scale, None, 0)
    return _softplus_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale)


def linear_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Linear attention with phi = elu + 1 (Katharopoulos et al. 2020), right product."""
    inputs = check_inputs("linear_attention", q, k, v, False, None, None, 0)
    return _linear_kernel(inputs.q, inputs.k, inputs.v)


def causal_linear_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal linear attention (Katharopoulos et al. 2020, recurrent form); needs as many keys as queries."""
    inputs = check_inputs("causal_linear_attention", q, k, v, True, None, None, 0)
    if inputs.q.shape[0] != inputs.k.shape[0]:
        raise KernelInputError(f"causal_linear_attention: q has {inputs.q.shape[0]} rows and k {inputs.k.shape[0]}; "
                               "expected as many keys as queries (self-attention)")
    return _causal_linear_kernel(inputs.q, inputs.k, inputs.v)


def clipped_softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False,
                              scale: float | None = None, zeta: float = 1.0, gamma: float = -0.03) -> np.ndarray:
    """Clipped softmax attention (Bondarenko et al. 2023); ``zeta`` >= 1 and ``gamma`` <= 0 stretch it."""
    inputs = check_inputs("clipped_softmax_attention", q, k, v, causal, scale, None, 0)
    dtype = inputs.q.dtype
    return _clipped_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale,
                           _real("clipped_softmax_attention", "zeta", zeta, dtype),
                           _real("clipped_softmax_attention", "gamma", gamma, dtype))


def selective_temperature_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, temperature: np.ndarray,
                                    causal: bool = False, scale: float | None = None) -> np.ndarray:
    """Softmax attention with a per-query temperature ``temperature`` (P,) multiplying the logits."""
    inputs = check_inputs("selective_temperature_attention", q, k, v, causal, scale, None, 0)
    tau = np.ascontiguousarray(np.asarray(temperature, dtype=inputs.q.dtype))
    if tau.shape != (inputs.q.shape[0],) or not np.isfinite(tau).all():
        raise KernelInputError(f"selective_temperature_attention: temperature has shape {tau.shape}; "
                               f"expected ({inputs.q.shape[0]},) finite values, one per query")
    return _temperature_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale, tau)


def split_k_decode(q: np.ndarray, k: np.ndarray, v: np.ndarray, num_splits: int,
                   scale: float | None = None) -> np.ndarray:
    """Split-K (Flash-Decoding) softmax attention: ``num_splits`` must divide the number of keys."""
    inputs = check_inputs("split_k_decode", q, k, v, False, scale, None, 0)
    if isinstance(num_splits, bool) or not isinstance(num_splits, (int, np.integer)) or num_splits < 1 or \
            inputs.k.shape[0] % num_splits:
        raise KernelInputError(f"split_k_decode: num_splits={num_splits!r}; expected a positive divisor of the "
                               f"{inputs.k.shape[0]} keys")
    return _split_k_kernel(inputs.q, inputs.k, inputs.v, inputs.scale, int(num_splits))


VARIANTS = {
    "sigmoid-attention": sigmoid_attention,
    "softplus-attention": softplus_attention,
    "linear-attention": linear_attention,
    "causal-linear-attention": causal_linear_attention,
    "clipped-softmax-attention": clipped_softmax_attention,
    "selective-temperature-attention": selective_temperature_attention,
    "split-k-decode": split_k_decode,
}
VARIANTS.update(MORE_VARIANTS)
"""Registry of the variant references by name (what a cascade's ``reference:`` may name)."""
