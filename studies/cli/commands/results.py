"""``attnsim results DIR [--csv [FILE]] [--parquet FILE] [--timing]``: a sweep's results as a table, CSV
or Parquet.

One row per point: key, study, kind, status, error, the parameters, then the result scalars (nested
results flattened with dots: ``energy_breakdown_pj.dram.read``). The table (default) leaves out the
flattened nested results (and results that echo a parameter) and shortens the key; ``--csv`` prints
every column, exactly as stored, to stdout (or writes FILE); ``--parquet FILE`` writes an Apache Parquet
file (needs pyarrow: ``pip install 'attnsim[parquet]'``; without it the command says so and exits 2), each
column of one type: bool, int64 or float64 where every value is one, else string (lists and mappings as
JSON), missing values null. Files are written to a temporary name and renamed, so a failed export leaves
nothing half-written. The same table is :func:`attnsim.results` (a pandas DataFrame) and the SQL view
``results_flat`` of ``DIR/results.sqlite``.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from attnsim.studies.cli.options import table
from attnsim.studies.errors import UsageError

KEY_CHARS = 12
"""Characters of a point's key the table shows (enough to tell points apart; CSV has all 64)."""



def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "results", help="print a sweep's results as a table (CSV with --csv, Parquet with --parquet)",
        description="Print DIR/results.sqlite (written by `attnsim sweep`) as one row per point: "
                    "parameters and result scalars as columns. A table by default; --csv prints CSV "
                    "with every column to stdout, --csv FILE writes it to FILE; --parquet FILE writes "
                    "Apache Parquet.")
    parser.add_argument("directory", metavar="DIR", help="a sweep's output directory")
    parser.add_argument("--csv", nargs="?", const="-", default=None, metavar="FILE",
                        help="CSV instead of a table: to stdout, or to FILE")
    parser.add_argument("--parquet", metavar="FILE", help="write an Apache Parquet file (needs pyarrow)")
    parser.add_argument("--timing", action="store_true",
                        help="add started_at, finished_at (UTC) and wall_s columns")
    parser.set_defaults(func=run)


def write_csv(columns: list[str], rows: list[dict[str, Any]], stream: TextIO) -> None:
    """The table as CSV (header first); None is an empty cell."""
    writer = csv.DictWriter(stream, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: ("" if value is None else value) for name, value in row.items()})


def column_type(values: list[Any]) -> str:
    """``bool``, ``int64``, ``float64`` or ``string``: the one Parquet type that holds every non-null value."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64"
    return "string"


def write_parquet(columns: list[str], rows: list[dict[str, Any]], target: Path) -> None:
    """The table as Parquet (module docstring); UsageError when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("--parquet: needs pyarrow, which is not installed (pip install 'attnsim[parquet]'); "
                         "--csv FILE writes the same table as CSV") from None
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in rows]
        kind = column_type(values)
        if kind == "string":
            values = [None if v is None else str(v) for v in values]
        elif kind == "float64":
            values = [None if v is None else float(v) for v in values]
        arrays[name] = pa.array(values, type=getattr(pa, {"bool": "bool_"}.get(kind, kind))())
    table = pa.table(arrays)
    temporary = target.with_name(f".{target.name}.partial")
    pq.write_table(table, temporary)
    os.replace(temporary, target)


def _write_csv_file(columns: list[str], rows: list[dict[str, Any]], target: Path) -> None:
    from attnsim.studies.outputs import write_output

    buffer = io.StringIO(newline="")
    write_csv(columns, rows, buffer)
    write_output("--csv", target, buffer.getvalue())


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
    from attnsim.studies.outputs import output_file
    from attnsim.studies.store import DATABASE_NAME, ResultStore, tidy_table

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    if not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"{directory}: no {DATABASE_NAME} here (run `attnsim sweep` first)")
    with ResultStore.in_directory(directory, create=False) as store:
        records = store.records()
    columns, rows = tidy_table(records, timing=args.timing)
    targets = []
    if args.parquet is not None:
        targets.append(("--parquet", Path(args.parquet), write_parquet))
    if args.csv not in (None, "-"):
        targets.append(("--csv", Path(args.csv), _write_csv_file))
    targets = [(option, output_file(option, target), writer) for option, target, writer in targets]
    if args.csv == "-":
        write_csv(columns, rows, sys.stdout)
    elif not targets:
        print(table_text(columns, rows, records))
    for _, target, writer in targets:
        writer(columns, rows, target)
        print(f"wrote {len(rows)} rows x {len(columns)} columns to {target}")
    return 0
