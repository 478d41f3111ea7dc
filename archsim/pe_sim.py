"""PE-level functional simulator of a systolic array running a GEMM C[M,N] = A[M,K] @ B[K,N].

Every cycle each operand moves one PE to its neighbour and every PE computes on what it holds; the
cycle count is whatever it takes for the data to get through (for arrays up to ~16x16, real values).

Dataflows (R x C array; ``Sr x Sc`` PEs used by a fold, temporal extent ``T``):

- ``"os"`` output-stationary, (Sr, Sc, T) = (M, N, K): A rows enter from the left (row r skewed by r
  cycles) and move right, B columns enter from the top (column c skewed by c) and move down, PE (r, c)
  accumulates C[r, c]. When the corner PE has done its last MAC, the accumulators shift down one row
  per cycle and leave the array at the bottom (R cycles).
- ``"ws"`` weight-stationary, (Sr, Sc, T) = (K, N, M): the B tile is first shifted down into the
  array from the top (R cycles), then A rows stream in from the left (array row k gets A[m, k] at
  cycle m + k) and move right, partial sums move down and C[m, c] leaves the bottom of column c.
- ``"is"`` input-stationary, (Sr, Sc, T) = (K, M, N): the weight-stationary machine with the A tile
  (transposed) held in the PEs and B streamed: C^T = B^T A^T.

Each fold is driven by a fixed-timing controller that treats the array as full (unused rows/columns
carry zeros), and the next fold starts when the previous one has left the array: one fold costs
``2R + C + T - 2`` cycles, SCALE-Sim's per-fold convention (``fill_drain="per_fold"``). Folds tile
the GEMM like :func:`mappers.gemm.map_gemm` (tiles of R along the array rows, C along the columns,
edge tiles partial); WS and IS accumulate the K folds of an output tile in order.
"""
from __future__ import annotations

import numpy as np
from numba import njit

DATAFLOWS = ("os", "ws", "is")


@njit(cache=True)
def _output_stationary_fold(a_tile: np.ndarray, b_tile: np.ndarray, rows: int, cols: int
                            ) -> tuple[np.ndarray, int]:
    """One OS fold: a_tile (Sr, T), b_tile (T, Sc) -> (a_tile @ b_tile, cycles)."""
    used_rows, temporal = a_tile.shape
    used_cols = b_tile.shape[1]
    a_reg = np.zeros((rows, cols))
    a_last = np.zeros((rows, cols), dtype=np.bool_)   # rides with each row's last A element
    b_reg = np.zeros((rows, cols))
    acc = np.zeros((rows, cols))
    cycles = 0
    t = 0
    while True:
        for r in range(rows):                          # A moves right, new element enters column 0
            for c in range(cols - 1, 0, -1):
                a_reg[r, c] = a_reg[r, c - 1]
                a_last[r, c] = a_last[r, c - 1]
            k = t - r
            a_reg[r, 0] = a_tile[r, k] if (r < used_rows and 0 <= k < temporal) else 0.0
            a_last[r, 0] = k == temporal - 1
        for c in range(cols):                          # B moves down, new element enters row 0
            for r in range(rows - 1, 0, -1):
                b_reg[r, c] = b_reg[r - 1, c]
            k = t - c
            b_reg[0, c] = b_tile[k, c] if (c < used_cols and 0 <= k < temporal) else 0.0
        for r in range(rows):                          # every PE: one MAC
            for c in range(cols):
                acc[r, c] += a_reg[r, c] * b_reg[r, c]
        cycles += 1
        t += 1
        if a_last[rows - 1, cols - 1]:                 # the corner PE has done its last MAC
            break
    out = np.zeros((used_rows, used_cols))
    row_of = np.arange(rows)                           # which array row each drain slot carries
    while True:                                        # drain: accumulators shift down and out
        leaving = row_of[rows - 1]
        if leaving < used_rows:
            for c in range(used_cols):
                out[leaving, c] = acc[rows - 1, c]
        for r in range(rows - 1, 0, -1):
            for c in range(cols):
                acc[r, c] = acc[r - 1, c]
            row_of[r] = row_of[r - 1]
        row_of[0] = -1
        cycles += 1
        if leaving == 0:                               # the top row's results have left
            break
    return out, cycles


