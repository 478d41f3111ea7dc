"""Data-dependent comparisons, value filters, argmax/argmin, selection instead of gather, blocked
outputs, the reduction-in-recurrence warning and the live bound of plain accumulators."""
from __future__ import annotations

import numpy as np
import pytest
import sympy

from attnsim.einsum_ir import CascadeError, evaluate, functions, load_cascade_text
from attnsim.einsum_ir.bounds import live_bounds
from attnsim.einsum_ir.passes import analyze_passes

SELECT = """name: select
ranks: {m: M, p: P, f: F}
inputs: [QK, V, IDX]
outputs: [HARD, AM, AN, G, TOP, CNT]
einsums: |
  GM[p] = QK[m,p] :: max
  HARD[m,p] = QK[m,p] == GM[p]
  AM[p] = QK[m,p] :: argmax
  AN[p] = QK[m,p] :: argmin
  G[f,p] = V[f,m] where m == IDX[p]
  TOP[p] = QK[m,p] where QK[m,p] >= GM[p] - 1
  CNT[p] = 1 where QK[m,p] > 0
"""


@pytest.fixture(scope="module")
def selected():
    rng = np.random.default_rng(11)
    qk = rng.standard_normal((7, 5))
    v = rng.standard_normal((3, 7))
    idx = np.array([6.0, 0.0, 2.0, 2.0, 4.0])
    cascade = load_cascade_text(SELECT, source="select.yaml")
    out = evaluate(cascade, {"M": 7, "P": 5, "F": 3}, {"QK": qk, "V": v, "IDX": idx})
    return cascade, out, qk, v, idx


def test_comparisons_yield_zero_or_one(selected):
    _, out, qk, _, _ = selected
    np.testing.assert_array_equal(out["HARD"], (qk == qk.max(axis=0)).astype(float))


def test_argmax_and_argmin_return_the_coordinate(selected):
    _, out, qk, _, _ = selected
    np.testing.assert_array_equal(out["AM"], np.argmax(qk, axis=0))
    np.testing.assert_array_equal(out["AN"], np.argmin(qk, axis=0))


def test_selection_by_a_value_filter_is_a_gather(selected):
    _, out, _, v, idx = selected
    np.testing.assert_array_equal(out["G"], v[:, idx.astype(int)])


def test_value_filters_restrict_the_reduction(selected):
    _, out, qk, _, _ = selected
    keep = qk >= qk.max(axis=0) - 1
    np.testing.assert_allclose(out["TOP"], np.sum(np.where(keep, qk, 0.0), axis=0), rtol=1e-15)
    np.testing.assert_array_equal(out["CNT"], np.sum(qk > 0, axis=0))


def test_value_filter_reads_are_reads_for_the_pass_analysis(selected):
    cascade = selected[0]
    analysis = analyze_passes(cascade, "M")
    # TOP filters on GM, a whole-M summary: a second pass over M (like SN after GM in 3-pass)
    assert analysis.einsum_pass["TOP"] == 2 and analysis.einsum_pass["HARD"] == 2
    assert analysis.einsum_pass["AM"] == 1 and analysis.passes == 2


def test_costs_of_comparisons_and_argmax(selected):
    cascade = selected[0]
    assert functions.einsum_cost(cascade.einsum("HARD")).map == {"cmp": 1}
    assert functions.einsum_cost(cascade.einsum("AM")).reduce == {"max": 1, "cmp": 1}
    # TOP: the filter QK >= GM - 1 costs one add and one compare per point; the sum one add
    assert functions.einsum_cost(cascade.einsum("TOP")) == functions.EinsumCost(map={"add": 1, "cmp": 1},
                                                                                reduce={"add": 1})


BLOCKED = """name: lightning
description: causal linear attention, block-recurrent (Lightning Attention), output written blocked
ranks: {e: E, f: F, n: N, t: T, i: B, j: B}
shapes: {T: N / B}
iterative: {t: "t >= T"}
inputs: [Q, K, V]
outputs: [O]
einsums: |
  BQ[e,t,i] = Q[e, t*B + i]
  BK[e,t,j] = K[e, t*B + j]
  BV[f,t,j] = V[f, t*B + j]
  KV[e,f,t] = BK[e,t,j] * BV[f,t,j]
  S[e,f,0] = 0
  S[e,f,t+1] = S[e,f,t] + KV[e,f,t]
  INTER[f,t,i] = BQ[e,t,i] * S[e,f,t]
  QK[t,i,j] = BQ[e,t,i] * BK[e,t,j]
  INTRA[f,t,i] = QK[t,i,j] * BV[f,t,j] where j <= i
  O[f, t*B + i] = INTER[f,t,i] + INTRA[f,t,i]
"""


