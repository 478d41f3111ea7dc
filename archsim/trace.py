"""Per-operation timelines: Chrome / Perfetto trace-event JSON or CSV, and a Gantt chart.

A timeline exists only for full simulations (``archsim.engine.run(schedule, trace=True)``); each row
is one executed operation (:class:`archsim.result.TraceRow`, times in cycles).

Formats, chosen by :func:`write_trace` from the file suffix:

``.json`` (any suffix but ``.csv``)
    The Trace Event Format that Perfetto (ui.perfetto.dev) and ``chrome://tracing`` open: a
    ``{"traceEvents": [...]}`` object. One complete event (``"ph": "X"``) per operation with ``ts`` and
    ``dur`` in microseconds (cycles / clock_hz x 1e6), ``pid`` 1, ``tid`` = the unit's lane
    (1, 2, ... in order of first use), ``name`` = the Einsum (the op id when untagged), ``cat`` =
    ``"op"``, and ``args`` holding the op id, block, iteration and start/end cycles. Metadata events
    (``"ph": "M"``) name the process (``process_name``) and every lane after its unit
    (``thread_name``), and keep the lanes in that order (``thread_sort_index``).
``.csv``
    Columns ``unit, einsum, op_id, block, iteration, start_cycle, end_cycle``.

:func:`plot_gantt` draws one lane per unit with one ``broken_barh`` per (unit, Einsum), no edges; a
lane with more operations than the drawing has columns shows the busiest Einsum per column
(:func:`dominant_runs`), so a 100k-operation timeline renders in seconds
(``benchmarks/bench_gantt.py`` prints the time) and stays readable instead of a black band.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attnsim.archsim.result import Result, TraceRow
from attnsim.safe_io import read_text, write_text_atomic

COLUMNS = TraceRow._fields
"""The CSV header of a trace."""

TRACE_PID = 1
"""The trace-event process id of a schedule (one schedule per file)."""

GANTT_RESOLUTION_PX = 2000
"""Time bins of an aggregated Gantt lane (about the columns of a 10-inch drawing at 200 dpi)."""


def _rows_of(result_or_timeline: Result | Iterable[TraceRow]) -> Iterable[TraceRow]:
    if isinstance(result_or_timeline, Result):
        if result_or_timeline.timeline is None:
            raise ValueError("this result has no timeline: run the engine with trace=True "
                             "(a full, non-extrapolated simulation)")
        return result_or_timeline.timeline
    return result_or_timeline


def clock_of(result: Result) -> float | None:
    """The clock in Hz of a result simulated on an architecture (cycles / latency_s), else None."""
    if result.latency_s is None or result.latency_s <= 0 or result.cycles <= 0:
        return None
    return result.cycles / result.latency_s


def write_trace_csv(result_or_timeline: Result | Iterable[TraceRow], path: str | Path) -> int:
    """Write the timeline to ``path`` as CSV; return the number of rows written.

    Raises ValueError if given a Result without a timeline (run the engine with ``trace=True``).
    """
    rows = _rows_of(result_or_timeline)
    count = 0
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(tuple(row))
        count += 1
    write_text_atomic(path, buffer.getvalue())  # whole or not at all (attnsim.safe_io)
    return count


def read_trace_csv(path: str | Path) -> list[TraceRow]:
    """Read a timeline written by :func:`write_trace_csv`."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    return [TraceRow(row["unit"], row["einsum"], row["op_id"], row["block"], int(row["iteration"]),
                     int(row["start_cycle"]), int(row["end_cycle"])) for row in reader]


def trace_events(rows: Sequence[TraceRow], clock_hz: float, process_name: str = "attnsim schedule"
                 ) -> list[dict[str, Any]]:
    """The trace events of a timeline (module docstring): metadata first, then one ``X`` per op."""
    if not clock_hz > 0:
        raise ValueError(f"clock_hz: expected a positive clock in Hz, got {clock_hz!r}")
    us_per_cycle = 1e6 / clock_hz
    lanes = {unit: lane for lane, unit in enumerate(dict.fromkeys(row.unit for row in rows), start=1)}
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": TRACE_PID, "tid": 0, "ts": 0,
         "args": {"name": process_name}}]
    for unit, lane in lanes.items():
        events.append({"ph": "M", "name": "thread_name", "pid": TRACE_PID, "tid": lane, "ts": 0,
                       "args": {"name": unit}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": TRACE_PID, "tid": lane, "ts": 0,
                       "args": {"sort_index": lane}})
    for row in rows:
        events.append({
            "ph": "X", "name": row.einsum or row.op_id, "cat": "op", "pid": TRACE_PID, "tid": lanes[row.unit],
            "ts": row.start_cycle * us_per_cycle, "dur": (row.end_cycle - row.start_cycle) * us_per_cycle,
            "args": {"op_id": row.op_id, "block": row.block, "iteration": row.iteration,
                     "start_cycle": row.start_cycle, "end_cycle": row.end_cycle},
        })
    return events


