"""The ``attnsim cascades``, ``show`` and ``check`` commands, their JSON and their error exits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnsim import einsum_ir
from attnsim.studies.check import check_cascade
from attnsim.studies.cli import main

SMALL = ["--M", "32", "--P", "24", "--E", "4", "--F", "3", "--M0", "8", "--K", "20"]

WRONG_ATTENTION = """name: unnormalised
description: softmax numerator times V, never divided by the denominator
ranks: {e: E, f: F, m: M, p: P}
inputs: [Q, K, V]
outputs: [AV]
attention: {algorithm: 3pass, causal: false}
einsums: |
  QK[m,p] = Q[e,p] * K[e,m]
  GM[p] = QK[m,p] :: max
  SN[m,p] = exp(QK[m,p] - GM[p])
  AV[f,p] = SN[m,p] * V[f,m]
"""


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cascades_lists_every_builtin_with_its_description(capsys):
    code, out, _ = run_cli(capsys, "cascades")
    assert code == 0
    for name in einsum_ir.builtin_names():
        line = next(l for l in out.splitlines() if l.split()[0] == name)
        assert einsum_ir.load_builtin(name).description in line
    assert "attention-1pass-causal" in out and "cascade3" in out


def test_show_prints_ranks_shapes_and_einsums(capsys):
    code, out, _ = run_cli(capsys, "show", "attention-1pass")
    assert code == 0
    assert "m1: M1" in out and "M1 = M/M0" in out and "m1 (stop when m1 >= M1)" in out
    assert "RM[m1+1,p] = max(RM[m1,p], LM[m1,p])" in out
    assert "RNV    (F, M1 + 1, P)" in out


def test_show_accepts_a_path(capsys, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(WRONG_ATTENTION)
    code, out, _ = run_cli(capsys, "show", str(path))
    assert code == 0 and "unnormalised" in out and str(path) in out


@pytest.mark.parametrize("name", ["attention-1pass-causal", "attention-2pass", "cascade3"])
def test_check_passes_and_prints_errors(capsys, name):
    code, out, _ = run_cli(capsys, "check", name, *SMALL)
    assert code == 0
    assert "PASSED" in out and "max_rel_err" in out


def test_check_json_keys(capsys):
    code, out, _ = run_cli(capsys, "check", "attention-1pass", *SMALL, "--json", "--dtype", "fp32", "--seed", "4")
    assert code == 0
    result = json.loads(out)
    assert {"max_abs_err", "max_rel_err", "passed", "cascade", "sizes"} <= set(result)
    assert result["cascade"] == "attention-1pass" and result["passed"] is True
    assert result["sizes"] == {"E": 4, "F": 3, "M": 32, "M0": 8, "P": 24}
    assert result["dtype"] == "fp32" and result["max_rel_err"] <= 1e-5
    assert set(result["comparisons"]) == {"numba fusemax", "numpy softmax"}


def test_check_all_prints_a_table(capsys):
    code, out, _ = run_cli(capsys, "check", "--all", *SMALL)
    assert code == 0
    for name in einsum_ir.builtin_names():
        assert any(line.split()[0] == name and " yes " in line for line in out.splitlines())
    assert f"{len(einsum_ir.builtin_names())}/{len(einsum_ir.builtin_names())} cascades passed" in out


def test_check_of_a_wrong_cascade_exits_1(capsys, tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text(WRONG_ATTENTION)
    code, out, _ = run_cli(capsys, "check", str(path), *SMALL, "--json")
    assert code == 1
    result = json.loads(out)
    assert result["passed"] is False and result["max_rel_err"] > 1e-3


def test_check_cascade_api_compares_with_numpy():
    # Independent check of the headline number: recompute the numpy comparison here.
    cascade = einsum_ir.load_builtin("attention-3pass")
    sizes = {"M": 16, "P": 8, "E": 4, "F": 2}
    result = check_cascade(cascade, sizes, seed=9)
    rng = np.random.default_rng(9)
    q, k, v = rng.standard_normal((8, 4)), rng.standard_normal((16, 4)), rng.standard_normal((16, 2))
    logits = q @ k.T
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = (weights / weights.sum(axis=1, keepdims=True)) @ v
    out = einsum_ir.evaluate(cascade, sizes, {"Q": q.T, "K": k.T, "V": v.T})["AV"].T
    rel = np.max(np.abs(out - expected)) / np.max(np.abs(expected))
    assert result.comparisons["numpy softmax"]["max_rel_err"] == pytest.approx(rel, rel=1e-6, abs=1e-18)
    assert result.passed and result.tolerance == 1e-12


# --- error exits: status 2, one line on stderr naming file, line and token, no traceback --------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.yaml"
    path.write_text(text)
    return path


HEAD = "name: u\nranks: {e: E, m: M, p: P}\ninputs: [Q, K]\noutputs: [Z]\neinsums: |\n"
BAD_FILES = [
    (HEAD + "  QK[m,p] = Q[e,p] * * K[e,m]\n  Z[p] = QK[m,p]\n", 6, "malformed Einsum", "*"),
    (HEAD + "  QK[m,p] = Q[e,p] * W[e,m]\n  Z[p] = QK[m,p] + K[e,m]\n", 6, "unknown tensor", "W[e, m]"),
    (HEAD + "  QK[m,p] = Q[e,p] * K[e,n]\n  Z[p] = QK[m,p]\n", 6, "unknown rank variable", "n"),
    (HEAD + "  QK[m,p] = Q[e,p] * K[e,m]\n  Z[p] = QK[e,p]\n", 7, "tensor dimension used with two different shapes",
     "QK[e, p]"),
    (HEAD + "  QK[m,p] = Q[e,p] * K[e,m] + Z[p]\n  Z[p] = QK[m,p]\n", 6,
     "dependency cycle not through an iterative rank", "QK"),
    (HEAD + "  QK[m,p] = nosuchfn(Q[e,p]) * K[e,m]\n  Z[p] = QK[m,p]\n", 6, "unknown function", "nosuchfn"),
]


@pytest.mark.parametrize("text, line, what, token", BAD_FILES)
def test_bad_cascade_file_exits_2_with_one_line(capsys, tmp_path, text, line, what, token):
    path = write(tmp_path, text)
    for command in ("show", "check"):
        code, out, err = run_cli(capsys, command, str(path))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"attnsim: error: {path}:{line}: {what} at '{token}'; expected "), err


@pytest.mark.parametrize("argv, message", [
    (["check", "attention-1pass", "--M", "1000"], "attention-1pass.yaml:4: M=1000 is not divisible by M0=256"),
    (["check", "attention-1pass", "--size", "M0=0"], "attention-1pass.yaml:3: size M0=0 is not a positive integer"),
    (["check", "no-such-cascade"], "unknown cascade 'no-such-cascade'; expected one of"),
    (["show", "no-such-cascade"], "unknown cascade 'no-such-cascade'; expected one of"),
    (["check"], "missing cascade NAME"),
    (["check", "cascade1", "--all"], "give either NAME or --all"),
    (["check", "cascade1", "--size", "K"], "--size K: expected NAME=N"),
    (["check", "cascade1", "--size", "K=lots"], "--size K: expected a positive integer (optionally with K or M), got 'lots'"),
    (["check", "attention-1pass", "--M", "1x"], "--M: expected a positive integer (optionally with K or M), got '1x'"),
    (["check", "missing/dir/x.yaml"], "missing/dir/x.yaml: cannot read cascade file"),
])
def test_user_errors_exit_2(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_missing_size_in_a_user_cascade_exits_2(capsys, tmp_path):
    path = write(tmp_path, "name: u\nranks: {m: M, t: T}\ninputs: [A]\noutputs: [Z]\nclosed_form: z-dot-times-sum\n"
                           "einsums: |\n  Z = A[m, t]\n")
    code, _, err = run_cli(capsys, "check", str(path))
    assert code == 2 and f"{path}:2: missing size for shape symbol T at 'T'" in err


def test_subprocess_error_has_no_traceback(tmp_path):
    path = write(tmp_path, BAD_FILES[0][0])
    completed = subprocess.run([sys.executable, "-m", "attnsim", "check", str(path)], capture_output=True,
                               text=True, check=False)
    assert completed.returncode == 2
    assert completed.stdout == "" and "Traceback" not in completed.stderr
    assert completed.stderr.strip().count("\n") == 0
    assert f"{path}:6: malformed Einsum at '*'" in completed.stderr
