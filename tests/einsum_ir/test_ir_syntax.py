"""Parser units: one Einsum line -> Einsum (expected trees written out by hand)."""
from __future__ import annotations

import math

import pytest
import sympy

from attnsim.einsum_ir import (BinOp, Call, CascadeError, Const, Filter, IndexExpr, Neg, TensorRef, parse_einsum,
                       rank_symbol, shape_symbol)

RANKS = {"e": "E", "f": "F", "m": "M", "p": "P", "m1": "M1", "m0": "M0", "k": "K"}
ITERATIVE = {"m1": shape_symbol("M1")}


def parse(text: str, **kwargs) -> object:
    return parse_einsum(text, RANKS, iterative=ITERATIVE, source="unit.yaml", line=7, **kwargs)


def ref(tensor: str, *ranks: str) -> TensorRef:
    return TensorRef(tensor, tuple(IndexExpr(rank_symbol(r), frozenset({r})) for r in ranks))


def test_contraction_reduces_the_missing_rank_with_sum():
    einsum = parse("QK[m,p] = Q[e,p] * K[e,m]")
    assert einsum.name == "QK" and einsum.role == "plain" and einsum.iterative_rank is None
    assert einsum.output == ref("QK", "m", "p")
    assert einsum.expr == BinOp("*", ref("Q", "e", "p"), ref("K", "e", "m"))
    assert einsum.reduced_ranks == {"e"} and einsum.reduce_op == "sum"
    assert einsum.iteration_ranks == ("m", "p", "e")
    assert einsum.inputs() == (ref("Q", "e", "p"), ref("K", "e", "m"))
    assert einsum.line == 7 and einsum.source == "QK[m,p] = Q[e,p] * K[e,m]"


def test_reduce_operator_and_over():
    einsum = parse("GM[p] = QK[m,p] :: max over m")
    assert einsum.reduce_op == "max" and einsum.reduced_ranks == {"m"}
    assert parse("GM[p] = QK[m,p] :: min").reduce_op == "min"


def test_map_has_no_reduction():
    einsum = parse("SN[m,p] = exp(QK[m,p] - GM[p])")
    assert einsum.reduce_op is None and einsum.reduced_ranks == frozenset()
    assert einsum.expr == Call("exp", (BinOp("-", ref("QK", "m", "p"), ref("GM", "p")),))


def test_precedence_and_parentheses():
    a, b, c = ref("A", "p"), ref("B", "p"), ref("C", "p")
    assert parse("X[p] = A[p] + B[p] * C[p]").expr == BinOp("+", a, BinOp("*", b, c))
    assert parse("X[p] = (A[p] + B[p]) * C[p]").expr == BinOp("*", BinOp("+", a, b), c)
    assert parse("X[p] = A[p] - B[p] - C[p]").expr == BinOp("-", BinOp("-", a, b), c)
    assert parse("X[p] = A[p] / B[p] * C[p]").expr == BinOp("*", BinOp("/", a, b), c)
    assert parse("X[p] = -A[p] * B[p]").expr == BinOp("*", Neg(a), b)
    assert parse("X[p] = max(A[p], min(B[p], C[p]))").expr == Call("max", (a, Call("min", (b, c))))


def test_numbers_and_infinities():
    assert parse("X[p] = -inf").expr == Const(-math.inf)
    assert parse("X[p] = inf").expr == Const(math.inf)
    assert parse("X[p] = 2.5e-3 * A[p]").expr == BinOp("*", Const(0.0025), ref("A", "p"))
    assert parse("X[p] = .5").expr == Const(0.5)


def test_scalar_tensors_with_and_without_brackets():
    with_brackets = parse("Y[] = A[k] * B[k]")
    without = parse("Y = A[k] * B[k]")
    assert with_brackets.output == without.output == TensorRef("Y", ())
    z = parse("Z = Y * X")
    assert z.expr == BinOp("*", TensorRef("Y", ()), TensorRef("X", ())) and z.iteration_ranks == ()


