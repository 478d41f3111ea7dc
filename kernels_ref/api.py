"""``attention(q, k, v, algorithm, ...)``: one entry point over the four kernels."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnsim.kernels_ref.errors import KernelInputError
from attnsim.kernels_ref.fusemax import attention_fusemax
from attnsim.kernels_ref.one_pass import attention_1pass
from attnsim.kernels_ref.three_pass import attention_3pass
from attnsim.kernels_ref.two_pass import attention_2pass

ALGORITHMS: tuple[str, ...] = ("3pass", "2pass", "1pass", "fusemax")

_KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "3pass": attention_3pass,
    "2pass": attention_2pass,
    "1pass": attention_1pass,
    "fusemax": attention_fusemax,
}


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    algorithm: str,
    causal: bool = False,
    scale: float | None = None,
    tile_m: int | None = None,
) -> np.ndarray:
    """Softmax attention out (P, F) = softmax_m(scale * q k^T, masked) @ v, by the named algorithm.

    q (P, E), k (M, E), v (M, F): all float32 or all float64; the output keeps that dtype. ``algorithm``
    is one of ``ALGORITHMS``; ``causal``: query p sees key m iff m <= p; ``scale`` multiplies the
    logits (None means 1); ``tile_m``: key tile / partition size (see each kernel; fusemax needs it).
    """
    kernel = _KERNELS.get(algorithm) if isinstance(algorithm, str) else None
    if kernel is None:
        raise KernelInputError(f"attention: unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    return kernel(q, k, v, causal=causal, scale=scale, tile_m=tile_m)
