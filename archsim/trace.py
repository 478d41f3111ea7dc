"""Per-operation timelines as CSV (one row per executed operation), enough to draw a Gantt chart.

Columns: ``unit, einsum, op_id, block, iteration, start_cycle, end_cycle``. A timeline exists only for
full simulations: ``archsim.engine.run(schedule, trace=True)``.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from attnsim.archsim.result import Result, TraceRow
from attnsim.safe_io import read_text, write_text_atomic

COLUMNS = TraceRow._fields


def write_trace_csv(result_or_timeline: Result | Iterable[TraceRow], path: str | Path) -> int:
    """Write the timeline to ``path``; return the number of rows written.

    Raises ValueError if given a Result without a timeline (run the engine with ``trace=True``).
    """
    if isinstance(result_or_timeline, Result):
        if result_or_timeline.timeline is None:
            raise ValueError("this result has no timeline: run the engine with trace=True "
                             "(a full, non-extrapolated simulation)")
        rows: Iterable[TraceRow] = result_or_timeline.timeline
    else:
        rows = result_or_timeline
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


def plot_gantt(timeline: Iterable[TraceRow], path: str | Path, title: str = "") -> None:
    """Draw a Gantt chart (one lane per unit, one bar per operation, coloured by Einsum) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(timeline)
    units = list(dict.fromkeys(row.unit for row in rows))
    einsums = list(dict.fromkeys(row.einsum for row in rows))
    colours = {einsum: plt.get_cmap("tab10")(i % 10) for i, einsum in enumerate(einsums)}
    figure, axes = plt.subplots(figsize=(10, 0.6 * len(units) + 1.5))
    for row in rows:
        axes.barh(units.index(row.unit), max(row.end_cycle - row.start_cycle, 0.5), left=row.start_cycle,
                  color=colours[row.einsum], edgecolor="black", linewidth=0.3)
    axes.set_yticks(range(len(units)), units)
    axes.invert_yaxis()
    axes.set_xlabel("cycle")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[e]) for e in einsums]
    axes.legend(handles, [e or "(untagged)" for e in einsums], loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
