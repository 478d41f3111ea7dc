"""``attnsim cascades``: list the built-in cascades."""
from __future__ import annotations

import argparse
import json

from attnsim.studies.cli.options import table


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("cascades", help="list the built-in Einsum cascades",
                                   description="List the built-in cascades in specs/cascades/.")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {name, description, reference}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the built-in cascades (name, reference, description) as a table, or JSON."""
    from attnsim import einsum_ir

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
    print(table([(row["name"], row["reference"], row["description"]) for row in rows],
                ("name", "reference", "description")))
    return 0