@njit(cache=True)
def _weight_stationary_fold(stream: np.ndarray, weights: np.ndarray, rows: int, cols: int
                            ) -> tuple[np.ndarray, int]:
    """One WS fold: stream (T, Sr), weights (Sr, Sc) held in the PEs -> (stream @ weights, cycles)."""
    temporal, used_rows = stream.shape
    used_cols = weights.shape[1]
    w_reg = np.zeros((rows, cols))
    first_in = np.zeros(rows, dtype=np.bool_)          # marks the first weight row shifted in
    cycles = 0
    t = 0
    while True:                                        # preload: weight rows shift down from the top
        for r in range(rows - 1, 0, -1):
            for c in range(cols):
                w_reg[r, c] = w_reg[r - 1, c]
            first_in[r] = first_in[r - 1]
        source = rows - 1 - t                          # deepest row first
        for c in range(cols):
            w_reg[0, c] = weights[source, c] if (0 <= source < used_rows and c < used_cols) else 0.0
        first_in[0] = t == 0
        cycles += 1
        t += 1
        if first_in[rows - 1]:                         # the first row reached the bottom: all placed
            break
    x_reg = np.zeros((rows, cols))
    x_last = np.zeros((rows, cols), dtype=np.bool_)
    psum = np.zeros((rows, cols))
    out = np.zeros((temporal, used_cols))
    t = 0
    while True:
        for r in range(rows):                          # streamed operand moves right
            for c in range(cols - 1, 0, -1):
                x_reg[r, c] = x_reg[r, c - 1]
                x_last[r, c] = x_last[r, c - 1]
            m = t - r
            x_reg[r, 0] = stream[m, r] if (r < used_rows and 0 <= m < temporal) else 0.0
            x_last[r, 0] = m == temporal - 1
        for r in range(rows - 1, -1, -1):              # partial sums move down (bottom-up update)
            for c in range(cols):
                above = psum[r - 1, c] if r > 0 else 0.0
                psum[r, c] = above + w_reg[r, c] * x_reg[r, c]
        for c in range(used_cols):                     # completed sums leave the bottom row
            m = t - (rows - 1) - c
            if 0 <= m < temporal:
                out[m, c] = psum[rows - 1, c]
        cycles += 1
        t += 1
        if x_last[rows - 1, cols - 1]:                 # the last sum has left the corner PE
            break
    return out, cycles


def _tiles(extent: int, size: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] tiles of ``size`` covering ``range(extent)``, the last one partial."""
    return [(start, min(start + size, extent)) for start in range(0, extent, size)]


def simulate_gemm(a: np.ndarray, b: np.ndarray, rows: int, cols: int, dataflow: str,
                  fill_drain: str = "per_fold") -> tuple[np.ndarray, int]:
    """Run C = a @ b on a ``rows`` x ``cols`` systolic array; return (C, cycles).

    Args:
        a: (M, K) matrix. b: (K, N) matrix.
        rows, cols: array shape (PEs).
        dataflow: ``"os"``, ``"ws"`` or ``"is"`` (see the module docstring).
        fill_drain: ``"per_fold"`` (each fold fills and drains the array on its own; the only
            convention simulated at PE level).
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or 0 in a.shape or 0 in b.shape:
        raise ValueError(f"simulate_gemm: shapes {a.shape} @ {b.shape} do not form a GEMM")
    if rows < 1 or cols < 1:
        raise ValueError(f"simulate_gemm: array {rows}x{cols} must have positive dimensions")
    if dataflow not in DATAFLOWS:
        raise ValueError(f"simulate_gemm: unknown dataflow {dataflow!r} (known: {', '.join(DATAFLOWS)})")
    if fill_drain != "per_fold":
        raise ValueError(f"simulate_gemm: fill_drain {fill_drain!r} is not simulated at PE level "
                         f"(only 'per_fold')")
    m_dim, k_dim = a.shape
    n_dim = b.shape[1]
    c_out = np.zeros((m_dim, n_dim))
    cycles = 0
    if dataflow == "os":
        for m0, m1 in _tiles(m_dim, rows):
            for n0, n1 in _tiles(n_dim, cols):
                out, fold_cycles = _output_stationary_fold(np.ascontiguousarray(a[m0:m1, :]),
                                                           np.ascontiguousarray(b[:, n0:n1]), rows, cols)
                c_out[m0:m1, n0:n1] = out
                cycles += fold_cycles
    elif dataflow == "ws":
        for n0, n1 in _tiles(n_dim, cols):
            for k0, k1 in _tiles(k_dim, rows):
                out, fold_cycles = _weight_stationary_fold(np.ascontiguousarray(a[:, k0:k1]),
                                                           np.ascontiguousarray(b[k0:k1, n0:n1]),
                                                           rows, cols)
                c_out[:, n0:n1] += out
                cycles += fold_cycles
    else:
        for m0, m1 in _tiles(m_dim, cols):
            for k0, k1 in _tiles(k_dim, rows):
                out, fold_cycles = _weight_stationary_fold(np.ascontiguousarray(b[k0:k1, :].T),
                                                           np.ascontiguousarray(a[m0:m1, k0:k1].T),
                                                           rows, cols)
                c_out[m0:m1, :] += out.T
                cycles += fold_cycles
    return c_out, int(cycles)
