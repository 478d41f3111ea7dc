"""Option parsing shared by every ``attnsim`` subcommand: counts with K/M suffixes, KEY=VALUE lists,
the ``--workers`` and ``--set`` options, and plain-text tables.

This module is imported when the parser is built, so it imports nothing heavy (no numpy, sympy,
numba, matplotlib, dask); :mod:`tabulate` is imported only when a table is printed.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attnsim.studies.errors import UsageError

SUFFIXES = {"k": 1024, "m": 1024 * 1024}
"""Binary multipliers of a count's suffix: ``4K`` = 4096, ``1M`` = 1048576 (case-insensitive)."""


_COUNT_RE = re.compile(r"([+-]?\d+)([kKmM]?)")


def parse_count(text: str | int, option: str, *, minimum: int = 1) -> int:
    """``"4096"``, ``"4K"`` or ``"1M"`` -> an int >= ``minimum``; UsageError naming ``option`` otherwise.

    An int is accepted as it is (the Python API passes ints); booleans are refused.
    """
    if isinstance(text, bool):
        raise UsageError(f"{option}: expected a positive integer (optionally with K or M), got {text}")
    if isinstance(text, int):
        value = text
    else:
        match = _COUNT_RE.fullmatch(str(text).strip())
        if match is None:
            raise UsageError(f"{option}: expected a positive integer (optionally with K or M), "
                             f"got '{text}'")
        value = int(match.group(1)) * SUFFIXES.get(match.group(2).lower(), 1)
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"{option}: expected {what}, got {value}")
    return value


def parse_optional_count(text: str | int | None, option: str) -> int | None:
    """:func:`parse_count`, or None when the option was not given."""
    return None if text is None else parse_count(text, option)


def parse_key_values(texts: Iterable[str] | None) -> dict[str, Any]:
    """Repeated ``--set KEY=VALUE`` texts -> ``{key: value}`` (a later key wins); values read as YAML.

    The one KEY=VALUE reader is :func:`archsim.spec.parse_overrides` (the lowest layer that has
    specs); imported here on use so that building the parser stays cheap.
    """
    from attnsim.archsim.spec import parse_overrides

    return parse_overrides(texts)


def parse_sizes(texts: Iterable[str] | None, option: str = "--size") -> dict[str, int]:
    """Repeated ``NAME=N`` texts (N an integer with an optional K/M suffix) -> ``{name: n}``.

    Any integer is accepted: whoever uses a size checks its range (a cascade names its own line).
    """
    sizes: dict[str, int] = {}
    for text in texts or ():
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise UsageError(f"{option} {text}: expected NAME=N, e.g. M=4K")
        sizes[name.strip()] = parse_count(value, f"{option} {name.strip()}", minimum=-(2**63))
    return sizes


def add_workers_option(parser: argparse.ArgumentParser, default: str | None, default_text: str) -> None:
    """The one parallelism option of every command: ``--workers N``."""
    parser.add_argument("--workers", dest="workers", default=default, metavar="N",
                        help=f"worker processes (default {default_text}; 1 = none)")


def workers_from(args: argparse.Namespace) -> int | None:
    """The parsed ``--workers`` value (None when it has no default and was not given)."""
    return parse_optional_count(args.workers, "--workers")


def add_set_option(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable): override a spec value by its dotted key path."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a spec value by its dotted key path, e.g. {example} (repeatable)")


def cell(value: Any, floatfmt: str = ".6g") -> str:
    """One table cell: floats with ``floatfmt`` (6 significant digits), None empty, the rest str()."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] = (), *, floatfmt: str = ".6g",
          indent: str = "") -> str:
    """Rows as an aligned plain-text table (``tabulate``: ``simple`` with headers, else ``plain``)."""
    from tabulate import tabulate

    cells = [[cell(value, floatfmt) for value in row] for row in rows]
    text = tabulate(cells, headers=list(headers), tablefmt="simple" if headers else "plain",
                    disable_numparse=True)
    return "\n".join(indent + line for line in text.splitlines())


def key_value_table(report: Mapping[str, Any], keys: Sequence[str], *, indent: str = "  ") -> str:
    """``key  value`` lines (two aligned columns) of ``report`` for ``keys``."""
    return table([(key, report[key]) for key in keys], indent=indent)


__all__ = ["SUFFIXES", "add_set_option", "add_workers_option", "cell", "key_value_table", "parse_count",
           "parse_key_values", "parse_optional_count", "parse_sizes", "table", "workers_from"]
