"""``attnsim simulate (--design D | --mapping NAME|FILE [--cascade NAME|FILE]) --model M --seq N [--arch A]
[--end-to-end] [--closed-form] [--set k=v ...] [--json] [--trace FILE]``: one attention design, or any
cascade under a mapping file, at one point, simulated (``studies.simulate``)."""
from __future__ import annotations

import argparse
import json

from attnsim.archsim.spec import parse_overrides
from attnsim.mappers.designs import DESIGNS
from attnsim.mappers.mapping_spec import available_mappings
from attnsim.studies.simulate import TRACE_MAX_OPS, parse_seq, simulate

SUMMARY_KEYS = ("latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "area_mm2")
END_TO_END_KEYS = ("attention_latency_s", "linear_latency_s", "attention_energy_pj", "linear_energy_pj")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "simulate", help="simulate one attention design at one (model, sequence length) point",
        description="Map an attention design onto an architecture, execute the schedule on the event "
                    "engine, and print latency, cycles, energy, DRAM traffic, array utilisation, area "
                    "and per-Einsum activity. Designs: " + ", ".join(DESIGNS) + ".")
    parser.add_argument("--design", default=None,
                        help="one of " + ", ".join(DESIGNS) + " (a shorthand for its --cascade and --mapping)")
    parser.add_argument("--cascade", default=None,
                        help="a built-in cascade (attnsim cascades) or a cascade YAML file (default: the mapping's)")
    parser.add_argument("--mapping", default=None,
                        help="a mapping in specs/mappings/ (" + ", ".join(available_mappings()) + ") or a mapping "
                             "YAML file, e.g. one saved from 'attnsim map'")
    parser.add_argument("--model", required=True,
                        help="workload name in specs/workloads/ (bert-base, trxl-wt103, t5-small, xlm) or a YAML path")
    parser.add_argument("--seq", required=True, help="sequence length M = P, e.g. 4096, 4K or 1M")
    parser.add_argument("--arch", default=None,
                        help="architecture name in specs/arch/ or YAML path (default: the design's or mapping's)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="add the encoder layer's linear layers (mapped by mappers.gemm)")
    parser.add_argument("--closed-form", action="store_true",
                        help="no pipeline fill/drain or buffer stalls: the artifact's analytical model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override an architecture value, e.g. arrays.pe2d.rows=128 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE.csv",
                        help=f"write the attention schedule's per-operation timeline (full simulation, "
                             f"at most {TRACE_MAX_OPS} operations) to a CSV file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    report = simulate(args.design, args.model, parse_seq(args.seq), arch=args.arch,
                      overrides=parse_overrides(args.overrides), end_to_end=args.end_to_end,
                      closed_form=args.closed_form, trace=args.trace, cascade=args.cascade, mapping=args.mapping)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    mode = ", closed form" if args.closed_form else ""
    via = f" ({report['cascade']} under mapping {report['mapping']})" if report.get("mapping") else ""
    print(f"{report['design']}{via} on {report['arch']}: {report['model']}, seq {report['seq']}{mode}")
    keys = SUMMARY_KEYS + (END_TO_END_KEYS if args.end_to_end else ())
    for key in keys:
        value = report[key]
        print(f"  {key:<20} {value:.6g}" if isinstance(value, float) else f"  {key:<20} {value}")
    if report["per_einsum"]:
        print("  per Einsum            util_2d   util_1d   busy cycles")
        for einsum, row in report["per_einsum"].items():
            print(f"    {einsum:<18} {row['util_2d']:9.4f} {row['util_1d']:9.4f}   {row['cycles']:.6g}")
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0
