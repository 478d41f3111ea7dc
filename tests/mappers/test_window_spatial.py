"""Sliding-window attention on fusemax-cloud with the key tiles outside the window skipped (issue #16,
specs/mappings/window-fusemax.yaml, mappers/masking.py): the tiles run equal the closed-form count
of (query tile, key tile) pairs that intersect the band p - W < m <= p, derived here; the 2D array's
MACs and the DRAM bytes are that count times one tile's; the latency is within a stated margin of the
1D array's bound over those tiles; the cost per token stops growing once the length passes the window.

Independent references: the band count by two formulas written here (a closed form and a brute-force
count of tile pairs with a key in the band); op costs from fusemax-cloud's spec (mac/add/max/div 1
cycle, exp as 6 MACs + 1 add, 7 cycles).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.cascade_mapper import map_named
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import load_mapping, mapping_from_data
from attnsim.mappers.workloads import load_workload
from attnsim.studies.cli import main as cli_main

B, H, E, F = 64, 12, 64, 64          # bert-base (specs/workloads/bert-base.yaml)
T = 256                              # M0 = P0 = the 2D array's rows and columns (fusemax-cloud)
W = 4096                             # the mapping's window (Mistral 7B's)
WORD = 2                             # bytes per element (fusemax-cloud)


def band_tiles(seq: int, window: int, tile: int) -> int:
    """(query tile, key tile) pairs with a key m and query p in them such that p - window < m <= p:
    query tile i (queries iT .. iT + T - 1) reaches the key tiles floor(max(0, iT - W + 1) / T) .. i."""
    return sum(i - max(0, i * tile - window + 1) // tile + 1 for i in range(seq // tile))


def band_tiles_brute(seq: int, window: int, tile: int) -> int:
    """The same count by testing every tile pair's corner offsets: the pair meets the band iff the
    offsets p - m it spans, [iT - (jT + T - 1), iT + T - 1 - jT], meet [0, window - 1]."""
    i, j = np.meshgrid(np.arange(seq // tile), np.arange(seq // tile), indexing="ij")
    low, high = i * tile - (j * tile + tile - 1), i * tile + tile - 1 - j * tile
    return int(np.sum((high >= 0) & (low <= window - 1)))


def _mapped(seq: int, mapping="window-fusemax"):  # type: ignore[no-untyped-def]
    arch = load_arch("fusemax-cloud")
    mapped = map_named("window-attention", mapping, load_workload("bert-base"), seq, arch)
    return mapped, run(mapped.schedule, arch)


def test_the_closed_form_band_count_agrees_with_brute_force() -> None:
    for seq, window, tile in ((4096, 1024, 256), (8192, 4096, 256), (2048, 1000, 128), (1024, 4096, 256)):
        assert band_tiles(seq, window, tile) == band_tiles_brute(seq, window, tile)


@pytest.mark.parametrize("seq", [8192, 65536])
def test_tiles_macs_and_traffic_follow_the_band_count(seq: int) -> None:
    mapped, result = _mapped(seq)
    visited = band_tiles(seq, W, T)
    assert seq > W and visited < (seq // T) ** 2
    assert mapped.choices["tiles"] == B * H * visited
    # 2D array, per visited tile of T x T scores: BQK E MACs, SLNV F MACs, and SLN's exp as 6 MACs
    assert result.actions["pe2d.mac"] == B * H * visited * T * T * (E + F + 6)
    # DRAM: Q read and O written once per query tile, K and V once per visited tile
    q_tiles = seq // T
    assert result.actions["dram.read"] + result.actions["dram.write"] == \
        B * H * (q_tiles * 2 + visited * 2) * T * E * WORD


@pytest.mark.parametrize("seq", [16384, 262144])
def test_latency_is_within_a_margin_of_its_bound_over_the_visited_tiles(seq: int) -> None:
    mapped, result = _mapped(seq)
    visited = band_tiles(seq, W, T)
    # 1D array per tile, T rows on T lanes: RM (max) 1, PRM (exp) 7, SPD (mul) 1, RD (add) 1 per row;
    # SPNV and RNV F per row (one multiply, one add): 138 cycles; AV (F divisions per row) once per query tile
    bound_1d = B * H * (visited * (1 + 7 + 1 + 1 + F + F) + (seq // T) * F)
    # 2D array per tile: BQK E, LM 1, SLN 7, SLD 1, SLNV F = 137 cycles, below the 1D array's
    bound_2d = B * H * visited * (E + 1 + 7 + 1 + F)
    # DRAM: a group is one query tile, so each visited tile streams its K and V tile (2 T E words):
    # 65536 B at 400 GiB/s / 940 MHz (fusemax-cloud) = 143.4 cycles, above the 1D array's 141.8
    bytes_per_cycle = 429496729600 / 940.0e6
    bound_dram = B * H * (visited * 2 + (seq // T) * 2) * T * E * WORD / bytes_per_cycle
    bound = max(bound_1d, bound_2d, bound_dram)
    assert bound == bound_dram
    # achieved 1.092 (16K) and 1.083 (256K): a group is one query tile of W / T + 1 key tiles; the masked
    # nest (mappers/cascade_masked.py) loads the next group's Q and first K/V tile during a group's last
    # iteration (1.181 / 1.162 without that prefetch); margin 2% on top
    assert bound <= result.cycles <= 1.11 * bound


def test_cost_per_token_is_constant_past_the_window() -> None:
    seqs = (65536, 131072, 262144)
    cycles = [_mapped(seq)[1].cycles for seq in seqs]
    # past the first W / T query tiles every query tile visits W / T + 1 key tiles: the cycles each
    # added token costs are the same from 64K to 128K and from 128K to 256K (achieved equal to the
    # cycle; margin 0.5%), while dense attention's would double
    marginal = [(cycles[k + 1] - cycles[k]) / (seqs[k + 1] - seqs[k]) for k in range(2)]
    assert abs(marginal[1] / marginal[0] - 1) < 0.005
    # and the cycles per visited tile are the same at every length (achieved 0.60% apart; margin 0.4%)
    per_tile = [c / band_tiles(seq, W, T) for c, seq in zip(cycles, seqs)]
    assert max(per_tile) / min(per_tile) < 1.01
    assert band_tiles(262144, W, T) < band_tiles(262144, 262144, T) / 10


def test_with_masked_tiles_computed_every_tile_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = load_mapping("window-fusemax").to_yaml_dict()
    data["masking"] = {"masked_tiles": "compute"}
    dense = mapping_from_data(data, "dense-window.yaml")
    seq = 8192
    mapped, _ = _mapped(seq, dense)
    assert mapped.choices["tiles"] == B * H * (seq // T) ** 2


def test_a_length_the_tiles_do_not_divide_is_refused_in_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["simulate", "--cascade", "window-attention", "--mapping", "window-fusemax", "--model",
                     "bert-base", "--seq", "5000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "masking.masked_tiles" in err and "window-fusemax" in err
    with pytest.raises(MappingError, match="masking.masked_tiles"):
        _mapped(5000)


def test_the_cli_reports_the_visited_tiles(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["simulate", "--cascade", "window-attention", "--mapping", "window-fusemax", "--model",
                     "bert-base", "--seq", "16K", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["choices"]["tiles"] == B * H * band_tiles(16384, W, T)
