"""``attnsim arch SPEC [--set key=value ...] [--json]``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnsim.studies.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Sheet §3.6 per-instance um^2 for FuseMax: 2D PE = RF 16838 + MAC 1545 + max 49.29,
# 1D PE = RF 16849 + max 49.29 + MAC 1545 + div 23740.94, global buffer 84.20 mm^2.
FM_PE2D_UM2 = 16838 + 1545 + 49.29
FM_PE1D_UM2 = 16849 + 49.29 + 1545 + 23740.94
FM_GLB_UM2 = 84.20e6


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_spec_area_breakdown_and_total(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "arch", "fusemax-cloud", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert {"name", "origin", "spec", "pes_2d", "pes_1d", "words_per_row", "dram_bytes_per_cycle",
            "area_breakdown_um2", "area_mm2"} <= report.keys()
    assert report["name"] == "fusemax-cloud"
    assert report["spec"]["arrays"]["pe2d"]["rows"] == 256
    assert report["spec"]["energy"]["global_buffer.read"]["pj"] == 12512.76
    assert report["spec"]["area"]["pe2d.add"] == {
        "counted_in": "pe2d.mac", "source": report["spec"]["area"]["pe2d.add"]["source"]}
    assert report["area_mm2"] == pytest.approx((65536 * FM_PE2D_UM2 + 256 * FM_PE1D_UM2 + FM_GLB_UM2) / 1e6)
    assert report["area_breakdown_um2"]["pe2d.mac"] == pytest.approx(65536 * 1545)


def test_set_overrides_change_the_area(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "arch", "fusemax-cloud", "--set", "arrays.pe2d.rows=32",
                        "--set", "arrays.pe2d.cols=32", "--set", "arrays.pe1d.size=32", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["pes_2d"] == 1024 and report["pes_1d"] == 32
    assert report["area_mm2"] == pytest.approx((1024 * FM_PE2D_UM2 + 32 * FM_PE1D_UM2 + FM_GLB_UM2) / 1e6)


def test_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "arch", str(ROOT / "specs" / "arch" / "flat-cloud.yaml"))
    assert (code, err) == (0, "")
    assert out.startswith("flat-cloud: ")
    assert "256 x 256 = 65536 PEs" in out
    assert "pe2d.add" in out and "counted in pe2d.mac" in out
    # sheet §3.6 FLAT: 2D PE = RF 16814 + MAC 1545; 1D PE = RF 16837 + max 49.29 + MAC 1545 + exp 8240
    # + div 23740.94; global buffer 175.72 mm^2 -> ~1391.8 mm^2
    flat_mm2 = (65536 * (16814 + 1545) + 256 * (16837 + 49.29 + 1545 + 8240 + 23740.94) + 175.72e6) / 1e6
    assert out.rstrip().splitlines()[-1] == f"area_mm2: {flat_mm2:.4f}"


@pytest.mark.parametrize(("argv", "message"), [
    (["fusemax-cloud", "--set", "arrays.pe2d.rowz=32"],
     "attnsim: error: --set arrays.pe2d.rowz=32: unknown key 'rowz' (known: rows, cols, ops)"),
    (["fusemax-cloud", "--set", "arrays.pe2d.rows=-4"],
     "attnsim: error: --set arrays.pe2d.rows=-4: expected a positive integer, got -4"),
    (["fusemax-cloud", "--set", "rows"],
     "attnsim: error: --set rows: expected KEY=VALUE with a dotted key, e.g. arrays.pe2d.rows=32"),
    (["tpu-v9"], "attnsim: error: unknown architecture 'tpu-v9' (known: flat-cloud, flat-edge, "
                 "fusemax-cloud; or give a path to a .yaml file)"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    code, out, err = _run(capsys, "arch", *argv)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [message]


def test_bad_spec_file_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "arch" / "fusemax-cloud.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("    rows: 256", "    rows: -4"), encoding="utf-8")
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text(text.replace("    cols: 256", "    cols: 256: 3"), encoding="utf-8")
    line = 1 + malformed.read_text(encoding="utf-8").splitlines().index("    cols: 256: 3")
    for path, message in [
            (bad, f"attnsim: error: {bad}: arrays.pe2d.rows: expected a positive integer, got -4"),
            (malformed, f"attnsim: error: {malformed}:{line}: malformed YAML: mapping values are not "
                        "allowed here")]:
        proc = subprocess.run([sys.executable, "-m", "attnsim", "arch", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert proc.stderr.splitlines() == [message]
        assert "Traceback" not in proc.stderr
