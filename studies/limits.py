"""Problem sizes the command line and the study kinds accept: beyond them a run has no useful time bound.

Each limit is the largest size at which every design or dataflow was seen to finish in about a minute
or less on one core (measured by hand, not asserted by tests); the next sizes up run for many minutes
or hours (tile searches linear in the size, one object per GPU thread block, event loops that never
become periodic). A size over a limit is refused with one line that states the limit.
"""
from __future__ import annotations

__all__ = ["MAX_GEMM_DIM", "MAX_ATTENTION_SEQ", "MAX_GPU_SEQ", "MAX_GPU_ROWS", "size_problem"]

MAX_GEMM_DIM = 2 ** 24
"""Largest M, N or K of a GEMM (16,777,216; a prime just below takes ~50 s with the ws dataflow)."""
MAX_ATTENTION_SEQ = 2 ** 26
"""Largest sequence length of an attention point on a spatial array (67,108,864; ~3 s per design)."""
MAX_GPU_SEQ = 2 ** 24
"""Largest sequence length of a GPU attention call (16,777,216; ~25 s for flash2 at head_dim 64)."""
MAX_GPU_ROWS = 2 ** 29
"""Largest batch x heads x seq of a GPU attention call (one CTA object per 64-128 of these rows)."""


def size_problem(name: str, value: int, limit: int, what: str) -> str | None:
    """The one-line refusal of ``value`` for ``name`` if it is over ``limit``, else None."""
    if value <= limit:
        return None
    return (f"{name}: {value} is over the limit of {limit} for {what} (larger sizes have no useful time "
            "bound; see attnsim.studies.limits)")
