"""Invariants of every attention design, over random valid workloads, sequence lengths and
architectures (hypothesis, few examples so CI stays fast):

- latency >= max(compute bound, DRAM bound), both derived here from the workload's element counts,
  the array's PE count and clock, and the DRAM / HBM bandwidth read from the spec YAML files;
- energy >= the compulsory DRAM energy (every input read once, the output written once) plus the
  MAC energy (every QK and AV multiply-accumulate once, at the cheapest MAC of the spec);
- no NaN or infinity anywhere in the JSON; every utilisation in [0, 1];
- the same inputs give bit-identical JSON in two processes (different hash seeds).

The bounds assume what a design cannot beat: at most one MAC per PE per cycle (2D and 1D PEs alike),
at most the tensor-core peak on a GPU, and every byte of Q, K, V read and of the output written
at least once. ("Latency non-decreasing in sequence length" is another helper's, with the mapper
changes it needs.)
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from attnsim.studies.errors import user_error_types
from attnsim.studies.gpu import gpu_report
from attnsim.studies.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
DESIGN_ARCH = {"unfused": "flat-cloud", "flat": "flat-cloud", "fusemax-cascade": "flat-cloud",
               "flash2": "fusemax-cloud", "fusemax-arch": "fusemax-cloud", "fusemax": "fusemax-cloud"}
MODELS = ("bert-base", "trxl-wt103", "t5-small", "xlm")
PAPER_SEQS = (1024, 4096, 16384, 65536)
GPU_DESIGNS = ("flash2", "flash3", "flat", "fusemax")
GPUS = ("h100-sxm", "h100-pcie", "h200")
RELATIVE_SLACK = 1e-9  # floating-point rounding of the bounds themselves, nothing more

FEW = settings(max_examples=25, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
FEWER = settings(FEW, max_examples=15)


def spec(folder: str, name: str) -> dict[str, Any]:
    """The YAML file, read with plain PyYAML (its YAML 1.1 rules read ``940.0e6`` as text: see num)."""
    return yaml.safe_load((SPECS / folder / f"{name}.yaml").read_text())


def num(entry: Any) -> float:
    return float(entry)


def value(entry: Any) -> float:
    """A GPU spec number ({value: ..., source: ...}) or a plain number."""
    return float(entry["value"] if isinstance(entry, dict) else entry)


def walk_numbers(data: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [item for key, sub in data.items() for item in walk_numbers(sub, f"{path}.{key}")]
    if isinstance(data, list):
        return [item for i, sub in enumerate(data) for item in walk_numbers(sub, f"{path}[{i}]")]
    return [(path, data)] if isinstance(data, (int, float)) and not isinstance(data, bool) else []


def check_json_and_utilisations(report: dict[str, Any]) -> None:
    text = json.dumps(report, allow_nan=False)          # raises on NaN / inf anywhere
    numbers = walk_numbers(json.loads(text))
    assert all(math.isfinite(float(v)) for _, v in numbers)
    for path, number in numbers:
        if path.rsplit(".", 1)[-1].startswith("util"):
            assert 0.0 <= number <= 1.0, (path, number)


@st.composite
def spatial_points(draw: st.DrawFn) -> tuple[str, str, int, dict[str, float]]:
    design = draw(st.sampled_from(sorted(DESIGN_ARCH)))
    model = draw(st.sampled_from(MODELS))
    if design == "flat":   # FLAT's mapping file is tabulated at the paper's lengths on its own chip
        return design, model, draw(st.sampled_from(PAPER_SEQS)), {}
    seq = 256 * draw(st.integers(min_value=1, max_value=64))
    arch = spec("arch", DESIGN_ARCH[design])
    overrides = {
        "dram.bandwidth_bytes_per_s": num(arch["dram"]["bandwidth_bytes_per_s"])
        * draw(st.sampled_from([0.25, 1, 4])),
        "clock_hz": num(arch["clock_hz"]) * draw(st.sampled_from([0.5, 1, 2])),
    }
    return design, model, seq, overrides


def spatial_bounds(design: str, model: str, seq: int, overrides: dict[str, float]) -> tuple[float, float, float]:
    """(compute-bound seconds, DRAM-bound seconds, compulsory energy pJ), from the YAML files alone."""
    workload = spec("workloads", model)
    arch = spec("arch", DESIGN_ARCH[design])
    clock_hz = overrides.get("clock_hz", num(arch["clock_hz"]))
    bandwidth = overrides.get("dram.bandwidth_bytes_per_s", num(arch["dram"]["bandwidth_bytes_per_s"]))
    b, h, e, f = workload["batch"], workload["heads"], workload["head_dim_e"], workload["head_dim_f"]
    macs = b * h * seq * seq * (e + f)                       # QK (E per score) and AV (F per output)
    pes = arch["arrays"]["pe2d"]["rows"] * arch["arrays"]["pe2d"]["cols"] + arch["arrays"]["pe1d"]["size"]
    compute_s = macs / (pes * clock_hz)
    words = b * h * (seq * e + seq * e + seq * f + seq * f)  # Q, K, V read; the output written
    dram_bytes = words * arch["word_bytes"]
    dram_s = dram_bytes / bandwidth
    energy = arch["energy"]
    mac_pj = min(num(energy["pe2d.mac"]["pj"]), num(energy["pe1d.mac"]["pj"]))
    dram_pj = min(num(energy["dram.read"]["pj"]), num(energy["dram.write"]["pj"])) / arch["dram"]["access_bytes"]
    return compute_s, dram_s, macs * mac_pj + dram_bytes * dram_pj


@FEW
@given(spatial_points())
def test_spatial_latency_energy_bounds_json_and_utilisations(point: tuple[str, str, int, dict[str, float]]) -> None:
    design, model, seq, overrides = point
    try:
        report = simulate(design, model, seq, overrides=overrides or None)
    except user_error_types():
        assume(False)  # a refusal (one line) is tested elsewhere; here only what runs
        return
    check_json_and_utilisations(report)
    compute_s, dram_s, energy_pj = spatial_bounds(design, model, seq, overrides)
    assert report["latency_s"] >= max(compute_s, dram_s) * (1 - RELATIVE_SLACK), (report["latency_s"],
                                                                                  compute_s, dram_s)
    assert report["energy_pj"] >= energy_pj * (1 - RELATIVE_SLACK), (report["energy_pj"], energy_pj)


@FEWER
@given(design=st.sampled_from(GPU_DESIGNS), gpu=st.sampled_from(GPUS),
       seq=st.integers(min_value=1, max_value=32768), head_dim=st.sampled_from([64, 128, 256]),
       causal=st.booleans(), dtype=st.sampled_from(["fp16", "bf16", "fp8"]))
def test_gpu_latency_bounds_json_and_utilisations(design: str, gpu: str, seq: int, head_dim: int,
                                                  causal: bool, dtype: str) -> None:
    try:
        report = gpu_report(gpu, design, seq, head_dim, causal=causal, dtype=dtype)
    except user_error_types():
        assume(False)
        return
    check_json_and_utilisations(report)
    g = spec("arch", gpu)
    b, h = report["batch"], report["heads"]
    flops = 4 * b * h * seq * seq * head_dim * (0.5 if causal else 1.0)  # causal: at least the lower half
    peak = value(g["sm_count"]) * value(g["per_sm_per_clock"]["tensor_flops"][dtype]) * value(g["clocks"]["tensor_hz"])
    element_bytes = {"fp16": 2, "bf16": 2, "fp8": 1}[dtype]
    hbm_bytes = 4 * b * h * seq * head_dim * element_bytes              # Q, K, V read; O written
    bound = max(flops / peak, hbm_bytes / value(g["memory"]["hbm_bandwidth_bytes_per_s"]))
    assert report["latency_s"] >= bound * (1 - RELATIVE_SLACK), (report["latency_s"], flops / peak,
                                                                 hbm_bytes)


DETERMINISM_SCRIPT = """
import json, sys
from attnsim.studies.simulate import simulate
from attnsim.studies.gpu import gpu_report
from attnsim.studies.cli.commands.gemm import gemm_report
out = [simulate("fusemax", "bert-base", 4096), simulate("flat", "xlm", 1024, end_to_end=True),
       simulate("fusemax-cascade", "t5-small", 2048), gpu_report("h100-sxm", "flash3", 3000, 128, causal=True),
       gemm_report(300, 200, 100, "fusemax-cloud", "ws", "per_fold", None, None)]
sys.stdout.write(json.dumps(out, sort_keys=True, allow_nan=False))
"""


def test_same_inputs_bit_identical_json_in_two_processes() -> None:
    texts = []
    for seed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], capture_output=True, text=True,
                             env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        texts.append(run.stdout)
    assert texts[0] == texts[1]
    assert len(json.loads(texts[0])) == 5
