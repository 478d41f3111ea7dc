"""``attnsim results DIR [--csv] [--timing]``: the results store of a sweep as one tidy CSV table.

One row per point: key, study, kind, status, error, then the point's parameters and its results
(nested results flattened with '.', units in the names). Without ``--csv`` the table goes to stdout;
with it, to ``DIR/results.csv``. Written with the csv module; ``pandas.read_csv`` loads it.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any, TextIO

from attnsim.studies.errors import UsageError
from attnsim.studies.outputs import output_file, write_output
from attnsim.studies.store import DATABASE_NAME, ResultStore, tidy_table


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "results", help="export a sweep's results database as a CSV table",
        description="Export DIR/results.sqlite (written by `attnsim sweep`) as one CSV row per point: "
                    "parameters and result scalars as columns. Prints to stdout unless --csv.")
    parser.add_argument("directory", metavar="DIR", help="a sweep's output directory")
    parser.add_argument("--csv", action="store_true", help="write DIR/results.csv instead of stdout")
    parser.add_argument("--timing", action="store_true",
                        help="add started_at, finished_at (UTC) and wall_s columns")
    parser.set_defaults(func=run)


def write_csv(columns: list[str], rows: list[dict[str, Any]], stream: TextIO) -> None:
    """The table as CSV (header first); None is an empty cell."""
    writer = csv.DictWriter(stream, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: ("" if value is None else value) for name, value in row.items()})


def run(args: argparse.Namespace) -> int:
    """Read the store, write the table."""
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    if not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"{directory}: no {DATABASE_NAME} here (run `attnsim sweep` first)")
    with ResultStore.in_directory(directory, create=False) as store:
        columns, rows = tidy_table(store.records(), timing=args.timing)
    if not args.csv:
        write_csv(columns, rows, sys.stdout)
        return 0
    target = output_file("--csv", directory / "results.csv")
    buffer = io.StringIO(newline="")
    write_csv(columns, rows, buffer)
    write_output("--csv", target, buffer.getvalue())
    print(f"wrote {len(rows)} rows x {len(columns)} columns to {target}")
    return 0
