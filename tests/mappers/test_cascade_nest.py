"""The generic spatial mapper's loop nest where the tiles do not divide the length: its structure (runs
of equal groups per head, named by their role), its tile count and its unit binding.

Expected values are closed forms written here from the sizing rule (fact sheet §2.5: 256 x 256 array,
P1 = 2 query blocks in the 200704-byte buffer used below) and the mapping file's binding.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions, mapper
from attnsim.mappers.workloads import load_workload

SMALL = load_workload("bert-base").model_copy(update={"batch": 1, "heads": 3})
ARCH = load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 200704})   # P1 = 2 blocks of 256 rows


@pytest.mark.parametrize("seq", [1000, 1100, 1300])
def test_tiles_count_every_k_v_tile_of_every_query_block(seq: int) -> None:
    # one tile per (head, K/V tile, query block): 3 x ceil(seq / 256) x ceil(seq / 256), the last group
    # of each head holding fewer blocks
    mapped = mapper("fusemax")(SMALL, seq, ARCH, options=MapOptions())
    tiles = -(-seq // 256)
    assert mapped.choices["tiles"] == 3 * tiles * tiles
    assert mapped.choices["tail_group"] is not None


def test_groups_are_named_by_their_role() -> None:
    # 1100 rows = 5 blocks of 256: per head 3 groups (2, 2, 1 blocks). First head: the first group, a
    # middle one, the tail; the middle head is one repeated block; the last head: two groups, then the
    # last group of the whole nest (the one that prefetches nothing)
    mapped = mapper("fusemax")(SMALL, 1100, ARCH, options=MapOptions())
    assert [(b.name, b.repeats) for b in mapped.schedule.blocks] == [
        ("prologue", 1), ("group_first", 1), ("groups", 1), ("group_tail", 1), ("heads", 1),
        ("groups", 1), ("groups", 1), ("group_last", 1)]
    first = mapped.schedule.blocks[1]
    # 5 K/V tiles: the first iteration (its first block the very first tile), 2 regular ones, the one
    # before the last (which loads the partial last K/V tile) and the last
    assert [(b.name, b.repeats) for b in first.items] == [
        ("iteration_first", 1), ("iterations", 2), ("iteration_penultimate", 1), ("iteration_last", 1)]
    assert [(b.name, b.repeats) for b in first.items[0].items if hasattr(b, "items")] == [
        ("tile_first", 1), ("tiles", 1)]
    # only the nest's very first tile has that role: the regular iterations are plain tiles
    assert [(b.name, b.repeats) for b in first.items[1].items if hasattr(b, "items")] == [("tiles", 2)]


def test_the_binding_is_the_mapping_files() -> None:
    # specs/mappings/fusemax.yaml: pe2d [BQK, LM, SLN, SLD, SLNV], pe1d the rest, in cascade order
    mapped = mapper("fusemax")(SMALL, 1024, load_arch("fusemax-cloud"), options=MapOptions())
    assert mapped.einsums_2d == ("BQK", "LM", "SLN", "SLD", "SLNV")
    assert mapped.einsums_1d == ("RM", "PRM", "SPD", "SPNV", "RD", "RNV", "AV")


@pytest.mark.parametrize("seq", [1024, 4096, 16384])
def test_lengths_the_tiles_divide_have_no_partial_tiles_or_groups(seq: int) -> None:
    # 256 x 256 array and the full 16 MB buffer: every K/V tile has 256 keys and every group its P1
    # blocks of 256 rows, so the plan has neither a partial last iteration nor a tail group
    mapped = mapper("fusemax")(load_workload("bert-base"), seq, load_arch("fusemax-cloud"), options=MapOptions())
    assert mapped.choices["last_iteration_tile"] is None
    assert mapped.choices["tail_group"] is None
    assert mapped.choices["real_sizes"] == {}
