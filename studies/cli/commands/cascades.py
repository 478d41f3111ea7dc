"""``attnsim cascades``: list the built-in cascades."""
from __future__ import annotations

import argparse
import json

from attnsim import einsum_ir
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cascades", help="list the built-in Einsum cascades",
                                   description="List the built-in cascades in specs/cascades/.")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, description}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in einsum_ir.builtin_names():
        cascade = einsum_ir.load_builtin(name)
        rows.append({"name": name, "description": cascade.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"{'name':<{width}}  description")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['description']}")
    return 0
