"""3-pass numerically stable softmax attention in the order of FuseMax Cascade 4 (Eqs. 33-38).

Per query row p (masked keys, m > p under ``causal``, are left out of every step):

    QK[m]  = scale * sum_e Q[p, e] K[m, e]     (Eq. 33)
    GM     = max_m QK[m]                      (Eq. 34, pass 1 over m)
    SN[m]  = exp(QK[m] - GM)                  (Eq. 35, pass 2)
    SD     = sum_m SN[m]                      (Eq. 36, pass 2)
    A[m]   = SN[m] / SD                       (Eq. 37, pass 3)
    AV[f]  = sum_m A[m] V[m, f]               (Eq. 38, pass 3)

Extra memory: one row of M logits. The exponential is libm's (``np.exp``), independent of the
1-pass kernel's.
"""
from __future__ import annotations

import numba
import numpy as np

from attnsim.kernels_ref._inputs import check_inputs


@numba.njit(cache=True)
def _attention_3pass_kernel(q, k, v, causal, scale):
    num_queries = q.shape[0]
    num_keys = k.shape[0]
    out = np.empty((num_queries, v.shape[1]), dtype=q.dtype)
    for p in range(num_queries):
        visible = min(num_keys, p + 1) if causal else num_keys
        qk = scale * np.dot(k[:visible], q[p])  # Eq. 33
        gm = qk.max()  # Eq. 34
        sn = np.exp(qk - gm)  # Eq. 35
        sd = sn.sum()  # Eq. 36
        a = sn / sd  # Eq. 37
        out[p] = np.dot(a, v[:visible])  # Eq. 38
    return out


def attention_3pass(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool = False,
    scale: float | None = None,
    tile_m: int | None = None,
) -> np.ndarray:
    """Softmax attention, 3 passes over K (Cascade 4 order); returns out (P, F).

    q (P, E), k (M, E), v (M, F), all float32 or all float64 (the output has that dtype).
    ``scale`` multiplies the logits (None means 1). ``causal``: query p sees key m iff m <= p.
    ``tile_m`` is accepted for a uniform signature and ignored (checked to be positive if given).
    """
    inputs = check_inputs("attention_3pass", q, k, v, causal, scale, tile_m, 0)
    return _attention_3pass_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale)
