"""``attnsim gemm M N K --arch ARCH --dataflow os|ws|is [--fill-drain per_fold|scalesim|overlapped]
[--set k=v ...] [--json] [--trace FILE.csv]``.

Maps C[M,N] = A[M,K] @ B[K,N] onto the architecture's 2D array (``mappers.gemm``), runs the schedule
on the engine, and prints cycles, compute_cycles (the same mapping with DRAM never stalling), util_2d,
traffic_bytes, energy_pj, latency_s, the fill/drain convention and the mapping (loop order and
what stays in the global buffer).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.spec import load_arch, parse_overrides
from attnsim.archsim.trace import write_trace_csv
from attnsim.studies.limits import MAX_GEMM_DIM, size_problem
from attnsim.studies.outputs import output_file
from attnsim.mappers.gemm import DATAFLOWS, FILL_DRAIN, map_gemm, plan_gemm
from attnsim.studies.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "gemm", help="simulate a GEMM on an architecture's 2D systolic array",
        description="Simulate C[M,N] = A[M,K] @ B[K,N] on the 2D array of an architecture and print "
                    "cycles, compute cycles (DRAM never stalling), 2D utilisation, DRAM traffic, "
                    "energy and latency.")
    parser.add_argument("m", metavar="M", help="rows of A and C (positive integer)")
    parser.add_argument("n", metavar="N", help="columns of B and C (positive integer)")
    parser.add_argument("k", metavar="K", help="columns of A, rows of B (positive integer)")
    parser.add_argument("--arch", default="fusemax-cloud",
                        help="architecture YAML path or name in specs/arch/ (default fusemax-cloud)")
    parser.add_argument("--dataflow", default="os", help=f"one of {', '.join(DATAFLOWS)} (default os)")
    parser.add_argument("--fill-drain", default="per_fold",
                        help=f"fold fill/drain convention: {', '.join(FILL_DRAIN)} (default per_fold: "
                             f"2R+C+T-2 cycles per fold, as the PE-level simulator; scalesim: SCALE-Sim "
                             f"v3's count, OS folds T+R+C-2; overlapped: folds back to back, one "
                             f"fill/drain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override an architecture value, e.g. arrays.pe2d.rows=32 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE.csv",
                        help="write the per-operation timeline (full simulation) to a CSV file")
    parser.set_defaults(func=run)


def _dimension(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"gemm: {name}: expected a positive integer, got '{text}'") from None
    if value < 1:
        raise UsageError(f"gemm: {name}: expected a positive integer, got {value}")
    problem = size_problem(name, value, MAX_GEMM_DIM, "a GEMM dimension")
    if problem is not None:
        raise UsageError(f"gemm: {problem}")
    return value


REPORT_KEYS = ("cycles", "compute_cycles", "util_2d", "traffic_bytes", "energy_pj", "latency_s",
               "fill_drain", "mapping")


def gemm_report(m: int, n: int, k: int, arch_spec: str, dataflow: str, fill_drain: str = "per_fold",
                overrides: dict[str, object] | None = None, trace_path: str | None = None
                ) -> dict[str, Any]:
    """Everything ``attnsim gemm --json`` prints: exactly :data:`REPORT_KEYS`.

    cycles: makespan (DRAM included); compute_cycles: the same mapping with DRAM never stalling;
    util_2d: MACs / (2D PEs x cycles); traffic_bytes: DRAM reads + writes; energy_pj; latency_s;
    fill_drain: the convention used; mapping: loop order and operand modes, e.g.
    ``"M-outer, A block, B whole, C once"`` (see :mod:`mappers.gemm`).
    """
    arch = load_arch(arch_spec, overrides)
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    schedule = map_gemm(m, n, k, arch, dataflow, fill_drain)
    result = run_schedule(schedule, arch, trace=trace_path is not None)
    if trace_path is not None:
        write_trace_csv(result, trace_path)
    compute = run_schedule(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True))
    return {
        "cycles": result.cycles,
        "compute_cycles": compute.cycles,
        "util_2d": result.utilisation.get("pe2d", 0.0),
        "traffic_bytes": result.traffic_bytes,
        "energy_pj": result.energy_pj,
        "latency_s": result.latency_s,
        "fill_drain": fill_drain,
        "mapping": plan.description,
    }


def run(args: argparse.Namespace) -> int:
    """Parse, map, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    m, n, k = (_dimension(name, text) for name, text in (("M", args.m), ("N", args.n), ("K", args.k)))
    overrides = parse_overrides(args.overrides)
    if args.trace:
        output_file("--trace", args.trace)
    report = gemm_report(m, n, k, args.arch, args.dataflow, args.fill_drain, overrides, args.trace)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gemm {m}x{n}x{k} on {args.arch}, dataflow {args.dataflow}, fill/drain {args.fill_drain}")
    for key in REPORT_KEYS:
        value = report[key]
        print(f"  {key:<15} {value:.6g}" if isinstance(value, float) else f"  {key:<15} {value}")
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0
