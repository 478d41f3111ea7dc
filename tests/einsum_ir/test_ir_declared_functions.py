"""Functions and reduce operators declared in the cascade file itself (no Python, no eval)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from attnsim.einsum_ir import CascadeError, evaluate, functions, load_cascade_text

TEXT = """name: declared
ranks: {m: M, p: P}
inputs: [X]
outputs: [Y, L, R, H]
functions:
  mish: "x * tanh(softplus(x))"
  hinge: {args: [a, b], expr: "max(a - b, 0)"}
  smax: {args: [a, b], expr: "log(exp(a) + exp(b))", merge: union, identity: -inf}
reduce_ops:
  lse: {combine: logaddexp, identity: -inf}
  prod: {combine: "a * b", identity: 1}
  lse2: {combine: smax, identity: -inf}
einsums: |
  Y[m,p] = mish(X[m,p])
  L[p] = X[m,p] :: lse
  R[p] = hinge(X[m,p], 0.5) + 1 :: prod
  H[p] = X[m,p] :: lse2
"""


@pytest.fixture(scope="module")
def cascade():
    return load_cascade_text(TEXT, source="declared.yaml")


def test_declared_functions_and_reduce_ops_evaluate(cascade):
    x = np.random.default_rng(3).standard_normal((9, 4))
    out = evaluate(cascade, {"M": 9, "P": 4}, {"X": x})
    # mish (Misra 2019): x * tanh(ln(1 + e^x)), written here with numpy directly
    np.testing.assert_allclose(out["Y"], x * np.tanh(np.log1p(np.exp(x))), rtol=1e-14)
    np.testing.assert_allclose(out["L"], np.log(np.sum(np.exp(x), axis=0)), rtol=1e-14)
    np.testing.assert_allclose(out["R"], np.prod(np.where(x > 0.5, x - 0.5, 0.0) + 1.0, axis=0), rtol=1e-14)
    np.testing.assert_allclose(out["H"], np.log(np.sum(np.exp(x), axis=0)), rtol=1e-14)


def test_declared_functions_do_not_leak_into_the_global_registry(cascade):
    assert functions.get_function("mish") is None
    assert functions.get_reduce_op("lse") is None


def test_costs_are_derived_from_the_declared_expressions(cascade):
    # mish = x * tanh(softplus(x)): softplus exp+add+log, tanh mul+exp+2add+div, and one mul
    assert functions.primitive_cost("mish", local=cascade.functions) == {
        "exp": 2, "add": 3, "log": 1, "mul": 2, "div": 1}
    assert functions.primitive_cost("hinge", local=cascade.functions) == {"add": 1, "max": 1}
    assert functions.reduce_cost("prod", local=cascade.reduce_ops) == {"mul": 1}
    assert functions.reduce_cost("lse2", local_functions=cascade.functions, local=cascade.reduce_ops) == {
        "exp": 2, "add": 1, "log": 1}
    r = cascade.einsum("R")
    cost = functions.einsum_cost(r, functions=cascade.functions, reduce_ops=cascade.reduce_ops)
    assert cost == functions.EinsumCost(map={"add": 2, "max": 1}, reduce={"mul": 1})


def _declared(body: str) -> str:
    return TEXT.split("functions:")[0] + body + "einsums: |\n  Y[m,p] = X[m,p]\n  L[p] = X[m,p]\n" \
        "  R[p] = X[m,p]\n  H[p] = X[m,p]\n"


@pytest.mark.parametrize("body, line, message", [
    ("functions:\n  f: \"x * y(x)\"\n", 6, "unknown function at 'y'"),
    ("functions:\n  f: {args: [x], expr: \"x * y\"}\n", 6, "unknown name in a function definition at 'y'"),
    ("functions:\n  f: \"__import__('os')\"\n", 6, "unexpected character at '''"),
    ("functions:\n  f: \"f(x) + 1\"\n", 6, "function calls itself at 'f'"),
    ("functions:\n  exp: \"x + 1\"\n", 6, "function already built in at 'exp'"),
    ("functions:\n  f: \"1 + 2\"\n", 6, "function has no argument"),
    ("functions:\n  f: {args: [a, b], expr: \"a\", merge: union}\n", 6, "union function f has no identity"),
    ("functions:\n  f: {expr: \"x\", colour: red}\n", 6, "bad declaration of function f at 'colour'"),
    ("reduce_ops:\n  sub: {combine: \"a - b\", identity: 0}\n", 6,
     "combine of reduce operator sub is not associative"),
    ("reduce_ops:\n  m: {combine: max, identity: 0}\n", 6, "identity of reduce operator m is not neutral"),
    ("reduce_ops:\n  m: {combine: sigmoid, identity: 0}\n", 6, "combine of m takes 1 argument(s)"),
    ("reduce_ops:\n  m: {combine: nosuch, identity: 0}\n", 6, "unknown combine function of reduce operator m"),
    ("reduce_ops:\n  m: {combine: max}\n", 6, "bad declaration of reduce operator m at 'identity'"),
    ("reduce_ops:\n  m: {combine: max, identity: lots}\n", 6, "identity of m must be a number at 'lots'"),
    ("reduce_ops:\n  sum: {combine: add, identity: 0}\n", 6, "reduce operator already built in at 'sum'"),
])
def test_bad_declarations_are_one_line_errors(body, line, message):
    with pytest.raises(CascadeError) as caught:
        load_cascade_text(_declared(body), source="d.yaml")
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"d.yaml:{line}: {message}"), text


def test_declared_file_works_from_the_cli(tmp_path):
    path = tmp_path / "declared.yaml"
    path.write_text(TEXT)
    run = [sys.executable, "-m", "attnsim"]
    shown = subprocess.run(run + ["show", str(path)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "mish(x) = x * tanh(softplus(x))   cost 3 add + div + 2 exp + log + 2 mul" in shown.stdout
    passes = subprocess.run(run + ["passes", str(path)], capture_output=True, text=True)
    assert passes.returncode == 0, passes.stderr
    assert passes.stdout.startswith("declared: 1 pass over rank M")
