"""The linear layers end to end against the FuseMax artifact (``end2end-flat.csv``, ``end2end-proposal.csv``).

The artifact's linear layers come from Timeloop's mapper (fact sheet, "End-to-end linear layers"): per
layer latency = max(memory time, compute time), ideal for BERT, TrXL and XLM. attnsim maps each layer with
:mod:`mappers.gemm` (overlapped folds, the dataflow whose plan promises the fewest cycles) and simulates it.
"""
from __future__ import annotations

import json
import math

import pytest

from artifact_data import linear_points
from attnsim.archsim import load_arch
from attnsim.mappers.workloads import load_workload
from attnsim.studies.cli import main
from attnsim.studies.simulate import linear_layers

CHIPS = {"flat": "flat-cloud", "proposal": "fusemax-cloud"}
"""Artifact file suffix -> attnsim architecture."""

# Achieved: max |latency error| 0.64 % on both chips (BERT at 1K: the one fill/drain of 2R + C - 2 cycles
# per layer that the artifact's max(mem, comp) does not count; every model within 0.64 %, XLM 0.28 % on
# FLAT's chip and 0.23 % on FuseMax's). Tolerance: achieved + 0.11 points margin.
LATENCY_REL_TOL = 0.0075

WORD_BYTES = 2
ROWS = COLS = 256


@pytest.mark.parametrize("chip", sorted(CHIPS))
def test_linear_layer_latency_matches_the_artifact(chip):
    arch = load_arch(CHIPS[chip])
    points = linear_points(chip)
    assert len(points) == 24                        # 4 models x 6 lengths
    errors = {}
    for point in points:
        ours = linear_layers(load_workload(point.model), point.seq, arch)["latency_s"]
        errors[(point.model, point.seq)] = ours / point.latency_s - 1.0
    worst = max(errors, key=lambda key: abs(errors[key]))
    assert abs(errors[worst]) <= LATENCY_REL_TOL, (worst, errors[worst])


@pytest.mark.parametrize("seq", [1024, 4096, 16384, 65536, 262144, 1048576])
def test_xlm_ffn2_on_the_16_mb_buffer_reaches_ideal(seq):
    # XLM's FFN2: M = 64 x seq rows, K = 8192, N = 2048 (B = 32 MiB, larger than the 16 MiB buffer).
    # Ideal with overlapped folds: M N K / (R C) MAC steps plus one fill/drain of 2R + C - 2 cycles,
    # unless DRAM cannot even move A, B and C once in that time (the DRAM-bound closed form).
    arch = load_arch("fusemax-cloud")
    layer = next(entry for entry in linear_layers(load_workload("xlm"), seq, arch)["layers"]
                 if entry["name"] == "ffn2")
    m, n, k = layer["m"], layer["n"], layer["k"]
    assert (m, n, k) == (64 * seq, 2048, 8192)
    compute_cycles = m * n * k / (ROWS * COLS) + 2 * ROWS + COLS - 2
    compulsory_cycles = (m * k + k * n + m * n) * WORD_BYTES / arch.dram_bytes_per_cycle
    assert compulsory_cycles < compute_cycles        # so the ideal is compute-bound
    ideal_cycles = max(compute_cycles, compulsory_cycles)
    assert ideal_cycles / layer["cycles"] >= 0.99, (layer["dataflow"], ideal_cycles / layer["cycles"])
    assert layer["cycles"] >= m * n * k / (ROWS * COLS)


def test_gemm_command_prints_the_chosen_mapping(capsys):
    # XLM FFN2 at 1K tokens with IS on 16 MiB: the partial sums of a block of h 256-column (M) tiles are
    # h x 256 x 2048 words (h MiB); drained blocks are double-buffered (2h MiB) and a stacked fold
    # stages its K tile of B (256 x 2048 words, 1 MiB) plus h stationary A tiles (h x 128 KiB) twice:
    # 2h + 2 + h/4 MiB fits 16 MiB for h = 4 (11 MiB), not h = 8 (20 MiB). Stacks are never chunked.
    m, n, k = 65536, 2048, 8192
    assert main(["gemm", str(m), str(n), str(k), "--dataflow", "is", "--fill-drain", "overlapped",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    plan = report["plan"]
    assert plan["loop_order"] == ["M", "K", "N"]
    assert plan["modes"] == {"A": "once", "B": "fold", "C": "drain"}
    assert (plan["block_tiles"], plan["chunk_temporal"], plan["chunks_per_fold"]) == (4, n, 1)
    assert plan["resident_bytes"] == 2 * 4 * 256 * n * WORD_BYTES
    # A and C once, B once per 1024-row block
    assert report["traffic_bytes"] == (m * k + math.ceil(m / 1024) * k * n + m * n) * WORD_BYTES
