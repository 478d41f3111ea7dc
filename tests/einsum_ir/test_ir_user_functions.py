"""A function registered by the user works in a cascade with no parser change."""
from __future__ import annotations

import numpy as np
import pytest

from attnsim import einsum_ir
from attnsim.einsum_ir import CascadeError, evaluate, load_cascade_text

TEXT = """name: gated
ranks: {m: M, p: P}
inputs: [X, G]
outputs: [Y, S]
einsums: |
  Y[m,p] = sigmoid_t(G[p]) * X[m,p]
  S[p] = lse_t(X[m,p], G[p]) :: max
"""


@pytest.fixture
def registered():
    einsum_ir.register_function("sigmoid_t", lambda x: 1.0 / (1.0 + np.exp(-x)))
    einsum_ir.register_function("lse_t", np.logaddexp, arity=2, merge="union", identity=-np.inf)
    yield
    einsum_ir.unregister_function("sigmoid_t")
    einsum_ir.unregister_function("lse_t")


def test_unregistered_function_is_an_error_naming_it():
    einsum_ir.unregister_function("sigmoid_t")
    with pytest.raises(CascadeError, match=r"^gated.yaml:6: unknown function at 'sigmoid_t'; expected"):
        load_cascade_text(TEXT, source="gated.yaml")


def test_registered_functions_are_parsed_and_evaluated(registered):
    cascade = load_cascade_text(TEXT, source="gated.yaml")
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((5, 3)), rng.standard_normal(3)
    out = evaluate(cascade, {"M": 5, "P": 3}, {"X": x, "G": g})
    np.testing.assert_allclose(out["Y"], x / (1.0 + np.exp(-g)), rtol=1e-15)
    np.testing.assert_allclose(out["S"], np.max(np.logaddexp(x, g), axis=0), rtol=1e-15)


def test_arity_of_a_registered_function_is_checked(registered):
    bad = TEXT.replace("sigmoid_t(G[p])", "sigmoid_t(G[p], G[p])")
    with pytest.raises(CascadeError, match=r"gated.yaml:6: sigmoid_t takes 1 argument\(s\), got 2 at 'sigmoid_t'"):
        load_cascade_text(bad, source="gated.yaml")


def test_registering_twice_needs_replace(registered):
    with pytest.raises(ValueError, match="already registered"):
        einsum_ir.register_function("sigmoid_t", np.tanh)
    einsum_ir.register_function("sigmoid_t", np.tanh, replace=True)
    assert einsum_ir.get_function("sigmoid_t").fn is np.tanh