def test_blocked_output_of_a_block_recurrent_cascade():
    cascade = load_cascade_text(BLOCKED, source="lightning.yaml")
    rng = np.random.default_rng(12)
    q, k, v = rng.standard_normal((4, 12)), rng.standard_normal((4, 12)), rng.standard_normal((3, 12))
    out = evaluate(cascade, {"N": 12, "B": 3, "E": 4, "F": 3}, {"Q": q, "K": k, "V": v})["O"]
    # dense masked form: O[:, p] = sum_{m <= p} (q_p . k_m) v_m
    scores = np.tril(q.T @ k)
    np.testing.assert_allclose(out, v @ scores.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("index", ["t*B + 2*i", "t*B + i + 1", "t + i"])
def test_blocked_output_must_cover_its_rank_exactly_once(index):
    bad = BLOCKED.replace("O[f, t*B + i] =", f"O[f, {index}] =")
    with pytest.raises(CascadeError, match=r"^lightning.yaml:\d+: output index must be a rank variable .*"
                                           r"blocked index covering its rank exactly once"):
        load_cascade_text(bad, source="lightning.yaml")


REFUSED = [
    ("G[f,p] = V[f, IDX[p]]", "gather (a tensor read used as an index) is outside the language at 'IDX'; "
                               "expected indices affine in rank variables; select with a value filter instead, "
                               "like 'G[f,p] = V[f,m] where m == IDX[p]'"),
    ("G[f] = V[f,m] * QK[m,p] :: argmax", "argmax reduces 2 ranks at 'argmax'"),
    ("G[f,p] = m * V[f,p]", "rank variable used as a value at 'm'; expected a tensor reference like T[...] "
                            "(a coordinate is a value only in a value filter"),
    ("G[f,p] = (V[f,p] < 1 < 2)", "chained comparison at '<'"),
]


@pytest.mark.parametrize("line, message", REFUSED)
def test_refusals_name_the_construct_and_the_limit(line, message):
    text = SELECT.split("einsums:")[0].replace("outputs: [HARD, AM, AN, G, TOP, CNT]", "outputs: [G]")
    text = text.replace("inputs: [QK, V, IDX]", "inputs: [QK, V, IDX]") + "einsums: |\n  " + line + \
        "\n  X[p] = QK[m,p] * IDX[p]\n"
    with pytest.raises(CascadeError) as caught:
        load_cascade_text(text, source="r.yaml")
    assert str(caught.value).startswith("r.yaml:6: " + message), str(caught.value)


TRAP = """name: trap
ranks: {e: E, f: F, t: T, m: M}
iterative: {t: "t >= T"}
inputs: [PK, BV]
outputs: [S]
einsums: |
  S[e,f,0] = 0
  S[e,f,t+1] = S[e,f,t] + PK[e,t,m] * BV[f,t,m]
"""


def test_reduction_inside_a_recurrence_update_warns_naming_einsum_and_rank():
    cascade = load_cascade_text(TRAP, source="trap.yaml")
    (warning,) = cascade.warnings
    assert warning.startswith("trap.yaml:8: update S reduces over m inside the recurrence over t")
    # and the warning is right: the carried term is summed M times per step
    pk, bv = np.ones((1, 2, 3)), np.ones((1, 2, 3))
    s = evaluate(cascade, {"E": 1, "F": 1, "T": 2, "M": 3}, {"PK": pk, "BV": bv})["S"]
    # S1 = sum_m (S0 + 1) = 3; S2 = sum_m (S1 + 1) = 12 (what the author meant: 3, then 6)
    np.testing.assert_array_equal(s[0, 0], [0.0, 3.0, 12.0])
    fixed = TRAP.replace("S[e,f,t+1] = S[e,f,t] + PK[e,t,m] * BV[f,t,m]",
                         "KV[e,f,t] = PK[e,t,m] * BV[f,t,m]\n  S[e,f,t+1] = S[e,f,t] + KV[e,f,t]")
    assert load_cascade_text(fixed, source="trap.yaml").warnings == ()


LINEAR = """name: linear
ranks: {e: E, f: F, m: M, p: P}
inputs: [Q, K, V]
outputs: [AV]
einsums: |
  KV[e,f] = (elu(K[e,m]) + 1) * V[f,m]
  Z[e] = elu(K[e,m]) + 1
  NUM[f,p] = (elu(Q[e,p]) + 1) * KV[e,f]
  DEN[p] = (elu(Q[e,p]) + 1) * Z[e]
  AV[f,p] = NUM[f,p] / DEN[p]
"""


def test_a_plain_accumulator_is_live_for_its_whole_pass():
    analysis = analyze_passes(load_cascade_text(LINEAR, source="linear.yaml"), "M")
    assert analysis.passes == 1  # the right product needs one traversal of the keys
    bounds = live_bounds(analysis)
    partial = {e.tensor: e.footprint for e in bounds.live if e.kind == "partial"}
    E, F = sympy.symbols("E F", positive=True, integer=True)
    # KV[e,f] accumulates over every m: E x F values live throughout; Z[e]: E values
    assert partial == {"KV": E * F, "Z": E}
    assert not bounds.depends_on("M")
