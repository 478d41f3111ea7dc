"""The results store's SQL view ``results_flat``: pandas.read_sql reads one flat row per point."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

from attnsim.studies.store import ResultStore, tidy_table


def _record(store: ResultStore, key: str, index: int, params: dict, result: dict | None, wall_s: float) -> None:
    store.record(key=key, study="s", kind="k", point_index=index, params=params, point_json="{}",
                 status="ok" if result is not None else "error",
                 result_json=None if result is None else json.dumps(result),
                 error=None if result is not None else "E: x", started_at="2024-01-01T00:00:00+00:00",
                 finished_at=f"2024-01-01T00:00:0{index}+00:00", wall_s=wall_s)


def _view(path: Path) -> pd.DataFrame:
    with sqlite3.connect(path / "results.sqlite") as connection:
        return pd.read_sql("SELECT * FROM results_flat", connection)


def test_view_matches_the_tidy_table_without_json(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        _record(store, "a", 0, {"M": 4, "status": "p", "arrays.pe2d.rows": 8},
                {"cycles": 10, "latency_s": 0.5, "ok": True, "M": 99,
                 "energy_breakdown_pj": {"dram.read": 0.25, "it's": 1.5}}, 1.0)
        _record(store, "b", 1, {"M": 8, "status": "q", "arrays.pe2d.rows": 16}, None, 2.0)
        columns, rows = tidy_table(store.records())
    view = _view(tmp_path)
    assert list(view.columns) == columns == ["key", "study", "kind", "status", "error", "M", "param.status",
                                             "arrays.pe2d.rows", "cycles", "latency_s", "ok", "result.M",
                                             "energy_breakdown_pj.dram.read", "energy_breakdown_pj.it's"]
    assert view.loc[0, "energy_breakdown_pj.dram.read"] == 0.25 and view.loc[0, "energy_breakdown_pj.it's"] == 1.5
    assert list(view["arrays.pe2d.rows"]) == [8, 16] and view.loc[0, "result.M"] == 99
    assert view.loc[0, "ok"] == 1                        # SQLite has no booleans: true is 1
    assert pd.isna(view.loc[1, "cycles"]) and view.loc[1, "error"] == "E: x"


def test_view_follows_new_points_and_readers_write_nothing(tmp_path: Path) -> None:
    with ResultStore.in_directory(tmp_path) as store:
        _record(store, "a", 0, {"M": 4}, {"cycles": 10}, 1.0)
    assert list(_view(tmp_path).columns)[-1] == "cycles"
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        before = connection.execute("SELECT value FROM meta WHERE name = 'flat_view'").fetchone()
    with ResultStore.in_directory(tmp_path, create=False):
        pass                                             # a reader of an unchanged store
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        assert connection.execute("SELECT value FROM meta WHERE name = 'flat_view'").fetchone() == before
    with ResultStore.in_directory(tmp_path) as store:
        _record(store, "b", 1, {"M": 8}, {"cycles": 20, "traffic_bytes": 64}, 1.0)
    view = _view(tmp_path)
    assert list(view["traffic_bytes"].isna()) == [True, False] and list(view["cycles"]) == [10, 20]
