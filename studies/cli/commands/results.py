"""``attnsim results DIR [--csv [FILE]] [--timing]``: a sweep's results as a table, or as CSV.

One row per point: key, study, kind, status, error, the parameters, then the result scalars (nested
results flattened with dots: ``energy_breakdown_pj.dram.read``). The table (default) leaves out the
flattened nested results (and results that echo a parameter) and shortens the key; ``--csv`` prints every column, exactly as stored, to
stdout (or to FILE). The same table is :func:`attnsim.results` (a pandas DataFrame) and the SQL view
``results_flat`` of ``DIR/results.sqlite``.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from attnsim.studies.cli.options import table
from attnsim.studies.errors import UsageError

KEY_CHARS = 12
"""Characters of a point's key the table shows (enough to tell points apart; CSV has all 64)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "results", help="print a sweep's results as a table (or CSV with --csv)",
        description="Print DIR/results.sqlite (written by `attnsim sweep`) as one row per point: "
                    "parameters and result scalars as columns. A table by default; --csv prints CSV "
                    "with every column to stdout, --csv FILE writes it to FILE.")
    parser.add_argument("directory", metavar="DIR", help="a sweep's output directory")
    parser.add_argument("--csv", nargs="?", const="-", default=None, metavar="FILE",
                        help="CSV instead of a table: to stdout, or to FILE")
    parser.add_argument("--timing", action="store_true",
                        help="add started_at, finished_at (UTC) and wall_s columns")
    parser.set_defaults(func=run)


def write_csv(columns: list[str], rows: list[dict[str, Any]], stream: TextIO) -> None:
    """The table as CSV (header first); None is an empty cell."""
    writer = csv.DictWriter(stream, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: ("" if value is None else value) for name, value in row.items()})


def table_text(columns: list[str], rows: list[dict[str, Any]], records: list[Any]) -> str:
    """The aligned table ``attnsim results`` prints: keys shortened; nested results and results that
    echo a parameter (``result.<name>``) left out (``--csv`` has them)."""
    params = {name for record in records for name in record.params}
    shown = [name for name in columns
             if name in params or name.startswith("param.")
             or ("." not in name and not name.startswith("result."))]
    body = table([[str(row.get(name, ""))[:KEY_CHARS] if name == "key" else row.get(name) for name in shown]
                  for row in rows], shown)
    hidden = len(columns) - len(shown)
    footer = f"{len(rows)} points" + (f"; {hidden} more columns with --csv" if hidden else "")
    return f"{body}\n{footer}" if body else footer


def run(args: argparse.Namespace) -> int:
    """Read the store, print (or write) the table."""
    from attnsim.studies.store import DATABASE_NAME, ResultStore, tidy_table

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    if not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"{directory}: no {DATABASE_NAME} here (run `attnsim sweep` first)")
    with ResultStore.in_directory(directory, create=False) as store:
        records = store.records()
    columns, rows = tidy_table(records, timing=args.timing)
    if args.csv is None:
        print(table_text(columns, rows, records))
    elif args.csv == "-":
        write_csv(columns, rows, sys.stdout)
    else:
        target = Path(args.csv)
        with target.open("w", encoding="utf-8", newline="") as stream:
            write_csv(columns, rows, stream)
        print(f"wrote {len(rows)} rows x {len(columns)} columns to {target}")
    return 0
