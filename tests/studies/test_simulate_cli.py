"""``studies.simulate.simulate`` and ``attnsim simulate``: JSON keys, end-to-end sums, traces, bad input."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from attnsim.mappers import designs
from attnsim.mappers.errors import MappingError
from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.simulate import TRACE_MAX_OPS, parse_seq, simulate

REQUIRED_KEYS = {"latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "area_mm2",
                 "per_einsum", "design", "model", "seq", "arch"}
END_TO_END_KEYS = {"attention_latency_s", "linear_latency_s", "attention_energy_pj", "linear_energy_pj"}
CLOCK_HZ = 940e6


def test_report_keys_and_units() -> None:
    report = simulate("flat", "bert-base", 1024)
    assert REQUIRED_KEYS <= set(report)
    assert not END_TO_END_KEYS & set(report)
    assert (report["design"], report["model"], report["seq"], report["arch"]) == ("flat", "bert-base", 1024, "flat-cloud")
    assert report["latency_s"] == pytest.approx(report["cycles"] / CLOCK_HZ)
    assert set(report["per_einsum"]) == {"QK", "GM", "SN", "SD", "A", "AV"}
    for row in report["per_einsum"].values():
        assert set(row) == {"util_2d", "util_1d", "cycles"}
        assert row["cycles"] == pytest.approx((row["util_2d"] + row["util_1d"]) * report["cycles"])
    assert sum(r["util_2d"] for r in report["per_einsum"].values()) == pytest.approx(report["util_2d"])
    assert sum(r["util_1d"] for r in report["per_einsum"].values()) == pytest.approx(report["util_1d"])
    json.dumps(report)


def test_end_to_end_sums() -> None:
    report = simulate("unfused", "bert-base", 1024, end_to_end=True)
    assert END_TO_END_KEYS <= set(report)
    assert report["latency_s"] == pytest.approx(report["attention_latency_s"] + report["linear_latency_s"])
    assert report["energy_pj"] == pytest.approx(report["attention_energy_pj"] + report["linear_energy_pj"])
    # the linear layers do B*P*(4*D*E*H + 2*D*S) MACs (fact sheet §5), at best 65536 per cycle
    linear_macs = 64 * 1024 * (4 * 768 * 64 * 12 + 2 * 768 * 3072)
    assert report["linear_latency_s"] * CLOCK_HZ >= linear_macs / 65536
    assert report["linear_energy_pj"] >= linear_macs * 17.1645
    assert report["attention_latency_s"] == pytest.approx(simulate("unfused", "bert-base", 1024)["latency_s"])


def test_arch_override_and_closed_form() -> None:
    base = simulate("flash2", "bert-base", 1024, closed_form=True)
    half = simulate("flash2", "bert-base", 1024, overrides={"arrays.pe1d.size": 128}, closed_form=True)
    assert half["arch"] == base["arch"] == "fusemax-cloud"
    assert half["cycles"] > base["cycles"]
    assert base["cycles"] <= simulate("flash2", "bert-base", 1024)["cycles"]


def test_parse_seq() -> None:
    assert parse_seq("4096") == parse_seq("4K") == parse_seq("4k") == 4096
    assert parse_seq("1M") == 1048576
    for bad in ("", "x", "1.5K", "0", "-3"):
        with pytest.raises(UsageError):
            parse_seq(bad)


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--design", "flat", "--model", "bert-base", "--seq", "1K", "--json",
                 "--end-to-end"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert REQUIRED_KEYS | END_TO_END_KEYS <= set(report)


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--design", "unfused", "--model", "t5-small", "--seq", "1024"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unfused (attention-3pass under mapping unfused) on flat-cloud: t5-small, seq 1024")
    assert "latency_s" in out and "per Einsum" in out


def test_trace(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "trace.csv"
    workload = tmp_path / "tiny.yaml"
    workload.write_text("\n".join([
        "name: tiny", "batch: 1", "d_model: 32", "heads: 1", "head_dim_e: 32", "head_dim_f: 32", "ffn: 64",
        "seq_lengths: [256]", "source: test",
        "sources: {batch: t, d_model: t, heads: t, head_dim_e: t, head_dim_f: t, ffn: t, seq_lengths: t}"]))
    assert main(["simulate", "--design", "unfused", "--model", str(workload), "--seq", "256",
                 "--trace", str(path)]) == 0
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    report = simulate("unfused", str(workload), 256)
    assert len(rows) > 0
    assert max(int(row["end_cycle"]) for row in rows) == report["cycles"]
    assert {row["einsum"] for row in rows} >= {"QK", "GM", "SN", "SD", "A", "AV"}


def test_trace_refused_for_big_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=f"more than the {TRACE_MAX_OPS} a trace may hold"):
        simulate("unfused", "bert-base", 4096, trace=tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_unavailable_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = designs.Design("ghost", "attnsim.mappers.ghost_module:map_attention", "attention-1pass", "fusemax-cloud", "test")
    monkeypatch.setitem(designs.DESIGNS, "ghost", ghost)
    with pytest.raises(UsageError, match="design 'ghost': its mapper attnsim.mappers.ghost_module:map_attention is not available"):
        simulate("ghost", "bert-base", 1024)


@pytest.mark.parametrize("argv, message", [
    (["--design", "nope", "--model", "bert-base", "--seq", "1024"], "unknown design 'nope'"),
    (["--design", "flat", "--model", "nope", "--seq", "1024"], "unknown workload 'nope'"),
    (["--design", "flat", "--model", "bert-base", "--seq", "1024", "--set", "global_buffer.capacity_bytes=65536"],
     "more than global_buffer.capacity_bytes = 65536"),
    (["--design", "flat", "--model", "bert-base", "--seq", "many"], "--seq: expected a positive integer"),
    (["--design", "flat", "--model", "bert-base", "--seq", "1024", "--set", "arrays.pe2d.rows=-4"],
     "--set arrays.pe2d.rows=-4: expected a positive integer"),
    (["--design", "flat", "--model", "bert-base", "--seq", "1024", "--set", "nokey"], "--set nokey: expected KEY=VALUE"),
    (["--design", "flat", "--model", "bert-base", "--seq", "1024", "--arch", "nope"], "unknown architecture 'nope'"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("attnsim: error: ")


def test_bad_input_in_a_real_process_has_no_traceback() -> None:
    process = subprocess.run([sys.executable, "-m", "attnsim", "simulate", "--cascade", "attention-1pass",
                              "--mapping", "unfused", "--model", "bert-base", "--seq", "1024"],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1
    assert "specs/mappings/unfused.yaml: sizes:" in process.stderr and "missing size for shape symbol M0" in process.stderr


def test_mapping_error_is_a_user_error() -> None:
    with pytest.raises(MappingError):
        simulate(None, "bert-base", 1024, cascade="attention-1pass", mapping="unfused")
