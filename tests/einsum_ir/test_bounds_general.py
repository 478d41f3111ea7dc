"""Live footprints of small cascades written here, each reasoned by hand as FuseMax §III-B does (the
footprint a mapping must keep live while the rank is traversed, whatever the mapping), covering what the
attention cascades do not: a tensor re-read in three passes, a recurrence state that keeps a dimension
of the analysed rank, a multi-pass cascade with a state, chains of derived shapes, a shape already
named like a tile symbol, views and coarse Einsums beside the traversals (docs/testing.md, mutation
testing of einsum_ir/bounds.py).
"""
from __future__ import annotations

import sympy

from attnsim.einsum_ir.bounds import live_bounds, parallel_ranks
from attnsim.einsum_ir.passes import analyze_passes

from test_passes import cascade

M, P, M0, P1, P_tile, K1 = sympy.symbols("M P M0 P1 P_tile K1", positive=True, integer=True)
ITERATIVE = 'shapes: {M1: M / M0}\niterative: {m1: "m1 >= M1"}\n'


def entries(analysis) -> dict[tuple[str, str], tuple]:
    """(tensor, kind) -> (footprint, passes, reread traffic, spill write), as plain expressions."""
    bounds = live_bounds(analysis)
    return {(e.tensor, e.kind): (e.footprint, e.passes, e.reread_traffic, e.spill_write) for e in bounds.live}


def equal(a: sympy.Expr | None, b: sympy.Expr | None) -> bool:
    if a is None or b is None:
        return a is b
    names = {s.name: s for s in (M, P, M0, P1, P_tile, K1)}
    return sympy.simplify(sympy.sympify(str(a), locals=names) - b) == 0


def check(found: dict, expected: dict) -> None:
    assert set(found) == set(expected)
    for key, values in expected.items():
        for got, want in zip(found[key], values):
            assert (got == want) if isinstance(want, tuple) else equal(got, want), (key, got, want)


def test_input_read_in_three_passes_is_reread_twice():
    # Mean (pass 1), then the deviation D and its square sum VAR (pass 2), then X scaled by VAR (pass 3):
    # X is read element by element in all three passes, so a mapping keeps an M-fiber per query tile
    # (M x P1) or reads the whole X (M x P) twice more; it is an input, so there is nothing to spill.
    # D is read in pass 2 only; the summaries MU and VAR are read at every m of the next pass (P1 each).
    c = cascade("""
        MU[p] = X[m,p]
        D[m,p] = X[m,p] - MU[p]
        VAR[p] = D[m,p] * D[m,p]
        Y[m,p] = X[m,p] / VAR[p]
    """, "m: M, p: P", "X", "Y")
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 3
    check(entries(analysis), {
        ("X", "reread"): (M * P1, (1, 2, 3), 2 * M * P, 0),
        ("MU", "reused"): (P1, (2,), None, None),
        ("VAR", "reused"): (P1, (3,), None, None),
    })
    assert equal(live_bounds(analysis).total, M * P1 + 2 * P1)


def test_intermediate_read_in_three_passes_is_spilled_once_and_reread_twice():
    # The same with an intermediate Z = 2X in X's place: written once if spilled (M x P), re-read twice.
    c = cascade("""
        Z[m,p] = X[m,p] * 2
        MU[p] = Z[m,p]
        D[m,p] = Z[m,p] - MU[p]
        VAR[p] = D[m,p] * D[m,p]
        Y[m,p] = Z[m,p] / VAR[p]
    """, "m: M, p: P", "X", "Y")
    found = entries(analyze_passes(c, "M"))
    assert found[("Z", "reread")][1] == (1, 2, 3)
    assert equal(found[("Z", "reread")][2], 2 * M * P)
    assert equal(found[("Z", "reread")][3], M * P)


