"""``attnsim gemm``: JSON keys, --set, --trace, and one-line errors with exit code 2."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from attnsim.studies.cli import main

KEYS = {"m", "n", "k", "arch", "dataflow", "cycles", "compute_cycles", "util_2d", "traffic_bytes",
        "energy_pj", "latency_s", "fill_drain", "mapping", "plan"}


def gemm_json(capsys, *args: str) -> dict:
    assert main(["gemm", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_values(capsys):
    report = gemm_json(capsys, "64", "64", "64", "--arch", "fusemax-cloud", "--dataflow", "os")
    assert set(report) == KEYS
    # one fold on 256 x 256: 2R + C + T - 2 = 512 + 256 + 64 - 2
    assert report["compute_cycles"] == 830
    assert report["cycles"] >= report["compute_cycles"]
    # everything fits the 16 MB buffer: A, B read once and C written once, 2 bytes per word
    assert report["traffic_bytes"] == 3 * 64 * 64 * 2
    assert report["util_2d"] == pytest.approx(64**3 / (65536 * report["cycles"]))
    assert report["latency_s"] == pytest.approx(report["cycles"] / 940e6)
    assert report["energy_pj"] >= 64**3 * 17.1645
    assert report["fill_drain"] == "per_fold"
    # the report echoes what ran: the shape, the architecture and the dataflow
    assert (report["m"], report["n"], report["k"], report["arch"], report["dataflow"]) == (
        64, 64, 64, "fusemax-cloud", "os")


def test_dimensions_take_k_suffixes(capsys):
    report = gemm_json(capsys, "1K", "64", "64", "--arch", "fusemax-cloud")
    assert report["m"] == 1024
    assert report["traffic_bytes"] == (1024 * 64 + 64 * 64 + 1024 * 64) * 2   # A, B read once, C written once


@pytest.mark.parametrize("dataflow, fold_cycles", [
    ("os", 64 + 256 + 256 - 2),          # SCALE-Sim's OS fold: T + R + C - 2, no output drain
    ("ws", 2 * 256 + 256 + 64 - 2),      # WS/IS: 2R + C + T - 2, as per_fold
])
def test_scalesim_fill_drain(capsys, dataflow, fold_cycles):
    report = gemm_json(capsys, "64", "64", "64", "--dataflow", dataflow, "--fill-drain", "scalesim")
    assert report["compute_cycles"] == fold_cycles
    assert report["fill_drain"] == "scalesim"


def test_linear_layer_reports_its_loop_order(capsys):
    # BERT-Base FFN1 at 1K tokens (M = 64 x 1024): A in 256-row blocks, B (4.5 MiB) whole, compulsory
    # traffic only, and with overlapped folds within 1% of full utilisation
    m, n, k = 65536, 3072, 768
    report = gemm_json(capsys, str(m), str(n), str(k), "--fill-drain", "overlapped")
    assert report["mapping"] == "M-outer, A block, B whole, C once"
    assert report["traffic_bytes"] == (m * k + k * n + m * n) * 2
    assert m * n * k / (65536 * report["cycles"]) >= 0.99


def test_set_overrides_the_array(capsys):
    report = gemm_json(capsys, "64", "64", "64", "--dataflow", "ws", "--set", "arrays.pe2d.rows=16",
                       "--set", "arrays.pe2d.cols=16")
    # WS: (K/16) x (N/16) = 16 folds of 2R + C + T - 2 = 32 + 16 + 64 - 2 cycles
    assert report["compute_cycles"] == 16 * 110


def test_text_output_and_trace(capsys, tmp_path):
    trace = tmp_path / "gemm.csv"
    assert main(["gemm", "40", "30", "20", "--set", "arrays.pe2d.rows=8", "--set", "arrays.pe2d.cols=8",
                 "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    for key in KEYS:
        assert key in out
    with open(trace, newline="") as handle:
        rows = list(csv.DictReader(handle))
    folds = [row for row in rows if row["unit"] == "pe2d"]
    assert len(folds) == 5 * 4                       # OS: ceil(40/8) x ceil(30/8) folds
    assert {"unit", "einsum", "op_id", "start_cycle", "end_cycle"} <= set(rows[0])


@pytest.mark.parametrize("args", [
    ["0", "4", "4"],
    ["abc", "4", "4"],
    ["4", "4", "4", "--dataflow", "xs"],
    ["4", "4", "4", "--fill-drain", "sometimes"],
    ["4", "4", "4", "--arch", "no-such-arch"],
    ["4", "4", "4", "--set", "arrays.pe2d.rowz=3"],
    ["4", "4", "4", "--set", "arrays.pe2d.rows=-4"],
    ["512", "512", "512", "--dataflow", "ws", "--set", "global_buffer.capacity_bytes=1024"],
])
def test_bad_input_is_one_line_and_exit_2(args):
    process = subprocess.run([sys.executable, "-m", "attnsim", "gemm", *args],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert "Traceback" not in process.stderr
    assert lines[0].startswith("attnsim: error:")
