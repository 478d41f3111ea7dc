"""Pass counts derived by the paper's argument (FuseMax §III-A), written out per case.

The rule (§2.1 of the fact sheet): an Einsum that traverses a rank element by element cannot use a value
that summarises a whole fiber of that rank (a full reduction over it) in the same pass that computes
the summary; each such read-read dependency in sequence adds one pass. Reassociation (distributivity)
and iterative ranks (running values over a partition) remove dependencies.
"""
from __future__ import annotations

import pytest
import sympy

from attnsim.einsum_ir.bounds import live_bounds
from attnsim.einsum_ir.loader import load_cascade_text
from attnsim.einsum_ir.passes import AnalysisError, analyze_passes

from builtin_cascades import builtin


def cascade(einsums: str, ranks: str, inputs: str, outputs: str, extra: str = "") -> object:
    text = (f"name: t\ndescription: test\nranks: {{{ranks}}}\ninputs: [{inputs}]\noutputs: [{outputs}]\n"
            f"{extra}einsums: |\n" + "".join(f"  {line.strip()}\n" for line in einsums.strip().splitlines()))
    return load_cascade_text(text, source="<test>")


# --- the paper's cascades ------------------------------------------------------------------------

def test_cascade1_is_two_pass_over_k():
    # Y needs every A_k before Z can revisit any A_k: one read-read dependency -> 2 passes.
    analysis = analyze_passes(builtin("cascade1"), "K")
    assert analysis.passes == 2
    assert analysis.einsum_pass == {"Y": 1, "Z": 2}


@pytest.mark.parametrize("name", ["cascade2", "cascade3"])
def test_cascades_2_and_3_are_one_pass(name):
    # Cascade 2 defers the multiplication by Y (distributivity); Cascade 3 builds Y and Z iteratively.
    assert analyze_passes(builtin(name), "K").passes == 1


@pytest.mark.parametrize("suffix", ["", "-causal"])
@pytest.mark.parametrize("name, passes", [
    ("attention-3pass", 3),           # GM needs all of QK; SD needs all of SN: two dependencies
    ("attention-3pass-deferred", 2),  # dividing SNV (not SN) by SD merges passes 2 and 3
    ("attention-2pass", 2),           # local maxima in pass 1, one correction pass
    ("attention-1pass", 1),           # running max over m1: no dependency on a whole M fiber
])
def test_attention_pass_counts(name, passes, suffix):
    # A causal filter shrinks the iteration space but not the dependency structure.
    assert analyze_passes(builtin(name + suffix), "M").passes == passes


def test_three_pass_groups_follow_the_paper_table():
    analysis = analyze_passes(builtin("attention-3pass"), "M")
    # Fact sheet §1.2: QK, GM in pass 1; SN, SD in pass 2; A, AV in pass 3.
    assert analysis.fusable_groups == [["QK", "GM"], ["SN", "SD"], ["A", "AV"]]


def test_one_pass_fuses_everything():
    analysis = analyze_passes(builtin("attention-1pass"), "M")
    assert analysis.fusable_groups == [[e.name for e in analysis.cascade.einsums]]


def test_default_rank_of_attention_is_m():
    assert analyze_passes(builtin("attention-3pass")).rank == "M"


# --- live footprints -----------------------------------------------------------------------------

def test_three_pass_keeps_an_m_fiber_of_qk_and_sn_per_query_row():
    bounds = live_bounds(analyze_passes(builtin("attention-3pass"), "M"))
    M, P1 = sympy.symbols("M P1", positive=True, integer=True)
    reread = {entry.tensor: entry for entry in bounds.live if entry.kind == "reread"}
    # QK is read in pass 1 (GM) and 2 (SN); SN in pass 2 (SD) and 3 (A): each one M-fiber per row.
    assert set(reread) == {"QK", "SN"}
    assert sympy.simplify(reread["QK"].footprint - M * P1) == 0
    assert sympy.simplify(reread["SN"].footprint - M * P1) == 0
    assert bounds.depends_on("M")


def test_one_pass_footprint_is_independent_of_m():
    bounds = live_bounds(analyze_passes(builtin("attention-1pass"), "M"))
    F, E, P1 = sympy.symbols("F E P1", positive=True, integer=True)
    state = {entry.tensor: entry.footprint for entry in bounds.live if entry.kind == "state"}
    # Running max RM and denominator RD: one value per query; RNV: F values per query (§2.5).
    assert state == {"RM": P1, "RD": P1, "RNV": F * P1}
    assert not bounds.depends_on("M")
    assert not any(entry.kind == "reread" for entry in bounds.live)


