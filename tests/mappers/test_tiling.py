"""Tile-size rules (mappers.tiling): the paper's P1/P2 values, the sizing rule's invariants, errors.

Expected values: fact sheet §2.5 (FuseMax P2 and raw P1 bounds at 16 MB), §4.4 (+Cascade P2), and the
sizing rule written out independently in this file.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paper_data as pd
from attnsim.archsim import load_arch
from attnsim.mappers.errors import MappingError
from attnsim.mappers.tiling import (cascade_tiles, cascade_words_per_query, fusemax_tiles,
                            fusemax_words_per_query, largest_divisor_at_most, spilled_fraction)
from attnsim.mappers.workloads import load_workload

FUSEMAX = load_arch("fusemax-cloud")
BERT = load_workload("bert-base")
XLM = load_workload("xlm")
WORKLOADS = {name: load_workload(name) for name in ("bert-base", "trxl-wt103", "t5-small", "xlm")}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_fusemax_p2_at_16mb(name: str) -> None:
    """§2.5: P2 = 1, 1, 1, 2, 8, 32 (E = 64) and 1, 1, 1, 4, 16, 64 (XLM) for 1K ... 1M."""
    workload = WORKLOADS[name]
    tiles = [fusemax_tiles(FUSEMAX, workload, seq) for seq in pd.SEQ_LENGTHS]
    assert tuple(t.p2 for t in tiles) == pd.FUSEMAX_P2[workload.head_dim_e]
    assert {t.p1_bound for t in tiles} == {pd.FUSEMAX_P1_RAW_BOUND[workload.head_dim_e]}
    for t, seq in zip(tiles, pd.SEQ_LENGTHS):
        assert (t.m0, t.p0, t.m1) == (256, 256, seq // 256)
        assert t.p2 * t.p1 * t.p0 == seq


def test_fusemax_p1_values() -> None:
    """§2.5: P1 = 128 for P >= 64K with E = F = 64 (bound 251); XLM: P1 = 64 (bound 126)."""
    assert [fusemax_tiles(FUSEMAX, BERT, s).p1 for s in pd.SEQ_LENGTHS] == [4, 16, 64, 128, 128, 128]
    assert [fusemax_tiles(FUSEMAX, XLM, s).p1 for s in pd.SEQ_LENGTHS] == [4, 16, 64, 64, 64, 64]


@pytest.mark.parametrize("name", ["bert-base", "trxl-wt103", "t5-small"])
def test_cascade_p2(name: str) -> None:
    """§4.4: +Cascade P2 = 1, 1, 2, 8, 32, 128 (E = F = 64; P1 <= 50) with the 16 MB buffer."""
    tiles = [cascade_tiles(FUSEMAX, WORKLOADS[name], seq) for seq in pd.SEQ_LENGTHS]
    assert tuple(t.p2 for t in tiles) == pd.CASCADE_P2_E64
    assert tiles[0].p1_bound == 50
    assert tiles[0].glb_bytes_per_query == (64 + 64 + 514) * 2


def test_cascade_per_query_words_follow_the_array() -> None:
    """514 = 2 * 256 + 2: QK and SLN rows of M0 each plus RM and RD; at M0 = 128 it is 2 * 128 + 2."""
    assert cascade_words_per_query(BERT, 256) == 64 + 64 + 514
    assert cascade_words_per_query(BERT, 128) == 64 + 64 + 258
    small = FUSEMAX.with_overrides({"arrays.pe2d.rows": 128, "arrays.pe2d.cols": 128})
    tiles = cascade_tiles(small, BERT, 65536)
    expected_bound = (16 * 2**20 - 128 * 128 * 2) // ((128 + 258) * 2 * 128)
    assert (tiles.m0, tiles.p0, tiles.glb_bytes_per_query, tiles.p1_bound) == (128, 128, 386 * 2, expected_bound)
    assert expected_bound == 169
    assert tiles.p1 == 128 and tiles.p2 == 4  # largest divisor of 65536 / 128 = 512 that is <= 169


def test_fusemax_words_per_query() -> None:
    assert fusemax_words_per_query(BERT) == 64 + 1 + 1 + 64
    assert fusemax_words_per_query(XLM) == 128 + 1 + 1 + 128


def test_rectangular_array_uses_rows_for_m0_and_columns_for_p0() -> None:
    arch = FUSEMAX.with_overrides({"arrays.pe2d.rows": 128, "arrays.pe2d.cols": 512})
    tiles = fusemax_tiles(arch, BERT, 4096)
    assert (tiles.m0, tiles.m1, tiles.p0) == (128, 32, 512)
    available = 16 * 2**20 - 128 * (64 + 64) * 2
    assert tiles.glb_available_bytes == available
    assert tiles.p1_bound == available // (130 * 2 * 512)
    assert tiles.p2 * tiles.p1 * 512 == 4096


def test_bigger_buffer_fewer_rereads() -> None:
    big = FUSEMAX.with_overrides({"global_buffer.capacity_bytes": 64 * 2**20})
    assert fusemax_tiles(big, BERT, 1048576).p2 < fusemax_tiles(FUSEMAX, BERT, 1048576).p2


def _brute_force_p1(blocks: int, bound: int) -> int:
    return max(d for d in range(1, min(blocks, bound) + 1) if blocks % d == 0)


def _brute_force_resident(blocks: int, bound: int) -> int:
    """All blocks when they fit, else the largest power of two <= bound (the artifact's divisor rule at
    its power-of-two lengths), by enumeration."""
    if blocks <= bound:
        return blocks
    return max(2 ** k for k in range(64) if 2 ** k <= bound)


@settings(max_examples=60, deadline=None)
@given(dim_log2=st.integers(3, 9), capacity_rows=st.integers(64, 1 << 16), seq_blocks=st.integers(1, 512),
       e=st.sampled_from([32, 64, 128]), cascade=st.booleans(), short=st.integers(0, 511))
def test_sizing_rule_invariants(dim_log2: int, capacity_rows: int, seq_blocks: int, e: int,
                                cascade: bool, short: int) -> None:
    dim = 1 << dim_log2
    short %= dim   # tokens missing from the last block: any length, not only multiples of the array
    capacity = capacity_rows * 512
    arch = FUSEMAX.with_overrides({"arrays.pe2d.rows": dim, "arrays.pe2d.cols": dim,
                                   "global_buffer.capacity_bytes": capacity})
    workload = BERT.model_copy(update={"head_dim_e": e, "head_dim_f": e})
    seq = max(1, seq_blocks * dim - short)
    words = e + e + 2 * dim + 2 if cascade else e + 2 + e
    available = capacity - dim * 2 * e * 2
    bound = available // (words * 2 * dim) if available > 0 else 0
    rule = cascade_tiles if cascade else fusemax_tiles
    if bound < 1:
        with pytest.raises(MappingError, match="nothing fits"):
            rule(arch, workload, seq)
        return
    tiles = rule(arch, workload, seq)
    assert tiles.p1_bound == bound
    blocks = -(-seq // dim)
    assert tiles.p1 == _brute_force_resident(blocks, bound)
    if seq % dim == 0 and blocks & (blocks - 1) == 0:   # a power-of-two length: the artifact's divisor rule
        assert tiles.p1 == _brute_force_p1(blocks, bound)
    assert (tiles.p2 - 1) * tiles.p1 * tiles.p0 < seq <= tiles.p2 * tiles.p1 * tiles.p0
    assert (tiles.m1 - 1) * tiles.m0 < seq <= tiles.m1 * tiles.m0
    assert (tiles.m1 - 1) * tiles.m0 + tiles.m0_last == seq
    assert ((tiles.p2 - 1) * tiles.p1 + tiles.p1_last - 1) * tiles.p0 + tiles.p0_last == seq
    assert 1 <= tiles.p1_last <= tiles.p1 and 1 <= tiles.p0_last <= tiles.p0
    assert tiles.glb_used_bytes <= capacity


@settings(max_examples=60, deadline=None)
@given(number=st.integers(1, 5000), bound=st.integers(1, 6000))
def test_largest_divisor_at_most(number: int, bound: int) -> None:
    assert largest_divisor_at_most(number, bound) == _brute_force_p1(number, bound)


# -- errors ------------------------------------------------------------------------------------------

def _message(excinfo: pytest.ExceptionInfo[MappingError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("rule", [fusemax_tiles, cascade_tiles])
def test_a_length_the_array_does_not_divide_has_partial_last_tiles(rule) -> None:  # type: ignore[no-untyped-def]
    tiles = rule(FUSEMAX, BERT, 1000)   # 1000 = 3 x 256 + 232
    assert (tiles.m1, tiles.m0_last, tiles.p2, tiles.p1, tiles.p1_last, tiles.p0_last) == (4, 232, 1, 4, 4, 232)
    assert tiles.query_blocks == 4                                   # ceil(1000 / 256)


def test_query_blocks_count_a_partial_last_group() -> None:
    # a buffer of one K/V tile (256 x 128 words) plus two blocks of 256 query rows (the FuseMax rule's
    # E + 1 + 1 + F = 130 words per row) and two 512-byte rows of slack keeps P1 = 2; 1000 rows are 4 blocks, in 2
    # groups of 2, and 1100 rows are 5 blocks: 3 groups, the last of one block
    small = FUSEMAX.with_overrides({"global_buffer.capacity_bytes": (256 * 128 + 2 * 256 * 130) * 2 + 1024})
    for seq, groups, last in ((1000, 2, 2), (1100, 3, 1)):
        tiles = fusemax_tiles(small, BERT, seq)
        assert (tiles.p1, tiles.p2, tiles.p1_last) == (2, groups, last)
        assert tiles.query_blocks == -(-seq // 256)


def test_tile_counts_refuse_empty_extents_and_tiles() -> None:
    from attnsim.mappers.tiling import tile_counts
    assert tile_counts(1, 1) == (1, 1) and tile_counts(1000, 256) == (4, 232)
    for extent, tile in ((0, 256), (-1, 256), (256, 0)):
        with pytest.raises(ValueError, match="expected extent >= 1 and tile >= 1"):
            tile_counts(extent, tile)


def test_seq_shorter_than_the_array() -> None:
    arch = FUSEMAX.with_overrides({"arrays.pe2d.rows": 128, "arrays.pe2d.cols": 512})
    tiles = fusemax_tiles(arch, BERT, 100)
    assert (tiles.m1, tiles.m0_last, tiles.p2, tiles.p1, tiles.p0_last) == (1, 100, 1, 1, 100)


@pytest.mark.parametrize("seq", [0, -256, 256.0, True])
def test_bad_sequence_length(seq: object) -> None:
    with pytest.raises(MappingError) as excinfo:
        fusemax_tiles(FUSEMAX, BERT, seq)  # type: ignore[arg-type]
    assert "expected a positive integer sequence length" in _message(excinfo)


def test_nothing_fits() -> None:
    tiny = FUSEMAX.with_overrides({"global_buffer.capacity_bytes": 256 * 1024})
    fusemax_tiles(tiny, BERT, 1024)  # 64 KB of K/V tile + 65 KB per query block: fits
    with pytest.raises(MappingError) as excinfo:
        cascade_tiles(tiny, BERT, 1024)  # a query block needs 642 * 2 * 256 B = 321 KB
    message = _message(excinfo)
    assert "nothing fits in global_buffer.capacity_bytes = 262144" in message
    assert "cascade rule" in message
    # the sizes it names, from the fact sheet's rule: a K/V tile is M0 x (E + F) words, a query row
    # E + F + 2 M0 + 2 = 642 words (§4.3), 2 bytes a word
    kv_tile, block = 256 * (64 + 64) * 2, 256 * (64 + 64 + 2 * 256 + 2) * 2
    assert f"one K/V tile takes {kv_tile} B and one block of 256 query rows {block} B" in message
    assert f"expected at least {kv_tile + block} B" in message


# -- spill rule --------------------------------------------------------------------------------------

@pytest.mark.parametrize("available, m, expected", [
    (8192, 4096, 0.0),            # exactly one 2-byte M-fibre
    (4096, 4096, 0.5),
    (0, 1024, 1.0),
    (-5, 1024, 1.0),
    (1 << 30, 1 << 20, 0.0),
    (2 * 4096 * 127 / 128, 4096, 1 / 128),  # 0.0078, the sheet's FLAT spill at 4K
])
def test_spilled_fraction(available: float, m: int, expected: float) -> None:
    """§2.5: spilled = 1 - min(1, available / (2 * M))."""
    assert spilled_fraction(available, m) == pytest.approx(expected)


def test_spilled_fraction_word_size_and_errors() -> None:
    assert spilled_fraction(4096, 1024, word_bytes=4) == 0.0
    assert spilled_fraction(2048, 1024, word_bytes=4) == pytest.approx(0.5)
    with pytest.raises(MappingError):
        spilled_fraction(1, 0)
    with pytest.raises(MappingError):
        spilled_fraction(1, 16, word_bytes=0)
