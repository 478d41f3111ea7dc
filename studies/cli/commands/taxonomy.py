"""``attnsim taxonomy [--markdown]``: the FuseMax paper's Table I, generated from the pass analysis."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "taxonomy", help="the paper's Table I: attention algorithms by number of passes (derived)",
        description="Runs the pass analysis on every built-in attention cascade and groups the published "
                    "algorithms of specs/taxonomy.yaml by the pass count of the cascade they compute.")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the pass-count taxonomy (text, or a markdown table)."""
    from tabulate import tabulate

    from attnsim.studies.taxonomy import build_taxonomy

    rows = build_taxonomy()
    headers = [f"{row.passes}-pass" for row in rows]
    algorithms = [", ".join(row.algorithms) or "-" for row in rows]
    cascades = [", ".join(row.cascades) for row in rows]
    if args.markdown:
        print(tabulate([["published algorithms", *algorithms], ["attnsim cascades", *cascades]],
                       headers=["", *headers], tablefmt="github", disable_numparse=True))
        return 0
    for header, algo, casc in zip(headers, algorithms, cascades):
        print(f"{header}:\n  algorithms: {algo}\n  cascades:   {casc}")
    return 0
