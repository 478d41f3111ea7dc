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


def one_error_line(err: str) -> str:
    """The error line of a refusal: the last stderr line, and no traceback anywhere."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def test_scheduler_without_workers_says_it_waits_then_fails_clearly(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        code = main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "o"), "--scheduler", address,
                     "--scheduler-timeout", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"attnsim: waiting for a Dask worker to join {address} (up to 1 s" in err
    assert one_error_line(err).startswith(f"attnsim: error: --scheduler {address}: no Dask worker joined "
                                          "within 1 s")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.0 200 OK\r\n\r\nnot dask\n"])
def test_tcp_server_that_is_not_a_scheduler_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          reply: bytes) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []

    def serve() -> None:
        try:
            while True:
                connection, _ = server.accept()
                accepted.append(connection)
                connection.sendall(reply)  # then silence, connection kept open
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        code = main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "o"), "--scheduler", address,
                     "--scheduler-timeout", "1"])
    finally:
        server.close()
        for connection in accepted:
            connection.close()
    err = capsys.readouterr().err
    assert code == 2
    assert one_error_line(err).startswith(f"attnsim: error: --scheduler {address}: no Dask scheduler there")
    assert not (tmp_path / "o").exists()


def test_address_without_port_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("attnsim: error: --scheduler tcp://127.0.0.1: expected tcp://host:port (no port")
