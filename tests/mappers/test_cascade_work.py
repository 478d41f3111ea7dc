"""cascade_work: per-Einsum ranks, element counts, primitive ops and dependencies, read from the cascade.

Expected values are hand counts from the cascade's equations (paper Cascade 5) and the fact sheet's
FuseMax exp (§3.5: 6 MAC + 1 add, the add absorbing the subtract).
"""
from __future__ import annotations

from attnsim.archsim.spec import load_arch
from attnsim.einsum_ir import load_builtin
from attnsim.mappers.cascade_work import cascade_work, lower

SIZES = {"M": 1024, "P": 1024, "E": 64, "F": 64, "M0": 256}
TILE = {"m0": 256, "p": 256, "e": 64, "f": 64, "m1": 1}


def test_one_pass_counts_and_ops() -> None:
    work = cascade_work(load_builtin("attention-1pass"), SIZES)
    assert work.extents["m1"] == 4 and work.extents["m0"] == 256
    assert [w.name for w in work.compute] == ["BQK", "LM", "RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD",
                                              "SPNV", "RNV", "AV"]
    assert work.einsums["BK"].role == "view" and work.source_of("BK") == "K"
    bqk = work.einsums["BQK"]
    assert bqk.ops == {"mac": 1} and bqk.points(TILE) == 256 * 256 * 64
    assert bqk.read_elements(TILE) == {"Q": 64 * 256, "BK": 64 * 256}
    assert work.einsums["LM"].ops == {"max": 1} and work.einsums["SLD"].ops == {"add": 1}
    assert work.einsums["SLN"].ops == {"exp": 1, "add": 1}
    assert work.einsums["AV"].ops == {"div": 1} and work.einsums["AV"].write_elements(TILE) == 64 * 256


def test_exp_lowering_with_and_without_exp_unit() -> None:
    work = cascade_work(load_builtin("attention-1pass"), SIZES)
    fusemax, flat = load_arch("fusemax-cloud"), load_arch("flat-cloud")
    sln = work.einsums["SLN"]
    on_fusemax = lower(sln, fusemax, "pe2d")
    assert on_fusemax.actions == {"mac": 6, "add": 1} and on_fusemax.cycles == 7
    on_flat = lower(sln, flat, "pe1d")
    assert on_flat.actions == {"exp": 1, "add": 1} and on_flat.cycles == 2
    assert lower(sln, flat, "pe2d").missing == ("exp",)
    assert lower(work.einsums["AV"], fusemax, "pe2d").missing == ("div",)


def test_dependency_kinds() -> None:
    work = cascade_work(load_builtin("attention-1pass"), SIZES)
    kinds = {(d.producer, d.consumer, d.kind) for d in work.dependencies}
    assert ("RM", "RM", "carried") in kinds and ("RM", "SLN", "tile") in kinds
    assert ("RM", "PRM", "carried") in kinds and ("RM", "PRM", "tile") in kinds
    assert ("RNV", "AV", "final") in kinds and ("RD", "AV", "final") in kinds
    assert all(d.rank == "m1" for d in work.dependencies if d.kind != "tile")
