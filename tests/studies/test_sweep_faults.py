"""Faults in the local executor, with real worker processes: a worker killed by PID mid-sweep, points
that kill their worker (os._exit, SIGSEGV, also as the last point and with one worker), a point over
its wall-clock limit, a kind that returns NaN. Every other point is stored once, equal to a clean run
and to the closed forms of fault_kinds."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import fault_kinds
from attnsim.studies.cli import main
from attnsim.studies.points import PointKind, register_kind, unregister_kind

GUARD_S = 60.0  # a guard against a hanging test, not a timing assertion


@pytest.fixture(autouse=True)
def fault_kind():
    register_kind(PointKind(name="test-fault", evaluate=fault_kinds.evaluate), replace=True)
    register_kind(PointKind(name="test-nan", evaluate=fault_kinds.evaluate_nan), replace=True)
    yield
    unregister_kind("test-fault")
    unregister_kind("test-nan")


def study_file(path: Path, points: int, base: dict[str, Any], extra: str = "") -> Path:
    path.write_text(f"name: faults\nkind: test-fault\nbase: {json.dumps(base)}\n"
                    f"grid: {{x: {list(range(points))}}}\n{extra}")
    return path


def stored(directory: Path) -> list[tuple[int, str, Any, str | None]]:
    """(x, status, result, error) of every row, as stored (one row per key)."""
    db = sqlite3.connect(directory / "results.sqlite")
    rows = db.execute("SELECT params_json, status, result_json, error FROM points").fetchall()
    db.close()
    return sorted((json.loads(p)["x"], s, json.loads(r) if r else None, e) for p, s, r, e in rows)


def closed_form(x: int) -> dict[str, float]:
    return {"x_cubed": x ** 3, "x_half": x / 2}


def test_worker_killed_by_pid_mid_sweep_retries_its_point_once(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    points, victim = 12, 5
    log, hold = tmp_path / "evaluations.log", tmp_path / "hold"
    hold.write_text("")
    base = {"log": str(log), "hold": str(hold), "hold_x": [victim], "sleep_s": 0.05}
    study = study_file(tmp_path / "kill.yaml", points, base)
    killed: dict[str, int] = {}

    def killer() -> None:
        deadline = time.monotonic() + GUARD_S
        while time.monotonic() < deadline:
            lines = log.read_text().split("\n") if log.exists() else []
            found = [int(line.split()[1]) for line in lines if line.split()[:1] == [str(victim)]]
            if found:
                killed["pid"] = found[0]
                os.kill(found[0], signal.SIGKILL)  # as the OOM killer does, while x=5 is in flight
                hold.unlink()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    code = main(["sweep", str(study), "--out", str(tmp_path / "faulty"), "--workers", "2", "--quiet"])
    thread.join()
    out = capsys.readouterr().out
    assert "pid" in killed
    assert code == 0, out
    assert f"{points} points, {points} evaluated now, 0 already in the store; {points} ok, 0 failed" in out
    assert "retried on a new worker (1: the worker process evaluating it died):" in out
    assert f"x={victim}: its worker process killed by signal SIGKILL" in out
    evaluations = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert sorted(evaluations) == sorted([*range(points), victim])  # the victim twice, the rest once
    pids = {int(line.split()[1]) for line in log.read_text().splitlines()}
    assert killed["pid"] in pids and len(pids) >= 2                  # the retry ran on a new worker

    faulty = stored(tmp_path / "faulty")
    assert [row[0] for row in faulty] == list(range(points))         # every point stored exactly once
    assert all(status == "ok" and error is None for _, status, _, error in faulty)
    assert [result for _, _, result, _ in faulty] == [closed_form(x) for x in range(points)]

    clean_log = tmp_path / "clean.log"
    clean = study_file(tmp_path / "clean.yaml", points, {**base, "log": str(clean_log)})
    assert main(["sweep", str(clean), "--out", str(tmp_path / "clean"), "--workers", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert [row[2] for row in stored(tmp_path / "clean")] == [row[2] for row in faulty]


@pytest.mark.parametrize("workers", [1, 2])
def test_point_that_kills_its_worker_fails_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 workers: int) -> None:
    points = 8
    crash = {"3": "exit", str(points - 1): "segv"}  # the segfault is the last point of the study
    study = study_file(tmp_path / "crash.yaml", points, {"crash": crash})
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", str(workers), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{points} points, {points} evaluated now, 0 already in the store; {points - 2} ok, 2 failed" in out
    rows = stored(tmp_path / "out")
    assert [row[0] for row in rows] == list(range(points))
    for x, status, result, error in rows:
        if str(x) in crash:
            assert status == "error" and result is None
            assert "again on a new worker" in error
        else:
            assert (status, result, error) == ("ok", closed_form(x), None)
    errors = {x: error for x, _, _, error in rows}
    assert "exited with code 7" in errors[3]
    assert "killed by signal SIGSEGV" in errors[points - 1]
    assert "retried on a new worker (2:" in out

    again = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", str(workers),
                  "--quiet", "--retry-failed"])
    out = capsys.readouterr().out
    assert again == 1 and f"{points} points, 2 evaluated now, {points - 2} already" in out
    assert stored(tmp_path / "out") == rows                          # failed alone again, same errors


def test_point_over_its_wall_clock_limit_is_stored_failed(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    study = study_file(tmp_path / "hang.yaml", 4, {"crash": {"2": "hang"}}, "point_timeout_s: 1.5\n")
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "2", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1, out
    rows = stored(tmp_path / "out")
    assert [row[0] for row in rows] == [0, 1, 2, 3]
    assert [row[1] for row in rows] == ["ok", "ok", "error", "ok"]
    assert "wall-clock limit of 1.5 s" in rows[2][3]
    assert "retried" not in out                                       # a timeout is not retried
    assert [row[2] for row in rows if row[1] == "ok"] == [closed_form(x) for x in (0, 1, 3)]


def test_point_timeout_option_overrides_the_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = study_file(tmp_path / "hang.yaml", 2, {"crash": {"1": "hang"}})
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet",
                 "--point-timeout", "1"])
    capsys.readouterr()
    assert code == 1
    assert "wall-clock limit of 1 s" in stored(tmp_path / "out")[1][3]


def test_kind_returning_nan_is_stored_failed_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nan.yaml").write_text("name: nan\nkind: test-nan\ngrid: {x: [1]}\n")
    code = main(["sweep", str(tmp_path / "nan.yaml"), "--out", str(tmp_path / "out"), "--quiet"])
    capsys.readouterr()
    assert code == 1
    [(x, status, result, error)] = stored(tmp_path / "out")
    assert (x, status, result) == (1, "error", None)
    assert "bad" in error and "nan" in error.lower()
