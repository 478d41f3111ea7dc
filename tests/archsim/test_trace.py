"""``--trace`` files: Chrome / Perfetto trace-event JSON validated against the Trace Event Format (the
keys and types that format requires, microsecond times recomputed here from the cycles and the
clock), CSV kept for a ``.csv`` suffix, the JSON read back, and the aggregated Gantt chart.

Trace Event Format (the document Perfetto and chrome://tracing implement): a JSON object with a
``traceEvents`` array; every event has ``name``, ``ph`` (phase), ``ts`` (microseconds), ``pid``,
``tid``; complete events (``ph: X``) add ``dur`` (microseconds); metadata events (``ph: M``) named
``process_name`` / ``thread_name`` carry ``args.name``, ``thread_sort_index`` ``args.sort_index``.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.result import TraceRow
from attnsim.archsim.schedule import Operation, Schedule
from attnsim.archsim.trace import (dominant_runs, gantt_figure, read_trace, read_trace_json, write_trace,
                                   write_trace_json)
from attnsim.studies.cli import main

FUSEMAX_CLOCK_HZ = 940e6        # specs/arch/fusemax-cloud.yaml, paper §VI-A
METADATA_NAMES = {"process_name", "thread_name", "process_sort_index", "thread_sort_index", "process_labels"}


def validate_trace_events(document: Any) -> list[dict[str, Any]]:
    """Check ``document`` against the Trace Event Format (module docstring); return its events."""
    assert isinstance(document, dict) and isinstance(document.get("traceEvents"), list)
    assert document.get("displayTimeUnit", "ms") in ("ms", "ns")
    events = document["traceEvents"]
    for event in events:
        for key, kind in (("name", str), ("ph", str), ("pid", int), ("tid", int)):
            assert isinstance(event.get(key), kind), (key, event)
        assert isinstance(event.get("ts"), (int, float)) and event["ts"] >= 0, event
        if event["ph"] == "X":
            assert isinstance(event.get("dur"), (int, float)) and event["dur"] >= 0, event
            assert isinstance(event.get("cat", ""), str)
            assert isinstance(event.get("args", {}), dict)
        elif event["ph"] == "M":
            assert event["name"] in METADATA_NAMES, event
            wanted = "sort_index" if event["name"].endswith("sort_index") else "name"
            assert wanted in event["args"], event
        else:
            pytest.fail(f"unexpected phase {event['ph']!r} (attnsim writes X and M events)")
    return events


def _lanes(events: list[dict[str, Any]]) -> dict[int, str]:
    names = [(e["tid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"]
    assert len({tid for tid, _ in names}) == len(names) == len({name for _, name in names})   # one lane per unit
    return dict(names)


def _schedule() -> Schedule:
    load = Operation(id="load", unit="dram", duration_cycles=30, einsum="")
    qk = Operation(id="qk", unit="pe2d", duration_cycles=20, deps=("load",), einsum="QK")
    sm = Operation(id="sm", unit="pe1d", duration_cycles=15, deps=("qk",), einsum="SLN")
    return Schedule.loop((load, qk, sm), 4)


def test_json_is_trace_event_format_in_microseconds(tmp_path: Path) -> None:
    result = run(_schedule(), trace=True)
    assert result.timeline is not None
    path = tmp_path / "t.json"
    assert write_trace(result, path, clock_hz=FUSEMAX_CLOCK_HZ) == len(result.timeline) == 12
    events = validate_trace_events(json.loads(path.read_text()))
    lanes = _lanes(events)
    assert sorted(lanes.values()) == ["dram", "pe1d", "pe2d"]
    ops = [e for e in events if e["ph"] == "X"]
    assert len(ops) == 12
    us_per_cycle = 1e6 / FUSEMAX_CLOCK_HZ
    for event, row in zip(ops, result.timeline):
        assert lanes[event["tid"]] == row.unit
        assert event["ts"] == pytest.approx(row.start_cycle * us_per_cycle, rel=1e-15)
        assert event["dur"] == pytest.approx((row.end_cycle - row.start_cycle) * us_per_cycle, rel=1e-15)
        assert event["name"] == (row.einsum or row.op_id)
        assert event["args"]["start_cycle"] == row.start_cycle and event["args"]["op_id"] == row.op_id
    # the engine's closed form: a chain, so iteration i's QK starts after i full rounds + the load
    qk = [e for e in ops if e["args"]["op_id"] == "qk"]
    assert [e["args"]["start_cycle"] for e in qk][0] == 30
    assert read_trace_json(path) == result.timeline


def test_csv_suffix_keeps_the_csv(tmp_path: Path) -> None:
    result = run(_schedule(), trace=True)
    path = tmp_path / "t.csv"
    assert write_trace(result, path) == 12               # no clock needed for CSV
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["unit", "einsum", "op_id", "block", "iteration", "start_cycle", "end_cycle"]
    assert read_trace(path) == result.timeline


def test_json_needs_a_clock(tmp_path: Path) -> None:
    result = run(_schedule(), trace=True)                 # no architecture: no latency, no clock
    with pytest.raises(ValueError, match="clock"):
        write_trace_json(result, tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


def test_gemm_cli_trace_json_uses_the_arch_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gemm.json"
    assert main(["gemm", "64", "64", "64", "--arch", "fusemax-cloud", "--trace", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    events = validate_trace_events(json.loads(path.read_text()))
    ops = [e for e in events if e["ph"] == "X"]
    end_cycle = max(e["args"]["end_cycle"] for e in ops)
    assert end_cycle == report["cycles"]
    last = max(ops, key=lambda e: e["ts"] + e["dur"])
    assert last["ts"] + last["dur"] == pytest.approx(report["cycles"] / FUSEMAX_CLOCK_HZ * 1e6, rel=1e-12)
    assert set(_lanes(events).values()) <= {"dram", "pe2d", "pe1d"}


def test_simulate_cli_trace_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sim.json"
    assert main(["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "256", "--trace", str(path),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    events = validate_trace_events(json.loads(path.read_text()))
    ops = [e for e in events if e["ph"] == "X"]
    assert max(e["args"]["end_cycle"] for e in ops) == report["cycles"]
    process = [e for e in events if e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "fusemax on fusemax-cloud: bert-base, seq 256"


def test_dominant_runs_closed_form() -> None:
    # 10 bins of 10 cycles: A busy 0-25 and 70-72, B busy 20-60 -> bins 0,1 A; 2 B (B 10 > A 5); 3-5 B; 7 A
    runs = dominant_runs([(0, 25, "A"), (20, 60, "B"), (70, 72, "A")], 0, 10.0, 10)
    assert runs == [(0.0, 20.0, "A"), (20.0, 40.0, "B"), (70.0, 10.0, "A")]


def test_gantt_of_a_large_timeline_is_aggregated(tmp_path: Path) -> None:
    rows = [TraceRow("pe2d", ("QK", "AV")[(i // 50) % 2], f"op{i}", "main", i, 10 * i, 10 * i + 10)
            for i in range(20_000)]
    rows += [TraceRow("dram", "", "load", "main", 0, 0, 200_000)]
    figure = gantt_figure(rows, resolution_px=1000)
    axes = figure.axes[0]
    bars = [(float(p.vertices[:, 0].min()), float(p.vertices[:, 0].max()))
            for c in axes.collections for p in c.get_paths()]
    # QK / AV alternate every 500 cycles = 2.5 bins of 200 cycles: at most one bar per bin, and the
    # whole 200000-cycle span is covered on pe2d, once on dram
    assert len(bars) <= 1000 + 1
    assert math.isclose(sum(b - a for a, b in bars), 2 * 200_000, rel_tol=1e-9)
    assert "busiest Einsum per 200-cycle bin of 20001 operations" in axes.get_title()
    small = gantt_figure(rows[:10])
    assert len([p for c in small.axes[0].collections for p in c.get_paths()]) == 10       # exact below the cap


def test_plot_gantt_reads_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(_schedule(), trace=True)
    write_trace(result, tmp_path / "t.json", clock_hz=FUSEMAX_CLOCK_HZ)
    assert main(["plot", "--gantt", str(tmp_path / "t.json"), "--out", str(tmp_path / "g.pdf")]) == 0
    assert capsys.readouterr().out.startswith("wrote the Gantt chart of 12 operations")
    (tmp_path / "bad.json").write_text('{"traceEvents": [{"ph": "X"}]}')
    assert main(["plot", "--gantt", str(tmp_path / "bad.json"), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not an attnsim trace-event file" in err
