"""``attnsim passes`` and ``attnsim taxonomy`` from the command line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def attnsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnsim", *args], capture_output=True, text=True)


def test_passes_json_has_the_documented_keys():
    result = attnsim("passes", "attention-3pass-deferred", "--rank", "M", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"cascade", "rank", "passes", "einsum_pass", "fusable_groups", "live"} <= set(payload)
    # Deferred division (§1.3) merges passes 2 and 3 of Cascade 4: AV is SNV / SD after pass 2.
    assert payload["passes"] == 2
    assert payload["einsum_pass"]["QK"] == 1 and payload["einsum_pass"]["SNV"] == 2
    assert payload["fusable_groups"][0] == ["QK", "GM"]
    live = {entry["tensor"]: entry["footprint"] for entry in payload["live"]}
    assert live["QK"] == "M*P1"  # one M-fiber of QK per query row of a P1 tile


def test_passes_text_names_every_einsum():
    result = attnsim("passes", "cascade1", "--rank", "K")
    assert result.returncode == 0, result.stderr
    assert "2 passes over rank K" in result.stdout
    assert "pass 2  Z" in result.stdout


def test_taxonomy_regenerates_table_one():
    result = attnsim("taxonomy", "--markdown")
    assert result.returncode == 0, result.stderr
    header, _, algorithms, _ = result.stdout.strip().splitlines()
    assert header.split("|")[2:5] == [" 3-pass ", " 2-pass ", " 1-pass "]
    three, two, one = [cell.strip() for cell in algorithms.split("|")[2:5]]
    # Paper Table I.
    assert all(name in three for name in ("PyTorch", "TensorFlow", "FLAT", "E.T."))
    assert all(name in two for name in ("TileFlow", "Choi et al."))
    assert all(name in one for name in ("FlashAttention [15]", "FlashAttention-2", "Rabe & Staats"))


@pytest.mark.parametrize("args, token", [
    (["passes", "attention-3pass", "--rank", "Z"], "'Z'"),
    (["passes", "no-such-cascade"], "no-such-cascade"),
])
def test_passes_bad_input_is_one_line_and_exit_2(args, token):
    result = attnsim(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and token in result.stderr


def test_passes_on_unanalysable_cascade_is_refused(tmp_path):
    path = tmp_path / "window.yaml"
    path.write_text("name: window\nranks: {m: M, p: P}\ninputs: [X]\noutputs: [Y]\n"
                    "einsums: |\n  Y[m,p] = X[m+p,p]\n")
    result = attnsim("passes", str(path), "--rank", "M")
    assert result.returncode == 2
    assert f"{path}:6" in result.stderr and "mixes rank M" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_passes_on_malformed_cascade_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nranks: {m: M, p: P}\ninputs: [X]\noutputs: [Y]\n"
                    "einsums: |\n  Y[p] = = X[m,p]\n")
    result = attnsim("passes", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:6" in result.stderr


@pytest.mark.parametrize("rank", ["P", "F"])
def test_one_pass_attention_over_another_rank_says_one_pass(rank):
    # the recurrence of attention-1pass runs over m1; along p or f nothing is reduced (issue 13)
    result = attnsim("passes", "attention-1pass", "--rank", rank)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"attention-1pass: 1 pass over rank {rank}"
    assert all(line.startswith("  pass 1 ") for line in result.stdout.splitlines()[1:18])
