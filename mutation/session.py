"""Helpers for the cosmic-ray sessions of ``make mutate`` (standard library only).

``python mutation/session.py sample SESSION CONFIG``
    If CONFIG's ``[attnsim-mutation]`` table sets ``sample = N`` and SESSION holds more than N mutants,
    keep a uniform random sample of N of them (seeded by ``seed``, default 0, and drawn by the mutants'
    identity, so the same sample every time, whatever has run already) and drop the rest. For modules whose tests take
    seconds per mutant and that have thousands of mutants; the kill ratio is then an estimate.
``python mutation/session.py annotations SESSION``
    Drop the mutants inside function signature annotations and module-level variable annotations of a
    module that starts with ``from __future__ import annotations`` (PEP 563: Python keeps them as
    strings and never evaluates them, and nothing in attnsim reads them back with
    ``typing.get_type_hints``), so they cannot change any behaviour: cosmic-ray 8 mutates the syntax
    tree and produces them anyway (``str | None`` -> ``str * None``). Class-body annotations are kept
    (dataclasses and pydantic read those).
``python mutation/session.py survivors SESSION``
    Print every surviving mutant: line, operator and the diff.
``python mutation/session.py retest SESSION [timeouts]``
    Forget the results of the surviving mutants so that the next ``cosmic-ray exec`` runs them again
    (after tests were added; killed mutants stay killed since the test set only grows); with
    ``timeouts``, instead forget the mutants "killed" by the time limit (to run them again under a
    longer limit or a lighter load).
"""
from __future__ import annotations

import ast
import random
import sqlite3
import sys
import tomllib
from pathlib import Path

__all__ = ["annotations", "sample", "retest", "survivors"]


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


def _annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions, (1-based line, 0-based column), of the never-evaluated annotations."""
    tree = ast.parse(source)
    if not any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in tree.body):
        return []
    nodes: list[ast.expr] = [node.annotation for node in tree.body
                             if isinstance(node, ast.AnnAssign)]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs,
                     *(a for a in (args.vararg, args.kwarg) if a is not None)]
            nodes += [a.annotation for a in every if a.annotation is not None]
            if node.returns is not None:
                nodes.append(node.returns)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in nodes]


def annotations(session: Path) -> int:
    """Drop SESSION's mutants inside never-evaluated annotations; returns how many were dropped."""
    with sqlite3.connect(session) as db:
        rows = db.execute("SELECT job_id, module_path, start_pos_row, start_pos_col, end_pos_row, end_pos_col "
                          "FROM mutation_specs").fetchall()
        spans = {module: _annotation_spans(Path(module).read_text(encoding="utf-8"))
                 for module in {row[1] for row in rows}}
        drop = [(job,) for job, module, *position in rows
                if any(lo <= (position[0], position[1]) and (position[2], position[3]) <= hi
                       for lo, hi in spans[module])]
        for table in ("work_results", "mutation_specs", "work_items"):
            db.executemany(f"DELETE FROM {table} WHERE job_id = ?", drop)
    return len(drop)


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
    if len(argv) == 2 and argv[0] == "annotations":
        print(f"{argv[1]}: {annotations(Path(argv[1]))} mutants inside annotations dropped")
        return 0
    if len(argv) == 2 and argv[0] == "survivors":
        print("\n".join(survivors(Path(argv[1]))))
        return 0
    if len(argv) in (2, 3) and argv[0] == "retest" and argv[2:] in ([], ["timeouts"]):
        timeouts = argv[2:] == ["timeouts"]
        print(f"{argv[1]}: {retest(Path(argv[1]), timeouts)} {'timed-out' if timeouts else 'surviving'} "
              "mutants to run again")
        return 0
    print("usage: session.py sample SESSION CONFIG | annotations SESSION | survivors SESSION | retest SESSION [timeouts]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
