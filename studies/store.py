"""The results store: one embedded SQLite database per output directory, ``DIR/results.sqlite``.

One row per point (table ``points``)::

    key            TEXT PRIMARY KEY   sha256 of the resolved point (studies.points.point_key)
    study          TEXT               the study's name
    kind           TEXT               the point kind
    point_index    INTEGER            position in the study (first axis slowest)
    params_json    TEXT               the study-level parameters, JSON object in study order
    point_json     TEXT               the resolved point that was evaluated (canonical JSON)
    status         TEXT               'ok' or 'error'
    result_json    TEXT               the kind's results, JSON object (NULL for an error)
    error          TEXT               one line (NULL when ok)
    started_at     TEXT               ISO-8601 UTC, when evaluation started (on the worker)
    finished_at    TEXT               ISO-8601 UTC, when it finished
    wall_s         REAL               evaluation time in seconds

The view ``results_flat`` reads the same rows without any JSON unpacking by the reader
(``pandas.read_sql("SELECT * FROM results_flat", sqlite3.connect(path))``): one row per point, with
key, study, kind, status, error, every parameter and every result scalar as its own column, named as
:func:`tidy_table` names them (``cycles``, ``energy_breakdown_pj.dram.read``; a list is one JSON text
cell). A writer brings it up to date when it closes the store.

The database is in WAL mode with ``synchronous=FULL`` while a sweep writes it, and every
:meth:`ResultStore.record` is its own committed transaction, so a sweep killed at any moment keeps every
point it had finished. A store opened only to read (``create=False``) is opened read-only and never
written; a writer that closes last puts the file back in rollback-journal mode.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsim.studies.errors import UsageError

DATABASE_NAME = "results.sqlite"
SCHEMA_VERSION = "1"
STATUSES = ("ok", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key          TEXT PRIMARY KEY,
    study        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    point_index  INTEGER NOT NULL,
    params_json  TEXT NOT NULL,
    point_json   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    result_json  TEXT,
    error        TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    wall_s       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
FLAT_VIEW = "results_flat"
_COLUMNS = ("key", "study", "kind", "point_index", "params_json", "point_json", "status",
            "result_json", "error", "started_at", "finished_at", "wall_s")


@dataclass(frozen=True)
class PointRecord:
    """One row of the store (see the module docstring); ``params``/``result`` are decoded JSON."""

    key: str
    study: str
    kind: str
    point_index: int
    params: dict[str, Any]
    point_json: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    started_at: str
    finished_at: str
    wall_s: float


class ResultStore:
    """An open results database. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open (and with ``create``, create) the database file ``path``.

        Raises UsageError if ``create`` is False and there is no database, or the file is not one of ours.
        """
        self.path = Path(path)
        self._writer = False
        if not create and not self.path.is_file():
            raise UsageError(f"{self.path}: no results database (run `attnsim sweep` first)")
        if self.path.exists() and not self.path.is_file():
            raise UsageError(f"{self.path}: not a file, expected a results database")
        try:
            if create:
                self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._writer = True
            else:  # reading only: never write a schema (or anything) into someone's file
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           timeout=60.0, isolation_level=None)
                tables = {row[0] for row in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not {"points", "meta"} <= tables:
                    self._db.close()
                    raise UsageError(f"{self.path}: not a results database (no 'points' table; "
                                     "written by `attnsim sweep`?)")
            self._check_version(write=create)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path}: cannot open as a results database ({_one_line(exc)})") from None

    @classmethod
    def in_directory(cls, directory: str | Path, *, create: bool = True) -> ResultStore:
        """The store ``directory/results.sqlite``."""
        return cls(Path(directory) / DATABASE_NAME, create=create)

    def _check_version(self, write: bool = True) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is None and not write:
            raise UsageError(f"{self.path}: not a results database (no schema version)")
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
                             (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise UsageError(f"{self.path}: results schema version {row[0]}, this attnsim reads "
                             f"version {SCHEMA_VERSION}")

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (everything recorded is already committed); a writer brings the flat view
        up to date.

        A writer leaves the file in rollback-journal mode when it is the last one using it, so that a
        later read-only open (``attnsim results``, ``plot``) creates no ``-wal``/``-shm`` files beside it.
        """
        if self._writer:
            try:
                self.refresh_flat_view()
            except sqlite3.Error:  # the view is a convenience: never fail a close over it
                pass
            try:
                self._db.execute("PRAGMA busy_timeout = 100")
                self._db.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.DatabaseError:
                pass  # another connection is open: it stays in WAL mode, which is fine
        self._db.close()

    def refresh_flat_view(self, *, force: bool = False) -> None:
        """(Re)create the view ``results_flat`` (one column per parameter and result scalar seen) when
        the stored points changed since it was last built, or with ``force``; readers of an unchanged
        store write nothing."""
        signature = json.dumps(self._db.execute(
            "SELECT count(*), max(finished_at), total(wall_s) FROM points").fetchone())
        row = self._db.execute("SELECT value FROM meta WHERE name = 'flat_view'").fetchone()
        if not force and row is not None and row[0] == signature:
            return
        columns = ", ".join(f"{source} AS {_quote(name)}" for name, source in _flat_sources(self.records()))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(f"DROP VIEW IF EXISTS {FLAT_VIEW}")
            self._db.execute(f"CREATE VIEW {FLAT_VIEW} AS SELECT {columns} FROM points "
                             "ORDER BY study, point_index, key")
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('flat_view', ?)", (signature,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------------

    def record(self, *, key: str, study: str, kind: str, point_index: int, params: Mapping[str, Any],
               point_json: str, status: str, result_json: str | None, error: str | None,
               started_at: str, finished_at: str, wall_s: float) -> None:
        """Insert or replace the row of point ``key`` and commit it before returning."""
        if status not in STATUSES:
            raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
        values = (key, study, kind, point_index, json.dumps(dict(params)), point_json, status,
                  result_json, error, started_at, finished_at, float(wall_s))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(f"INSERT OR REPLACE INTO points ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------------------

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql).fetchall()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path}: the results database is damaged ({_one_line(exc)}); "
                             "move it away and re-run the sweep") from None

    def statuses(self) -> dict[str, str]:
        """{key: status} of every stored point."""
        return dict(self._query("SELECT key, status FROM points"))

    def records(self, keys: Iterable[str] | None = None) -> list[PointRecord]:
        """Stored points (all, or those in ``keys``), ordered by study, then point index, then key."""
        rows = self._query(f"SELECT {', '.join(_COLUMNS)} FROM points ORDER BY study, point_index, key")
        wanted = None if keys is None else set(keys)
        try:
            return [_decode(row) for row in rows if wanted is None or row[0] in wanted]
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{self.path}: a row of the results database is damaged ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _decode(row: tuple[Any, ...]) -> PointRecord:
    values = dict(zip(_COLUMNS, row))
    return PointRecord(
        key=values["key"], study=values["study"], kind=values["kind"],
        point_index=values["point_index"], params=json.loads(values["params_json"]),
        point_json=values["point_json"], status=values["status"],
        result=json.loads(values["result_json"]) if values["result_json"] is not None else None,
        error=values["error"], started_at=values["started_at"], finished_at=values["finished_at"],
        wall_s=values["wall_s"])


