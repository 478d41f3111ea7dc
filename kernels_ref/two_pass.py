"""2-pass softmax attention (FuseMax paper Sec. IV-E2; Einsums as reconstructed in the fact sheet, Sec. 1.4).

M is split into partitions m1 of ``tile_m`` keys (M0; the last one may be shorter). Per query row p:

Pass 1, per partition m1 (masked keys, m > p under ``causal``, are left out):

    BQK[m0]   = scale * sum_e Q[p, e] BK[m1, m0, e]
    LM[m1]    = max_m0 BQK[m0]                       (local max; -inf if every key is masked)
    SLN[m1,m0] = exp(BQK[m0] - LM[m1])               (local numerator)
    SLD[m1]   = sum_m0 SLN[m1, m0]                   (local denominator)
    GM        = max_m1 LM[m1]                        (global max, built from the local maxima)

Pass 2, per partition m1:

    C[m1]     = exp(LM[m1] - GM)                     (correction; 0 for a fully masked partition)
    SD        = sum_m1 SLD[m1] * C[m1]
    A[m1,m0]  = SLN[m1, m0] * C[m1] / SD
    AV[f]     = sum_m1,m0 A[m1, m0] BV[m1, m0, f]

Extra memory per query row: the M numerators SLN and 2 * ceil(M / tile_m) partition scalars.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from attnsim.kernels_ref._inputs import check_inputs

DEFAULT_TILE_M = 64  # keys per partition when tile_m is None


@numba.njit(cache=True)
def _attention_2pass_kernel(q, k, v, causal, scale, tile_m):
    num_queries = q.shape[0]
    num_keys = k.shape[0]
    features = v.shape[1]
    partitions = (num_keys + tile_m - 1) // tile_m
    out = np.empty((num_queries, features), dtype=q.dtype)
    local_max = np.empty(partitions, dtype=q.dtype)
    local_den = np.empty(partitions, dtype=q.dtype)
    local_num = np.empty(num_keys, dtype=q.dtype)
    correction = np.empty(partitions, dtype=q.dtype)
    for p in range(num_queries):
        visible = min(num_keys, p + 1) if causal else num_keys
        # pass 1: local max, local numerators and denominators per partition, then the global max
        for m1 in range(partitions):
            start = m1 * tile_m
            stop = min(num_keys, start + tile_m)
            visible_stop = min(stop, visible)
            local_num[start:stop] = 0.0
            if visible_stop <= start:  # every key of this partition is masked
                local_max[m1] = -np.inf
                local_den[m1] = 0.0
                continue
            bqk = scale * np.dot(k[start:visible_stop], q[p])
            local_max[m1] = bqk.max()
            numerators = np.exp(bqk - local_max[m1])
            local_num[start:visible_stop] = numerators
            local_den[m1] = numerators.sum()
        global_max = local_max.max()  # finite: key 0 is visible to every query
        # pass 2: correct the partitions with the global max, divide, multiply by V
        for m1 in range(partitions):
            if local_max[m1] == -np.inf:
                correction[m1] = 0.0
            else:
                correction[m1] = math.exp(local_max[m1] - global_max)
        denominator = (local_den * correction).sum()
        row = np.zeros(features, dtype=q.dtype)
        for m1 in range(partitions):
            start = m1 * tile_m
            stop = min(num_keys, start + tile_m)
            a = local_num[start:stop] * correction[m1] / denominator
            row += np.dot(a, v[start:stop])
        out[p] = row
    return out


def attention_2pass(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool = False,
    scale: float | None = None,
    tile_m: int | None = None,
) -> np.ndarray:
    """Softmax attention, 2 passes over K (local maxima, then global correction); returns out (P, F).

    q (P, E), k (M, E), v (M, F), all float32 or all float64 (the output has that dtype).
    ``scale`` multiplies the logits (None means 1). ``causal``: query p sees key m iff m <= p.
    ``tile_m``: keys per partition (default 64); any positive value, a ragged last partition is fine.
    """
    inputs = check_inputs("attention_2pass", q, k, v, causal, scale, tile_m, DEFAULT_TILE_M)
    return _attention_2pass_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale,
                                   inputs.tile_m)
