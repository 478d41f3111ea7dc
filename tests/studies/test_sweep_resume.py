"""Kill a real `attnsim sweep` (SIGKILL) mid-way and re-run it: every point once, nothing lost,
finished points not recomputed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kind_plugin import install_kinds

# A test-only point kind, installed as a plugin (entry point test-sleep in attnsim.kinds).
SLEEP_KIND = '''
import time

def evaluate(point):
    params = point["params"]
    with open(params["log"], "a") as log:        # one line per evaluation that started
        log.write(f"{params['x']}\\n")
    time.sleep(params["sleep_s"])
    return {"x_cubed": params["x"] ** 3, "slept_s": params["sleep_s"]}
'''

POINTS = 20


def attnsim_command() -> list[str]:
    script = Path(sys.executable).parent / "attnsim"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "attnsim"]


def committed(db_path: Path) -> dict[int, str]:
    """{x: started_at} of the points in the store (read with a separate connection)."""
    if not db_path.is_file():
        return {}
    db = sqlite3.connect(db_path, timeout=30)
    try:
        found = db.execute("SELECT params_json, started_at, status FROM points").fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        found = []
    db.close()
    assert all(status == "ok" for _, _, status in found)
    return {json.loads(params)["x"]: started for params, started, _ in found}


def test_killed_sweep_resumes_without_loss_or_recomputation(tmp_path: Path) -> None:
    env = install_kinds(tmp_path / "plugin", "tests_sleep_kind", SLEEP_KIND, {"test-sleep": "evaluate"})
    log = tmp_path / "evaluations.log"
    study = tmp_path / "slow.yaml"
    study.write_text(f"name: slow\nkind: test-sleep\n"
                     f"base: {{sleep_s: 0.3, log: '{log}'}}\n"
                     f"grid: {{x: {list(range(POINTS))}}}\n")
    out_dir = tmp_path / "out"
    db_path = out_dir / "results.sqlite"
    command = [*attnsim_command(), "sweep", str(study), "--out", str(out_dir), "--workers", "2", "--quiet"]

    first = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120           # a guard against hanging, not a timing assertion
        while len(committed(db_path)) < 4:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(first.pid, signal.SIGKILL)       # the sweep and its worker processes, all at once
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    before = committed(db_path)
    assert 4 <= len(before) < POINTS
    evaluated_first = log.read_text().split()
    shutil.copyfile(log, tmp_path / "first.log")
    log.write_text("")

    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (f"{POINTS} points, {POINTS - len(before)} evaluated now, {len(before)} already in the store; "
            f"{POINTS} ok, 0 failed") in second.stdout

    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    keys = [row[0] for row in db.execute("SELECT key FROM points")]
    results = {json.loads(p)["x"]: json.loads(r) for p, r in db.execute("SELECT params_json, result_json "
                                                                         "FROM points")}
    db.close()
    assert len(keys) == len(set(keys)) == POINTS                       # every point exactly once
    assert results == {x: {"x_cubed": x ** 3, "slept_s": 0.3} for x in range(POINTS)}  # nothing lost
    after = committed(db_path)
    assert {x: after[x] for x in before} == before                     # finished points untouched
    evaluated_second = sorted(int(x) for x in log.read_text().split())
    assert evaluated_second == sorted(set(range(POINTS)) - set(before))  # and not recomputed
    assert set(before) <= {int(x) for x in evaluated_first}
