"""Softmax attention in the exact order of FuseMax Cascade 5 (Eqs. 39-56), tile size M0 = ``tile_m``.

Vectorised over all queries p; iterated over the key tiles m1 (the last tile may be shorter than
M0: ragged tiles are supported). Tensor layout follows the paper's ranks: BQK and SLN are [m0, p],
the per-query state vectors are [p]; RNV, SLNV, SPNV are stored [p, f] (row-major output).

    init   RM = -inf, RD = 0, RNV = 0                               (Eqs. 41-43)
    per m1 BK, BV = keys/values m1*M0 ... m1*M0 + M0 - 1           (Eqs. 39-40)
           BQK[m0,p]  = scale * sum_e Q[p,e] BK[m0,e]  (-inf where masked)   (Eq. 44)
           LM[p]      = max_m0 BQK[m0,p]                            (Eq. 45)
           RM'[p]     = max(RM[p], LM[p])                           (Eq. 46)
           SLN[m0,p]  = exp(BQK[m0,p] - RM'[p])  (0 where masked)   (Eq. 47)
           SLD[p]     = sum_m0 SLN[m0,p]                            (Eq. 48)
           SLNV[p,f]  = sum_m0 SLN[m0,p] BV[m0,f]                   (Eq. 49)
           PRM[p]     = exp(RM[p] - RM'[p])  (1 where RM' = -inf)   (Eq. 50)
           SPD[p]     = RD[p] * PRM[p]                              (Eq. 51)
           RD'[p]     = SLD[p] + SPD[p]                             (Eq. 52)
           SPNV[p,f]  = RNV[p,f] * PRM[p]                           (Eq. 53)
           RNV'[p,f]  = SLNV[p,f] + SPNV[p,f]                       (Eq. 54)
    end    AV[p,f]    = RNV[p,f] / RD[p]                            (Eq. 55)

A tile in which a query has no unmasked key (causal) leaves that query's state unchanged while it has
seen no key yet: SLN = 0 and PRM = 1 instead of exp(-inf - (-inf)) = NaN. The exponential is libm's.
Extra memory: two (M0, P) tiles plus O(P*F) state.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from attnsim.kernels_ref._inputs import check_inputs


@numba.njit(cache=True)
def _attention_fusemax_kernel(q, k, v, causal, scale, tile_m):
    num_queries = q.shape[0]
    num_keys = k.shape[0]
    features = v.shape[1]
    q_t = np.ascontiguousarray(q.T)  # Q[e, p]
    rm = np.full(num_queries, -np.inf, dtype=q.dtype)  # Eq. 41
    rd = np.zeros(num_queries, dtype=q.dtype)  # Eq. 42
    rnv = np.zeros((num_queries, features), dtype=q.dtype)  # Eq. 43
    lm = np.empty(num_queries, dtype=q.dtype)
    prm = np.empty((num_queries, 1), dtype=q.dtype)
    tiles = (num_keys + tile_m - 1) // tile_m
    for m1 in range(tiles):
        start = m1 * tile_m
        stop = min(num_keys, start + tile_m)
        bk = k[start:stop]  # Eq. 39
        bv = v[start:stop]  # Eq. 40
        bqk = scale * np.dot(bk, q_t)  # Eq. 44, [m0, p]
        if causal:
            for m0 in range(stop - start):
                bqk[m0, :min(num_queries, start + m0)] = -np.inf  # key start+m0 > query p
        lm[:] = -np.inf  # Eq. 45
        for m0 in range(stop - start):
            for p in range(num_queries):
                lm[p] = max(lm[p], bqk[m0, p])
        rm_next = np.maximum(rm, lm)  # Eq. 46
        sln = np.empty_like(bqk)  # Eq. 47
        for m0 in range(stop - start):
            for p in range(num_queries):
                if bqk[m0, p] == -np.inf:
                    sln[m0, p] = 0.0
                else:
                    sln[m0, p] = math.exp(bqk[m0, p] - rm_next[p])
        sld = sln.sum(axis=0)  # Eq. 48
        slnv = np.dot(sln.T, bv)  # Eq. 49, [p, f]
        for p in range(num_queries):  # Eq. 50
            if rm_next[p] == -np.inf:
                prm[p, 0] = 1.0
            else:
                prm[p, 0] = math.exp(rm[p] - rm_next[p])
        spd = rd * prm[:, 0]  # Eq. 51
        rd = sld + spd  # Eq. 52
        spnv = rnv * prm  # Eq. 53
        rnv = slnv + spnv  # Eq. 54
        rm = rm_next
    return rnv / rd.reshape((num_queries, 1))  # Eq. 55


def attention_fusemax(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool = False,
    scale: float | None = None,
    tile_m: int | None = None,
) -> np.ndarray:
    """Softmax attention in FuseMax Cascade 5 order with key tile M0 = ``tile_m``; returns out (P, F).

    q (P, E), k (M, E), v (M, F), all float32 or all float64 (the output has that dtype).
    ``scale`` multiplies the logits (None means 1). ``causal``: query p sees key m iff m <= p.
    ``tile_m`` is required (a positive integer). M need not be a multiple of it: the last tile is
    ragged (shorter), which Cascade 5 handles unchanged.
    """
    inputs = check_inputs("attention_fusemax", q, k, v, causal, scale, tile_m, None)
    return _attention_fusemax_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale,
                                     inputs.tile_m)
