"""The ``attnsim`` command line: discovers subcommands in ``attnsim.studies.cli.commands``.

Building the parser imports every command module, so those modules import nothing heavy at the top
(numba, matplotlib, sympy, dask, numpy, pydantic): each imports what it needs inside its ``run``.
Shared option parsing (K/M counts, ``--set``, ``--workers``, tables) is :mod:`studies.cli.options`.

Every refusal is one line on stderr and exit code 2: bad options (argparse's usage block is replaced
by one line that points at ``--help``), bad input files and values (the layers' user errors). A
reader that goes away (``attnsim ... | head -c1``) ends the command quietly; a stdout that cannot be
written (``>/dev/full``) is one line and exit code 2. Neither prints a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from attnsim.studies.cli import commands  # noqa: the subpackage of this package
from attnsim.studies.errors import user_error_types

__all__ = ["main", "build_parser"]


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``attnsim gemm: error: ... (see --help)``)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


class _VersionAction(argparse.Action):
    """``--version``: reads the version (importlib.metadata) only when asked, not at every start."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=kwargs.get("help"))  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        import attnsim

        print(f"attnsim {attnsim.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="attnsim",
        description="Attention-accelerator research: Einsum cascades, pass analysis, simulation, sweeps.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


class StdoutError(Exception):
    """Writing to standard output failed (not a broken pipe): the OSError is ``__cause__``."""


class _GuardedStdout:
    """A stand-in for ``sys.stdout`` that tells an error of stdout apart from any other OSError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError() from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError() from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except user_error_types() as exc:
        print(f"attnsim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    original = sys.stdout
    if original is None:  # started with file descriptor 1 closed (``attnsim ... >&-``)
        if sys.stderr is not None:
            print("attnsim: error: standard output is closed; nothing would be shown", file=sys.stderr)
        return 2
    guarded = _GuardedStdout(original)
    sys.stdout = guarded  # type: ignore[assignment]
    try:
        code = _run(argv)
        guarded.flush()
        return code
    except BrokenPipeError:
        # The reader went away (``attnsim ... | head``): not an error of ours, and no traceback.
        sys.stdout = original
        _silence_stdout()
        return 0
    except StdoutError as exc:
        sys.stdout = original
        _silence_stdout()
        cause = exc.__cause__
        reason = getattr(cause, "strerror", None) or str(cause)
        print(f"attnsim: error: cannot write to standard output ({reason}); nothing more is written",
              file=sys.stderr)
        return 2
    finally:
        if sys.stdout is guarded:
            sys.stdout = original


if __name__ == "__main__":
    sys.exit(main())
