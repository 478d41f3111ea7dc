"""The one reader of input files and the one writer of output files, for every layer.

Every spec, study, cascade, workload, mapping and trace file is read with :func:`read_text`; every YAML
text is checked with :func:`check_yaml_shape` before a (recursive) YAML composer sees it; every output
file is checked with :func:`check_output_file` before any work and written with :func:`write_text_atomic`.
Problems raise :class:`FileProblem`, a ValueError whose message is one line *without* the file name:
each layer adds the name and re-raises as its own error type (``SpecError``, ``CascadeError``,
``UsageError``).

This module lives in the root package, beside nothing else of ours, and imports only the standard
library and PyYAML: the bottom layer (``einsum_ir``, which imports no other layer) uses it too, and
it imports no layer.

What it refuses, and why (each would otherwise be a traceback or a hang):

- anything that is not a regular file (a FIFO would block ``open`` forever, a directory raises
  ``IsADirectoryError``, ``/dev/zero`` never ends): the file is opened non-blocking and ``fstat``-ed;
- more than :data:`MAX_INPUT_BYTES`;
- bytes that are not UTF-8 (a binary or latin-1 file), and NUL bytes;
- YAML nested deeper than :data:`MAX_YAML_DEPTH` (the composer recurses: 20000 levels is a
  ``RecursionError``) or whose aliases expand to more than :data:`MAX_YAML_NODES` values (a "billion
  laughs" document is small but exponential for anything that walks it).
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FileProblem", "read_text", "check_yaml_shape", "check_output_file", "check_output_dir",
           "write_text_atomic", "MAX_INPUT_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES"]

MAX_INPUT_BYTES = 64 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 1_000_000


class FileProblem(ValueError):
    """A file cannot be read or written as asked: ``detail`` (one line, without the file name) and the
    1-based ``line`` it concerns, if any; ``str()`` is ``LINE: detail`` or ``detail``."""

    def __init__(self, detail: str, line: int | None = None) -> None:
        super().__init__(f"{line}: {detail}" if line is not None else detail)
        self.detail = detail
        self.line = line

    def named(self, display: str) -> str:
        """The message with the file's name: ``FILE:LINE: detail`` or ``FILE: detail``."""
        return f"{display}:{self.line}: {self.detail}" if self.line is not None else f"{display}: {self.detail}"


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_text(path: str | Path, *, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (a leading BOM dropped).

    Raises FileProblem for a missing or unreadable file, anything but a regular file, a file over
    ``max_bytes``, bytes that are not UTF-8, or NUL bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(os.fspath(path), flags)
    except OSError as exc:
        raise FileProblem(f"cannot read the file ({exc.strerror or exc})") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"cannot read the file: it is {_kind_of(info.st_mode)}, expected a text file")
        if info.st_size > max_bytes:
            raise FileProblem(f"the file is {info.st_size} bytes, more than the limit of {max_bytes}")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(descriptor, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise FileProblem(f"the file is more than the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except OSError as exc:
        raise FileProblem(f"cannot read the file ({exc.strerror or exc})") from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "expected a UTF-8 text file", line) from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise FileProblem("a NUL byte: this is a binary file, expected UTF-8 text", line)
    return text


def check_yaml_shape(text: str, loader: Any = yaml.SafeLoader) -> None:
    """Refuse YAML nested deeper than :data:`MAX_YAML_DEPTH`, or whose aliases expand it to more than
    :data:`MAX_YAML_NODES` nodes, before anything composes it.

    Uses the event parser (iterative, so it cannot overflow the stack) and counts each alias as the
    size of what it names. A YAML syntax error is left for the real load to report (it says the line).
    Raises FileProblem with the line.
    """
    sizes: list[list[Any]] = [[0, None]]  # per open collection: [nodes so far, its anchor]
    anchors: dict[str, int] = {}
    try:
        for event in yaml.parse(text, Loader=loader):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(sizes) > MAX_YAML_DEPTH:
                    raise FileProblem(f"YAML nested more than {MAX_YAML_DEPTH} levels deep", line)
                sizes.append([1, event.anchor])
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                size, anchor = sizes.pop()
                if anchor is not None:
                    anchors[anchor] = size
                added = size
            elif isinstance(event, yaml.AliasEvent):
                added = anchors.get(event.anchor or "", 1)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    anchors[event.anchor] = 1
                added = 1
            else:
                continue
            sizes[-1][0] += added
            if sizes[-1][0] > MAX_YAML_NODES:
                raise FileProblem(f"the YAML expands to more than {MAX_YAML_NODES} values (aliases "
                                  "of aliases)", line)
    except yaml.YAMLError:
        return
    except RecursionError:  # pragma: no cover -- the parser is iterative; a guard all the same
        raise FileProblem(f"YAML nested more than {MAX_YAML_DEPTH} levels deep") from None


def check_output_file(path: str | Path, *, overwrite: bool = True) -> Path:
    """``path`` as a file this process may create (or, with ``overwrite``, replace) -- checked before
    any work is done. Raises FileProblem: a directory, something not a regular file, an existing file
    when ``overwrite`` is False, a missing or unwritable parent directory."""
    target = Path(path)
    if str(path) == "":
        raise FileProblem("expected a file name, got an empty one")
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise FileProblem(f"cannot write there ({exc.strerror or exc})") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"cannot write there: it is {_kind_of(info.st_mode)}, expected a file name")
        if not overwrite:
            raise FileProblem("the file exists (it is not overwritten)")
        if not os.access(target, os.W_OK):
            raise FileProblem("cannot write there: the file is read-only")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise FileProblem(f"cannot write there: the directory {parent} does not exist")
    _probe_writable(parent, f"cannot write there: the directory {parent} is not writable")
    return target


def _probe_writable(directory: Path, message: str) -> None:
    """FileProblem(``message``) unless a file can be created in ``directory`` (tried for real: access()
    says yes to root even on a read-only or virtual filesystem). The probe file leaves no trace."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FileProblem(message)
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".attnsim-probe-"):
            pass
    except OSError as exc:
        raise FileProblem(f"{message} ({exc.strerror or exc})") from None


def check_output_dir(path: str | Path) -> Path:
    """``path`` as a directory this process may create or write into. Raises FileProblem: an existing
    non-directory, an unwritable directory, or a place where it cannot be created."""
    target = Path(path)
    if str(path) == "":
        raise FileProblem("expected a directory name, got an empty one")
    if target.exists() and not target.is_dir():
        raise FileProblem("exists and is not a directory")
    if target.is_dir():
        _probe_writable(target, "the directory is not writable")
        return target
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise FileProblem(f"cannot create the directory: {ancestor} is not a directory")
    _probe_writable(ancestor, f"cannot create the directory: {ancestor} is not writable")
    return target


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory, renamed over
    it at the end: a reader (or a crash) never sees half a file. Raises FileProblem."""
    target = check_output_file(path)
    handle = None
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=target.parent or ".",
                                             prefix=f".{target.name}.", suffix=".tmp", delete=False)
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except OSError as exc:
        if handle is not None:
            try:
                os.unlink(handle.name)
            except OSError:
                pass
        raise FileProblem(f"{target}: cannot write the file ({exc.strerror or exc})") from None
