"""Kill a real `attnsim sweep` (SIGKILL, SIGTERM, Ctrl-C) while both workers are busy: no worker or
helper process outlives it, and a re-run resumes exactly. And a second sweep on the same --out stops
with one line while the first one holds it."""
from __future__ import annotations

import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from attnsim.studies.cli import main
from kind_plugin import install_kinds

GUARD_S = 60.0  # a guard against a hanging test, not a timing assertion
POINTS = 4
SOURCE = (Path(__file__).parent / "fault_kinds.py").read_text()


def attnsim_command() -> list[str]:
    script = Path(sys.executable).parent / "attnsim"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "attnsim"]


def setup(tmp_path: Path) -> tuple[list[str], dict[str, str], Path, Path]:
    env = install_kinds(tmp_path / "plugin", "attnsim_fault_kinds", SOURCE, {"test-fault": "evaluate"})
    log, hold = tmp_path / "evaluations.log", tmp_path / "hold"
    hold.write_text("")
    base = {"log": str(log), "hold": str(hold), "hold_x": list(range(POINTS))}
    study = tmp_path / "held.yaml"
    study.write_text(f"name: held\nkind: test-fault\nbase: {json.dumps(base)}\n"
                     f"grid: {{x: {list(range(POINTS))}}}\n")
    command = [*attnsim_command(), "sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "2",
               "--quiet"]
    return command, env, log, hold


def wait_for_busy_workers(sweep: subprocess.Popen, log: Path, count: int) -> None:
    deadline = time.monotonic() + GUARD_S
    while not log.exists() or len(log.read_text().splitlines()) < count:
        assert sweep.poll() is None, sweep.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT-group"])
def test_killed_sweep_leaves_no_orphans_and_resumes(tmp_path: Path, how: str) -> None:
    command, env, log, hold = setup(tmp_path)
    sweep = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_busy_workers(sweep, log, 2)
        descendants = psutil.Process(sweep.pid).children(recursive=True)
        worker_pids = {int(line.split()[1]) for line in log.read_text().splitlines()}
        assert len(worker_pids) == 2 and worker_pids <= {p.pid for p in descendants}  # and the
        # multiprocessing resource tracker: every descendant must be gone after the kill
        if how == "SIGKILL":
            sweep.send_signal(signal.SIGKILL)
        elif how == "SIGTERM":
            sweep.send_signal(signal.SIGTERM)
        else:  # Ctrl-C in a terminal: SIGINT to the whole foreground process group
            os.killpg(sweep.pid, signal.SIGINT)
        out, err = sweep.communicate(timeout=GUARD_S)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    if how == "SIGKILL":
        assert sweep.returncode == -signal.SIGKILL
    else:
        assert sweep.returncode == 130, out + err
        assert "interrupted; every finished point is in the store" in err and "Traceback" not in err
    deadline = time.monotonic() + GUARD_S
    while not all(gone(p) for p in descendants):
        assert time.monotonic() < deadline, [p for p in descendants if not gone(p)]
        time.sleep(0.05)

    hold.unlink()
    evaluated_before = len(log.read_text().splitlines())
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=GUARD_S * 2)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{POINTS} points, {POINTS} evaluated now, 0 already in the store; {POINTS} ok" in again.stdout
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = db.execute("SELECT params_json, result_json FROM points").fetchall()
    db.close()
    results = {json.loads(p)["x"]: json.loads(r) for p, r in rows}
    assert len(rows) == POINTS
    assert results == {x: {"x_cubed": x ** 3, "x_half": x / 2} for x in range(POINTS)}
    assert len(log.read_text().splitlines()) == evaluated_before + POINTS


def test_second_sweep_on_the_same_out_stops_with_one_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    command, env, log, hold = setup(tmp_path)
    first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for_busy_workers(first, log, 1)
        monkeypatch.syspath_prepend(str(tmp_path / "plugin"))   # the plugin kind, in this process too
        importlib.invalidate_caches()
        code = main(command[len(attnsim_command()) :])
        err = capsys.readouterr().err
        assert code == 2
        assert err.strip().splitlines() == [
            f"attnsim: error: {tmp_path / 'out'}: another sweep (pid {first.pid}) is writing this directory; "
            "wait for it to finish (re-run then to pick up what is left) or use another --out"]
    finally:
        hold.unlink()
        out, err = first.communicate(timeout=GUARD_S)
    assert first.returncode == 0, out + err
    assert f"{POINTS} points, {POINTS} evaluated now" in out
    assert len(log.read_text().splitlines()) == POINTS                # every point evaluated once
