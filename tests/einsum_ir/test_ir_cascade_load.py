"""Loading cascades: validation errors with YAML line numbers, the data model, graph and sizes."""
from __future__ import annotations

import pytest
import sympy

from attnsim import einsum_ir
from attnsim.einsum_ir import Cascade, CascadeError, load_cascade, load_cascade_text, shape_symbol

HEADER = """name: t
description: test cascade
ranks: {e: E, m: M, p: P}
inputs: [Q, K]
outputs: [Z]
einsums: |
"""
# the first Einsum of the block is on line 7 of the file
ITERATIVE_HEADER = """name: it
ranks: {m: M, p: P, m1: M1, m0: M0}
shapes: {M1: M / M0}
iterative: {m1: "m1 >= M1"}
inputs: [X]
outputs: [S]
einsums: |
"""
# the first Einsum of the block is on line 8 of the file


def block(*lines: str) -> str:
    return "".join(f"  {line}\n" for line in lines)


ERROR_CASES = [
    # (header, einsum lines, line, what, token)
    (HEADER, ["QK[m,p] = Q[e,p] * * K[e,m]", "Z[p] = QK[m,p]"], 7, "malformed Einsum", "*"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]", "Z[p] = QK[m,p] + W[p]"], 8, "unknown tensor", "W[p]"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,n]", "Z[p] = QK[m,p]"], 7, "unknown rank variable", "n"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]", "Z[p] = QK[e,p]"], 8, "tensor dimension used with two different shapes",
     "QK[e, p]"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m] + Z[p]", "Z[p] = QK[m,p]"], 7,
     "dependency cycle not through an iterative rank", "QK"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]", "QK[m,p] = Q[e,p]", "Z[p] = QK[m,p]"], 8, "tensor written twice",
     "QK[m, p]"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]", "Z[p] = QK[m]"], 8, "tensor used with 1 indices", "QK[m]"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]", "Q[e,p] = Z[p]", "Z[p] = QK[m,p]"], 8, "input tensor written by an Einsum",
     "Q"),
    (HEADER, ["QK[m,p] = Q[e,p] * K[e,m]"], 5, "output tensor is never written", "Z"),
    (HEADER, ["Z[p] = Q[e,p]"], 4, "input tensor is never read", "K"),
    (HEADER, ["QK[m,p] = sigmoid_unknown(Q[e,p]) * K[e,m]", "Z[p] = QK[m,p]"], 7, "unknown function",
     "sigmoid_unknown"),
    (HEADER, ["QK[0,p] = Q[e,p] * K[e,0]", "Z[p] = QK[0,p]"], 7, "constant output index outside an initialisation",
     "QK[0, p]"),
    (ITERATIVE_HEADER, ["BX[m1,m0,p] = X[m1*M0 + m0, p]", "RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p]", "S[p] = RS[M1,p]"],
     9, "iterative tensor has no initialisation", "RS"),
    (ITERATIVE_HEADER, ["BX[m1,m0,p] = X[m1*M0 + m0, p]", "RS[0,p] = 0", "RS[m1+1,p] = RS[m1+1,p] + BX[m1,m0,p]",
                        "S[p] = RS[M1,p]"], 10, "dependency cycle not through an iterative rank", "RS"),
    (ITERATIVE_HEADER, ["BX[m1,m0,p] = X[m1*M0 + m0, p]", "RS[0,p] = 0", "RS[m1+1,p] = RS[m1-1,p] + BX[m1,m0,p]",
                        "S[p] = RS[M1,p]"], 10, "iterative dimension indexed by an unsupported expression",
     "RS[m1 - 1, p]"),
    (ITERATIVE_HEADER, ["BX[m1,m0,p] = X[m1*M0 + m0, p]", "RS[0,p] = 0", "RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p]",
                        "RS[m1+1,p] = BX[m1,m0,p]", "S[p] = RS[M1,p]"], 11, "iterative tensor updated twice",
     "RS[m1 + 1, p]"),
    (ITERATIVE_HEADER, ["BX[m1,m0,p] = X[m1*M0 + m0, p]", "RS[0,p] = 0", "RS[m1+1,p] = RS[m1,p] + BX[m1,m0,p]",
                        "T[m1,p] = RS[m1,p] * RS[M1,p]", "S[p] = T[m1,p]"], 11,
     "Einsum both runs inside the m1 loop and reads its finished result", "RS[M1, p]"),
]


@pytest.mark.parametrize("header, lines, line, what, token", ERROR_CASES)
def test_validation_errors_name_file_line_and_token(header, lines, line, what, token):
    with pytest.raises(CascadeError) as caught:
        load_cascade_text(header + block(*lines), source="bad.yaml")
    message = str(caught.value)
    assert message.startswith(f"bad.yaml:{line}: {what} at '{token}'; expected "), message
    assert "\n" not in message


