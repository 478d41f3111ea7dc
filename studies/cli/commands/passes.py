"""``attnsim passes NAME [--rank M] [--json]``: pass count, per-Einsum passes, fusable groups, live footprints."""
from __future__ import annotations

import argparse
import json

from attnsim.einsum_ir.bounds import live_bounds
from attnsim.einsum_ir.library import resolve_cascade
from attnsim.einsum_ir.passes import analyze_passes
from attnsim.studies.check import print_warnings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "passes", help="count the passes a cascade makes over a rank and the buffer bounds that follow",
        description="Derive from the cascade's dependency graph how many passes any implementation must "
                    "make over the fibers of RANK, which Einsums can be fused, and the minimum live "
                    "footprints (elements; P1 etc. are tile sizes of the parallel ranks).")
    parser.add_argument("cascade", metavar="NAME", help="built-in cascade name or path to a cascade YAML")
    parser.add_argument("--rank", help="shape symbol of the rank to analyse (default: the cascade's "
                                       "pass_rank, else M)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cascade = resolve_cascade(args.cascade)
    print_warnings(cascade)
    analysis = analyze_passes(cascade, args.rank)
    bounds = live_bounds(analysis)
    if args.json:
        payload = analysis.to_json()
        payload["live"] = bounds.to_json()
        payload["live_total"] = str(bounds.total)
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{analysis.cascade.name}: {analysis.passes} pass{'es' if analysis.passes != 1 else ''} "
          f"over rank {analysis.rank}")
    width = max(len(name) for name in analysis.einsum_pass)
    for einsum in analysis.cascade.einsums:
        print(f"  pass {analysis.einsum_pass[einsum.name]}  {einsum.name:<{width}}  "
              f"({analysis.coverage[einsum.name]})  {einsum.source}")
    print("fusable groups:")
    for k, group in enumerate(analysis.fusable_groups, start=1):
        print(f"  pass {k}: {', '.join(group)}")
    print("live footprints (elements; tile symbols: "
          f"{', '.join(f'{r} -> {s}' for r, s in bounds.tiles.items()) or 'none'}):")
    for entry in bounds.live:
        line = f"  {entry.tensor:<6} {entry.kind:<7} {entry.footprint}"
        if entry.reread_traffic is not None:
            later = entry.passes[1:]
            line += (f"   (or spill: write {entry.spill_write}, re-read {entry.reread_traffic} "
                     f"in pass{'es' if len(later) > 1 else ''} {', '.join(map(str, later))})")
        print(line)
    print(f"  total  {bounds.total}"
          f"{'' if bounds.depends_on(analysis.rank) else f'   (independent of {analysis.rank})'}")
    return 0
