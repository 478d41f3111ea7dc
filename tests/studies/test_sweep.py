"""`attnsim sweep` with the GEMM kind and a test kind: results, CSV, failures, skipping, workers."""
from __future__ import annotations

import csv
import json
import math
import sqlite3
from pathlib import Path

import pytest

from attnsim.studies.cli import main
from attnsim.studies.points import PointKind, register_kind, unregister_kind

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "specs" / "studies" / "gemm-example.yaml"
FM_CLOCK_HZ = 940e6          # specs/arch/fusemax-cloud.yaml (paper §VI-A)
FM_MAC_PJ = 17.1645          # fusemax-cloud energy table, pe2d.mac per op
FM_WORD_BYTES = 2

FAILING = """\
name: failing
kind: gemm
base: {arch: fusemax-cloud, N: 64, K: 64, dataflow: os, arrays.pe2d.rows: 16, arrays.pe2d.cols: 16}
grid: {M: [32, 64]}
sweep: {global_buffer.capacity_bytes: [512, 1048576]}
"""


def stored_rows(directory: Path) -> dict[str, dict]:
    """{key: row} read straight from the SQLite file (independently of studies.store)."""
    db = sqlite3.connect(directory / "results.sqlite")
    db.row_factory = sqlite3.Row
    rows = {row["key"]: dict(row) for row in db.execute("SELECT * FROM points")}
    db.close()
    return rows


def sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gemm_example_csv_matches_store_and_closed_forms(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "ge"
    code, out, err = sweep(capsys, str(EXAMPLE), "--out", str(out_dir), "--workers", "1")
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("study gemm-example: 16 points, 16 evaluated now, 0 already in "
                                          "the store; 16 ok, 0 failed")
    assert "16/16" in err and "point/s" in err                   # the progress bar
    assert (out_dir / "gemm-example.yaml").read_text() == EXAMPLE.read_text()  # provenance copy
    assert main(["results", str(out_dir), "--csv", str(out_dir / "results.csv")]) == 0
    with (out_dir / "results.csv").open(newline="") as stream:
        table = list(csv.DictReader(stream))
    stored = stored_rows(out_dir)
    assert len(table) == len(stored) == 16
    seen = set()
    for row in table:
        db_row = stored[row["key"]]
        params, result = json.loads(db_row["params_json"]), json.loads(db_row["result_json"])
        assert row["status"] == db_row["status"] == "ok" and row["error"] == ""
        for name, value in params.items():                       # CSV cells = store JSON, exactly
            assert row[name] == str(value)
        for name, value in result.items():
            if not isinstance(value, dict):
                assert row[name] == str(value), name
        assert row["energy_breakdown_pj.pe2d.mac"] == str(result["energy_breakdown_pj"]["pe2d.mac"])
        m, n, k = int(row["M"]), int(row["N"]), int(row["K"])
        r, c = int(row["arrays.pe2d.rows"]), int(row["arrays.pe2d.cols"])
        seen.add((row["dataflow"], m, k, r))
        # derived keys: cols = rows, 4 KiB of global buffer per array row
        assert c == r and int(row["global_buffer.capacity_bytes"]) == 4096 * r
        assert int(row["array_rows"]) == r and int(row["array_cols"]) == c
        macs, compute, cycles = int(row["macs"]), int(row["compute_cycles"]), int(row["cycles"])
        assert macs == m * n * k
        assert compute >= math.ceil(m * n * k / (r * c))
        # per-fold fill/drain (SCALE-Sim): folds x (2R + C + T - 2), T the temporal rank
        if row["dataflow"] == "os":
            assert compute == math.ceil(m / r) * math.ceil(n / c) * (2 * r + c + k - 2)
        else:
            assert compute == math.ceil(k / r) * math.ceil(n / c) * (2 * r + c + m - 2)
        assert cycles >= compute
        assert float(row["latency_s"]) == pytest.approx(cycles / FM_CLOCK_HZ, rel=1e-12)
        assert float(row["util_2d"]) == pytest.approx(macs / (r * c * cycles), rel=1e-9)
        # every operand read from DRAM at least once, the output written once
        assert int(row["traffic_bytes"]) >= FM_WORD_BYTES * (m * k + k * n + m * n)
        assert float(row["energy_breakdown_pj.pe2d.mac"]) == pytest.approx(macs * FM_MAC_PJ, rel=1e-12)
    assert len(seen) == 16


def test_rerun_skips_finished_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = (str(EXAMPLE), "--out", str(tmp_path), "--workers", "1", "--quiet")
    assert sweep(capsys, *args)[0] == 0
    before = stored_rows(tmp_path)
    code, out, err = sweep(capsys, *args)
    assert code == 0 and err == ""
    assert "16 points, 0 evaluated now, 16 already in the store; 16 ok" in out
    assert stored_rows(tmp_path) == before                       # not one row touched


def test_failing_point_is_recorded_listed_and_others_complete(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "failing.yaml"
    study.write_text(FAILING)
    out_dir = tmp_path / "out"
    code, out, _ = sweep(capsys, str(study), "--out", str(out_dir), "--workers", "1", "--quiet")
    assert code == 1
    rows = stored_rows(out_dir)
    by_capacity = {}
    for row in rows.values():
        params = json.loads(row["params_json"])
        by_capacity.setdefault(params["global_buffer.capacity_bytes"], []).append(row)
    assert {r["status"] for r in by_capacity[512]} == {"error"}            # 512 B cannot hold the tiles
    assert {r["status"] for r in by_capacity[1048576]} == {"ok"}
    for row in by_capacity[512]:
        assert row["result_json"] is None
        assert row["error"].startswith("MappingError: gemm: global_buffer.capacity_bytes = 512")
        assert "\n" not in row["error"]
    lines = out.splitlines()
    assert "4 points, 4 evaluated now, 0 already in the store; 2 ok, 2 failed" in lines[0]
    assert lines[1].startswith("failed points")
    assert len(lines) == 4
    for line, row in zip(lines[2:], sorted(by_capacity[512], key=lambda r: r["point_index"])):
        assert line.strip().startswith(row["key"][:12])
        assert "global_buffer.capacity_bytes=512" in line and "MappingError" in line

    # a re-run leaves failed points alone (still listed, still exit 1) ...
    code, out, _ = sweep(capsys, str(study), "--out", str(out_dir), "--workers", "1", "--quiet")
    assert code == 1 and "0 evaluated now, 4 already in the store; 2 ok, 2 failed" in out
    assert stored_rows(out_dir) == rows
    # ... unless asked to retry them: only they are evaluated again
    code, out, _ = sweep(capsys, str(study), "--out", str(out_dir), "--workers", "1", "--quiet",
                         "--retry-failed")
    assert code == 1 and "2 evaluated now, 2 already in the store; 2 ok, 2 failed" in out
    after = stored_rows(out_dir)
    for key, row in rows.items():
        if row["status"] == "ok":
            assert after[key] == row
        else:
            assert after[key]["started_at"] != row["started_at"]


def _square_unless_three(point: dict) -> dict:
    x = point["params"]["x"]
    if x == 3:
        raise RuntimeError(f"x={x} is unlucky")
    return {"x_squared": x * x, "nested": {"half": x / 2}}


def test_registered_kind_default_out_dir_and_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    register_kind(PointKind(name="test-square", evaluate=_square_unless_three, required=("x",)))
    try:
        (tmp_path / "sq.yaml").write_text("name: squares\nkind: test-square\ngrid: {x: [1, 2, 3, 4]}\n")
        monkeypatch.chdir(tmp_path)
        code, out, _ = sweep(capsys, "sq.yaml", "--quiet", "--workers", "1")
    finally:
        unregister_kind("test-square")
    assert code == 1
    rows = sorted(stored_rows(tmp_path / "out" / "squares").values(), key=lambda r: r["point_index"])
    assert [json.loads(r["params_json"]) for r in rows] == [{"x": x} for x in (1, 2, 3, 4)]
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok"]
    assert [json.loads(r["result_json"])["x_squared"] for r in rows if r["status"] == "ok"] == [1, 4, 16]
    assert rows[2]["error"].startswith("RuntimeError: x=3 is unlucky [test_sweep.py:")
    assert "x=3: RuntimeError: x=3 is unlucky" in out
    assert (tmp_path / "out" / "squares" / "sq.yaml").is_file()


def test_results_identical_with_one_or_two_worker_processes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(capsys, str(EXAMPLE), "--out", str(tmp_path / "one"), "--workers", "1", "--quiet")[0] == 0
    assert sweep(capsys, str(EXAMPLE), "--out", str(tmp_path / "two"), "--workers", "2", "--quiet")[0] == 0
    one, two = stored_rows(tmp_path / "one"), stored_rows(tmp_path / "two")
    fields = ("study", "kind", "point_index", "params_json", "point_json", "status", "result_json", "error")
    assert one.keys() == two.keys()
    for key in one:
        assert [one[key][f] for f in fields] == [two[key][f] for f in fields]


def test_the_cli_default_scheduler_timeout_is_the_sweeps() -> None:
    from attnsim.studies import sweep
    from attnsim.studies.cli.commands import sweep as command

    assert command.DEFAULT_SCHEDULER_TIMEOUT_S == sweep.DEFAULT_SCHEDULER_TIMEOUT_S
