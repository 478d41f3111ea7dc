"""``attnsim check`` with ``reference:`` and ``--against``: any cascade against a reference, from the CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest

SMALL = ["--M", "128", "--P", "32", "--E", "16", "--F", "8", "--M0", "32"]


def attnsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnsim", *args], capture_output=True, text=True)


def test_sigmoid_attention_passes_its_reference_and_is_one_pass():
    checked = attnsim("check", "sigmoid-attention", *SMALL, "--seeds", "2")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "vs numba sigmoid-attention (AV)" in checked.stdout and "PASSED" in checked.stdout
    passes = attnsim("passes", "sigmoid-attention")
    assert passes.returncode == 0 and passes.stdout.startswith("sigmoid-attention: 1 pass over rank M")


@pytest.mark.parametrize("name", ["softplus-attention", "linear-attention", "split-k-decode", "split-k-attention",
                                  "clipped-softmax-attention", "selective-temperature-attention"])
def test_variant_cascades_pass_their_kernel_references(name):
    result = attnsim("check", name, *SMALL, "--size", "S=4")
    assert result.returncode == 0, result.stdout + result.stderr


def test_block_recurrent_causal_linear_attention_passes_its_reference():
    result = attnsim("check", "linear-attention-causal", "--size", "N=96", "--size", "B=16", "--E", "8", "--F", "4")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("inputs", ["normal", "large", "equal"])
def test_online_softmax_equals_the_naive_form(inputs):
    result = attnsim("check", "attention-1pass", "--against", "attention-3pass", *SMALL, "--inputs", inputs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vs attention-3pass (AV)" in result.stdout


def test_split_k_equals_the_naive_form_in_fp32():
    result = attnsim("check", "split-k-decode", "--against", "attention-3pass", *SMALL, "--size", "S=4",
                     "--dtype", "fp32")
    assert result.returncode == 0, result.stdout + result.stderr


def test_different_results_exit_1_and_print_the_largest_error():
    result = attnsim("check", "sigmoid-attention", "--against", "attention-3pass", *SMALL)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "max_rel_err" in result.stdout


MASKED = """name: {name}
ranks: {{e: E, f: F, m: M, p: P}}
inputs: [Q, K, V, MASK]
outputs: [AV]
einsums: |
  QK[m,p] = Q[e,p] * K[e,m] + MASK[m,p]
  GM[p] = QK[m,p] :: max
  SN[m,p] = exp(QK[m,p] - GM[p])
  SD[p] = SN[m,p]
{tail}"""


def test_masked_inputs_with_minus_infinity(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(MASKED.format(name="a", tail="  A[m,p] = SN[m,p] / SD[p]\n  AV[f,p] = A[m,p] * V[f,m]\n"))
    b = tmp_path / "b.yaml"
    b.write_text(MASKED.format(name="b", tail="  SNV[f,p] = SN[m,p] * V[f,m]\n  AV[f,p] = SNV[f,p] / SD[p]\n"))
    result = attnsim("check", str(a), "--against", str(b), *SMALL, "--inputs", "masked", "--seeds", "3")
    assert result.returncode == 0, result.stdout + result.stderr


DECLARED = """name: mish-gate
ranks: {m: M, p: P}
inputs: [X]
outputs: [Y, L]
functions:
  mish: "x * tanh(softplus(x))"
reduce_ops:
  lse: {combine: logaddexp, identity: -inf}
reference: written-out.yaml
einsums: |
  Y[m,p] = mish(X[m,p])
  L[p] = X[m,p] :: lse
"""

WRITTEN_OUT = """name: written-out
ranks: {m: M, p: P}
inputs: [X]
outputs: [Y, L]
einsums: |
  Y[m,p] = X[m,p] * tanh(log(1 + exp(X[m,p])))
  GM[p] = X[m,p] :: max
  SE[p] = exp(X[m,p] - GM[p])
  L[p] = GM[p] + log(SE[p])
"""


def test_declared_function_and_reduce_op_end_to_end(tmp_path):
    (tmp_path / "declared.yaml").write_text(DECLARED)
    (tmp_path / "written-out.yaml").write_text(WRITTEN_OUT)
    result = attnsim("check", str(tmp_path / "declared.yaml"), *SMALL)  # reference: relative to the file
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vs written-out (Y)" in result.stdout and "vs written-out (L)" in result.stdout
    passes = attnsim("passes", str(tmp_path / "declared.yaml"))
    assert passes.returncode == 0 and passes.stdout.startswith("mish-gate: 1 pass over rank M")


@pytest.mark.parametrize("args, message", [
    (["sigmoid-attention", "--against", "cascade1"], "cascade cascade1 reads A, B but sigmoid-attention reads Q, K, V"),
    (["attention-1pass", "--against", "attention-3pass", "--inputs", "masked"], "--inputs masked needs an input"),
    (["attention-1pass", "--against", "nosuch"], "unknown cascade 'nosuch'"),
    (["attention-1pass", "--seeds", "3"], "--seeds, --inputs and --tolerance need --against B"),
    (["attention-1pass", "--against", "attention-3pass", "--seeds", "0"], "--seeds 0; expected a positive"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = attnsim("check", *args, *SMALL)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_unknown_reference_names_the_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(WRITTEN_OUT.replace("outputs: [Y, L]", "outputs: [Y, L]\nreference: nosuch-kernel"))
    result = attnsim("check", str(path), *SMALL)
    assert result.returncode == 2
    assert "unknown reference 'nosuch-kernel' (key reference); expected a built-in cascade" in result.stderr


def test_cascades_lists_each_reference():
    import json
    result = attnsim("cascades", "--json")
    rows = {row["name"]: row["reference"] for row in json.loads(result.stdout)}
    assert rows["sigmoid-attention"] == "sigmoid-attention"
    assert rows["attention-3pass"] == "kernels_ref 3pass"
    assert rows["cascade1"] == "closed form z-dot-times-sum"


def test_against_json_reports_each_comparison():
    import json
    result = attnsim("check", "attention-2pass", "--against", "attention-3pass-deferred", *SMALL, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] is True and payload["tolerance"] == 1e-12
    assert set(payload["comparisons"]) == {"attention-3pass-deferred (AV)"}
    assert payload["max_rel_err"] <= 1e-12
