"""Pass counts over every rank of every built-in cascade, and over ranks other than a recurrence's.

Expected counts are reasoned per case (FuseMax §III-A): a pass over rank r ends where an Einsum that
traverses r needs a value summarising a whole r-fiber. A recurrence's final iterate summarises a
fiber only of the rank the recurrence runs over; along any other rank it streams like any tensor.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnsim.einsum_ir import evaluate, library
from attnsim.einsum_ir.bounds import live_bounds
from attnsim.einsum_ir.loader import load_cascade_text
from attnsim.einsum_ir.passes import AnalysisError, analyze_passes

from builtin_cascades import builtin

# Over E only QK reduces e (its output has no e; every later Einsum is free of e); over F only the
# V-products use f and nothing reduces it; over P nothing reduces p, every Einsum streams along p
# (the causal filter m <= p restricts iteration spaces but adds no dependency). Over M: the paper.
ATTENTION_OVER_M = {"attention-3pass": 3, "attention-3pass-deferred": 2, "attention-2pass": 2,
                    "attention-1pass": 1}
EXPECTED = {}
for _name, _m in ATTENTION_OVER_M.items():
    for _suffix in ("", "-causal"):
        EXPECTED[_name + _suffix] = {"E": 1, "F": 1, "P": 1, "M": _m}
EXPECTED["cascade1"] = {"K": 2}  # Z revisits A after Y = sum A*B is complete
EXPECTED["cascade2"] = {"K": 1}  # distributivity defers the product by Y
EXPECTED["cascade3"] = {"K": 1}  # Y and Z built iteratively over k


# The variants: nothing in them reads a whole-M (N) summary inside a traversal of M (N).
# sigmoid: A is elementwise, AV reduces m. softplus: SD and SNV both reduce m in the one pass, the
# division is free of m. linear: KV and Z reduce m, NUM/DEN/AV are free of m; over E only NUM, DEN
# reduce e and AV is their epilogue. split-K: the merge walks the S partials only (coarse epilogue).
# Block-recurrent causal linear: over E INTER/INTERD/QK reduce e, INTRA and AV are free of e.
EXPECTED["sigmoid-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["softplus-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["linear-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["split-k-decode"] = {"E": 1, "F": 1, "P": 1, "M": 1}
# split-K with the running softmax inside each split: attention-1pass per split, the merge over S after
EXPECTED["split-k-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["split-k-attention-causal"] = {"E": 1, "F": 1, "P": 1, "M": 1}   # the mask is a filter: same passes
EXPECTED["linear-attention-causal"] = {"E": 1, "F": 1, "N": 1}
# issue 16: the LSSA normalised form reads SD (a reduction over m) in A: 2 passes over M; over E, F
# and P every form is 1 pass (nothing reduces them and reads them back)
EXPECTED["sigmoid-attention-causal"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["softplus-lssa"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["softplus-lssa-normalised"] = {"E": 1, "F": 1, "P": 1, "M": 2}
# Hedgehog's phi is a softmax over the feature rank D: max, then exp, then the sum, then the division:
# 3 passes over D (as attention-3pass over M), 1 over M
EXPECTED["hedgehog-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1, "D": 3}
EXPECTED["lightning2-causal"] = {"E": 1, "F": 1, "N": 1}
EXPECTED["gated-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["window-attention"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["window-attention-3pass"] = {"E": 1, "F": 1, "P": 1, "M": 3}   # attention-3pass with the band filter
# clipped softmax: GM needs all of QK, SD all of SN, and the clip acts on SN/SD, so the division
# cannot be deferred past it: 3 over M. Per-query temperature scales the logits only: the deferred
# 3-pass form, 2 over M.
EXPECTED["clipped-softmax-attention"] = {"E": 1, "F": 1, "P": 1, "M": 3}
EXPECTED["selective-temperature-attention"] = {"E": 1, "F": 1, "P": 1, "M": 2}
# ... and its tiled form with the running max of the scaled logits (attention-1pass with TQK): 1 over M
EXPECTED["selective-temperature-attention-1pass"] = {"E": 1, "F": 1, "P": 1, "M": 1}
# The naive quadratic forms of the linear family: the left product reduces m in SD and SNV together
# (the division deferred after them) and the causal one is two contractions under a filter: 1 over M
EXPECTED["linear-attention-left-product"] = {"E": 1, "F": 1, "P": 1, "M": 1}
EXPECTED["lightning2-causal-quadratic"] = {"E": 1, "F": 1, "P": 1, "M": 1}
PARTITION_PARTS = {name: {"M1", "M0"} for name in EXPECTED if name.startswith(("attention-1pass", "attention-2pass"))}
PARTITION_PARTS["split-k-decode"] = {"S", "KS"}
PARTITION_PARTS["split-k-attention"] = {"S", "M1", "M0"}
PARTITION_PARTS["split-k-attention-causal"] = {"S", "M1", "M0"}
PARTITION_PARTS["linear-attention-causal"] = {"T", "B"}
PARTITION_PARTS["lightning2-causal"] = {"T", "B"}
PARTITION_PARTS["gated-attention"] = {"M1", "M0"}
PARTITION_PARTS["selective-temperature-attention-1pass"] = {"M1", "M0"}
PARTITION_PARTS["window-attention"] = {"M1", "M0"}
SIZE_ONLY = {"window-attention": {"W"}, "window-attention-3pass": {"W"}}   # a rank declared only to name the window size; no Einsum walks it


def test_expectations_cover_every_builtin():
    assert set(EXPECTED) == set(library.builtin_names())


def _rank_shapes(cascade) -> list[str]:
    return sorted({s.name for s in cascade.ranks.values()})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_rank_of_every_builtin(name):
    cascade = builtin(name)
    partition_parts = PARTITION_PARTS.get(name, set())
    size_only = SIZE_ONLY.get(name, set())
    assert set(_rank_shapes(cascade)) == set(EXPECTED[name]) | partition_parts | size_only
    for rank in sorted(size_only):
        with pytest.raises(AnalysisError, match=rf"no Einsum traverses rank '{rank}'"):
            analyze_passes(cascade, rank)
    for rank, passes in EXPECTED[name].items():
        analysis = analyze_passes(cascade, rank)
        assert analysis.passes == passes, (name, rank)
        _assert_consistent(analysis)
    for part in sorted(partition_parts):  # e.g. m1, m0 of m1*M0 + m0: analysed as M, refused alone
        with pytest.raises(AnalysisError, match=rf"rank '{part}' is one part of the partition"):
            analyze_passes(cascade, part)


def _assert_consistent(analysis) -> None:
    """Per-Einsum passes, groups and the headline count say the same thing."""
    names = [e.name for e in analysis.cascade.einsums]
    assert set(analysis.einsum_pass.values()) <= set(range(1, analysis.passes + 1))
    assert sorted(n for g in analysis.fusable_groups for n in g) == sorted(names)
    for k, group in enumerate(analysis.fusable_groups, start=1):
        assert group == [n for n in names if analysis.einsum_pass[n] == k]


@pytest.mark.parametrize("rank", ["P", "F"])
def test_one_pass_attention_over_p_and_f_is_one_pass(rank):
    # the case: RNV[f,M1,p] is the final iterate of a recurrence over m1, not over p or f
    analysis = analyze_passes(builtin("attention-1pass"), rank)
    assert analysis.passes == 1
    assert analysis.einsum_pass["AV"] == 1
    assert not [e for e in live_bounds(analysis).live if e.kind == "state"]


def _text(body: str) -> str:
    return body.strip() + "\n"


HEADS = _text("""
name: heads
description: per-head online softmax over m, then a softmax over the heads h
ranks: {h: H, m: M, p: P}
iterative: {m: "m >= M"}
inputs: [X]
outputs: [A]
einsums: |
  RM[h,0,p] = -inf
  RD[h,0,p] = 0
  RM[h,m+1,p] = max(RM[h,m,p], X[h,m,p])
  RD[h,m+1,p] = RD[h,m,p] * exp(RM[h,m,p] - RM[h,m+1,p]) + exp(X[h,m,p] - RM[h,m+1,p])
  L[h,p] = RM[h,M,p] + log(RD[h,M,p])
  GM[p] = L[h,p] :: max
  SN[h,p] = exp(L[h,p] - GM[p])
  SD[p] = SN[h,p]
  A[h,p] = SN[h,p] / SD[p]
