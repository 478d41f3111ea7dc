"""The mapping search on the multi-pass groups path (issue 18): FLAT's 3-pass cascade on flat-cloud. The
searched mapping is never worse than FLAT's tabled choice (simulated on its own), its bounds are bounds,
and the buffer accounting that derives the spill reproduces the spill column of FLAT's own table
(the FuseMax artifact's flat_validation.csv, FLAT authors' code) by arithmetic written here."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attnsim.archsim import load_arch
from attnsim.archsim.engine import run
from attnsim.mappers.cascade_mapper import load_cascade_arg, map_cascade, map_named
from attnsim.mappers.mapping_spec import load_mapping, mapping_from_data
from attnsim.mappers.search.groups_search import (_templates_of, analytic_bound, candidate_row, chain_bound,
                                                  make_groups_problem, search_groups)
from attnsim.mappers.workloads import load_workload

ARCH = load_arch("flat-cloud")
CSV = Path(__file__).parent / "artifact" / "flat_validation.csv"
CAPACITY_WORDS = 32 * 2**20 // 2          # flat-cloud: 32 MiB of 2-byte words
TILE = 256                                # the 256 x 256 array's tile of keys (m) and of query rows (p)
LENGTHS = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096, "8K": 8192, "16K": 16384, "32K": 32768,
           "64K": 65536, "128K": 131072, "256K": 262144, "512K": 524288, "1M": 1 << 20}


def _problem(model: str, seq: int):  # type: ignore[no-untyped-def]
    return make_groups_problem(load_cascade_arg("attention-3pass"), load_workload(model), seq, ARCH,
                               load_mapping("flat"))


@pytest.fixture(scope="module", params=[("bert-base", 1024), ("xlm", 65536), ("bert-base", 1 << 20)])
def searched(request):  # type: ignore[no-untyped-def]
    model, seq = request.param
    problem = _problem(model, seq)
    return model, seq, problem, search_groups(problem)


def test_searched_mapping_is_never_worse_than_flats_tabled_choice(searched) -> None:  # type: ignore[no-untyped-def]
    model, seq, problem, result = searched
    table = run(map_named("attention-3pass", "flat", load_workload(model), seq, ARCH).schedule, ARCH)
    best = result.best
    assert best.latency_s <= table.latency_s
    assert best.energy_pj <= table.energy_pj * (1 + 1e-12)    # float sums in another order
    # written out and read back, the best mapping runs to the same numbers
    again = run(map_cascade(load_cascade_arg("attention-3pass"), mapping_from_data(best.mapping, "<best>"),
                            load_workload(model), seq, ARCH).schedule, ARCH)
    assert (again.latency_s, again.energy_pj) == (best.latency_s, best.energy_pj)


def test_bounds_hold_on_every_front_point(searched) -> None:  # type: ignore[no-untyped-def]
    _, _, problem, result = searched
    checked = 0
    for point in result.front:
        if point.candidate is None:
            continue
        coarse = analytic_bound(problem, point.candidate)
        templates, iterations = _templates_of(problem, candidate_row(problem, point.candidate))
        chain = chain_bound(problem, templates, iterations, point.onchip_bytes)
        assert coarse.latency_s <= chain.latency_s * (1 + 1e-12) and chain.latency_s <= point.latency_s
        assert coarse.energy_pj <= point.energy_pj
        assert chain.energy_pj == pytest.approx(point.energy_pj, rel=1e-9)   # the same sum in another order
        assert coarse.onchip_bytes == point.onchip_bytes
        checked += 1
    assert checked >= 3


def _rows() -> list[dict[str, str]]:
    with CSV.open(encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["platform"] == "cloud"]


def test_flats_spill_column_follows_from_its_buffer_accounting() -> None:
    """FLAT's need in words, per head: one score buffer of P1 x M (SN and A overwrite QK in place) plus
    every other tensor double-buffered, at its block footprint when on chip (Q, AV: P1 x E; K, V: M x E),
    at its 256-row tile when streamed; P1 = P at head granularity. Spill = 1 - min(1, capacity / need)."""
    checked = 0
    for row in _rows():
        m, e, f = int(row["M"]), int(row["E"]), int(row["F"])
        p1 = int(row["P"]) if row["fusion_granularity"] == "head" else int(row["P1"])
        on = {t: row[f"{t}_loc"] == "onchip" for t in ("Q", "K", "V", "AV", "QK")}
        other = 2 * ((p1 if on["Q"] else TILE) * e + (m if on["K"] else TILE) * e
                     + (m if on["V"] else TILE) * f + (p1 if on["AV"] else TILE) * f)
        need = (p1 * m if on["QK"] else 0) + other
        spill = 1 - min(1, CAPACITY_WORDS / need) if on["QK"] else 0.0
        assert spill == pytest.approx(float(row["proportion_spilled"]), abs=1e-12), (row["models"], row["seq_len"])
        checked += 1
    assert checked == 48                  # 4 models x 12 lengths on the cloud platform


def test_flats_block_follows_from_the_score_rows_alone() -> None:
    """FLAT's P1 counts only the score rows (P1 x M words): the whole head when it fits, else the largest
    power of two that fits, within FLAT's row range 256 .. 1024; 1024 with the scores in DRAM."""
    for row in _rows():
        m, p = int(row["M"]), int(row["P"])
        if row["QK_loc"] == "offchip":
            assert (row["fusion_granularity"], int(row["P1"])) == ("row", 1024)
            continue
        if p * m <= CAPACITY_WORDS:
            assert row["fusion_granularity"] == "head"
            continue
        largest = 1 << (CAPACITY_WORDS // m).bit_length() - 1 if CAPACITY_WORDS >= m else 1
        assert row["fusion_granularity"] == "row" and int(row["P1"]) == min(1024, max(TILE, largest))


@pytest.mark.parametrize("model, seq", [("bert-base", 4096), ("xlm", 16384), ("xlm", 65536)])
def test_the_search_derives_the_tables_spill_for_the_tables_choice(model: str, seq: int) -> None:
    """The spill the search derives for the table's own placement and P1 (P at head granularity) is the
    table's (FLAT's accounting, mappers/group_buffer.py)."""
    from attnsim.mappers.flat_config import load_flat_table
    from attnsim.mappers.search.groups_search import GroupCandidate

    problem = _problem(model, seq)
    config = load_flat_table().config_for(load_workload(model), seq)
    block = seq if config.granularity == "head" else config.p1_rows
    modes = {t: ("once" if getattr(config.placement, t) == "chip" else "per_tile") for t in problem.inputs}
    modes.update({t: getattr(config.placement, t) for t in problem.fibres})
    candidate = GroupCandidate(tuple(modes.items()), (("QK", "output"), ("AV", "output")), block)
    traffic = dict(candidate.traffic)
    if config.placement.AV == "chip":     # AV's placement changes only the accounting, not the traffic
        traffic["AV"] = "once"
    from attnsim.mappers.search.groups_search import _buffer

    spill = _buffer(problem, {**problem.fixed, **traffic}, block).spill(CAPACITY_WORDS)
    assert spill == pytest.approx(config.spill_fraction, abs=1e-12)
    assert candidate_row(problem, candidate)["block_factor"] == block


def test_the_deferred_cascade_is_searched_with_no_hand_input() -> None:
    """attention-3pass-deferred has no shipped mapping: the base is its group mapping derived by analysis,
    and the best searched mapping runs and is no worse than it; no faster than its MACs allow."""
    from attnsim.mappers.cascade_defaults import default_groups_mapping
    from attnsim.mappers.search.groups_search import search_groups_point

    cascade, workload, seq = load_cascade_arg("attention-3pass-deferred"), load_workload("bert-base"), 1024
    result = search_groups_point(cascade, workload, seq, ARCH, None)
    default = run(map_cascade(cascade, default_groups_mapping(cascade), workload, seq, ARCH).schedule, ARCH)
    best = result.best
    assert best.latency_s <= default.latency_s and best.energy_pj <= default.energy_pj * (1 + 1e-12)
    again = run(map_cascade(cascade, mapping_from_data(best.mapping, "<best>"), workload, seq, ARCH).schedule, ARCH)
    assert again.latency_s == best.latency_s
    macs = workload.batch * workload.heads * seq * seq * (workload.head_dim_e + workload.head_dim_f)   # QK, SNV
    assert best.cycles >= macs / (256 * 256)
