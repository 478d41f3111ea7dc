"""The ``attention`` and ``gpu`` point kinds through ``attnsim sweep``, the Pareto sizing rule, studies
with several grids, and the shipped study files.

Expected values come from the FuseMax fact sheet's closed forms (§4.4 latency model, §2.5 tiling rule,
§5 Pareto sizing rule, §3.6 area table) and FA3's FLOP convention, written out here.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.plots import parse_plot_entries
from attnsim.studies.points import resolve_points
from attnsim.studies.study import load_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "specs" / "studies"

CLOCK_HZ = 940e6                     # fact sheet §3.1
BANDWIDTH = 400 * 2 ** 30            # bytes/s, fact sheet §3.1
BERT = {"B": 64, "H": 12, "E": 64, "F": 64}   # fact sheet §5
FM_AREA_UM2 = {"pe2d": 16838 + 1545 + 49.29, "pe1d": 16849 + 1545 + 49.29 + 23740.94, "glb_16mb": 84.20e6}
"""FuseMax per-PE areas (RF + MAC + max; 1D adds the divider) and the 16 MB buffer, fact sheet §3.6."""


def _sweep(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[dict, dict, dict]]:
    """Run the study ``text``; {json of params: (params, point, result)} read straight from SQLite."""
    study = tmp_path / "s.yaml"
    study.write_text(text)
    code = main(["sweep", str(study), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = db.execute("SELECT params_json, point_json, result_json FROM points ORDER BY point_index").fetchall()
    db.close()
    return {p: (json.loads(p), json.loads(q), json.loads(r)) for p, q, r in rows}


def test_attention_points_default_arch_closed_form_and_roofline_keys(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rows = _sweep(tmp_path, "name: a\nkind: attention\nbase: {model: bert-base, seq: 1024, closed_form: true}\n"
                            "grid: {design: [unfused, fusemax], end_to_end: [false, true]}\n", capsys)
    assert len(rows) == 4
    seq, u = 1024, BERT["B"] * BERT["H"] * (1024 // 256) ** 2
    m1, f = seq // 256, BERT["F"]
    for params, point, result in rows.values():
        design = params["design"]
        # no arch in the study: the design's own (FLAT's platform for Unfused, FuseMax's for FuseMax)
        assert point["arch"]["name"] == {"unfused": "flat-cloud", "fusemax": "fusemax-cloud"}[design]
        assert result["arch"] == point["arch"]["name"]
        assert result["attention_flops"] == 2 * BERT["B"] * BERT["H"] * seq * seq * (BERT["E"] + f)
        assert result["peak_flops_per_s"] == 2 * 256 * 256 * CLOCK_HZ
        assert result["dram_bandwidth_bytes_per_s"] == BANDWIDTH
        if design == "fusemax":
            cycles = (2 * f + 10 + f // m1) * u             # §4.4, E = F
            attention = result["attention_cycles"] if params["end_to_end"] else result["cycles"]
            assert attention == cycles
            assert result["util_2d"] == pytest.approx((2 * f + 9) / (2 * f + 10 + f / m1), rel=1e-12)
        if params["end_to_end"]:
            assert result["latency_s"] == pytest.approx(result["attention_latency_s"] + result["linear_latency_s"])
            assert result["linear_latency_s"] > 0
        else:
            assert "linear_latency_s" not in result


def test_end_to_end_is_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _sweep(tmp_path, "name: a\nkind: attention\ngrid: {design: [flash2], model: [t5-small], seq: [1024]}\n",
                  capsys)
    (params, point, result), = rows.values()
    assert params == {"design": "flash2", "cascade": None, "mapping": None, "model": "t5-small", "seq": 1024,
                      "end_to_end": True, "closed_form": False, "sizing": "none", "pe_dim": None, "arch": None,
                      "phase": None, "q_len": None, "batch": None, "heads": None, "kv_heads": None, "causal": None}
    assert point["arch"]["name"] == "fusemax-cloud" and "linear_latency_s" in result


def _closed_form_multiplier(pe: int, seq: int) -> tuple[int, int, int]:
    """The §5 rule with the §2.5 tiling and §4.4 latencies: (min_tiles, minimum L3, multiplier)."""
    e, f, b, h = BERT["E"], BERT["F"], BERT["B"], BERT["H"]
    min_tiles = int(max(1, pe / e) * 2)
    l3 = int(pe * max(1, min_tiles / (seq / pe)) * e * 8 * 2)
    q_bytes = b * h * e * seq * 2
    u = b * h * (seq // pe) ** 2
    compute_1d_s = ((10 + 2 * f) * u + f * u / (seq // pe)) / CLOCK_HZ
    multiplier = 1
    while True:
        available = l3 * multiplier - pe * (e + f) * 2
        bound = available // ((e + 2 + f) * 2 * pe)
        blocks = seq // pe
        p1 = max(d for d in range(1, min(bound, blocks) + 1) if blocks % d == 0)
        memory_s = (2 * q_bytes + 2 * q_bytes * (blocks // p1)) / BANDWIDTH
        if memory_s <= compute_1d_s:
            return min_tiles, l3, multiplier
        multiplier *= 2


def test_pareto_sizing_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = 262144
    rows = _sweep(tmp_path, "name: p\nkind: attention\nbase: {design: fusemax, model: bert-base, seq: 262144, "
                            "end_to_end: false, sizing: pareto}\ngrid: {pe_dim: [16, 256, 512]}\n", capsys)
    multipliers = []
    for params, point, result in rows.values():
        pe = params["pe_dim"]
        min_tiles, l3, multiplier = _closed_form_multiplier(pe, seq)
        sizing = result["sizing"]
        assert (sizing["min_tiles"], sizing["l3_min_bytes"], sizing["l3_multiplier"]) == (min_tiles, l3, multiplier)
        assert result["global_buffer_bytes"] == sizing["global_buffer_bytes"] == l3 * multiplier
        assert sizing["row_bytes"] == pe * 2 and sizing["rf_2d_entries"] == 2 * min_tiles
        assert sizing["memory_latency_s"] <= sizing["compute_1d_latency_s"]
        assert (result["array_pes_2d"], result["array_pes_1d"]) == (pe * pe, pe)
        area_um2 = pe * pe * FM_AREA_UM2["pe2d"] + pe * FM_AREA_UM2["pe1d"] \
            + FM_AREA_UM2["glb_16mb"] * l3 * multiplier / 2 ** 24
        assert result["area_mm2"] == pytest.approx(area_um2 / 1e6, rel=1e-9)
        assert point["arch"]["arrays"]["pe2d"]["rows"] == 256          # the key holds the unsized base arch
        multipliers.append(multiplier)
    assert multipliers == [1, 1, 2]             # 512: the minimum buffer leaves FuseMax memory-bound
    latencies = [r["latency_s"] for _, _, r in rows.values()]
    assert latencies[0] / latencies[1] == pytest.approx((256 / 16) ** 2, rel=1e-3)    # latency ~ 1/PE^2


def test_gpu_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _sweep(tmp_path, "name: g\nkind: gpu\ngrid:\n  - {design: [flash3], seq: [1024], head_dim: [64]}\n"
                            "  - {design: [flash2], seq: [2048], head_dim: [128], arch: [h200]}\n", capsys)
    (p1, q1, r1), (p2, q2, r2) = rows.values()
    assert q1["arch"]["name"] == r1["arch"] == "h100-sxm" and q2["arch"]["name"] == r2["arch"] == "h200"
    for params, result in ((p1, r1), (p2, r2)):
        seq, d = params["seq"], params["head_dim"]
        batch, heads = 16384 // seq, 2048 // d                  # FA3 protocol: 16K tokens, hidden 2048
        assert (result["batch"], result["heads"]) == (batch, heads)
        assert result["flops"] == 4 * batch * heads * seq * seq * d
        assert result["tflops"] == pytest.approx(result["flops"] / result["latency_s"] / 1e12, rel=1e-12)
        # Q, K, V read, O written once (fp16); 1e-12: the per-CTA clip's floating-point sums
        assert result["traffic_bytes"] >= 4 * batch * heads * seq * d * 2 * (1 - 1e-12)
    assert r1["peak_flops_per_s"] == pytest.approx(989.4e12, rel=1e-3)    # H100 SXM5 dense FP16
    assert r1["dram_bandwidth_bytes_per_s"] == 3.35e12


@pytest.mark.parametrize("text, message", [
    ("kind: attention\ngrid: {design: [fast], model: [bert-base], seq: [1024]}\n",
     "s.yaml: grid.design: expected one of unfused, flat, flash2, fusemax-cascade, fusemax-arch, fusemax, got 'fast'"),
    ("kind: attention\nbase: {design: fusemax, model: bert-base, seq: 1024, sizing: pareto}\n",
     "s.yaml: pe_dim: sizing: pareto needs pe_dim (the PE-array dimension)"),
    ("kind: attention\nbase: {design: fusemax, model: bert-base, seq: 1024, sizing: pareto}\ngrid: {pe_dim: [48]}\n",
     "s.yaml: grid.pe_dim: expected a divisor of seq (1024), got 48"),
    ("kind: attention\nbase: {design: fusemax, model: gpt9, seq: 1024}\n", "s.yaml: base.model: unknown workload"),
    ("kind: attention\nbase: {design: fusemax, model: bert-base, seq: 1024, arch: h100-sxm}\n",
     "s.yaml: base.arch: 'h100-sxm' is a GPU spec; the attention kind needs a spatial accelerator"),
    ("kind: gpu\nbase: {design: flash3, seq: 1024, head_dim: 96}\n",
     "s.yaml: base.head_dim: expected one of 64, 128, 256, got 96"),
    ("kind: gpu\nbase: {design: flash3, seq: 1024, head_dim: 64, arch: fusemax-cloud}\n",
     "s.yaml: base.arch: specs/arch/fusemax-cloud.yaml: kind: expected 'gpu'"),
])
def test_bad_kind_parameters_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                    message: str) -> None:
    (tmp_path / "s.yaml").write_text("name: s\n" + text)
    code = main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"attnsim: error: {tmp_path / message}" if message.startswith("s.yaml")
                          else f"attnsim: error: {message}")


def test_several_grids(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nkind: attention\nbase: {model: bert-base}\ngrid:\n"
                    "  - {design: [flat, fusemax], seq: [1024, 4096]}\n"
                    "  - {design: [fusemax], seq: [262144], sizing: [pareto], pe_dim: [64, 128, 256]}\n")
    study = load_study(path)
    assert study.size == 4 + 3
    points = list(study.points())
    assert [(p["design"], p["seq"], p.get("pe_dim")) for p in points] == [
        ("flat", 1024, None), ("flat", 4096, None), ("fusemax", 1024, None), ("fusemax", 4096, None),
        ("fusemax", 262144, 64), ("fusemax", 262144, 128), ("fusemax", 262144, 256)]
    resolved = resolve_points(study)
    assert [r.index for r in resolved] == list(range(7)) and len({r.key for r in resolved}) == 7
    assert study.section_of("pe_dim") == "grid"


@pytest.mark.parametrize("grid, message", [
    ("grid:\n  - {seq: [1024]}\n  - {seq: []}\n", "grid.1.seq: expected a non-empty list of values, got an empty list"),
    ("grid:\n  - {seq: [1024]}\n  - 7\n", "grid.1: expected a mapping of parameter -> list of values, got 7"),
    ("grid: []\n", "grid: expected a mapping of parameter -> list of values, or a non-empty list"),
    ("grid:\n  - {seq: [1024]}\n  - {model: [xlm]}\nderived: {x: seq * 2}\n",
     "derived.x: uses 'seq', which grid 1 does not give"),
    ("base: {seq: 1024}\ngrid:\n  - {design: [flat]}\n  - {seq: [4096]}\n", "grid.seq: also given in base"),
])
def test_several_grids_errors(tmp_path: Path, grid: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nkind: attention\n" + grid)
    with pytest.raises(UsageError) as info:
        study = load_study(path)
        list(study.points())
    assert str(info.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("name, size, figures", [
    ("paper", 5 * 4 * 6 + 4 * 6, {"fig6a", "fig6b", "fig7", "fig8", "fig9", "fig10", "fig11", "fig12", "roofline"}),
    ("buffer-vs-bandwidth", 2 * 8 * 7, {"latency", "traffic", "roofline"}),
    ("gpu", 2 * 4 * 3 * 6, {"tflops-h100", "tflops-h200", "h200-over-h100", "roofline-h100", "roofline-h200"}),
])
def test_shipped_studies_resolve(name: str, size: int, figures: set[str]) -> None:
    study = load_study(STUDIES / f"{name}.yaml")
    points = resolve_points(study)
    assert len(points) == study.size == size and len({p.key for p in points}) == size
    entries = parse_plot_entries(study.spec.plots, study.display)
    assert {e.name for e in entries if e.type != "comparison"} == figures


def test_paper_study_archs_per_design() -> None:
    study = load_study(STUDIES / "paper.yaml")
    archs = {}
    for point in resolve_points(study):
        payload = json.loads(point.point_json)
        archs.setdefault(point.params["design"], set()).add(payload["arch"]["name"])
        if point.params["sizing"] == "pareto":
            assert (point.params["seq"], point.params["design"]) == (262144, "fusemax")
    assert archs == {"unfused": {"flat-cloud"}, "flat": {"flat-cloud"}, "fusemax-cascade": {"flat-cloud"},
                     "fusemax-arch": {"fusemax-cloud"}, "fusemax": {"fusemax-cloud"}}


def test_sweep_subprocess_bad_kind_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: s\nkind: attention\nbase: {design: flat, model: bert-base, seq: 0}\n")
    proc = subprocess.run([sys.executable, "-m", "attnsim", "sweep", str(tmp_path / "s.yaml"), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"attnsim: error: {tmp_path / 's.yaml'}: base.seq: expected a positive integer, got 0\n"
