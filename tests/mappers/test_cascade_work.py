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


def _cascade(einsums: str, ranks: str, inputs: str, outputs: str, extra: str = ""):  # type: ignore[no-untyped-def]
    from attnsim.einsum_ir import load_cascade_text
    text = (f"name: t\ndescription: test\nranks: {{{ranks}}}\ninputs: [{inputs}]\noutputs: [{outputs}]\n"
            f"{extra}einsums: |\n" + "".join(f"  {line.strip()}\n" for line in einsums.strip().splitlines()))
    return load_cascade_text(text, source="<test>")


def test_ops_in_sequence_cost_their_count_in_cycles() -> None:
    # Y = X + Z + W is two adds per point; V = exp(X - Z) + W + U on FuseMax's 2D array (no exp unit)
    # is the composite exp (6 MAC + 1 add absorbing the subtract: ops.exp = 7 cycles, fact sheet §3.5)
    # plus two adds. Every op listed in the spec's pe2d table takes 1 cycle (fusemax-cloud.yaml), so
    # the cycles per point are the ops' count: 2 and 7 + 2.
    c = _cascade("""
        Y[m,p] = X[m,p] + Z[m,p] + W[m,p]
        V[m,p] = exp(X[m,p] - Z[m,p]) + W[m,p] + U[m,p]
    """, "m: M, p: P", "X, Z, W, U", "Y, V")
    work = cascade_work(c, {"M": 8, "P": 8})
    fusemax = load_arch("fusemax-cloud")
    table = fusemax.arrays.pe2d.ops
    assert (table.add, table.mac, table.exp) == (1, 1, 7)
    y = lower(work.einsums["Y"], fusemax, "pe2d")
    assert y.actions == {"add": 2} and y.cycles == 2 * table.add
    v = lower(work.einsums["V"], fusemax, "pe2d")
    assert v.actions == {"mac": 6, "add": 3} and v.cycles == table.exp + 2 * table.add
    # with an exp unit (FLAT's 1D array) the subtract is an add of its own: 1 exp + 3 adds
    flat = load_arch("flat-cloud")
    v_flat = lower(work.einsums["V"], flat, "pe1d")
    assert v_flat.actions == {"exp": 1, "add": 3} and v_flat.cycles == flat.arrays.pe1d.ops.exp + 3


def test_initialisations_and_views_compute_nothing() -> None:
    # an initial iterate computed from an input is still an initialisation: no ops, no dependencies
    c = _cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RS[0,p] = Z[p] * 2 + 1
        RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p]
        Y[p] = RS[M1,p] * 3
    """, "m: M, p: P, m1: M1, m0: M0", "X, Z", "Y", extra='shapes: {M1: M / M0}\niterative: {m1: "m1 >= M1"}\n')
    work = cascade_work(c, {"M": 8, "P": 4, "M0": 4})
    assert work.einsums["RS.init"].role == "init" and work.einsums["RS.init"].ops == {}
    assert work.einsums["BX"].role == "view" and work.einsums["BX"].ops == {}
    assert [w.name for w in work.compute] == ["RS", "Y"]
    assert work.einsums["RS"].ops == {"add": 2}     # the + and the sum over m0


def test_producers_and_consumers_read_through_views() -> None:
    # from the cascade's equations (paper Eqs. 39-55): K and V are read only through their views BK and
    # BV (by BQK and SLNV); RM is written by its update and read by SLN, PRM and itself; an input has no
    # computing producer
    work = cascade_work(load_builtin("attention-1pass"), SIZES)
    assert work.consumers("K") == work.consumers("BK") == ("BQK",)
    assert work.consumers("V") == ("SLNV",)
    assert work.consumers("Q") == ("BQK",)
    assert work.consumers("RM") == ("RM", "SLN", "PRM")
    assert work.consumers("AV") == ()
    assert work.producers("RM") == ("RM",) and work.producers("Q") == ()
