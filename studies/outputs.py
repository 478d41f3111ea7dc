"""Output paths of the command line: checked before any work, written whole or not at all.

Every ``--trace``, ``--csv``, ``--out`` path goes through here (and so through
:mod:`attnsim.safe_io`): a directory where a file is expected, a file where a directory is expected,
a missing or unwritable parent, or a device is refused with one line naming the option and the path
(UsageError, exit code 2), before anything is simulated or written.
"""
from __future__ import annotations

from pathlib import Path

from attnsim.safe_io import FileProblem, check_output_dir, check_output_file, write_text_atomic
from attnsim.studies.errors import UsageError

__all__ = ["output_file", "output_dir", "write_output"]


def output_file(option: str, path: str | Path, *, create_parents: bool = False) -> Path:
    """``path`` checked as a file to write for ``option`` (``--trace``); with ``create_parents`` a
    missing parent directory is fine if it can be created (it is created only when writing)."""
    try:
        target = Path(path)
        if create_parents and not target.parent.exists():
            check_output_dir(target.parent)
            return target
        return check_output_file(target)
    except FileProblem as exc:
        raise UsageError(f"{option} {path}: {exc}") from None


def output_dir(option: str, path: str | Path) -> Path:
    """``path`` checked as a directory to create or write into for ``option`` (``--out``)."""
    try:
        return check_output_dir(path)
    except FileProblem as exc:
        raise UsageError(f"{option} {path}: {exc}") from None


def write_output(option: str, path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (parents created); UsageError naming ``option`` on failure."""
    target = Path(path)
    try:
        if not target.parent.exists():
            check_output_dir(target.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
    except (FileProblem, OSError) as exc:
        raise UsageError(f"{option} {path}: {exc}") from None
