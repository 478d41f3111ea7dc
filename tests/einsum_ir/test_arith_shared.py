"""One arithmetic evaluator (einsum_ir.arith) reads cascade shapes, mapping expressions and study entries.

Expected values are hand computations; the point is that the same grammar (functions, ``//``, ``%``)
works and fails the same way in all three places.
"""
from __future__ import annotations

import sympy
import pytest

from attnsim.einsum_ir import load_cascade_text, shape_symbol
from attnsim.einsum_ir.arith import compile_arithmetic
from attnsim.mappers.errors import MappingError
from attnsim.mappers.mapping_spec import evaluate_expression, expression_names

CASCADE = """
name: shapes
ranks: {m: M, m1: M1, m0: M0}
shapes: {M1: "ceiling(M / M0)", MH: "M // 2"}
inputs: [A]
outputs: [Z]
einsums: |
  Z[m1] = A[m1*M0 + m0]
"""


def test_a_derived_shape_may_use_the_functions_of_the_shared_grammar() -> None:
    cascade = load_cascade_text(CASCADE, source="shapes.yaml")
    derived = {str(k): v for k, v in cascade.derived_shapes.items()}
    m, m0 = shape_symbol("M"), shape_symbol("M0")
    # ceiling(100 / 7) = 15 and 100 // 2 = 50 (hand)
    assert derived["M1"].subs({m: 100, m0: 7}) == 15
    assert derived["MH"].subs({m: 100}) == 50
    text = compile_arithmetic("ceiling(M / M0) + M % M0", {"M": "M", "M0": "M0"})
    assert text.evaluate({"M": 100, "M0": 7}) == 15 + 2
    assert text.to_sympy({"M": m, "M0": m0}).subs({m: 100, m0: 7}) == 15 + 2


def test_a_shape_expression_with_a_float_or_an_unknown_name_is_one_line_naming_the_file() -> None:
    bad_float = CASCADE.replace('MH: "M // 2"', 'MH: "M * 0.5"')
    with pytest.raises(Exception) as caught:
        load_cascade_text(bad_float, source="shapes.yaml")
    assert "shapes.yaml" in str(caught.value) and "\n" not in str(caught.value)
    bad_name = CASCADE.replace('MH: "M // 2"', 'MH: "N // 2"')
    with pytest.raises(Exception) as caught:
        load_cascade_text(bad_name, source="shapes.yaml")
    assert "shapes.yaml" in str(caught.value) and "'N'" in str(caught.value)


def test_a_mapping_expression_reads_functions_and_names_its_key_on_error() -> None:
    values = {"P": 1000, "pe2d.cols": 256}
    assert expression_names("ceiling(P / pe2d.cols)") == {"P", "pe2d.cols"}
    assert evaluate_expression("ceiling(P / pe2d.cols)", values, "m.yaml: loops[0].factor") == 4   # 3.9 -> 4
    assert evaluate_expression("min(P, 4 * pe2d.cols) // 2", values, "m.yaml: sizes.X") == 500
    with pytest.raises(MappingError, match=r"m.yaml: loops\[0\].factor: 'P / 3' = 333.33"):
        evaluate_expression("P / 3", values, "m.yaml: loops[0].factor")
    with pytest.raises(MappingError, match=r"m.yaml: sizes.X: unknown name 'Q'"):
        evaluate_expression("Q + 1", values, "m.yaml: sizes.X")
    with pytest.raises(MappingError, match=r"m.yaml: sizes.X: division by zero"):
        evaluate_expression("P // (pe2d.cols - 256)", values, "m.yaml: sizes.X")


def test_the_same_text_is_refused_the_same_way_by_mapping_and_study() -> None:
    from attnsim.mappers.mapping_spec import _check_expression
    for text in ("__import__('os')", "P if P else 1", "lambda: 1"):
        with pytest.raises(ValueError) as mapping_error:
            _check_expression(text)
        with pytest.raises(ValueError) as study_error:
            compile_arithmetic(text)
        assert str(mapping_error.value) == str(study_error.value)