""")


def test_online_softmax_per_head_then_softmax_over_heads():
    cascade = load_cascade_text(HEADS, source="heads.yaml")
    # Over H: the recurrence over m streams along h, so L is ready in pass 1 with GM; SN and SD
    # need GM (pass 2); A needs SD (pass 3): the 3 passes of a plain softmax over h.
    over_h = analyze_passes(cascade, "H")
    assert over_h.passes == 3
    assert over_h.einsum_pass == {"RM.init": 1, "RD.init": 1, "RM": 1, "RD": 1, "L": 1, "GM": 1,
                                  "SN": 2, "SD": 2, "A": 3}
    _assert_consistent(over_h)
    # Over M: an online softmax (1 pass); everything after the recurrence is its epilogue.
    over_m = analyze_passes(cascade, "M")
    assert over_m.passes == 1
    _assert_consistent(over_m)
    assert analyze_passes(cascade, "P").passes == 1
    # and the cascade computes what it says: softmax over h of the log-sum-exp over m
    x = np.random.default_rng(5).standard_normal((3, 6, 2))
    lse = np.log(np.exp(x).sum(axis=1))
    expected = np.exp(lse) / np.exp(lse).sum(axis=0)
    np.testing.assert_allclose(evaluate(cascade, {"H": 3, "M": 6, "P": 2}, {"X": x})["A"], expected, rtol=1e-13)


WELFORD = _text("""
name: welford
description: layer norm with Welford's running mean and M2 over the hidden rank d
ranks: {d: D, t: T}
iterative: {d: "d >= D"}
inputs: [X]
outputs: [Y]
einsums: |
  N[0] = 0
  N[d+1] = N[d] + 1
  MU[0,t] = 0
  MU[d+1,t] = MU[d,t] + (X[d,t] - MU[d,t]) / N[d+1]
  M2[0,t] = 0
  M2[d+1,t] = M2[d,t] + (X[d,t] - MU[d,t]) * (X[d,t] - MU[d+1,t])
  VAR[t] = M2[D,t] / D
  Y[d,t] = (X[d,t] - MU[D,t]) * rsqrt(VAR[t] + 0.00001)