# --------------------------------------------------------------------------------------------------
# The tidy table.

FIXED_COLUMNS = ("key", "study", "kind", "status", "error")
TIMING_COLUMNS = ("started_at", "finished_at", "wall_s")


def _cell(value: Any) -> Any:
    """A parameter or result value as one CSV cell: scalars as they are, lists/mappings as JSON."""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, sort_keys=True)
    return value


def flatten_result(result: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested result mappings -> one level, names joined with '.' (``energy_breakdown_pj.dram.read``)."""
    flat: dict[str, Any] = {}
    for name, value in result.items():
        full = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(flatten_result(value, full + "."))
        else:
            flat[full] = _cell(value)
    return flat


def _result_paths(result: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of every non-mapping value of a nested result, in order."""
    paths: list[tuple[str, ...]] = []
    for name, value in result.items():
        if isinstance(value, Mapping):
            paths.extend(_result_paths(value, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_path(path: Iterable[str]) -> str:
    """A JSON path for json_extract, written to sit inside a single-quoted SQL literal."""
    return ("$" + "".join("." + _quote(part) for part in path)).replace("'", "''")


def _flat_sources(records: list[PointRecord]) -> list[tuple[str, str]]:
    """(column name, SQL expression) of every column of :func:`tidy_table` (without timing)."""
    params: dict[str, str] = {}
    results: dict[str, tuple[tuple[str, ...], str]] = {}   # dotted name -> (key path, column)
    taken = set(FIXED_COLUMNS)
    for record in records:
        for name in record.params:
            if name not in params:
                params[name] = f"param.{name}" if name in FIXED_COLUMNS else name
    taken |= set(params.values())
    for record in records:
        for path in _result_paths(record.result or {}):
            name = ".".join(path)
            if name not in results:
                results[name] = (path, f"result.{name}" if name in taken else name)
    sources = [(name, name) for name in FIXED_COLUMNS]
    sources += [(column, f"json_extract(params_json, '{_json_path([name])}')")
                for name, column in params.items()]
    sources += [(column, f"json_extract(result_json, '{_json_path(path)}')") for path, column in results.values()]
    return sources


def tidy_table(records: Iterable[PointRecord], *, timing: bool = False
               ) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows): one row per point; parameters then flattened results as columns.

    Column order: key, study, kind, status, error, the parameters (in the order they first appear),
    the results (same), and with ``timing`` started_at, finished_at, wall_s. A parameter or result
    whose name is already a column gets a ``param.`` or ``result.`` prefix. Missing values are None.
    """
    records = list(records)
    fixed = list(FIXED_COLUMNS)
    param_names: dict[str, str] = {}
    result_names: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    flat_results = [flatten_result(r.result) if r.result else {} for r in records]
    for record in records:
        for name in record.params:
            if name not in param_names:
                param_names[name] = f"param.{name}" if name in fixed else name
    taken = set(fixed) | set(param_names.values()) | set(TIMING_COLUMNS if timing else ())
    for flat in flat_results:
        for name in flat:
            if name not in result_names:
                result_names[name] = f"result.{name}" if name in taken else name
    for record, flat in zip(records, flat_results):
        row: dict[str, Any] = {"key": record.key, "study": record.study, "kind": record.kind,
                               "status": record.status, "error": record.error}
        row.update({param_names[name]: _cell(value) for name, value in record.params.items()})
        row.update({result_names[name]: value for name, value in flat.items()})
        if timing:
            row.update(started_at=record.started_at, finished_at=record.finished_at,
                       wall_s=record.wall_s)
        rows.append(row)
    columns = [*fixed, *param_names.values(), *result_names.values()]
    if timing:
        columns.extend(TIMING_COLUMNS)
    return columns, rows
