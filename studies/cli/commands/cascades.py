"""``attnsim cascades``: list the built-in cascades."""
from __future__ import annotations

import argparse
import json

from attnsim import einsum_ir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cascades", help="list the built-in Einsum cascades",
                                   description="List the built-in cascades in specs/cascades/.")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {name, description, reference}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in einsum_ir.builtin_names():
        cascade = einsum_ir.load_builtin(name)
        reference = cascade.meta.get("reference") or (
            f"kernels_ref {cascade.meta['attention']['algorithm']}" if "attention" in cascade.meta else
            f"closed form {cascade.meta['closed_form']}" if "closed_form" in cascade.meta else "")
        rows.append({"name": name, "description": cascade.description, "reference": reference})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    ref_width = max((len(r["reference"]) for r in rows), default=9)
    print(f"{'name':<{width}}  {'reference':<{ref_width}}  description")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['reference']:<{ref_width}}  {row['description']}")
    return 0
