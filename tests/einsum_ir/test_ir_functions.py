"""Built-in functions, their primitive costs, and shape symbols used as values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from attnsim import einsum_ir
from attnsim.einsum_ir import functions
from attnsim.einsum_ir import load_cascade_text, evaluate

X = np.linspace(-6.0, 6.0, 97)

# Independent formulas (textbook, written here): the built-ins must equal them.
REFERENCE = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.log(1.0 + np.exp(x)),
    "tanh": lambda x: np.sinh(x) / np.cosh(x),
    "rsqrt": lambda x: np.abs(x) ** -0.5,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "abs": lambda x: np.where(x < 0, -x, x),
    "log": lambda x: np.log(np.abs(x)),
    "sqrt": lambda x: np.abs(x) ** 0.5,
}

# Costs counted by hand from each textbook formula (negation free, x*x*x is two multiplies,
# exp(2x) appearing twice in tanh computed once).
EXPECTED_COST = {
    "sigmoid": {"exp": 1, "add": 1, "div": 1},                 # 1 / (1 + exp(-x)) (the example)
    "softplus": {"exp": 1, "add": 1, "log": 1},                # log(1 + exp(x))
    "tanh": {"mul": 1, "exp": 1, "add": 2, "div": 1},          # (e^{2x} - 1) / (e^{2x} + 1)
    "rsqrt": {"sqrt": 1, "div": 1},                            # 1 / sqrt(x)
    "relu": {"max": 1},                                        # max(x, 0)
    "elu": {"max": 1, "min": 1, "exp": 1, "add": 2},           # max(x,0) + min(e^x - 1, 0)
    "silu": {"mul": 1, "exp": 1, "add": 1, "div": 1},          # x * sigmoid(x)
    "clip": {"max": 1, "min": 1},                              # min(max(x, lo), hi)
    "logaddexp": {"max": 1, "add": 3, "abs": 1, "exp": 1, "log": 1},  # max + log(1 + exp(-|a-b|))
    # 0.5*x, x*x, *x, 0.044715*, sqrt(2/pi)*, (..)*(1+tanh): 6 mul; x+..., 1+tanh: 2 add; + tanh
    "gelu": {"mul": 6 + 1, "add": 2 + 2, "exp": 1, "div": 1},
    "exp": {"exp": 1}, "log": {"log": 1}, "sqrt": {"sqrt": 1}, "abs": {"abs": 1},
    "max": {"max": 1}, "min": {"min": 1},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_COST))
def test_primitive_cost_of_every_builtin(name):
    assert functions.primitive_cost(name) == EXPECTED_COST[name]
    assert set(functions.primitive_cost(name)) <= set(functions.PRIMITIVES)


def test_units_stop_the_expansion():
    # an architecture with a tanh unit: gelu keeps its 6 multiplies and 2 adds, plus one tanh
    assert functions.primitive_cost("gelu", units={"tanh"}) == {"mul": 6, "add": 2, "tanh": 1}
    assert functions.primitive_cost("sigmoid", units={"sigmoid"}) == {"sigmoid": 1}
    assert functions.primitive_cost("silu", units={"sigmoid"}) == {"mul": 1, "sigmoid": 1}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_builtin_values_match_textbook_formulas(name):
    x = X if name not in ("rsqrt", "log", "sqrt") else np.abs(X) + 0.25
    got = functions.get_function(name).fn(x)
    np.testing.assert_allclose(got, REFERENCE[name](x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(functions.DEFINITIONS))
def test_definitions_that_costs_count_equal_the_evaluated_functions(name):
    entry = functions.get_function(name)
    rng = np.random.default_rng(4)
    args = [rng.uniform(0.1, 4.0, 64) if name == "rsqrt" else rng.uniform(-5, 5, 64) for _ in entry.params]
    if name == "clip":
        args[1], args[2] = np.minimum(args[1], args[2]), np.maximum(args[1], args[2])
    from_definition = functions.evaluate_definition(functions.definition_expr(entry), dict(zip(entry.params, args)))
    np.testing.assert_allclose(entry.fn(*args), from_definition, rtol=1e-12, atol=1e-14)


def test_clip_and_logaddexp_take_several_arguments():
    a, b = np.array([-3.0, 0.5, 9.0]), np.array([1.0, -2.0, 9.0])
    np.testing.assert_array_equal(functions.get_function("clip").fn(a, -1.0, 2.0), [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(functions.get_function("logaddexp").fn(a, b), np.log(np.exp(a) + np.exp(b)),
                               rtol=1e-15)


SIZES_TEXT = """name: sizes-as-values
ranks: {m: M, p: P, e: E}
inputs: [X]
outputs: [Y, Z, W]
einsums: |
  Y[m,p] = sigmoid(X[m,p] / sqrt(E) - log(M))
  Z[p] = 1/M * X[m,p]
  W[p] = X[m,p] * E / M :: max
"""


def test_shape_symbols_are_values_in_expressions():
    cascade = load_cascade_text(SIZES_TEXT, source="sizes.yaml")
    x = np.random.default_rng(1).standard_normal((8, 5))
    out = evaluate(cascade, {"M": 8, "P": 5, "E": 16}, {"X": x})
    np.testing.assert_allclose(out["Y"], 1.0 / (1.0 + np.exp(-(x / 4.0 - np.log(8.0)))), rtol=1e-15)
    np.testing.assert_allclose(out["Z"], x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(out["W"], x.max(axis=0) * 2.0, rtol=1e-15)


def test_constant_subexpressions_cost_nothing():
    cascade = load_cascade_text(SIZES_TEXT, source="sizes.yaml")
    y, z, w = cascade.einsums
    # X / sqrt(E): a multiply by the constant 1/sqrt(E); - log(M): one add; sigmoid: exp + add + div
    assert functions.einsum_cost(y) == functions.EinsumCost(map={"mul": 1, "div": 1, "add": 2, "exp": 1}, reduce={})
    assert functions.einsum_cost(z) == functions.EinsumCost(map={"mul": 1}, reduce={"add": 1})
    # (X * E) / M: both operations touch data; dividing by the constant M is a multiply by 1/M
    assert functions.einsum_cost(w) == functions.EinsumCost(map={"mul": 2}, reduce={"max": 1})


def test_a_rank_variable_is_still_not_a_value():
    bad = SIZES_TEXT.replace("1/M * X[m,p]", "1/m * X[m,p]")
    with pytest.raises(einsum_ir.CascadeError, match=r"^sizes.yaml:7: rank variable used as a value at 'm'"):
        load_cascade_text(bad, source="sizes.yaml")


def test_unknown_function_in_a_cost_query_is_a_key_error():
    with pytest.raises(KeyError, match="unknown function 'mishmash'"):
        functions.primitive_cost("mishmash")


def test_reduce_costs():
    assert functions.reduce_cost("sum") == {"add": 1}
    assert functions.reduce_cost("max") == {"max": 1}
    assert functions.reduce_cost("logaddexp") == EXPECTED_COST["logaddexp"]
