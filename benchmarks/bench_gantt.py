"""Time the Gantt chart and the trace-event export of a large schedule (prints; asserts nothing).

    .venv/bin/python benchmarks/bench_gantt.py            # a synthetic 100k-operation timeline
    .venv/bin/python benchmarks/bench_gantt.py --simulate # FuseMax, BERT, 1K tokens (145k operations)

The synthetic timeline: three units (dram, pe2d, pe1d), operations of 4-40 cycles back to back on
each unit, Einsums cycling through six names, deterministic (seeded). Prints the wall time of
``archsim.trace.plot_gantt`` (PNG and PDF), of ``write_trace_json`` and the file sizes.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from attnsim.archsim.result import TraceRow
from attnsim.archsim.trace import plot_gantt, write_trace_json

EINSUMS = ("QK", "LM", "SLN", "SLD", "SLNV", "AV")
UNITS = ("dram", "pe2d", "pe1d")


def synthetic_timeline(operations: int, seed: int = 19) -> list[TraceRow]:
    """``operations`` rows spread over the units, each unit's operations back to back."""
    rng = random.Random(seed)
    clocks = dict.fromkeys(UNITS, 0)
    rows = []
    for i in range(operations):
        unit = UNITS[i % len(UNITS)]
        duration = rng.randint(4, 40)
        start = clocks[unit] + rng.randint(0, 3)
        rows.append(TraceRow(unit, EINSUMS[(i // 7) % len(EINSUMS)], f"op{i}", "main", i // len(UNITS), start,
                             start + duration))
        clocks[unit] = start + duration
    return rows


def simulated_timeline() -> tuple[list[TraceRow], float]:
    from attnsim.archsim.engine import run
    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.designs import MapOptions
    from attnsim.mappers.workloads import load_workload
    from attnsim.studies.simulate import load_mapper

    arch = load_arch("fusemax-cloud")
    mapped = load_mapper("fusemax")(load_workload("bert-base"), 1024, arch, options=MapOptions())
    result = run(mapped.schedule, arch, trace=True)
    assert result.timeline is not None
    return result.timeline, arch.clock_hz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=100_000, help="synthetic timeline size (default 100000)")
    parser.add_argument("--simulate", action="store_true", help="time FuseMax / BERT / 1K instead")
    args = parser.parse_args(argv)
    if args.simulate:
        rows, clock_hz = simulated_timeline()
        what = "FuseMax, BERT, 1K tokens"
    else:
        rows, clock_hz = synthetic_timeline(args.operations), 940e6
        what = "synthetic"
    print(f"timeline: {len(rows)} operations ({what}), {len({r.unit for r in rows})} units")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("png", "pdf"):
            target = Path(tmp) / f"gantt.{suffix}"
            started = time.perf_counter()
            bars = plot_gantt(rows, target, title=what)
            print(f"  plot_gantt -> .{suffix}: {time.perf_counter() - started:6.2f} s, {bars} bars, "
                  f"{target.stat().st_size / 1e6:.2f} MB")
        target = Path(tmp) / "trace.json"
        started = time.perf_counter()
        write_trace_json(rows, target, clock_hz=clock_hz)
        print(f"  write_trace_json:  {time.perf_counter() - started:6.2f} s, {target.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