def write_trace_json(result_or_timeline: Result | Iterable[TraceRow], path: str | Path,
                     clock_hz: float | None = None, process_name: str = "attnsim schedule") -> int:
    """Write the timeline as trace-event JSON (module docstring); return the number of operations.

    ``clock_hz`` converts cycles to microseconds; from a Result it defaults to the result's clock
    (cycles / latency_s). Raises ValueError without a timeline or a clock.
    """
    rows = list(_rows_of(result_or_timeline))
    if clock_hz is None and isinstance(result_or_timeline, Result):
        clock_hz = clock_of(result_or_timeline)
    if clock_hz is None:
        raise ValueError("a trace-event file needs the clock (clock_hz) to turn cycles into microseconds")
    document = {"traceEvents": trace_events(rows, clock_hz, process_name), "displayTimeUnit": "ns",
                "otherData": {"clock_hz": clock_hz, "time_unit": "us", "source": "attnsim"}}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"))
        handle.write("\n")
    return len(rows)


def write_trace(result_or_timeline: Result | Iterable[TraceRow], path: str | Path,
                clock_hz: float | None = None, process_name: str = "attnsim schedule") -> int:
    """Write the timeline to ``path``: CSV for a ``.csv`` suffix, trace-event JSON otherwise."""
    if Path(path).suffix.lower() == ".csv":
        return write_trace_csv(result_or_timeline, path)
    return write_trace_json(result_or_timeline, path, clock_hz, process_name)


def read_trace_json(path: str | Path) -> list[TraceRow]:
    """Read the operations of a trace-event file written by :func:`write_trace_json` (from ``args``)."""
    document = json.loads(read_text(path))
    events = document["traceEvents"] if isinstance(document, dict) else document
    units = {event["tid"]: event["args"]["name"] for event in events
             if event.get("ph") == "M" and event.get("name") == "thread_name"}
    rows = []
    for event in events:
        if event.get("ph") != "X":
            continue
        args = event["args"]
        einsum = "" if event["name"] == args["op_id"] else event["name"]
        rows.append(TraceRow(units[event["tid"]], einsum, args["op_id"], args["block"], int(args["iteration"]),
                             int(args["start_cycle"]), int(args["end_cycle"])))
    return rows


def read_trace(path: str | Path) -> list[TraceRow]:
    """Read a trace written by :func:`write_trace` (CSV or trace-event JSON, by suffix)."""
    if Path(path).suffix.lower() == ".csv":
        return read_trace_csv(path)
    return read_trace_json(path)


