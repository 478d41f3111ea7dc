"""Causal chunked prefill and decode on the spatial designs (issue #15): the causal filters are
end-aligned (``m <= p + M - P``: a chunk of P queries at the end of a context of M keys), so prefill
(P = M) is unchanged and a chunk or a decode step sees the keys up to its own position.

Independent references, derived here: the (query, key) pairs by a brute-force sum over the queries
(query i at position M - P + i sees min(M - P + i + 1, W) keys), checked against the Workload's closed
form (mappers/workloads.py ``attended_pairs``); the (query tile, key tile) pairs a fused nest visits by
testing each tile pair's span of offsets; fusemax-cloud's costs (256 x 256 2D array, exp as 6 MACs).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.designs import DESIGNS, design_cascade
from attnsim.mappers.workloads import load_workload

T = 256          # fusemax-cloud: M0 = P0 = the 2D array's rows and columns
WORD = 2         # bytes per element (fp16)
EXP_MACS = 6     # SLN's exp on the 2D array: 6 MACs + 1 add (fusemax-cloud ops.exp)


def pairs_brute(q_len: int, kv_len: int, window: int | None) -> int:
    """Sum over the chunk's queries of the keys each sees (causal, end-aligned, window W)."""
    seen = np.arange(kv_len - q_len, kv_len) + 1
    return int(np.minimum(seen, window if window is not None else kv_len).sum())


def tiles_brute(q_len: int, kv_len: int, window: int | None) -> int:
    """(query tile, key tile) pairs with a visible pair: query tile i spans positions a .. b
    (a = M - P + i T, the last tile clipped at P), key tile j keys jT .. jT + T - 1; the offsets
    position - key it spans meet [0, W - 1]."""
    w = window if window is not None else kv_len
    q_tiles = -(-q_len // T)
    a = kv_len - q_len + np.arange(q_tiles) * T
    b = np.minimum(a + T - 1, kv_len - 1)
    j = np.arange(kv_len // T) * T
    low, high = a[:, None] - (j[None, :] + T - 1), b[:, None] - j[None, :]
    return int(np.sum((high >= 0) & (low <= w - 1)))


POINTS = [("prefill", None), ("chunked-prefill", 512), ("chunked-prefill", 1024), ("decode", None)]


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mistral-7b"])
@pytest.mark.parametrize("phase, q_len", POINTS)
def test_the_workloads_pair_count_equals_a_brute_force_sum(model: str, phase: str, q_len: int | None) -> None:
    w = load_workload(model).with_shape(phase=phase, **({"q_len": q_len} if q_len else {}))
    for kv_len in (4096, 16384, 20000):
        shape = w.attention_shape(kv_len)
        assert shape.attended_pairs() == pairs_brute(shape.q_len, kv_len, shape.sliding_window)


def _run(design: str, model: str, phase: str, q_len: int | None, kv_len: int):  # type: ignore[no-untyped-def]
    w = load_workload(model).with_shape(phase=phase, batch=1, **({"q_len": q_len} if q_len else {}))
    arch = load_arch(DESIGNS[design].default_arch)
    mapped = map_named(design_cascade(design, w, kv_len), DESIGNS[design].mapping, w, kv_len, arch)
    return w, w.attention_shape(kv_len), mapped, run(mapped.schedule, arch)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mistral-7b"])
@pytest.mark.parametrize("phase, q_len", POINTS)
def test_fusemax_macs_are_the_visited_tiles_and_decode_the_pair_count(model: str, phase: str, q_len: int | None) -> None:
    kv_len = 16384
    w, shape, mapped, result = _run("fusemax", model, phase, q_len, kv_len)
    heads = shape.batch * shape.heads
    width = shape.head_dim_e + shape.head_dim_f
    window = shape.sliding_window if shape.sliding_window is not None and shape.sliding_window < kv_len else None
    pairs = pairs_brute(shape.q_len, kv_len, window) if shape.q_len > 1 or window else kv_len
    assert pairs == shape.attended_pairs()
    if shape.q_len == 1:
        # decode: one query row; its visible keys are whole key tiles (M and W multiples of T), so the
        # 2D array's MACs (QK, AV and the exp's) are exactly the pair count's: min(M, W) keys
        assert result.actions["pe2d.mac"] == heads * pairs * (width + EXP_MACS)
        assert pairs == min(kv_len, window or kv_len)
    else:
        # a visited tile is costed in full (T x T scores); masked tiles are skipped
        visited = tiles_brute(shape.q_len, kv_len, window)
        assert mapped.choices["tiles"] == heads * visited
        assert result.actions["pe2d.mac"] == heads * visited * T * T * (width + EXP_MACS)
        # the scores computed cover the pairs; the excess is the partial tiles' masked part: at most
        # two partial key tiles per query tile (the diagonal and the window's start)
        scores = visited * T * T
        assert pairs <= scores <= pairs + 2 * (shape.q_len // T) * T * T


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mistral-7b"])
def test_unfused_decode_computes_exactly_the_pairs(model: str) -> None:
    # unfused's QK and AV GEMMs count the live 256-key chunks of the one query row: min(M, W) keys
    kv_len = 16384
    _, shape, _, result = _run("unfused", model, "decode", None, kv_len)
    assert result.actions["pe2d.mac"] == shape.batch * shape.heads * shape.attended_pairs() * (
        shape.head_dim_e + shape.head_dim_f)


def test_a_chunk_is_cheaper_than_prefill_and_prefill_is_unchanged_by_the_alignment() -> None:
    # P = M: the end-aligned filter is m <= p; its tiles are the lower triangle, T (T + 1) / 2 per head
    kv_len = 16384
    _, shape, mapped, _ = _run("fusemax", "llama-3.1-8b", "prefill", None, kv_len)
    n = kv_len // T
    assert mapped.choices["tiles"] == shape.heads * n * (n + 1) // 2
    _, _, chunk, _ = _run("fusemax", "llama-3.1-8b", "chunked-prefill", 512, kv_len)
    # the last 2 query tiles see 63 and 64 key tiles
    assert chunk.choices["tiles"] == shape.heads * (n - 1 + n)
