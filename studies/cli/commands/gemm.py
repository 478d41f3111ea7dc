"""``attnsim gemm M N K --arch ARCH --dataflow os|ws|is [--fill-drain per_fold|scalesim|overlapped]
[--set k=v ...] [--json] [--trace FILE]`` and ``attnsim gemm --scalesim CFG --topology CSV [--arch ARCH]``.

Maps C[M,N] = A[M,K] @ B[K,N] onto the architecture's 2D array (``mappers.gemm``), runs the schedule
on the engine, and prints cycles, compute_cycles (the same mapping with DRAM never stalling), util_2d,
traffic_bytes, energy_pj, latency_s, the fill/drain convention and the mapping (loop order and
what stays in the global buffer). ``--trace`` writes the timeline as Perfetto / Chrome trace-event
JSON, or CSV when the file ends in ``.csv``.

With ``--scalesim`` the array size, dataflow, SRAM capacity and (``InterfaceBandwidth = USER``) DRAM
bandwidth come from a SCALE-Sim ``.cfg`` and the GEMMs from its topology CSV
(:mod:`archsim.importers.scalesim`); every layer is simulated with SCALE-Sim's fold convention
(``--fill-drain scalesim`` unless given) and printed as one row (``--json``: a list of reports).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from attnsim.studies.cli.options import add_set_option, key_value_table, parse_count, parse_key_values
from attnsim.studies.limits import MAX_GEMM_DIM, size_problem
from attnsim.studies.outputs import output_file
from attnsim.studies.errors import UsageError

DATAFLOW_NAMES = ("os", "ws", "is")
"""``--dataflow`` choices (:data:`mappers.gemm.DATAFLOWS`, repeated so the parser imports nothing heavy)."""

FILL_DRAIN_NAMES = ("per_fold", "scalesim", "overlapped")
"""``--fill-drain`` choices (:data:`mappers.gemm.FILL_DRAIN`)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "gemm", help="simulate a GEMM on an architecture's 2D systolic array",
        description="Simulate C[M,N] = A[M,K] @ B[K,N] on the 2D array of an architecture and print "
                    "cycles, compute cycles (DRAM never stalling), 2D utilisation, DRAM traffic, "
                    "energy and latency.")
    parser.add_argument("m", metavar="M", nargs="?", help="rows of A and C (positive integer, e.g. 4096 or 4K)")
    parser.add_argument("n", metavar="N", nargs="?", help="columns of B and C (positive integer)")
    parser.add_argument("k", metavar="K", nargs="?", help="columns of A, rows of B (positive integer)")
    parser.add_argument("--arch", default="fusemax-cloud",
                        help="architecture YAML path or name in specs/arch/ (default fusemax-cloud)")
    parser.add_argument("--dataflow", default=None, help=f"one of {', '.join(DATAFLOW_NAMES)} (default os)")
    parser.add_argument("--fill-drain", default=None,
                        help=f"fold fill/drain convention: {', '.join(FILL_DRAIN_NAMES)} (default per_fold: "
                             f"2R+C+T-2 cycles per fold, as the PE-level simulator; scalesim: SCALE-Sim "
                             f"v3's count, OS folds T+R+C-2; overlapped: folds back to back, one "
                             f"fill/drain)")
    add_set_option(parser, "arrays.pe2d.rows=32")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE",
                        help="write the per-operation timeline (full simulation): trace-event JSON for "
                             "Perfetto (ui.perfetto.dev), or CSV when FILE ends in .csv")
    parser.add_argument("--scalesim", metavar="CFG",
                        help="take the array, dataflow, SRAM and bandwidth from a SCALE-Sim .cfg "
                             "(with --topology instead of M N K)")
    parser.add_argument("--topology", metavar="CSV", help="with --scalesim: the SCALE-Sim topology CSV "
                        "(GEMM rows 'Layer, M, N, K' or convolution rows)")
    parser.set_defaults(func=run)


def _dimension(name: str, text: str) -> int:
    """A GEMM dimension (``4096``, ``4K``) within :data:`studies.limits.MAX_GEMM_DIM`."""
    value = parse_count(text, f"gemm: {name}")
    problem = size_problem(name, value, MAX_GEMM_DIM, "a GEMM dimension")
    if problem is not None:
        raise UsageError(f"gemm: {problem}")
    return value


REPORT_KEYS = ("m", "n", "k", "arch", "dataflow", "fill_drain", "latency_s", "cycles", "compute_cycles",
               "energy_pj", "traffic_bytes", "util_2d", "mapping", "plan")


