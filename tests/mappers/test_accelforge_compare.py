"""attnsim's mapping search against a peer tool's recorded output: AccelForge 1.0.467's fused mapper on
the same fused QK -> AV problem and architecture (benchmarks/accelforge_compare.py,
docs/accelforge-comparison.md). Needs neither accelforge nor /tmp: the AccelForge energies are the
recorded JSON in benchmarks/data/accelforge/, an independent expected value.

Only the variants whose accounting matches attnsim's are asserted: `raw` (no PE storage) and `pe-qk` (QK
in a 0 pJ PE register, as attnsim forwards it in the PE). `pe-all` gives AccelForge free operand reuse in
the PE that attnsim's accounting does not have; there AccelForge is lower (the doc says so) and nothing is
asserted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnsim.archsim import load_arch
from attnsim.mappers.cascade_mapper import load_cascade_arg
from attnsim.mappers.search.driver import search
from attnsim.mappers.search.mapspace import make_problem
from attnsim.mappers.workloads import load_workload

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "accelforge"
SEQS = (1024, 4096)
RECORDED = {seq: json.loads((DATA / f"accelforge-1.0.467_qk-av_flat-edge_seq{seq}.json").read_text()) for seq in SEQS}


def _search(seq: int):  # type: ignore[no-untyped-def]
    problem = make_problem(load_cascade_arg(str(DATA / "qk-av.yaml")), load_workload(str(DATA / "one-head.yaml")),
                           seq, load_arch("flat-edge"), None)
    return search(problem, "energy")


@pytest.mark.parametrize("seq", SEQS)
def test_recorded_problem_is_the_same(seq: int) -> None:
    rec = RECORDED[seq]
    assert rec["accelforge_version"] == "1.0.467"
    assert rec["seq"] == seq
    # the same MAC count and per-MAC energy on both sides: 2 * M * P * 64 MACs at 17.1645 pJ
    assert rec["attnsim"]["energy_breakdown_pj"]["pe2d.mac"] == pytest.approx(2 * seq * seq * 64 * 17.1645)
    for r in rec["accelforge"].values():
        assert r["energy_per_component_pj"]["MAC"] == pytest.approx(2 * seq * seq * 64 * 17.1645)


@pytest.mark.parametrize("seq", SEQS)
def test_search_energy_at_most_accelforge(seq: int) -> None:
    best = _search(seq).best
    for variant in ("raw", "pe-qk"):
        assert best.energy_pj <= RECORDED[seq]["accelforge"][variant]["energy_pj"], variant