@pytest.mark.parametrize("text, line, what, token", [
    ("name: t\nranks: {m: M}\ninputs: [X]\noutputs: [Y]\neinsums: |\n  Y = X[m]\ncolour: red\n", 7, "unknown key",
     "colour"),
    ("name: t\nranks: {m: M}\ninputs: [X]\noutputs: [Y]\n", 1, "missing key", "einsums"),
    ("name: t\nranks: {m: M}\niterative: {q: 'q >= Q'}\ninputs: [X]\noutputs: [Y]\neinsums: |\n  Y = X[m]\n", 3,
     "unknown rank variable", "q"),
    ("name: t\nranks: {m: M}\ninputs: [X]\noutputs: [Y]\nattention: {algorithm: 4pass}\neinsums: |\n  Y = X[m]\n", 5,
     "unknown attention algorithm", "4pass"),
    ("name: t\nranks: {m: M}\ninputs: [X]\noutputs: [Y]\npass_rank: Q\neinsums: |\n  Y = X[m]\n", 5,
     "pass_rank is not a shape symbol", "Q"),
    ("name: t\nranks: {m: M\n", 3, "invalid YAML", "expected ',' or '}', but got '<stream end>'"),
])
def test_file_level_errors(text, line, what, token):
    with pytest.raises(CascadeError) as caught:
        load_cascade_text(text, source="bad.yaml")
    assert str(caught.value).startswith(f"bad.yaml:{line}: {what} at '{token}'"), str(caught.value)


def test_einsums_as_a_yaml_list_keep_their_lines():
    text = "name: t\nranks: {m: M}\ninputs: [X]\noutputs: [Y]\neinsums:\n  - Z[m] = X[m]\n  - Y = Z[m] + W\n"
    with pytest.raises(CascadeError, match=r"^bad.yaml:7: unknown tensor at 'W\[\]'"):
        load_cascade_text(text, source="bad.yaml")


def test_missing_file_is_a_cascade_error(tmp_path):
    with pytest.raises(CascadeError, match="cannot read cascade file"):
        load_cascade(tmp_path / "absent.yaml")


def test_error_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "user.yaml"
    path.write_text(HEADER + block("QK[m,p] = Q[e,p] * K[e,m]", "Z[p] = QK[e,p]"))
    with pytest.raises(CascadeError, match=rf"^{path}:8: tensor dimension used with two different shapes"):
        load_cascade(path)


# --- the data model ----------------------------------------------------------------------------------

def one_pass() -> Cascade:
    return einsum_ir.load_builtin("attention-1pass")


def test_one_pass_roles_and_names_follow_the_paper():
    cascade = one_pass()
    names = [e.name for e in cascade.einsums]
    assert names == ["BK", "BV", "RM.init", "RD.init", "RNV.init", "BQK", "LM", "RM", "SLN", "SLD", "SLNV", "PRM",
                     "SPD", "RD", "SPNV", "RNV", "AV"]
    roles = {e.name: (e.role, e.iterative_rank) for e in cascade.einsums}
    assert roles["RM.init"] == ("init", "m1") and roles["RNV"] == ("update", "m1") and roles["AV"] == ("plain", None)
    assert cascade.einsum("LM").reduce_op == "max" and cascade.einsum("LM").reduced_ranks == {"m0"}
    assert cascade.iterative_dims == {"RM": (0, "m1"), "RD": (0, "m1"), "RNV": (1, "m1")}


def test_one_pass_tensor_shapes():
    cascade = one_pass()
    E, F, M, P, M0, M1 = (shape_symbol(n) for n in ("E", "F", "M", "P", "M0", "M1"))
    assert cascade.tensor_shapes["K"] == (E, M)
    assert cascade.tensor_shapes["BK"] == (E, M1, M0)
    assert cascade.tensor_shapes["RM"] == (M1 + 1, P)
    assert cascade.tensor_shapes["RNV"] == (F, M1 + 1, P)
    assert cascade.tensor_shapes["AV"] == (F, P)
    assert cascade.free_symbols() == {E, F, M, P, M0}
    assert cascade.derived_shapes == {M1: M / M0}
    assert cascade.iterative == {"m1": M1}
    assert cascade.meta["attention"] == {"algorithm": "fusemax", "causal": False}
    assert cascade.meta["pass_rank"] == "M"


