"""1-pass softmax attention in FlashAttention-2 order (online softmax, deferred division).

Queries are taken in blocks of ``QUERY_BLOCK_ROWS`` rows, keys in blocks of ``tile_m`` rows. For each
query block the running state is kept per query row: running max ``RM``, running denominator ``RD``
and running numerator-times-V ``RNV`` (``numerator_v``, QUERY_BLOCK_ROWS x F). For each key block:

    S      = K_blk @ (Q_blk)^T * scale      (key-major tile, tile_m x QUERY_BLOCK_ROWS; BLAS)
    RM'    = max(RM, max over the block's unmasked keys of S)
    S      = exp(S - RM'), masked keys -> 0
    alpha  = exp(RM - RM')                  (correction factor; 1 when RM' = -inf, see below)
    RD     = RD * alpha + sum over keys of S
    RNV    = RNV * alpha + S^T @ V_blk      (BLAS)

and at the end ``out = RNV / RD`` (F divisions per query row). The tile is key-major (the paper's
BQK[m0, p] layout) so that every reduction over keys is an element-wise update of a vector over
queries, which LLVM vectorises; the exponential is ``_fastexp.exp_nonpositive`` (within 2 ulp;
terms below exp(-86) in float32, exp(-707) in float64, are dropped).

A query row that has seen no unmasked key yet has RM' = -inf; its state is left unchanged
(alpha = 1 instead of exp(-inf - (-inf)) = NaN). Causal masking skips key blocks that lie wholly
after the query block's last row.

Extra memory: the (P, F) output, one (tile_m, QUERY_BLOCK_ROWS) score tile, one
(QUERY_BLOCK_ROWS, F) accumulator and a few vectors: O(P*F), independent of M*P. Serial over query
blocks (BLAS may use threads as OPENBLAS_* says), so results are bit-identical from run to run.
"""
from __future__ import annotations

import numba
import numpy as np

from attnsim.kernels_ref._fastexp import exp_constants, exp_nonpositive
from attnsim.kernels_ref._inputs import check_inputs

QUERY_BLOCK_ROWS = 256  # queries per block (the tile's second extent)
DEFAULT_TILE_M = 512  # keys per block when tile_m is None


@numba.njit(cache=True)
def _scale_and_fold_max(logits, scale, running_max):
    """logits *= scale; running_max = max(running_max, logits), element-wise over query rows."""
    for i in range(logits.shape[0]):
        x = logits[i] * scale
        logits[i] = x
        running_max[i] = x if x > running_max[i] else running_max[i]


@numba.njit(cache=True)
def _exp_and_accumulate(logits, row_max, denominator, c):
    """logits = exp(logits - row_max); denominator += logits, element-wise over query rows."""
    for i in range(logits.shape[0]):
        e = exp_nonpositive(logits[i] - row_max[i], c)
        logits[i] = e
        denominator[i] += e


@numba.njit(cache=True)
def _first_visible_query(causal, key_index, query_start, block_rows):
    """Index (within the query block) of the first query row that may see ``key_index``."""
    if not causal:
        return 0
    return min(block_rows, max(0, key_index - query_start))


@numba.njit(cache=True)
def online_softmax_update(scores, key_start, query_start, causal, scale, running_max, running_den,
                          new_max, block_den, alpha, c):
    """Fold one key-major score tile into the running max and denominator of a query block.

    ``scores`` (keys x query rows) holds raw logits on entry and the numerators exp(S - RM') on exit
    (masked entries 0). ``running_max`` and ``running_den`` are updated in place; ``new_max`` and
    ``block_den`` are scratch vectors; ``alpha`` receives the per-row correction factor the caller
    applies to its numerator accumulator. The block's denominator is summed on its own before it is
    added (blocked summation). Rows with no unmasked key so far keep their state (alpha = 1).
    """
    block_keys, block_rows = scores.shape
    for i in range(block_rows):
        new_max[i] = running_max[i]
        block_den[i] = c.zero
    for j in range(block_keys):
        i0 = _first_visible_query(causal, key_start + j, query_start, block_rows)
        _scale_and_fold_max(scores[j, i0:], scale, new_max[i0:])
    for j in range(block_keys):
        i0 = _first_visible_query(causal, key_start + j, query_start, block_rows)
        scores[j, :i0] = c.zero
        _exp_and_accumulate(scores[j, i0:], new_max[i0:], block_den[i0:], c)
    for i in range(block_rows):
        if new_max[i] == -np.inf:
            alpha[i] = c.one
        else:
            alpha[i] = exp_nonpositive(running_max[i] - new_max[i], c)
        running_den[i] = running_den[i] * alpha[i] + block_den[i]
        running_max[i] = new_max[i]


@numba.njit(cache=True)
def _attention_1pass_kernel(q, k, v, causal, scale, tile_m, c):
    num_queries = q.shape[0]
    num_keys = k.shape[0]
    features = v.shape[1]
    out = np.empty((num_queries, features), dtype=q.dtype)
    for query_start in range(0, num_queries, QUERY_BLOCK_ROWS):
        query_stop = min(num_queries, query_start + QUERY_BLOCK_ROWS)
        rows = query_stop - query_start
        q_block_t = np.ascontiguousarray(q[query_start:query_stop].T)  # (E, rows)
        running_max = np.full(rows, -np.inf, dtype=q.dtype)
        running_den = np.zeros(rows, dtype=q.dtype)
        new_max = np.empty(rows, dtype=q.dtype)
        block_den = np.empty(rows, dtype=q.dtype)
        alpha = np.empty(rows, dtype=q.dtype)
        numerator_v = np.zeros((rows, features), dtype=q.dtype)
        key_stop_all = min(num_keys, query_stop) if causal else num_keys
        for key_start in range(0, key_stop_all, tile_m):
            key_stop = min(key_stop_all, key_start + tile_m)
            scores = np.dot(k[key_start:key_stop], q_block_t)  # (keys, rows), key-major
            online_softmax_update(scores, key_start, query_start, causal, scale, running_max,
                                  running_den, new_max, block_den, alpha, c)
            for i in range(rows):
                for f in range(features):
                    numerator_v[i, f] *= alpha[i]
            numerator_v += np.dot(scores.T, v[key_start:key_stop])
        for i in range(rows):
            for f in range(features):
                out[query_start + i, f] = numerator_v[i, f] / running_den[i]
    return out


def attention_1pass(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool = False,
    scale: float | None = None,
    tile_m: int | None = None,
) -> np.ndarray:
    """Softmax attention, 1 pass over K/V (FlashAttention-2 order); returns out (P, F).

    q (P, E), k (M, E), v (M, F), all float32 or all float64 (the output has that dtype).
    ``scale`` multiplies the logits (None means 1). ``causal``: query p sees key m iff m <= p.
    ``tile_m``: keys per block (default 512); any positive value, a ragged last block is fine.
    """
    inputs = check_inputs("attention_1pass", q, k, v, causal, scale, tile_m, DEFAULT_TILE_M)
    return _attention_1pass_kernel(inputs.q, inputs.k, inputs.v, inputs.causal, inputs.scale,
                                   inputs.tile_m, exp_constants(inputs.q.dtype))
