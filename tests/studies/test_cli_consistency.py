"""One command line: shared K/M and KEY=VALUE parsing, --workers, --set for GPUs, --version, and the
same JSON key for the same quantity in simulate, gpu, gemm and sweep results."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attnsim.studies.cli import build_parser, main
from attnsim.studies.cli.options import parse_count, parse_key_values, parse_sizes
from attnsim.studies.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
SHARED_KEYS = ("latency_s", "cycles", "energy_pj", "traffic_bytes")
"""What every simulation reports under the same name (seconds, cycles, picojoules, bytes)."""


@pytest.mark.parametrize("text, value", [("4096", 4096), ("4K", 4096), ("4k", 4096), ("1M", 2**20),
                                         ("64K", 65536), (" 2K ", 2048), (7, 7)])
def test_counts_take_binary_suffixes(text: object, value: int) -> None:
    assert parse_count(text, "--seq") == value


@pytest.mark.parametrize("text, message", [
    ("0", "--seq: expected a positive integer, got 0"),
    ("-4K", "--seq: expected a positive integer, got -4096"),
    ("4G", "--seq: expected a positive integer (optionally with K or M), got '4G'"),
    ("1.5K", "--seq: expected a positive integer (optionally with K or M), got '1.5K'"),
    (True, "--seq: expected a positive integer (optionally with K or M), got True"),
])
def test_bad_counts_are_one_line(text: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_count(text, "--seq")
    assert str(info.value) == message


def test_key_values_and_sizes() -> None:
    assert parse_key_values(["arrays.pe2d.rows=32", "name=x", "flag=true", "arrays.pe2d.rows=64"]) == {
        "arrays.pe2d.rows": 64, "name": "x", "flag": True}
    assert parse_sizes(["M=4K", "M0=256"]) == {"M": 4096, "M0": 256}


def test_every_parallel_command_takes_workers() -> None:
    parser = build_parser()
    assert parser.parse_args(["sweep", "s.yaml", "--workers", "3"]).workers == "3"
    assert parser.parse_args(["paper", "--workers", "3"]).workers == "3"


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"attnsim {version and version.group(1)}"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gpu_takes_k_suffixes_and_set(capsys: pytest.CaptureFixture[str]) -> None:
    plain = _json(capsys, "gpu", "--design", "flash2", "--seq", "1024", "--head-dim", "64")
    suffixed = _json(capsys, "gpu", "--design", "flash2", "--seq", "1K", "--head-dim", "64")
    assert plain == suffixed
    slow = _json(capsys, "gpu", "--design", "flash2", "--seq", "1K", "--head-dim", "64",
                 "--set", "clocks.tensor_hz.value=915.0e6", "--set", "clocks.boost_hz.value=1.98e9")
    # the tensor clock halved (1830 -> 915 MHz): the same cycles take twice as long
    assert slow["latency_s"] == pytest.approx(slow["cycles"] / 915e6, rel=1e-12)
    assert plain["latency_s"] == pytest.approx(plain["cycles"] / 1830e6, rel=1e-12)


def test_the_same_quantity_has_the_same_key_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    reports = {
        "simulate": _json(capsys, "simulate", "--design", "flat", "--model", "bert-base", "--seq", "1K"),
        "gpu": _json(capsys, "gpu", "--design", "flash3", "--seq", "1K", "--head-dim", "64"),
        "gemm": _json(capsys, "gemm", "64", "64", "64"),
    }
    for name, report in reports.items():
        assert set(SHARED_KEYS) <= set(report), name
        assert isinstance(report["arch"], str) and report["arch"], name       # which hardware ran
    assert reports["simulate"]["per_einsum"]["QK"].keys() >= {"util_2d", "util_1d"}


def test_sweep_results_use_the_same_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "mixed.yaml"
    for kind, grid in (("gemm", "  M: [64]\n  N: [64]\n  K: [64]\n  dataflow: [os]\n  arch: [fusemax-cloud]\n"),
                       ("gpu", "  design: [flash2]\n  seq: [1024]\n  head_dim: [64]\n"),
                       ("attention", "  design: [flat]\n  model: [bert-base]\n  seq: [1024]\n")):
        study.write_text(f"name: {kind}-keys\nkind: {kind}\ngrid:\n{grid}", encoding="utf-8")
        out = tmp_path / kind
        assert main(["sweep", str(study), "--out", str(out), "--workers", "1", "--quiet"]) == 0
        capsys.readouterr()
        assert main(["results", str(out), "--csv"]) == 0
        header = capsys.readouterr().out.splitlines()[0].split(",")
        assert set(SHARED_KEYS) <= set(header), kind
        if kind == "attention":
            assert "per_einsum.QK.util_2d" in header