def test_graph_is_bipartite_with_refs_and_previous_iterate_edges():
    graph = one_pass().graph
    kinds = {n: d["kind"] for n, d in graph.nodes(data=True)}
    assert all(kinds[a] != kinds[b] for a, b in graph.edges)
    assert kinds[("tensor", "RM")] == "tensor" and kinds[("einsum", "RM.init")] == "einsum"
    assert graph.has_edge(("einsum", "RM.init"), ("tensor", "RM"))
    assert graph.has_edge(("einsum", "RM"), ("tensor", "RM"))
    edge = graph.edges[("tensor", "RM"), ("einsum", "RM")]
    assert str(edge["ref"]) == "RM[m1, p]" and edge["previous_iterate"] is True
    prm = graph.edges[("tensor", "RM"), ("einsum", "PRM")]
    assert [str(r) for r in prm["refs"]] == ["RM[m1, p]", "RM[m1 + 1, p]"] and prm["previous_iterate"] is False
    assert graph.edges[("tensor", "RNV"), ("einsum", "AV")]["previous_iterate"] is False
    assert set(graph.predecessors(("einsum", "BQK"))) == {("tensor", "Q"), ("tensor", "BK")}


def test_schedule_runs_the_recurrence_in_one_loop():
    cascade = one_pass()
    steps = einsum_ir.schedule(cascade.einsums, cascade.iterative_dims, cascade.iterative, cascade.source)
    loops = [s for s in steps if s.is_loop]
    assert len(loops) == 1 and loops[0].rank == "m1"
    assert [e.name for e in loops[0].einsums] == ["RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV"]
    assert [e.name for s in steps if not s.is_loop for e in s.einsums][-1] == "AV"


def test_resolve_sizes():
    cascade = one_pass()
    sizes = cascade.resolve_sizes({"M": 1024, "P": 8, "E": 4, "F": 2, "M0": 256, "unrelated": 3})
    assert sizes[shape_symbol("M1")] == 4 and sizes[shape_symbol("P")] == 8
    with pytest.raises(CascadeError, match=r"attention-1pass.yaml:3: missing size for shape symbol M0 at 'M0'"):
        cascade.resolve_sizes({"M": 1024, "P": 8, "E": 4, "F": 2})
    with pytest.raises(CascadeError, match=r"attention-1pass.yaml:4: M=1000 is not divisible by M0=256"):
        cascade.resolve_sizes({"M": 1000, "P": 8, "E": 4, "F": 2, "M0": 256})
    with pytest.raises(CascadeError, match="size M1=3 disagrees with M1 = M/M0"):
        cascade.resolve_sizes({"M": 1024, "P": 8, "E": 4, "F": 2, "M0": 256, "M1": 3})
    with pytest.raises(CascadeError, match="size P=0 is not a positive integer"):
        cascade.resolve_sizes({"M": 1024, "P": 0, "E": 4, "F": 2, "M0": 256})


def test_every_builtin_loads():
    names = einsum_ir.builtin_names()
    assert set(names) == {"cascade1", "cascade2", "cascade3", "attention-3pass", "attention-3pass-deferred",
                          "attention-2pass", "attention-1pass", "attention-3pass-causal",
                          "attention-3pass-deferred-causal", "attention-2pass-causal", "attention-1pass-causal",
                          "sigmoid-attention", "softplus-attention", "linear-attention", "linear-attention-causal",
                          "split-k-decode", "clipped-softmax-attention", "selective-temperature-attention",
                          "selective-temperature-attention-1pass",
                          "linear-attention-left-product", "lightning2-causal-quadratic",
                          "split-k-attention", "split-k-attention-causal", "sigmoid-attention-causal", "softplus-lssa", "softplus-lssa-normalised",
                          "hedgehog-attention", "lightning2-causal", "gated-attention", "window-attention",
                          "window-attention-3pass"}
    for name in names:
        cascade = einsum_ir.load_builtin(name)
        assert cascade.name == name and cascade.description
        if name.startswith("attention"):
            assert cascade.inputs == ("Q", "K", "V") and cascade.outputs == ("AV",)
            assert cascade.meta["attention"]["causal"] == name.endswith("-causal")


def test_causal_cascades_filter_key_index_at_most_query_index():
    # end-aligned: the P queries are the last P of the M positions (query p at position p + M - P)
    cascade = einsum_ir.load_builtin("attention-1pass-causal")
    (condition,) = cascade.einsum("BQK").filters
    m1, m0, p = (einsum_ir.rank_symbol(n) for n in ("m1", "m0", "p"))
    assert condition.op == "<=" and sympy.expand(condition.lhs - (m1 * shape_symbol("M0") + m0)) == 0
    assert sympy.expand(condition.rhs - (p + shape_symbol("M") - shape_symbol("P"))) == 0
