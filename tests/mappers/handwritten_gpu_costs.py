"""Softmax costs per score of the retired hand-written GPU mappers (the oracle of test_gpu_equivalence.py).

The generic path derives the same numbers from the cascade (mappers/gpu_cascade_work.py)."""
# FP32/ALU operations per element of the 1-pass cascade (GA §3.0: 'about 3-4 FP32 ops per score').
FP32_OPS_PER_SCORE = 3.5
"""Row max (1), scale-and-subtract FFMA (1), row sum (1), pack-convert to 16 bits (0.5)."""
MASK_OPS_PER_SCORE = 2.0
"""Causal mask on a diagonal tile: index compare (1) and select (1) per score."""
FP32_OPS_PER_ROW_TILE = 3.0
"""Per row and K/V tile: combine the maxima, scale their difference, rescale the running sum."""
MUFU_OPS_PER_ROW_TILE = 1.0
"""Per row and K/V tile: the correction factor exp(m_old - m_new)."""




def keys_fill(seq: int, block_n: int, tiles: int | None = None) -> float:
    """Issue #12's clip: real keys / keys the K/V tiles cover (each tile load moves this share); with
    ``tiles``, of a CTA that loads that many tiles from key 0 (a causal CTA before the last tile: 1)."""
    covered = (-(-seq // block_n) if tiles is None else tiles) * block_n
    return min(seq, covered) / covered


def rows_fill(seq: int, block_m: int, work: object = None) -> float:
    """Issue #12's clip: real query rows / rows the CTAs' blocks cover; with ``work`` (a CtaWork), of
    that one CTA: 1 for a full block, ``work.rows / block_m`` for a ragged or padding one."""
    if work is not None:
        rows = getattr(work, "rows")
        return 1.0 if rows is None else rows / block_m
    return seq / (-(-seq // block_m) * block_m)