def test_partitioned_index_is_affine():
    einsum = parse("BK[e,m1,m0] = K[e, m1*M0 + m0]")
    index = einsum.expr.indices[1]
    m1, m0, big_m0 = rank_symbol("m1"), rank_symbol("m0"), shape_symbol("M0")
    assert sympy.expand(index.expr - (m1 * big_m0 + m0)) == 0
    assert index.ranks == {"m1", "m0"} and index.rank_var is None
    coefficients, constant = index.affine()
    assert coefficients == {"m0": 1, "m1": big_m0} and constant == 0
    assert einsum.reduced_ranks == frozenset() and einsum.iteration_ranks == ("e", "m1", "m0")


def test_update_and_init_roles():
    update = parse("RM[m1+1,p] = max(RM[m1,p], LM[m1,p])")
    assert update.role == "update" and update.iterative_rank == "m1" and update.name == "RM"
    assert update.reduced_ranks == frozenset()
    init = parse("RM[0,p] = -inf")
    assert init.role == "init" and init.name == "RM.init" and init.iterative_rank == "m1"
    final = parse("AV[f,p] = RNV[f,M1,p] / RD[M1,p]")
    assert final.role == "plain"
    assert final.expr.left.indices[1] == IndexExpr(shape_symbol("M1"), frozenset())


def test_filters():
    einsum = parse("QK[m,p] = Q[e,p] * K[e,m] where m <= p and m != 0")
    assert einsum.filters == (Filter(rank_symbol("m"), "<=", rank_symbol("p")),
                              Filter(rank_symbol("m"), "!=", sympy.Integer(0)))
    assert einsum.filters[0].ranks == {"m", "p"}
    partitioned = parse("BQK[m1,m0,p] = Q[e,p] * BK[e,m1,m0] where m1*M0 + m0 <= p")
    assert partitioned.filters[0].ranks == {"m1", "m0", "p"}


def test_comment_is_ignored():
    assert parse("SD[p] = SN[m,p]   # Eq. 36").source == "SD[p] = SN[m,p]"


@pytest.mark.parametrize("text, what, token", [
    ("QK[m,p] = Q[e,p] * * K[e,m]", "malformed Einsum", "*"),
    ("QK[m,p] Q[e,p]", "malformed Einsum", "Q"),
    ("QK[m,p] = Q[e,p] * K[e,m] junk", "malformed Einsum", "junk"),
    ("QK[m,p] = Q[e,p", "malformed Einsum", "end of line"),
    ("QK[m,p] = Q[e,p] $", "unexpected character", "$"),
    ("QK[m,p] = Q[e,q] * K[e,m]", "unknown rank variable", "q"),
    ("QK[m,p] = mishmash(Q[e,p]) * K[e,m]", "unknown function", "mishmash"),
    ("QK[m,p] = exp(Q[e,p], K[e,m])", "exp takes 1 argument(s), got 2", "exp"),
    ("GM[p] = QK[m,p] :: prod", "unknown reduce operator", "prod"),
    ("GM[p] = QK[m,p] :: max over p", "'over' ranks differ from the reduced ranks", "p"),
    ("GM[m,p] = QK[m,p] :: max", "reduction given but no rank is reduced", "max"),
    ("X[m,p] = Y[m*p, p]", "index is not affine in the rank variables", "m * p"),
    ("X[m+p] = Y[m,p]", "output index must be a rank variable", "X[m + p]"),
    ("X[m,m] = Y[m]", "rank variable repeated in the output", "X[m, m]"),
    ("X[p+1] = Y[p]", "output indexed at r+1 but the rank is not iterative", "X[p + 1]"),
    ("X[p] = m * Y[p]", "rank variable used as a value", "m"),
    ("X[p] = Y[p] where q < p", "unknown rank variable", "q"),
    ("X[p] = Y[p] where m < p", "filter uses a rank outside the Einsum's iteration space", "m < p"),
    ("X[p] = Y[1.5]", "non-integer number in an index", "1.5"),
    ("   # only a comment", "empty Einsum", "# only a comment"),
])
def test_errors_name_file_line_and_token(text, what, token):
    with pytest.raises(CascadeError) as caught:
        parse(text)
    message = str(caught.value)
    assert message.startswith(f"unit.yaml:7: {what} at '{token}'; expected "), message
    assert "\n" not in message


def test_reserved_word_cannot_be_a_function_name():
    from attnsim.einsum_ir import register_function
    with pytest.raises(ValueError, match="where"):
        register_function("where", abs)
