"""The SQLite results store: rows, commits, WAL durability, the tidy table and `attnsim results`."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.store import ResultStore, flatten_result, tidy_table


def record(store: ResultStore, key: str, index: int, *, status: str = "ok", result: dict | None = None,
           error: str | None = None, params: dict | None = None, started: str = "2024-01-01T00:00:00+00:00"
           ) -> None:
    store.record(key=key, study="s", kind="k", point_index=index, params=params or {"x": index},
                 point_json=json.dumps({"x": index}), status=status,
                 result_json=None if result is None else json.dumps(result), error=error,
                 started_at=started, finished_at="2024-01-01T00:00:01+00:00", wall_s=1.0)


def test_round_trip_and_order(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        record(store, "b", 1, result={"cycles": 7, "energy_pj": 0.1})
        record(store, "a", 0, status="error", error="ValueError: no")
        rows = store.records()
        assert [r.key for r in rows] == ["a", "b"]                   # point order, not insertion order
        assert rows[1].result == {"cycles": 7, "energy_pj": 0.1} and rows[1].params == {"x": 1}
        assert rows[0].result is None and rows[0].error == "ValueError: no"
        assert store.statuses() == {"a": "error", "b": "ok"}
        assert [r.key for r in store.records(["b"])] == ["b"]


def test_record_replaces_the_row_of_the_same_key(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        record(store, "a", 0, status="error", error="boom")
        record(store, "a", 0, result={"cycles": 3}, started="2024-02-02T00:00:00+00:00")
        (row,) = store.records()
        assert (row.status, row.result, row.error, row.started_at) == (
            "ok", {"cycles": 3}, None, "2024-02-02T00:00:00+00:00")


def test_every_record_is_committed_at_once_in_wal_mode(tmp_path: Path) -> None:
    store = ResultStore.in_directory(tmp_path)
    record(store, "a", 0, result={"cycles": 1})
    # another connection (another process would be the same) sees the row while the store is still open
    other = sqlite3.connect(tmp_path / "results.sqlite")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT key, status, result_json FROM points").fetchall() == [
        ("a", "ok", '{"cycles": 1}')]
    other.close()
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_status_must_be_ok_or_error(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store, pytest.raises(ValueError):
        record(store, "a", 0, status="done")


def test_opening_something_else_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_text("not a database at all, just text\n" * 100)
    with pytest.raises(UsageError, match="cannot open as a results database"):
        ResultStore.in_directory(tmp_path)
    with pytest.raises(UsageError, match="no results database"):
        ResultStore.in_directory(tmp_path / "nowhere", create=False)


def test_flatten_nested_results() -> None:
    assert flatten_result({"cycles": 4, "energy_breakdown_pj": {"dram.read": 1.5, "pe2d": {"mac": 2}},
                           "per_step": [1, 2]}) == {
        "cycles": 4, "energy_breakdown_pj.dram.read": 1.5, "energy_breakdown_pj.pe2d.mac": 2,
        "per_step": "[1, 2]"}


def test_tidy_table_columns_order_missing_values_and_name_clashes(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        record(store, "k0", 0, params={"M": 4, "status": "x"}, result={"cycles": 10, "M": 99})
        record(store, "k1", 1, params={"M": 8, "status": "y"}, status="error", error="E: bad")
        columns, rows = tidy_table(store.records())
    assert columns == ["key", "study", "kind", "status", "error", "M", "param.status", "cycles", "result.M"]
    assert rows[0] == {"key": "k0", "study": "s", "kind": "k", "status": "ok", "error": None, "M": 4,
                       "param.status": "x", "cycles": 10, "result.M": 99}
    assert rows[1]["error"] == "E: bad" and "cycles" not in rows[1]


def test_results_cli_stdout_and_csv_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        record(store, "k0", 0, params={"M": 4, "dataflow": "os"},
               result={"cycles": 10, "latency_s": 1 / 94e6, "ok": True,
                       "energy_breakdown_pj": {"dram.read": 0.1 + 0.2}})
        record(store, "k1", 1, params={"M": 8, "dataflow": "ws"}, status="error", error="MappingError: x, y")
    assert main(["results", str(tmp_path), "--csv"]) == 0
    out = capsys.readouterr().out
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["key", "study", "kind", "status", "error", "M", "dataflow", "cycles", "latency_s",
                        "ok", "energy_breakdown_pj.dram.read"]
    assert table[1] == ["k0", "s", "k", "ok", "", "4", "os", "10", repr(1 / 94e6), "True",
                        "0.30000000000000004"]                      # floats round-trip exactly
    assert table[2] == ["k1", "s", "k", "error", "MappingError: x, y", "8", "ws", "", "", "", ""]
    assert main(["results", str(tmp_path), "--csv", str(tmp_path / "results.csv"), "--timing"]) == 0
    assert capsys.readouterr().out.startswith("wrote 2 rows x 14 columns to ")
    with (tmp_path / "results.csv").open(newline="") as stream:
        written = list(csv.DictReader(stream))
    assert [row["wall_s"] for row in written] == ["1.0", "1.0"]
    assert written[0]["started_at"] == "2024-01-01T00:00:00+00:00"


def test_results_cli_prints_a_table_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        record(store, "k" * 64, 0, params={"M": 4, "dataflow": "os"},
               result={"cycles": 10, "latency_s": 0.25, "energy_breakdown_pj": {"dram.read": 0.5}})
        record(store, "j" * 64, 1, params={"M": 8, "dataflow": "ws"}, status="error", error="MappingError: x")
    assert main(["results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["key", "study", "kind", "status", "error", "M", "dataflow", "cycles",
                                "latency_s"]                     # nested results are CSV-only
    assert set(lines[1]) == {"-", " "}                            # the header rule of a table, not CSV
    assert lines[2].split() == ["k" * 12, "s", "k", "ok", "4", "os", "10", "0.25"]
    assert lines[3].split()[:5] == ["j" * 12, "s", "k", "error", "MappingError:"]
    assert lines[-1] == "2 points; 1 more columns with --csv"
    assert "," not in "\n".join(lines[:2])


def test_results_cli_without_a_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"attnsim: error: {tmp_path / 'missing'}: no such directory"
    assert main(["results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no results.sqlite here" in err
