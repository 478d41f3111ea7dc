"""The ``attnsim`` command line: discovers subcommands in ``attnsim.studies.cli.commands``.

Building the parser imports every command module, so those modules import nothing heavy at the top
(numba, matplotlib, sympy, dask, numpy, pydantic): each imports what it needs inside its ``run``.
Shared option parsing (K/M counts, ``--set``, ``--workers``, tables) is :mod:`studies.cli.options`.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from attnsim.studies.cli import commands  # noqa: the subpackage of this package
from attnsim.studies.errors import user_error_types


class _VersionAction(argparse.Action):
    """``--version``: reads the version (importlib.metadata) only when asked, not at every start."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=kwargs.get("help"))  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        import attnsim

        print(f"attnsim {attnsim.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnsim",
        description="Attention-accelerator research: Einsum cascades, pass analysis, simulation, sweeps.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except user_error_types() as exc:
        print(f"attnsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``attnsim ... | head``): not an error of ours, and no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