""")


def test_welford_statistics_over_hidden_rank_analysed_over_tokens():
    cascade = load_cascade_text(WELFORD, source="welford.yaml")
    # Over T: nothing reduces t; the statistics of token t are ready when its d-recurrence ends: 1.
    over_t = analyze_passes(cascade, "T")
    assert over_t.passes == 1
    _assert_consistent(over_t)
    # Over D: one pass for the statistics, a second to normalise with the finished MU and VAR.
    over_d = analyze_passes(cascade, "D")
    assert over_d.passes == 2
    assert over_d.einsum_pass["Y"] == 2
    x = np.random.default_rng(6).standard_normal((16, 5)) * 3 + 1
    expected = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(evaluate(cascade, {"D": 16, "T": 5}, {"X": x})["Y"], expected, rtol=1e-12)


SPLIT_K = _text("""
name: split-k
description: two-level split-K decode, partials per split s then a merge over the splits
ranks: {e: E, f: F, m: M, p: P, s: S, k: KS}
shapes: {KS: M / S}
inputs: [Q, K, V]
outputs: [AV]
einsums: |
  BK[e,s,k] = K[e, s*KS + k]
  BV[f,s,k] = V[f, s*KS + k]
  QK[s,k,p] = Q[e,p] * BK[e,s,k]
  LM[s,p] = QK[s,k,p] :: max
  SN[s,k,p] = exp(QK[s,k,p] - LM[s,p])
  LD[s,p] = SN[s,k,p]
  LNV[f,s,p] = SN[s,k,p] * BV[f,s,k]
  GM[p] = LM[s,p] :: max
  W[s,p] = exp(LM[s,p] - GM[p])
  GD[p] = W[s,p] * LD[s,p]
  GNV[f,p] = W[s,p] * LNV[f,s,p]
  AV[f,p] = GNV[f,p] / GD[p]
""")


def test_split_k_merge_is_the_epilogue_of_its_single_pass():
    analysis = analyze_passes(load_cascade_text(SPLIT_K, source="split-k.yaml"), "M")
    # Each split's max, denominator and numerator need only that split's keys: one traversal of M.
    # The merge walks the S per-split partials (coarse: no element of M is visited again).
    assert analysis.passes == 1
    assert analysis.coverage["W"] == "coarse" and analysis.coverage["GM"] == "coarse"
    assert all(p == 1 for p in analysis.einsum_pass.values())
    assert analysis.fusable_groups == [[e.name for e in analysis.cascade.einsums]]
    _assert_consistent(analysis)
