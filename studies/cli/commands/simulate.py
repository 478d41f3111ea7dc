"""``attnsim simulate (--design D | --mapping NAME|FILE [--cascade NAME|FILE]) --model M --seq N [--arch A]
[--end-to-end] [--phase prefill|decode|chunked-prefill] [--batch B] [--closed-form] [--set k=v ...] [--json]
[--trace FILE]``: one attention design, or any
cascade under a mapping file, at one point, simulated (``studies.simulate``)."""
from __future__ import annotations

import argparse
import json

from attnsim.mappers.designs import DESIGNS
from attnsim.mappers.mapping_spec import available_mappings
from attnsim.studies.cli.options import (add_set_option, key_value_table, parse_count, parse_key_values,
                                         parse_optional_count, table)

SUMMARY_KEYS = ("latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "area_mm2")
END_TO_END_KEYS = ("attention_latency_s", "linear_latency_s", "attention_energy_pj", "linear_energy_pj")
PER_TOKEN_KEYS = ("layers", "per_layer_latency_s", "ttft_s", "tpot_s", "chunk_latency_s", "weight_bytes",
                  "kv_cache_bytes_per_step", "kv_cache_bytes_per_token", "bound", "bound_part")


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
                        help="workload name in specs/workloads/ (e.g. bert-base, xlm, llama-3.1-8b) or a YAML path")
    parser.add_argument("--seq", required=True, help="sequence length M = P, e.g. 4096, 4K or 1M")
    parser.add_argument("--arch", default=None,
                        help="architecture name in specs/arch/ or YAML path (default: the design's or mapping's)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="add the encoder layer's linear layers (mapped by mappers.gemm)")
    parser.add_argument("--phase", default=None,
                        help="prefill, decode or chunked-prefill (default: the workload's); in decode --seq is "
                             "the KV length")
    parser.add_argument("--batch", default=None, help="batch size (default: the workload's)")
    parser.add_argument("--closed-form", action="store_true",
                        help="no pipeline fill/drain or buffer stalls: the artifact's analytical model")
    add_set_option(parser, "arrays.pe2d.rows=128")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE",
                        help="write the attention schedule's per-operation timeline (full simulation; "
                             "refused for a schedule with too many operations to list): Perfetto / Chrome "
                             "trace-event JSON (open in ui.perfetto.dev), or CSV when FILE ends in .csv")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    from attnsim.studies.simulate import simulate

    report = simulate(args.design, args.model, parse_count(args.seq, "--seq"), arch=args.arch,
                      overrides=parse_key_values(args.overrides), end_to_end=args.end_to_end,
                      closed_form=args.closed_form, trace=args.trace, cascade=args.cascade, mapping=args.mapping,
                      phase=args.phase, batch=parse_optional_count(args.batch, "--batch"))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    mode = ", closed form" if args.closed_form else ""
    via = f" ({report['cascade']} under mapping {report['mapping']})" if report.get("mapping") else ""
    print(f"{report['design']}{via} on {report['arch']}: {report['model']}, seq {report['seq']}{mode}")
    keys = SUMMARY_KEYS + (END_TO_END_KEYS if args.end_to_end else ()) + tuple(
        key for key in PER_TOKEN_KEYS if key in report)
    print(key_value_table(report, keys))
    if report["per_einsum"]:
        print("  per Einsum")
        print(table([(einsum, row["util_2d"], row["util_1d"], row["cycles"])
                     for einsum, row in report["per_einsum"].items()],
                    ("einsum", "util_2d", "util_1d", "cycles"), floatfmt=".4g", indent="    "))
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0