def test_cascade1_reread_costs_one_extra_fiber_of_a():
    bounds = live_bounds(analyze_passes(builtin("cascade1"), "K"))
    K = sympy.Symbol("K", positive=True, integer=True)
    (entry,) = [e for e in bounds.live if e.kind == "reread"]
    # §2.2: the minimum live footprint is one K-fiber of A; spilling it costs one more read of A.
    assert entry.tensor == "A" and entry.footprint == K and entry.reread_traffic == K
    assert entry.spill_write == 0  # A is an input: already in DRAM


# --- small cascades written here -----------------------------------------------------------------

def test_chain_of_two_full_reductions_over_different_ranks_is_one_pass():
    # T reduces S over p; S has no m left, so T never revisits an M fiber: one pass over M.
    c = cascade("""
        S[p] = X[m,p]
        T[] = S[p] :: max
    """, "m: M, p: P", "X", "T")
    assert analyze_passes(c, "M").passes == 1


def test_chain_of_dependent_reductions_over_one_rank_is_three_pass():
    # Layer-norm shape: the mean needs a pass, the variance a second, the normalisation a third.
    c = cascade("""
        MU[p] = X[m,p]
        D[m,p] = X[m,p] - MU[p]
        VAR[p] = D[m,p] * D[m,p]
        Y[m,p] = D[m,p] / VAR[p]
    """, "m: M, p: P", "X", "Y")
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 3
    assert analysis.einsum_pass == {"MU": 1, "D": 2, "VAR": 2, "Y": 3}


def test_reduction_used_by_a_map_over_the_same_rank_is_two_pass():
    c = cascade("""
        S[p] = X[m,p]
        Y[m,p] = X[m,p] / S[p]
    """, "m: M, p: P", "X", "Y")
    assert analyze_passes(c, "M").passes == 2


def test_reassociation_removes_a_pass():
    # (X/S) V summed over m needs S first: 2 passes. Sum X V first, divide once: 1 pass (distributivity).
    before = cascade("""
        S[p] = X[m,p]
        Z[f,p] = X[m,p] / S[p] * V[f,m]
    """, "m: M, p: P, f: F", "X, V", "Z")
    after = cascade("""
        S[p] = X[m,p]
        N[f,p] = X[m,p] * V[f,m]
        Z[f,p] = N[f,p] / S[p]
    """, "m: M, p: P, f: F", "X, V", "Z")
    assert analyze_passes(before, "M").passes == 2
    assert analyze_passes(after, "M").passes == 1


def test_iterative_rank_removes_a_pass():
    # Stable sum of exponentials: the global max first (2 passes), or a running max over tiles m1 with a
    # rescaled running sum (1 pass): the Cascade-3 trick applied to max.
    two_pass = cascade("""
        G[p] = X[m,p] :: max
        S[p] = exp(X[m,p] - G[p])
    """, "m: M, p: P", "X", "S")
    one_pass = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RM[0,p] = -inf
        RS[0,p] = 0
        LM[m1,p] = BX[m1,m0,p] :: max
        RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
        LS[m1,p] = exp(BX[m1,m0,p] - RM[m1+1,p])
        RS[m1+1,p] = RS[m1,p] * exp(RM[m1,p] - RM[m1+1,p]) + LS[m1,p]
        S[p] = RS[M1,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X", "S",
        extra="shapes: {M1: M / M0}\niterative: {m1: \"m1 >= M1\"}\n")
    assert analyze_passes(two_pass, "M").passes == 2
    assert analyze_passes(one_pass, "M").passes == 1


def test_two_independent_ranks_are_counted_separately():
    # Y revisits M after S (2 passes over M); Z scales W's N-fibers by S, a summary of *M*: it does not
    # wait for any N-reduction, so N is traversed once.
    c = cascade("""
        S[p] = X[m,p]
        Y[m,p] = X[m,p] / S[p]
        Z[n,p] = W[n,p] * S[p]
    """, "m: M, n: N, p: P", "X, W", "Y, Z")
    assert analyze_passes(c, "M").passes == 2
    assert analyze_passes(c, "N").passes == 1


@pytest.mark.parametrize("einsums, ranks, extra, rank, why", [
    ("F[p] = X[0,p]\nY[m,p] = X[m,p] * F[p]", "m: M, p: P", "", "M", "reads one element"),
    ("Y[p] = X[m,p]", "m: M, p: P", "", "Q", "not a rank shape"),
    ("Y[p] = X[m,p]", "m: M, p: P, n: N", "", "N", "no Einsum traverses"),
    ("Y[m,p] = X[m+p,p]", "m: M, p: P", "", "M", "mixes rank M"),
])
def test_refuses_what_it_cannot_analyse(einsums, ranks, extra, rank, why):
    c = cascade(einsums, ranks, "X", "Y", extra)
    with pytest.raises(AnalysisError, match=why):
        analyze_passes(c, rank)