def test_state_that_keeps_a_dimension_of_the_rank_holds_the_whole_tile():
    # A running sum per position m0 of a tile, over the tiles m1: every tile updates all M0 sums and none
    # is final before the last tile, so M0 values per query row are live throughout (M0 x P1; one
    # iterate: the m1 dimension counts once).
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RS[0,m0,p] = 0
        RS[m1+1,m0,p] = RS[m1,m0,p] + BX[m1,m0,p]
        S[m0,p] = RS[M1,m0,p]
    """, "m: M, p: P, m1: M1, m0: M0", "X", "S", extra=ITERATIVE)
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 1
    check(entries(analysis), {("RS", "state"): (M0 * P1, (1,), None, None)})
    assert not live_bounds(analysis).depends_on("M")


def test_two_pass_cascade_with_a_running_max_state():
    # Pass 1 keeps a running max RM over the tiles (one value per query row, P1); its final iterate is a
    # summary that pass 2 reads at every m (Y = exp(X - max)), so RM is read in passes 1 and 2 and X is
    # read in both passes (M x P1 live or M x P re-read once; an input: no spill).
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RM[0,p] = -inf
        LM[m1,p] = BX[m1,m0,p] :: max
        RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
        Y[m,p] = exp(X[m,p] - RM[M1,p])
    """, "m: M, p: P, m1: M1, m0: M0", "X", "Y", extra=ITERATIVE)
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 2
    check(entries(analysis), {
        ("X", "reread"): (M * P1, (1, 2), M * P, 0),
        ("RM", "state"): (P1, (1, 2), None, None),
    })


def test_state_read_only_in_the_first_of_two_passes():
    # The same running max, copied out once (G = its final iterate, the epilogue of pass 1): only pass 1
    # reads RM; pass 2 reads the summary G at every m (P1 per tile of query rows), not the state.
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RM[0,p] = -inf
        LM[m1,p] = BX[m1,m0,p] :: max
        RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
        G[p] = RM[M1,p]
        Y[m,p] = exp(X[m,p] - G[p])
    """, "m: M, p: P, m1: M1, m0: M0", "X", "Y", extra=ITERATIVE)
    analysis = analyze_passes(c, "M")
    assert analysis.passes == 2
    check(entries(analysis), {
        ("X", "reread"): (M * P1, (1, 2), M * P, 0),
        ("RM", "state"): (P1, (1,), None, None),
        ("G", "reused"): (P1, (2,), None, None),
    })


def test_recurrence_over_another_rank_is_no_state_of_the_analysed_one():
    # Analysed over P, the running max over M's tiles is an ordinary tensor: its final iterate RM[M1,p]
    # is streamed with p, so nothing is live across the traversal of P (no parallel rank: m is reduced).
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        RM[0,p] = -inf
        LM[m1,p] = BX[m1,m0,p] :: max
        RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
        Y[p] = RM[M1,p] * 2
    """, "m: M, p: P, m1: M1, m0: M0", "X", "Y", extra=ITERATIVE)
    analysis = analyze_passes(c, "P")
    assert analysis.passes == 1
    assert not [e for e in live_bounds(analysis).live if e.kind == "state"]


def test_chain_of_derived_shapes_resolves_to_the_free_shapes():
    # W[q,p] is read at every m (reused): K3 x P1 elements, with K3 = K2/2 = K1/4 = M/32 (a chain of
    # three derived shapes, each defined from the next; the footprint is stated in free shapes only).
    c = cascade("""
        Y[m,p] = X[m,p] * W[q,p]
    """, "m: M, p: P, q: K3", "X, W", "Y", extra="shapes: {K3: K2 / 2, K2: K1 / 2, K1: M / 8}\n")
    analysis = analyze_passes(c, "M")
    check(entries(analysis), {("W", "reused"): (M * P1 / 32, (1,), None, None)})
    assert live_bounds(analysis).total.free_symbols == {M, P1}


def test_chain_of_derived_shapes_named_in_any_order():
    # The same chain named the other way round (K1 = K2/2 = K3/4, K3 = M/8), and a fourth link.
    c = cascade("""
        Y[m,p] = X[m,p] * W[q,p]
    """, "m: M, p: P, q: K1", "X, W", "Y",
        extra="shapes: {K1: K2 / 2, K2: K3 / 2, K3: K4 / 2, K4: M / 4}\n")
    found = entries(analyze_passes(c, "M"))
    assert equal(found[("W", "reused")][0], M * P1 / 32)


def test_tile_symbol_avoids_a_rank_shape_named_like_it():
    # The cascade already has a rank of shape P1 (k), so the tile of p is P_tile; Z[k] (P1 elements) is
    # read at every m of pass 2 beside the summary S (one per query row of the tile).
    c = cascade("""
        S[p] = X[m,p]
        Y[m,p] = X[m,p] / S[p] + Z[k]
    """, "m: M, p: P, k: P1", "X, Z", "Y")
    analysis = analyze_passes(c, "M")
    assert {r: s.name for r, s in live_bounds(analysis).tiles.items()} == {"p": "P_tile"}
    check(entries(analysis), {
        ("X", "reread"): (M * P_tile, (1, 2), M * P, 0),
        ("S", "reused"): (P_tile, (2,), None, None),
        ("Z", "reused"): (P1, (2,), None, None),
    })


