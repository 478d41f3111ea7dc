"""Study YAML validation, point expansion (grid x sweep x derived) and point keys."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from attnsim.archsim.spec import load_arch
from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.points import PointKind, register_kind, resolve_points, unregister_kind
from attnsim.studies.study import load_study

ROOT = Path(__file__).resolve().parents[2]
FM_ARCH_FILE = ROOT / "specs" / "arch" / "fusemax-cloud.yaml"

GOOD = """\
name: tiny
kind: gemm
base: {arch: fusemax-cloud, N: 32, K: 48}
grid:
  dataflow: [os, ws]
  M: [64, 128]
sweep:
  arrays.pe2d.rows: [8, 16]
derived:
  arrays.pe2d.cols: "rows"
  global_buffer.capacity_bytes: "rows * 65536"
"""


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problem(path: Path) -> str:
    """The message of the UsageError that loading and resolving the study raises."""
    with pytest.raises(UsageError) as info:
        resolve_points(load_study(path))
    message = str(info.value)
    assert "\n" not in message
    return message


# -- errors: one line naming the file and the key path ---------------------------------------------

GEMM_BASE = "base: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\ngrid: {M: [4]}\n"

BAD_STUDIES = [
    ("unknown-top-key", "name: x\nkind: gemm\ngird: {M: [1]}\n", "gird: unknown key 'gird'"),
    ("empty-axis", "name: x\nkind: gemm\ngrid: {M: []}\n", "grid.M: expected a non-empty list"),
    ("axis-not-list", "name: x\nkind: gemm\ngrid: {M: 4}\n", "grid.M: expected a non-empty list"),
    ("repeated-value", "name: x\nkind: gemm\ngrid: {M: [4, 4]}\n", "grid.M: value 4 appears twice"),
    ("missing-kind", "name: x\n", "kind: missing required key"),
    ("unknown-kind", "name: x\nkind: attentionn\n", "kind: unknown point kind 'attentionn'"),
    ("kind-import-path", "name: x\nkind: 'no_such_module_xyz:evaluate'\n",
     "kind: unknown point kind 'no_such_module_xyz:evaluate'"),
    ("kind-runs-no-code", "name: x\nkind: 'subprocess:run'\n", "it cannot name code to import"),
    ("bad-name", "name: 'a b'\nkind: gemm\n", "name: expected a name"),
    ("derived-syntax", "name: x\nkind: gemm\n" + GEMM_BASE + "derived: {arrays.pe2d.cols: 'M *'}\n",
     "derived.arrays.pe2d.cols: cannot read the expression 'M *'"),
    ("derived-unknown-name", "name: x\nkind: gemm\n" + GEMM_BASE + "derived: {arrays.pe2d.cols: 'rowz'}\n",
     "derived.arrays.pe2d.cols: unknown name 'rowz'"),
    ("derived-python", "name: x\nkind: gemm\n" + GEMM_BASE
     + "derived: {arrays.pe2d.cols: \"__import__('os')\"}\n", "derived.arrays.pe2d.cols: unexpected \"'\" at column 12"),
    ("derived-not-number", "name: x\nkind: gemm\n" + GEMM_BASE + "derived: {arrays.pe2d.cols: 'dataflow'}\n",
     "derived.arrays.pe2d.cols: 'dataflow' is 'os', not a number"),
    ("override-bad-key", "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {arrays.pe2d.rowz: [4]}\n",
     "sweep.arrays.pe2d.rowz: unknown key 'rowz' (known: rows, cols, ops)"),
    ("override-bad-value", "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {arrays.pe2d.rows: [8, -4]}\n",
     "sweep.arrays.pe2d.rows: expected a positive integer, got -4"),
    ("derived-override-bad-key", "name: x\nkind: gemm\n" + GEMM_BASE + "derived: {dram.widthh: '2 * M'}\n",
     "derived.dram.widthh: unknown key 'widthh'"),
    ("sweep-kind-param", "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\n"
     "sweep: {M: [4]}\n", "sweep.M: expected an architecture key"),
    ("twice", "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {clock_hz: [1.0e9]}\nderived: {clock_hz: '2'}\n",
     "derived.clock_hz: also given in sweep"),
    ("unknown-param", "name: x\nkind: gemm\n" + GEMM_BASE.replace("dataflow: os", "dataflow: os, Q: 1"),
     "base.Q: unknown parameter 'Q' of kind gemm"),
    ("missing-param", "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4}\ngrid: {M: [4]}\n",
     "missing parameter 'dataflow' of kind gemm"),
    ("bad-param-value", "name: x\nkind: gemm\nbase: {arch: fusemax-cloud, N: 4, K: 4, dataflow: os}\n"
     "grid: {M: [4, 0]}\n", "grid.M: expected a positive integer, got 0"),
    ("unknown-arch", "name: x\nkind: gemm\n" + GEMM_BASE.replace("fusemax-cloud", "fusemax-clod"),
     "base.arch: unknown architecture 'fusemax-clod'"),
    ("override-without-arch", "name: x\nkind: test-free\ngrid: {x: [1]}\nsweep: {clock_hz: [1.0e9]}\n",
     "sweep.clock_hz: an architecture override needs an architecture"),
    ("plots-not-mappings", "name: x\nkind: gemm\nplots: [cycles]\n", "plots.0: expected a mapping"),
    ("plots-not-list", "name: x\nkind: gemm\nplots: {a: 1}\n", "plots: expected a list"),
    ("malformed-yaml", "name: x\nkind: gemm\ngrid: {M: [4]\n", "malformed YAML"),
]


def _free_kind(point: dict) -> dict:
    return {}


@pytest.fixture(autouse=True)
def free_kind():
    """A kind with any parameters and no architecture of its own (registered in this process)."""
    register_kind(PointKind(name="test-free", evaluate=_free_kind), replace=True)
    yield
    unregister_kind("test-free")


@pytest.mark.parametrize("text, expected", [case[1:] for case in BAD_STUDIES],
                         ids=[case[0] for case in BAD_STUDIES])
def test_bad_study_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = problem(path)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_cli_reports_bad_study_as_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {arrays.pe2d.rowz: [4]}\n")
    code = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == [f"attnsim: error: {path}: sweep.arrays.pe2d.rowz: unknown key 'rowz' "
                                "(known: rows, cols, ops)"]
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_cli_subprocess_exit_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nkind: gemm\ngrid: {M: []}\n")
    proc = subprocess.run([sys.executable, "-m", "attnsim", "sweep", str(path), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"attnsim: error: {path}: grid.M: expected a non-empty list of values, got an empty list"]


def test_bad_workers_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert main(["sweep", str(path), "--workers", "0", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == "attnsim: error: --workers: expected a positive integer, got 0"


# -- expansion ------------------------------------------------------------------------------------


def test_points_cross_grid_then_sweep_first_axis_slowest_with_derived_values(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, GOOD))
    expected = []
    for dataflow in ("os", "ws"):           # written out independently of the implementation
        for m in (64, 128):
            for rows in (8, 16):
                expected.append({"arch": "fusemax-cloud", "N": 32, "K": 48, "dataflow": dataflow, "M": m,
                                 "arrays.pe2d.rows": rows, "arrays.pe2d.cols": rows,
                                 "global_buffer.capacity_bytes": rows * 65536})
    points = list(study.points())
    assert points == expected
    assert [list(p) for p in points] == [list(e) for e in expected]  # key order: base, grid, sweep, derived
    assert study.size == 8


def test_resolved_params_add_kind_defaults_and_points_carry_their_arch(tmp_path: Path) -> None:
    resolved = resolve_points(load_study(write(tmp_path, GOOD)))
    assert [p.index for p in resolved] == list(range(8))
    first = resolved[0]
    assert first.params["fill_drain"] == "per_fold"
    payload = json.loads(first.point_json)
    assert payload["kind"] == "gemm"
    assert payload["params"] == {"N": 32, "K": 48, "dataflow": "os", "M": 64, "fill_drain": "per_fold"}
    assert payload["arch"]["arrays"]["pe2d"]["rows"] == 8
    assert payload["arch"]["arrays"]["pe2d"]["cols"] == 8
    assert payload["arch"]["global_buffer"]["capacity_bytes"] == 8 * 65536
    assert payload["arch"]["clock_hz"] == 940e6


def test_derived_expressions_functions_full_keys_and_chaining(tmp_path: Path) -> None:
    text = GOOD.replace('arrays.pe2d.cols: "rows"', 'arrays.pe2d.cols: "max(arrays.pe2d.rows // 2, 6)"')
    text += '  arrays.pe1d.size: "cols * 3 + ceiling(M / 100)"\n'
    points = list(load_study(write(tmp_path, text)).points())
    for point in points:
        rows = point["arrays.pe2d.rows"]
        cols = max(rows // 2, 6)
        assert point["arrays.pe2d.cols"] == cols
        assert point["arrays.pe1d.size"] == cols * 3 + -(-point["M"] // 100)
        assert isinstance(point["arrays.pe1d.size"], int)


def test_non_integer_derived_value_is_a_float(tmp_path: Path) -> None:
    text = ("name: x\nkind: gemm\n" + GEMM_BASE + "sweep: {clock_hz: [1.0e9]}\n"
            "derived: {dram.bandwidth_bytes_per_s: 'clock_hz * 2.5 / 3'}\n")
    (point,) = load_study(write(tmp_path, text)).points()
    assert point["dram.bandwidth_bytes_per_s"] == pytest.approx(1e9 * 2.5 / 3, rel=1e-15)


# -- point keys -----------------------------------------------------------------------------------


def independent_key(params: dict, arch_overrides: dict) -> str:
    payload = {"kind": "gemm", "params": params,
               "arch": load_arch("fusemax-cloud", arch_overrides).model_dump(mode="json"),
               "version": metadata.version("attnsim")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_point_key_is_sha256_of_canonical_resolved_point(tmp_path: Path) -> None:
    resolved = resolve_points(load_study(write(tmp_path, GOOD)))
    last = resolved[-1]  # ws, M=128, rows=16
    assert last.key == independent_key(
        {"N": 32, "K": 48, "dataflow": "ws", "M": 128, "fill_drain": "per_fold"},
        {"arrays.pe2d.rows": 16, "arrays.pe2d.cols": 16, "global_buffer.capacity_bytes": 16 * 65536})
    assert len({p.key for p in resolved}) == 8


def test_same_hardware_by_name_or_path_gives_same_key_and_other_hardware_another(tmp_path: Path) -> None:
    by_name = resolve_points(load_study(write(tmp_path, GOOD, "a.yaml")))
    by_path = resolve_points(load_study(write(tmp_path, GOOD.replace("arch: fusemax-cloud",
                                                                     f"arch: {FM_ARCH_FILE}"), "b.yaml")))
    assert [p.key for p in by_name] == [p.key for p in by_path]
    other = resolve_points(load_study(write(tmp_path, GOOD.replace('"rows * 65536"', '"rows * 131072"'),
                                            "c.yaml")))
    assert not {p.key for p in other} & {p.key for p in by_name}


def test_arch_path_relative_to_the_study_file(tmp_path: Path) -> None:
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "mine.yaml").write_text(FM_ARCH_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    study_dir = tmp_path / "studies"
    study_dir.mkdir()
    path = write(study_dir, GOOD.replace("arch: fusemax-cloud", "arch: ../hw/mine.yaml"))
    resolved = resolve_points(load_study(path))
    assert json.loads(resolved[0].point_json)["arch"]["name"] == "fusemax-cloud"


def test_shipped_gemm_example_is_valid() -> None:
    study = load_study(ROOT / "specs" / "studies" / "gemm-example.yaml")
    assert study.spec.kind == "gemm"
    assert len(resolve_points(study)) == study.size == 16
