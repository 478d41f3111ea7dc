"""The GPU cost of the three kinds of division (mappers/gpu_cascade_work.py), counted by hand from the
rule in ``_expr_ops``'s docstring: a constant divisor is folded into one FP32 multiply by its inverse;
a divisor with fewer ranks than the output is one MUFU reciprocal per divisor element, then an FP32
multiply per point; a divisor with every output rank is one MUFU reciprocal and one FP32 multiply per point."""

from __future__ import annotations

from attnsim.einsum_ir.loader import load_cascade_text
from attnsim.mappers.gpu_cascade_work import gpu_cascade_work

CASCADE = """
name: division-costs
ranks: {e: E, f: F, m: M, p: P}
inputs: [Q, K, V]
outputs: [AV]
pass_rank: M
einsums: |
  QK[m,p] = Q[e,p] * K[e,m]
  S[m,p] = QK[m,p] / sqrt(E)
  R[p] = S[m,p]
  A[m,p] = S[m,p] / R[p]
  B[m,p] = S[m,p] / A[m,p]
  AV[f,p] = B[m,p] * V[f,m]
"""


def _pieces(einsum: str) -> set[tuple[str, str, float, tuple[str, ...]]]:
    work = gpu_cascade_work(load_cascade_text(CASCADE), frozenset({"m"}))
    return {(p.unit, p.kind, p.per_point, p.count_ranks) for p in work.einsums[einsum].pieces}


def test_a_constant_divisor_is_one_fp32_multiply_per_point() -> None:
    assert _pieces("S") == {("fp32", "main", 1.0, ("m", "p"))}


def test_a_broadcast_divisor_is_a_reciprocal_per_divisor_element_and_a_multiply_per_point() -> None:
    assert _pieces("A") == {("mufu", "rcp", 1.0, ("p",)), ("fp32", "main", 1.0, ("m", "p"))}


def test_a_full_rank_divisor_is_a_reciprocal_and_a_multiply_per_point() -> None:
    assert _pieces("B") == {("mufu", "main", 1.0, ("m", "p")), ("fp32", "main", 1.0, ("m", "p"))}