def dominant_runs(intervals: Sequence[tuple[int, int, str]], t0: float, bin_cycles: float, bins: int
                  ) -> list[tuple[float, float, str]]:
    """Aggregate ``(start, end, einsum)`` intervals of one unit into ``bins`` time bins of
    ``bin_cycles`` from ``t0``: each busy bin shows the Einsum that is busiest in it, adjacent bins of
    one Einsum joined. Returns ``(start, width, einsum)`` bars in cycles."""
    import numpy as np

    names = list(dict.fromkeys(einsum for _, _, einsum in intervals))
    column = {name: i for i, name in enumerate(names)}
    starts = np.array([s for s, _, _ in intervals], dtype=float) - t0
    ends = np.array([e for _, e, _ in intervals], dtype=float) - t0
    rows = np.array([column[e] for _, _, e in intervals], dtype=np.int64)
    first = np.clip((starts // bin_cycles).astype(np.int64), 0, bins - 1)
    last = np.clip((np.maximum(ends - 1e-9, starts) // bin_cycles).astype(np.int64), 0, bins - 1)
    busy = np.zeros((len(names), bins + 1))
    same = first == last
    np.add.at(busy, (rows[same], first[same]), ends[same] - starts[same])
    split = ~same
    np.add.at(busy, (rows[split], first[split]), (first[split] + 1) * bin_cycles - starts[split])
    np.add.at(busy, (rows[split], last[split]), ends[split] - last[split] * bin_cycles)
    full = np.zeros((len(names), bins + 1))              # whole bins between first and last: a difference array
    inner = split & (last > first + 1)
    np.add.at(full, (rows[inner], first[inner] + 1), bin_cycles)
    np.add.at(full, (rows[inner], last[inner]), -bin_cycles)
    busy = (busy + np.cumsum(full, axis=1))[:, :bins]
    winner = np.argmax(busy, axis=0)
    active = busy.max(axis=0) > 0
    bars: list[tuple[float, float, str]] = []
    run_start: int | None = None
    run_name = 0
    for b in range(bins + 1):
        current = int(winner[b]) if b < bins and active[b] else None
        if run_start is not None and current != run_name:
            bars.append((t0 + run_start * bin_cycles, (b - run_start) * bin_cycles, names[run_name]))
            run_start = None
        if current is not None and run_start is None:
            run_start, run_name = b, current
    return bars


def gantt_figure(timeline: Iterable[TraceRow], title: str = "", resolution_px: int = GANTT_RESOLUTION_PX
                 ) -> Any:
    """The Gantt chart (module docstring) as a matplotlib Figure: one lane per unit (in order of first
    use), one ``broken_barh`` per (unit, Einsum) coloured by Einsum. A unit with more operations than
    ``resolution_px`` is aggregated (:func:`dominant_runs`: the busiest Einsum per 1/resolution_px of
    the span), so that 100k operations draw in seconds and stay readable; the title says so."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = list(timeline)
    units = list(dict.fromkeys(row.unit for row in rows))
    einsums = list(dict.fromkeys(row.einsum for row in rows))
    cmap = matplotlib.colormaps["tab20"]
    colours = {einsum: cmap(i % 20) for i, einsum in enumerate(einsums)}
    t0 = min((row.start_cycle for row in rows), default=0)
    span = max(max((row.end_cycle for row in rows), default=1) - t0, 1)
    bin_cycles = span / resolution_px
    figure = Figure(figsize=(10, 0.5 * len(units) + 1.6), layout="constrained")
    axes = figure.add_subplot()
    aggregated = []
    for lane, unit in enumerate(units):
        mine = [(row.start_cycle, row.end_cycle, row.einsum) for row in rows if row.unit == unit]
        if len(mine) > resolution_px:
            aggregated.append(unit)
            bars = dominant_runs(mine, t0, bin_cycles, resolution_px)
        else:
            bars = [(float(s), float(max(e - s, 0)), einsum) for s, e, einsum in mine]
        for einsum in einsums:
            spans = [(s, w) for s, w, e in bars if e == einsum]
            if spans:
                axes.broken_barh(spans, (lane - 0.4, 0.8), facecolors=colours[einsum], linewidth=0,
                                 label=einsum or "(untagged)")
    axes.set_yticks(range(len(units)), units)
    axes.set_ylim(len(units) - 0.5, -0.5)
    axes.set_xlim(t0, t0 + span)
    axes.set_xlabel("cycle")
    handles = [Patch(color=colours[e], label=e or "(untagged)") for e in einsums]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", title="Einsum")
    note = (f"{', '.join(aggregated)}: busiest Einsum per {bin_cycles:.4g}-cycle bin of {len(rows)} operations "
            f"(zoom into the --trace JSON in Perfetto)") if aggregated else ""
    if title or note:
        axes.set_title("\n".join(part for part in (title, note) if part), fontsize="small")
    return figure


def plot_gantt(timeline: Iterable[TraceRow], path: str | Path, title: str = "",
               resolution_px: int = GANTT_RESOLUTION_PX) -> int:
    """Draw :func:`gantt_figure` to ``path`` (format from its suffix); return the number of bars drawn."""
    figure = gantt_figure(timeline, title, resolution_px)
    figure.savefig(path)
    return sum(len(collection.get_paths()) for collection in figure.axes[0].collections)


__all__ = ["COLUMNS", "GANTT_RESOLUTION_PX", "TRACE_PID", "clock_of", "dominant_runs", "gantt_figure", "plot_gantt",
           "read_trace", "read_trace_csv", "read_trace_json", "trace_events", "write_trace", "write_trace_csv",
           "write_trace_json"]