def test_tile_symbol_avoids_a_derived_shape_named_like_it():
    c = cascade("""
        S[p] = X[m,p]
        Y[m,p] = X[m,p] / S[p]
    """, "m: M, p: P", "X", "Y", extra="shapes: {P1: P / 2}\n")
    bounds = live_bounds(analyze_passes(c, "M"))
    assert {r: s.name for r, s in bounds.tiles.items()} == {"p": "P_tile"}
    assert equal(bounds.total, M * P_tile + P_tile)


def test_tile_symbol_avoids_a_shape_that_is_both_a_rank_and_derived():
    # k's shape P1 is itself derived (P1 = P / 2): still taken, so the tile of p is P_tile
    c = cascade("""
        S[p] = X[m,p]
        Y[m,p] = X[m,p] / S[p] + Z[k]
    """, "m: M, p: P, k: P1", "X, Z", "Y", extra="shapes: {P1: P / 2}\n")
    bounds = live_bounds(analyze_passes(c, "M"))
    assert {r: s.name for r, s in bounds.tiles.items()} == {"p": "P_tile"}
    assert equal(bounds.total, M * P_tile + P_tile + P / 2)


def test_views_and_coarse_einsums_do_not_limit_the_parallel_ranks():
    # BW (a view of W without p) and T (one step per tile m1, without p) compute nothing per element of M
    # along p; the one computing traversal Y iterates over p and nothing reduces p, so p is parallel.
    # Y reduces the whole of m into one value per query row: a partial result, P1.
    c = cascade("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        BW[m1,m0] = W[m1*M0 + m0]
        T[m1] = G[m1] * 2
        Y[p] = BX[m1,m0,p] * BW[m1,m0] * T[m1]
    """, "m: M, p: P, m1: M1, m0: M0", "X, W, G", "Y", extra="shapes: {M1: M / M0}\n")
    analysis = analyze_passes(c, "M")
    assert analysis.coverage["T"] == "coarse"
    assert parallel_ranks(analysis) == ["p"]
    check(entries(analysis), {("Y", "partial"): (P1, (1,), None, None)})


def test_a_rank_reduced_anywhere_is_not_parallel():
    # q is iterated by every traversal but reduced by Y: not a free tiling rank; p is.
    c = cascade("""
        Y[m,p] = X[m,p,q]
    """, "m: M, p: P, q: Q", "X", "Y")
    assert parallel_ranks(analyze_passes(c, "M")) == ["p"]


def test_update_over_another_rank_that_reduces_the_analysed_one_holds_a_partial_result():
    # Analysed over P: TS[m1+1] sums one tile's BX over m0 and p (no carried term), the same values
    # as the plain S[m1] = BX[m1,m0,p]. Either way an accumulator is live while p is traversed, and
    # nothing else (Y reads the sums outside the traversal of P): one element per m1 of a tile of the
    # parallel rank m1 for the plain form (M11), one element for the recurrence, which visits m1 in
    # order (its iterative dimension counts one iterate).
    def analysed(lines: str):  # type: ignore[no-untyped-def]
        c = cascade(lines, "m: M, p: P, m1: M1, m0: M0", "X", "Y", extra=ITERATIVE)
        return analyze_passes(c, "P")
    update = analysed("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        TS[0] = 0
        TS[m1+1] = BX[m1,m0,p]
        Y[m1] = TS[m1+1] * 2
    """)
    plain = analysed("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        S[m1] = BX[m1,m0,p]
        Y[m1] = S[m1] * 2
    """)
    assert parallel_ranks(plain) == ["m1"]
    assert {key: (str(f), passes) for key, (f, passes, _, _) in entries(plain).items()} == {
        ("S", "partial"): ("M11", (1,))}
    check(entries(update), {("TS", "partial"): (1, (1,), None, None)})
    # with the carried term the accumulator is the iterate read at every p: counted once, as reused
    carried = analysed("""
        BX[m1,m0,p] = X[m1*M0 + m0, p]
        TS[0] = 0
        TS[m1+1] = TS[m1] + BX[m1,m0,p]
        Y[] = TS[M1] * 2
    """)
    check(entries(carried), {("TS", "reused"): (1, (1,), None, None)})