def gemm_report(m: int, n: int, k: int, arch_spec: str, dataflow: str, fill_drain: str = "per_fold",
                overrides: dict[str, object] | None = None, trace_path: str | None = None
                ) -> dict[str, Any]:
    """Everything ``attnsim gemm --json`` prints: exactly :data:`REPORT_KEYS`.

    m, n, k: the shape; arch: the architecture's name; dataflow; cycles: makespan (DRAM included); compute_cycles: the same mapping with DRAM never stalling;
    util_2d: MACs / (2D PEs x cycles); traffic_bytes: DRAM reads + writes; energy_pj; latency_s;
    fill_drain: the convention used; mapping: loop order and operand modes, e.g.
    ``"M-outer, A block, B whole, C once"`` (see :mod:`mappers.gemm`); plan: the same mapping as data
    (loop order, modes, block height, chunking: :attr:`mappers.gemm.GemmPlan.mapping`).
    """
    from attnsim.archsim.engine import run as run_schedule
    from attnsim.archsim.spec import load_arch
    from attnsim.archsim.trace import write_trace
    from attnsim.mappers.gemm import map_gemm, plan_gemm

    arch = load_arch(arch_spec, overrides)
    plan = plan_gemm(m, n, k, arch, dataflow, fill_drain)
    schedule = map_gemm(m, n, k, arch, dataflow, fill_drain)
    result = run_schedule(schedule, arch, trace=trace_path is not None)
    if trace_path is not None:
        write_trace(result, trace_path, process_name=f"gemm {m}x{n}x{k} on {arch.name}, {dataflow}")
    compute = run_schedule(map_gemm(m, n, k, arch, dataflow, fill_drain, ideal_dram=True))
    return {
        "m": m, "n": n, "k": k, "arch": arch.name, "dataflow": dataflow, "fill_drain": fill_drain,
        "latency_s": result.latency_s,
        "cycles": result.cycles,
        "compute_cycles": compute.cycles,
        "energy_pj": result.energy_pj,
        "traffic_bytes": result.traffic_bytes,
        "util_2d": result.utilisation.get("pe2d", 0.0),
        "mapping": plan.description,
        "plan": plan.mapping,
    }


def run(args: argparse.Namespace) -> int:
    """Parse, map, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    if args.scalesim is not None or args.topology is not None:
        return run_scalesim(args)
    if args.m is None or args.n is None or args.k is None:
        raise UsageError("gemm: expected M N K, or --scalesim CFG --topology CSV")
    m, n, k = (_dimension(name, text) for name, text in (("M", args.m), ("N", args.n), ("K", args.k)))
    dataflow, fill_drain = args.dataflow or "os", args.fill_drain or "per_fold"
    overrides = parse_key_values(args.overrides)
    if args.trace is not None:
        output_file("--trace", args.trace)
    report = gemm_report(m, n, k, args.arch, dataflow, fill_drain, overrides, args.trace)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"gemm {m}x{n}x{k} on {report['arch']}, dataflow {dataflow}, fill/drain {fill_drain}")
    print(key_value_table(report, REPORT_KEYS))
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0


def run_scalesim(args: argparse.Namespace) -> int:
    """``--scalesim CFG --topology CSV``: every topology layer on the configured array, one row each."""
    from attnsim.archsim.importers.scalesim import read_scalesim
    from attnsim.archsim.spec import load_arch

    if args.scalesim is None or args.topology is None:
        raise UsageError("gemm: --scalesim CFG and --topology CSV go together")
    if args.m is not None:
        raise UsageError("gemm: give either M N K or --scalesim CFG --topology CSV, not both")
    if args.dataflow is not None:
        raise UsageError("--dataflow: with --scalesim the dataflow is the .cfg's architecture_presets.Dataflow")
    base = load_arch(args.arch)
    run = read_scalesim(args.scalesim, args.topology, base.word_bytes, base.clock_hz, base.global_buffer.row_bytes)
    if args.trace is not None and len(run.layers) != 1:
        raise UsageError(f"--trace: the topology has {len(run.layers)} layers; a trace holds one (give a "
                         "one-layer topology)")
    overrides = {**run.overrides, **parse_key_values(args.overrides)}
    fill_drain = args.fill_drain or "scalesim"
    reports = []
    for layer in run.layers:
        report = gemm_report(layer.m, layer.n, layer.k, args.arch, run.dataflow, fill_drain, overrides, args.trace)
        reports.append({"layer": layer.name, "m": layer.m, "n": layer.n, "k": layer.k,
                        "dataflow": run.dataflow, **report})
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    rows, cols = overrides["arrays.pe2d.rows"], overrides["arrays.pe2d.cols"]
    print(f"SCALE-Sim run {run.run_name}: {len(run.layers)} layers on {args.arch} with a {rows}x{cols} array, "
          f"dataflow {run.dataflow}, fill/drain {fill_drain}, InterfaceBandwidth {run.interface_bandwidth}"
          + (" (SCALE-Sim's cycles are compute_cycles)" if run.interface_bandwidth == "CALC" else ""))
    print(f"  {'layer':<20} {'M':>8} {'N':>8} {'K':>8} {'cycles':>12} {'compute_cycles':>15} {'util_2d':>8} "
          f"{'traffic_bytes':>14}")
    for r in reports:
        print(f"  {r['layer']:<20} {r['m']:>8} {r['n']:>8} {r['k']:>8} {r['cycles']:>12} {r['compute_cycles']:>15} "
              f"{r['util_2d']:>8.4f} {r['traffic_bytes']:>14.6g}")
    if run.unmapped:
        print(f"  not modelled (no effect on attnsim's cycles): {', '.join(run.unmapped)}")
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0
