"""The scalar dot product the variant kernels share (numba, compiled once)."""
from __future__ import annotations

import numba


@numba.njit(cache=True)
def dot(a, b):  # type: ignore[no-untyped-def]
    """sum_i a[i] * b[i] over two 1-D arrays of equal length, in index order (deterministic)."""
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total
