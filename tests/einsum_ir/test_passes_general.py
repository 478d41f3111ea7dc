"""Pass assignment of the Einsums between passes and of reads the attention cascades never make, each
reasoned by hand with FuseMax §III-A's rule (a value that summarises a whole fiber of the rank is known
only after the pass that traverses it): added for the surviving mutants of einsum_ir/passes.py
(docs/testing.md).
"""
from __future__ import annotations

import pytest

from attnsim.einsum_ir.passes import AnalysisError, analyze_passes, default_rank

from test_passes import cascade

ITERATIVE = 'shapes: {M1: M / M0}\niterative: {m1: "m1 >= M1"}\n'


def test_free_einsum_between_passes_is_the_epilogue_of_the_first():
    # G rescales the sum S once per query row: it needs the whole of pass 1 and touches no element of M,
    # so it runs after pass 1 (its epilogue); Y reads G at every m: pass 2.
    c = cascade("""
        S[p] = X[m,p]
        G[p] = S[p] * 2
        Y[m,p] = X[m,p] / G[p]
    """, "m: M, p: P", "X", "Y")
    analysis = analyze_passes(c, "M")
    assert analysis.coverage["G"] == "free"
    assert analysis.einsum_pass == {"S": 1, "G": 1, "Y": 2}
    assert analysis.fusable_groups == [["S", "G"], ["Y"]]


def test_coarse_einsum_between_passes_streams_with_the_next():
    # C is computed once per tile m1 from the summary S: it can only start after pass 1 and its tiles are
    # consumed as pass 2 traverses them, so it belongs to pass 2.
    c = cascade("""
        S[p] = X[m,p]
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        C[m1,p] = W[m1] * S[p]
        Y[m1,m0,p] = BX[m1,m0,p] * C[m1,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X, W", "Y", extra="shapes: {M1: M / M0}\n")
    analysis = analyze_passes(c, "M")
    assert analysis.coverage["C"] == "coarse"
    assert analysis.einsum_pass == {"S": 1, "BX": 1, "C": 2, "Y": 2}


def test_initial_iterate_that_waits_for_a_summary_delays_its_readers():
    # The recurrence starts from the max G of pass 1 (RS[0,p] = G[p]); Y reads that initial iterate at
    # every m, so Y, like the recurrence itself, can only run in pass 2.
    c = cascade("""
        G[p] = X[m,p] :: max
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RS[0,p] = G[p]
        RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p]
        Y[m,p] = X[m,p] - RS[0,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X", "Y, RS", extra=ITERATIVE)
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 2
    assert analysis.einsum_pass == {"G": 1, "BX": 1, "RS.init": 1, "RS": 2, "Y": 2}


def test_initial_iterate_known_before_any_pass_does_not_wait_for_the_recurrence():
    # RS starts from 0 (known before any pass); its updates need the max G of pass 1 (pass 2). Y reads
    # only the initial iterate and X, so it runs in pass 1, not with the updates.
    c = cascade("""
        G[p] = X[m,p] :: max
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RS[0,p] = 0
        RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p] * G[p]
        Y[m,p] = X[m,p] * RS[0,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X", "Y, RS", extra=ITERATIVE)
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 2
    assert analysis.einsum_pass == {"G": 1, "BX": 1, "RS.init": 1, "RS": 2, "Y": 1}


@pytest.mark.parametrize("ranks, einsum, expected", [
    ("m: M, n: N, p: P", "A[p] = X[m,n,p]", "M"),   # M is the default when present, even beside N
    ("k: K, p: P", "A[p] = X[k,p]", "K"),           # else the only rank some Einsum reduces
])
def test_default_rank(ranks: str, einsum: str, expected: str) -> None:
    assert default_rank(cascade(einsum, ranks, "X", "A")) == expected


def test_default_rank_needs_one_candidate():
    with pytest.raises(AnalysisError, match="cannot choose the rank"):
        default_rank(cascade("A[p] = X[k,n,p]", "k: K, n: N, p: P", "X", "A"))


def test_pass_rank_of_the_cascade_wins():
    c = cascade("A[p] = X[m,n,p]", "m: M, n: N, p: P", "X", "A", extra="pass_rank: N\n")
    assert default_rank(c) == "N"


def test_einsums_before_any_traversal_belong_to_the_first_pass():
    # C (a max over the tiles of an input G: one step per tile, no element of M) and D (from C alone)
    # need nothing that a traversal produces; they run before or with pass 1, never in a "pass 0".
    c = cascade("""
        C[p] = G[m1,p] :: max
        D[p] = C[p] * 2
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        Y[m1,m0,p] = BX[m1,m0,p] * D[p]
    """, "m: M, p: P, m1: M1, m0: M0", "X, G", "Y", extra="shapes: {M1: M / M0}\n")
    analysis = analyze_passes(c, "M")
    assert (analysis.coverage["C"], analysis.coverage["D"]) == ("coarse", "free")
    assert analysis.passes == 1
    assert analysis.einsum_pass == {"C": 1, "D": 1, "BX": 1, "Y": 1}
    assert analysis.fusable_groups == [["C", "D", "BX", "Y"]]
    assert (analysis.time["C"], analysis.time["D"]) == (0.0, 0.0)   # time 0: before any pass


def test_reads_by_pass_lists_only_element_by_element_reads():
    # X is read along m in passes 1, 2, 3 and D in pass 2; the summaries MU and VAR are read whole
    # (no m in the reference), so they are not element-by-element reads.
    c = cascade("""
        MU[p] = X[m,p]
        D[m,p] = X[m,p] - MU[p]
        VAR[p] = D[m,p] * D[m,p]
        Y[m,p] = X[m,p] / VAR[p]
    """, "m: M, p: P", "X", "Y")
    assert analyze_passes(c, "M").reads_by_pass == {"X": [1, 2, 3], "D": [2]}


def test_mixed_index_refusal_names_the_other_rank():
    # M also has the partition parts m1, m0 (BX): the message names p alone, the rank that intrudes
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        Y[m,p] = W[m+p,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X, W", "Y, BX", extra="shapes: {M1: M / M0}\n")
    with pytest.raises(AnalysisError, match=r"mixes rank M with p; expected an index of M's own rank "
                                            r"variables"):
        analyze_passes(c, "M")
