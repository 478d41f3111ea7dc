"""The public API in ``attnsim/__init__.py``: lazy, explicit arch per call, results as DataFrames."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml

import attnsim
from attnsim.studies.errors import UsageError

HEAVY = ("numba", "matplotlib", "sympy", "dask", "distributed", "pandas", "networkx")


def _arch_yaml(name: str) -> dict:
    return yaml.safe_load(resources.files("attnsim.specs").joinpath("arch", f"{name}.yaml").read_text())


def test_all_names_the_documented_api_and_each_has_a_docstring() -> None:
    assert set(attnsim.__all__) == {"__version__", "load_arch", "load_cascade", "load_workload", "simulate",
                                    "simulate_gpu", "passes", "check", "sweep", "results"}
    for name in attnsim.__all__[1:]:
        assert getattr(attnsim, name).__doc__, name


def test_import_attnsim_and_the_cli_parser_import_nothing_heavy() -> None:
    code = ("import sys, attnsim, attnsim.studies.cli as cli; cli.build_parser(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert process.stdout.strip() == ""


def test_the_arch_is_explicit_and_the_result_says_which_ran() -> None:
    with pytest.raises(TypeError):
        attnsim.simulate("flat", "bert-base", 1024)                 # type: ignore[call-arg]
    on_fusemax = attnsim.simulate("flat", "bert-base", "1K", arch="fusemax-cloud")
    on_own = attnsim.simulate("flat", "bert-base", 1024, arch="flat-cloud")
    assert (on_fusemax["arch"], on_fusemax["design_default_arch"]) == ("fusemax-cloud", "flat-cloud")
    assert (on_own["arch"], on_own["design_default_arch"]) == ("flat-cloud", "flat-cloud")
    assert on_fusemax["arch_origin"] == "specs/arch/fusemax-cloud.yaml"
    assert on_fusemax["seq"] == on_own["seq"] == 1024
    # the two chips differ (2D array sizes in their YAML files), and each run used its own
    for run, name in ((on_fusemax, "fusemax-cloud"), (on_own, "flat-cloud")):
        pe2d = _arch_yaml(name)["arrays"]["pe2d"]
        assert run["array_pes_2d"] == pe2d["rows"] * pe2d["cols"]
        assert run["latency_s"] == pytest.approx(run["cycles"] / float(_arch_yaml(name)["clock_hz"]), rel=1e-12)


def test_overrides_apply_to_this_call_only() -> None:
    arch = attnsim.load_arch("fusemax-cloud")
    small = attnsim.simulate("fusemax", "bert-base", "4K", arch=arch,
                             overrides={"global_buffer.capacity_bytes": 2**21})
    assert small.arch.global_buffer.capacity_bytes == 2**21
    assert arch.global_buffer.capacity_bytes == _arch_yaml("fusemax-cloud")["global_buffer"]["capacity_bytes"]


def test_to_frame_is_one_row_with_flattened_columns() -> None:
    run = attnsim.simulate("fusemax", "bert-base", "1K", arch="fusemax-cloud")
    frame = run.to_frame()
    assert frame.shape[0] == 1
    assert frame.loc[0, "per_einsum.BQK.util_2d"] == run["per_einsum"]["BQK"]["util_2d"]
    assert frame.loc[0, "latency_s"] == run["latency_s"] and frame.loc[0, "design"] == "fusemax"
    assert run.to_dict() == dict(run) and run.to_dict() is not run.to_dict()


def test_simulate_gpu_reports_traffic_and_fa3_flops() -> None:
    run = attnsim.simulate_gpu("flash2", "1K", 64, arch="h100-sxm")
    batch, heads, seq, d = 16, 32, 1024, 64                         # FA3 protocol: 16K tokens, hidden 2048
    assert (run["batch"], run["heads"], run["seq"], run["head_dim"]) == (batch, heads, seq, d)
    assert run["flops"] == 4 * batch * heads * seq * seq * d
    assert run["tflops"] == pytest.approx(run["flops"] / run["latency_s"] / 1e12, rel=1e-12)
    assert run["traffic_bytes"] >= 4 * batch * heads * seq * d * 2   # Q, K, V read and O written, fp16
    assert isinstance(attnsim.load_arch("h100-sxm"), type(run.arch))
    faster = attnsim.simulate_gpu("flash2", 1024, 64, arch="h100-sxm",
                                  overrides={"memory.hbm_bandwidth_bytes_per_s.value": 2 * 3.35e12})
    assert faster.arch.memory.hbm_bandwidth_bytes_per_s.value == 6.7e12
    assert faster["latency_s"] <= run["latency_s"]


def test_passes_match_table_one_and_frame_has_one_row_per_einsum() -> None:
    # FuseMax paper, Table I: the 3-pass and 1-pass cascades
    assert attnsim.passes("attention-3pass").passes == 3
    result = attnsim.passes("attention-1pass")
    assert result.passes == 1
    cascade = attnsim.load_cascade("attention-1pass")
    frame = result.to_frame()
    assert list(frame["einsum"]) == [e.name for e in cascade.einsums]
    assert set(frame["pass"]) == {1}


def test_check_passes_within_tolerance() -> None:
    report = attnsim.check("attention-1pass", {"M": "1K", "P": 256, "M0": 256})
    assert report.passed and report["sizes"]["M"] == 1024
    frame = report.to_frame()
    assert len(frame) == len(report["comparisons"]) >= 2
    assert (frame["max_rel_err"] <= 1e-12).all()
    with pytest.raises(UsageError, match="dtype: expected one of"):
        attnsim.check("attention-1pass", dtype="fp8")


def test_sweep_results_and_the_flat_sql_view(tmp_path: Path) -> None:
    study = tmp_path / "tiny.yaml"
    study.write_text("name: tiny\nkind: gemm\nbase: {arch: fusemax-cloud, dataflow: os}\n"
                     "grid:\n  M: [64, 128]\n  N: [64]\n  K: [32]\n", encoding="utf-8")
    done = attnsim.sweep(study, tmp_path / "out", workers=1)
    assert done.ok and done.summary.total == 2
    frame = done.to_frame()
    assert len(frame) == 2 and list(frame["M"]) == [64, 128]
    # everything fits the buffer: A, B read once and C written once, 2 bytes per word
    assert list(frame["traffic_bytes"]) == [(m * 32 + 32 * 64 + m * 64) * 2 for m in (64, 128)]
    assert attnsim.results(tmp_path / "out").equals(frame)
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as connection:
        flat = pd.read_sql("SELECT * FROM results_flat", connection)
    assert list(flat.columns) == list(frame.columns)
    for column in ("M", "N", "K", "cycles", "traffic_bytes", "energy_pj", "energy_breakdown_pj.pe2d.mac"):
        assert list(flat[column]) == list(frame[column]), column
    with pytest.raises(UsageError, match="no results.sqlite here"):
        attnsim.results(tmp_path)


def test_sweep_runs_a_builtin_study_by_name() -> None:
    from attnsim.studies.study import available_studies, load_study

    assert {"paper", "gpu", "gemm-example", "buffer-vs-bandwidth"} <= set(available_studies())
    assert load_study("gemm-example").name == "gemm-example"
    with pytest.raises(UsageError, match="unknown study 'nope'"):
        load_study("nope")
