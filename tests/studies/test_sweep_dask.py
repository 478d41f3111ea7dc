"""A study run through a Dask cluster (LocalCluster on loopback) gives the same rows as a local run."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from distributed import LocalCluster

from attnsim.studies.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "specs" / "studies" / "gemm-example.yaml"
COMPARED = "key, study, kind, point_index, params_json, point_json, status, result_json, error"


def rows(directory: Path) -> list[tuple]:
    db = sqlite3.connect(directory / "results.sqlite")
    found = db.execute(f"SELECT {COMPARED} FROM points ORDER BY key").fetchall()
    db.close()
    return found


def test_dask_cluster_and_local_processes_give_identical_rows(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["sweep", str(EXAMPLE), "--out", str(local), "--workers", "2", "--quiet"]) == 0
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        code = main(["sweep", str(EXAMPLE), "--out", str(remote), "--scheduler", cluster.scheduler_address,
                     "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "16 points, 16 evaluated now, 0 already in the store; 16 ok, 0 failed" in out
    local_rows, remote_rows = rows(local), rows(remote)
    assert len(local_rows) == 16
    assert remote_rows == local_rows                 # bit-for-bit: same text of every result


def test_unreachable_scheduler_address_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "o"), "--scheduler", "bogus:://nowhere"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("attnsim: error: --scheduler bogus:://nowhere: expected SCHEME://host:port")
    assert not (tmp_path / "o").exists()
