"""Helpers for the cosmic-ray sessions of ``make mutate`` (standard library only).

``python mutation/session.py sample SESSION CONFIG``
    If CONFIG's ``[attnsim-mutation]`` table sets ``sample = N`` and SESSION holds more than N mutants,
    keep a uniform random sample of N of them (seeded by ``seed``, default 0, and drawn by the mutants'
    identity, so the same sample every time, whatever has run already) and drop the rest. For modules whose tests take
    seconds per mutant and that have thousands of mutants; the kill ratio is then an estimate.
``python mutation/session.py survivors SESSION``
    Print every surviving mutant: line, operator and the diff.
``python mutation/session.py retest SESSION [timeouts]``
    Forget the results of the surviving mutants so that the next ``cosmic-ray exec`` runs them again
    (after tests were added; killed mutants stay killed since the test set only grows); with
    ``timeouts``, instead forget the mutants "killed" by the time limit (to run them again under a
    longer limit or a lighter load).
"""
from __future__ import annotations

import random
import sqlite3
import sys
import tomllib
from pathlib import Path

__all__ = ["sample", "retest", "survivors"]


def sample(session: Path, config: Path) -> int:
    """Reduce SESSION to the configured sample; returns the number of mutants kept."""
    settings = tomllib.loads(config.read_text(encoding="utf-8")).get("attnsim-mutation", {})
    with sqlite3.connect(session) as db:
        jobs = sorted(row[0] for row in db.execute("SELECT job_id FROM mutation_specs"))
        size = settings.get("sample")
        if size is None or size >= len(jobs):
            return len(jobs)
        # job ids are random per init: sample by the mutant's identity (position and operator) instead
        specs = {row[0]: row[1:] for row in db.execute(
            "SELECT job_id, start_pos_row, start_pos_col, operator_name, occurrence FROM mutation_specs")}
        ordered = sorted(jobs, key=lambda job: specs[job])
        keep = set(random.Random(settings.get("seed", 0)).sample(ordered, size))
        drop = [(job,) for job in ordered if job not in keep]
        db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
        db.executemany("DELETE FROM work_results WHERE job_id = ?", drop)
        db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    return size


def retest(session: Path, timeouts: bool = False) -> int:
    """Drop the survivors' (or the timed-out mutants') results from SESSION; returns how many will run
    again."""
    where = "output = 'timeout'" if timeouts else "test_outcome = 'SURVIVED'"
    with sqlite3.connect(session) as db:
        count = db.execute(f"DELETE FROM work_results WHERE {where}").rowcount
    return count


def survivors(session: Path) -> list[str]:
    """One block per surviving mutant of SESSION, in source order."""
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT s.start_pos_row, s.operator_name, r.diff FROM work_results r "
            "JOIN mutation_specs s ON s.job_id = r.job_id WHERE r.test_outcome = 'SURVIVED' "
            "ORDER BY s.start_pos_row, s.start_pos_col, s.operator_name").fetchall()
    return [f"line {line} {operator}\n" + "\n".join(
        d for d in diff.splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---")) for line, operator, diff in rows]


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "sample":
        print(f"{argv[1]}: {sample(Path(argv[1]), Path(argv[2]))} mutants")
        return 0
    if len(argv) == 2 and argv[0] == "survivors":
        print("\n".join(survivors(Path(argv[1]))))
        return 0
    if len(argv) in (2, 3) and argv[0] == "retest" and argv[2:] in ([], ["timeouts"]):
        timeouts = argv[2:] == ["timeouts"]
        print(f"{argv[1]}: {retest(Path(argv[1]), timeouts)} {'timed-out' if timeouts else 'surviving'} "
              "mutants to run again")
        return 0
    print("usage: session.py sample SESSION CONFIG | survivors SESSION | retest SESSION [timeouts]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
