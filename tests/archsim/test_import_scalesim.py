"""``attnsim gemm --scalesim CFG --topology CSV``: a SCALE-Sim config and topologies written here in
the documented formats (v2 ``scale.cfg`` with ``key: value`` lines; GEMM rows ``Layer, M, N, K,``
and convolution rows ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
Num Filter, Strides,``), read into attnsim GEMMs and simulated with SCALE-Sim's fold count; and
one-line refusals naming the key.

Expected values: SCALE-Sim's im2col (M = output pixels, K = R x S x C, N = filters) and its OS fold
count (folds = ceil(M / rows) x ceil(N / cols), T + R + C - 2 cycles each), computed here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from attnsim.archsim.errors import SpecError
from attnsim.archsim.importers import GemmLayer, read_scalesim, read_topology
from attnsim.studies.cli import main

CFG = """\
[general]
run_name = scale_example_run_32x32_os

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:    64
FilterSramSzkB:   64
OfmapSramSzkB:    64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : os
Bandwidth : 10
MemoryBanks: 1

[run_presets]
InterfaceBandwidth: CALC
"""

CONV = """\
Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1, 418, 418, 3, 3, 3, 16, 1,
Conv2, 56, 56, 3, 3, 64, 128, 2,
"""

GEMM = """\
Layer, M, N, K,
qkt_256x256x64, 256, 256, 64,
odd_100x37x70, 100, 37, 70,
"""

FUSEMAX_WORD_BYTES, FUSEMAX_CLOCK_HZ, FUSEMAX_ROW_BYTES = 2, 940e6, 512   # specs/arch/fusemax-cloud.yaml


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"cfg": tmp_path / "scale.cfg", "conv": tmp_path / "conv.csv", "gemm": tmp_path / "gemm.csv"}
    for key, text in (("cfg", CFG), ("conv", CONV), ("gemm", GEMM)):
        paths[key].write_text(text)
    return paths


def test_topologies_become_gemms(files: dict[str, Path]) -> None:
    out = 418 - 3 + 1
    out2 = (56 - 3) // 2 + 1
    assert read_topology(files["conv"]) == [GemmLayer("Conv1", out * out, 16, 3 * 3 * 3),
                                            GemmLayer("Conv2", out2 * out2, 128, 3 * 3 * 64)]
    assert read_topology(files["gemm"]) == [GemmLayer("qkt_256x256x64", 256, 256, 64),
                                            GemmLayer("odd_100x37x70", 100, 37, 70)]


def test_cfg_maps_array_dataflow_sram_and_bandwidth(files: dict[str, Path], tmp_path: Path) -> None:
    run = read_scalesim(files["cfg"], files["gemm"], FUSEMAX_WORD_BYTES, FUSEMAX_CLOCK_HZ, FUSEMAX_ROW_BYTES)
    assert run.run_name == "scale_example_run_32x32_os" and run.dataflow == "os"
    assert run.interface_bandwidth == "CALC"
    assert run.overrides == {"arrays.pe2d.rows": 32, "arrays.pe2d.cols": 32,
                             "global_buffer.capacity_bytes": 3 * 64 * 1024}          # a multiple of 512-byte rows
    assert "architecture_presets.IfmapOffset" in run.unmapped
    user = tmp_path / "user.cfg"
    user.write_text(CFG.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER"))
    run = read_scalesim(user, files["gemm"], FUSEMAX_WORD_BYTES, FUSEMAX_CLOCK_HZ, FUSEMAX_ROW_BYTES)
    assert run.overrides["dram.bandwidth_bytes_per_s"] == 10 * FUSEMAX_WORD_BYTES * FUSEMAX_CLOCK_HZ


def _scalesim_os_cycles(m: int, n: int, k: int, rows: int, cols: int) -> int:
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols - 2)


def test_gemm_cli_runs_every_layer_with_scalesim_folds(files: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gemm", "--scalesim", str(files["cfg"]), "--topology", str(files["gemm"]), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in reports] == ["qkt_256x256x64", "odd_100x37x70"]
    for report in reports:
        assert report["fill_drain"] == "scalesim" and report["dataflow"] == "os"
        assert report["compute_cycles"] == _scalesim_os_cycles(report["m"], report["n"], report["k"], 32, 32)
        assert report["cycles"] >= report["compute_cycles"]
    assert main(["gemm", "--scalesim", str(files["cfg"]), "--topology", str(files["conv"])]) == 0
    text = capsys.readouterr().out
    assert text.startswith("SCALE-Sim run scale_example_run_32x32_os: 2 layers on fusemax-cloud with a 32x32 array")
    conv1 = next(line for line in text.splitlines() if line.strip().startswith("Conv1"))
    assert str(_scalesim_os_cycles(416 * 416, 16, 27, 32, 32)) in conv1.split()


@pytest.mark.parametrize("cfg, topology, message", [
    (CFG.replace("Dataflow : os", "Dataflow : rs"), GEMM, "architecture_presets.Dataflow: expected one of os, ws, is, got 'rs'"),
    (CFG.replace("ArrayHeight:    32\n", ""), GEMM, "architecture_presets.ArrayHeight: missing"),
    (CFG.replace("ArrayWidth:     32", "ArrayWidth: wide"), GEMM,
     "architecture_presets.ArrayWidth: expected a positive number, got 'wide'"),
    (CFG + "\n[sparsity]\nSparsitySupport = true\n", GEMM,
     "sparsity.SparsitySupport: attnsim does not model this SCALE-Sim feature"),
    (CFG.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: FAST"), GEMM,
     "run_presets.InterfaceBandwidth: expected CALC or USER, got 'FAST'"),
    ("ArrayHeight = 32\n", GEMM, "not a SCALE-Sim .cfg (INI) file"),
    (CFG, "Layer, M, N, K,\nx, 4, four, 4,\n", "gemm.csv:2: N: expected a positive integer, got 'four'"),
    (CFG, "Layer, M, N, K,\nx, 4, 4,\n", "gemm.csv:2: expected 4 values"),
    (CFG, CONV.replace("418, 418, 3, 3", "2, 2, 3, 3"), "gemm.csv:2: the 3x3 filter is larger than the 2x2 IFMAP"),
])
def test_refusals_are_one_line_naming_the_key(tmp_path: Path, cfg: str, topology: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.cfg").write_text(cfg)
    (tmp_path / "gemm.csv").write_text(topology)
    with pytest.raises(SpecError) as caught:
        read_scalesim(tmp_path / "s.cfg", tmp_path / "gemm.csv", FUSEMAX_WORD_BYTES, FUSEMAX_CLOCK_HZ,
                      FUSEMAX_ROW_BYTES)
    assert message in str(caught.value)
    assert main(["gemm", "--scalesim", str(tmp_path / "s.cfg"), "--topology", str(tmp_path / "gemm.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["gemm", "64", "64", "64", "--scalesim", "s.cfg", "--topology", "t.csv"],
     "gemm: give either M N K or --scalesim CFG --topology CSV, not both"),
    (["gemm", "--scalesim", "s.cfg"], "gemm: --scalesim CFG and --topology CSV go together"),
    (["gemm", "--scalesim", "s.cfg", "--topology", "t.csv", "--dataflow", "ws"],
     "--dataflow: with --scalesim the dataflow is the .cfg's architecture_presets.Dataflow"),
    (["gemm"], "gemm: expected M N K, or --scalesim CFG --topology CSV"),
])
def test_option_conflicts(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"attnsim: error: {message}\n"
