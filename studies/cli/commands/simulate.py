"""``attnsim simulate (--design D | --mapping NAME|FILE [--cascade NAME|FILE]) --model|--workload M
(--seq N | --kv-len N) [--phase prefill|decode|chunked-prefill] [--q-len Q] [--batch B] [--heads H]
[--kv-heads HKV] [--causal] [--arch A] [--end-to-end] [--closed-form] [--set k=v ...] [--json] [--trace FILE]``: one attention design, or any
cascade under a mapping file, at one point, simulated (``studies.simulate``)."""
from __future__ import annotations

import argparse
import json

from attnsim.mappers.designs import DESIGNS
from attnsim.mappers.mapping_spec import available_mappings
from attnsim.studies.cli.options import (add_set_option, key_value_table, parse_count, parse_key_values,
                                         parse_optional_count, table)
from attnsim.studies.errors import UsageError

SUMMARY_KEYS = ("latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "area_mm2",
                "kv_bytes", "dram_floor_s", "dram_bandwidth_fraction", "bound")
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
    parser.add_argument("--model", "--workload", dest="model", default=None,
                        help="workload name in specs/workloads/ (e.g. bert-base, xlm, llama-3.1-8b) or a YAML path")
    parser.add_argument("--seq", default=None, help="sequence length (the KV length; M = P in prefill), e.g. 4096, "
                                                    "4K or 1M")
    parser.add_argument("--kv-len", default=None, help="key/value (KV cache) length; instead of --seq")
    parser.add_argument("--phase", default=None, help="prefill, decode or chunked-prefill (default: the workload's)")
    parser.add_argument("--q-len", default=None, help="query length of a chunk (chunked prefill; default: the KV "
                                                      "length in prefill, 1 in decode)")
    parser.add_argument("--batch", default=None, help="batch size (default: the workload's)")
    parser.add_argument("--heads", default=None, help="query heads (default: the workload's)")
    parser.add_argument("--kv-heads", default=None, help="key/value heads (GQA/MQA; default: the workload's)")
    parser.add_argument("--causal", action="store_true", help="apply the causal mask (default: the workload's)")
    parser.add_argument("--arch", default=None,
                        help="architecture name in specs/arch/ or YAML path (default: the design's or mapping's)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="add the linear layers of every transformer layer (mapped by mappers.gemm), times the layers")
    parser.add_argument("--closed-form", action="store_true",
                        help="no pipeline fill/drain or buffer stalls: the artifact's analytical model")
    add_set_option(parser, "arrays.pe2d.rows=128")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", metavar="FILE",
                        help="write the attention schedule's per-operation timeline (full simulation; "
                             "refused for a schedule with too many operations to list): Perfetto / Chrome "
                             "trace-event JSON (open in ui.perfetto.dev), or CSV when FILE ends in .csv")
    parser.set_defaults(func=run)


def _model(args: argparse.Namespace) -> str:
    if args.model is None:
        raise UsageError("simulate: --model: missing (expected a workload name or YAML file)")
    return args.model


def _length(args: argparse.Namespace) -> int:
    """``--seq`` or ``--kv-len`` (one of them)."""
    if args.seq is not None and args.kv_len is not None:
        raise UsageError("simulate: --kv-len: give either --seq or --kv-len, not both")
    if args.seq is None and args.kv_len is None:
        raise UsageError("simulate: --seq: missing (expected a positive integer, or --kv-len)")
    return parse_count(args.seq if args.seq is not None else args.kv_len,
                       "--seq" if args.seq is not None else "--kv-len")


def _shape(args: argparse.Namespace) -> dict[str, object]:
    """The workload changes the flags ask for (:meth:`mappers.workloads.Workload.with_shape`)."""
    from attnsim.mappers.workloads import PHASES

    shape: dict[str, object] = {
        "phase": args.phase, "q_len": parse_optional_count(args.q_len, "--q-len"),
        "batch": parse_optional_count(args.batch, "--batch"), "heads": parse_optional_count(args.heads, "--heads"),
        "kv_heads": parse_optional_count(args.kv_heads, "--kv-heads"), "causal": True if args.causal else None}
    if args.phase is not None and args.phase not in PHASES:
        raise UsageError(f"simulate: --phase: expected one of {', '.join(PHASES)}, got '{args.phase}'")
    return {k: v for k, v in shape.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    """Parse, simulate, print. Bad input raises the layer's error (exit 2 via studies.cli)."""
    from attnsim.studies.simulate import simulate

    report = simulate(args.design, _model(args), _length(args), arch=args.arch,
                      overrides=parse_key_values(args.overrides), end_to_end=args.end_to_end,
                      closed_form=args.closed_form, trace=args.trace, cascade=args.cascade, mapping=args.mapping,
                      shape=_shape(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    mode = ", closed form" if args.closed_form else ""
    via = f" ({report['cascade']} under mapping {report['mapping']})" if report.get("mapping") else ""
    print(f"{report['design']}{via} on {report['arch']}: {report['model']}, seq {report['seq']}{mode} "
          f"({report['phase']}, batch {report['batch']} x heads {report['heads']} (kv_heads {report['kv_heads']}), "
          f"q_len {report['q_len']}, kv_len {report['kv_len']}, {'causal' if report['causal'] else 'non-causal'})")
    keys = tuple(dict.fromkeys(SUMMARY_KEYS + (END_TO_END_KEYS if args.end_to_end else ()) + tuple(
        key for key in PER_TOKEN_KEYS if key in report)))   # 'bound' is in both: one line
    print(key_value_table(report, keys))
    if report["per_einsum"]:
        print("  per Einsum")
        print(table([(einsum, row["util_2d"], row["util_1d"], row["cycles"])
                     for einsum, row in report["per_einsum"].items()],
                    ("einsum", "util_2d", "util_1d", "cycles"), floatfmt=".4g", indent="    "))
    if args.trace:
        print(f"  trace written to {args.trace}")
    return 0
