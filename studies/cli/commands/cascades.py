"""``attnsim cascades``: list the built-in cascades."""
from __future__ import annotations

import argparse
import json

from attnsim.studies.cli.options import table


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("cascades", help="list the built-in Einsum cascades",
                                   description="List the built-in cascades in specs/cascades/.")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, description}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the built-in cascades: a name / description table, or JSON."""
    from attnsim import einsum_ir

    rows = [{"name": name, "description": einsum_ir.load_builtin(name).description}
            for name in einsum_ir.builtin_names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(table([(row["name"], row["description"]) for row in rows], ("name", "description")))
    return 0
