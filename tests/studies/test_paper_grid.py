"""``studies.paper.run_paper`` and ``attnsim paper``: CSVs, summary, missing designs, bad input."""
from __future__ import annotations

import csv
import re
import statistics
import sys
from pathlib import Path

import pytest

from attnsim.mappers import designs
from attnsim.studies.cli import main
from attnsim.studies.paper import HEADLINES, run_paper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mappers"))
import closed_forms as cf  # noqa: E402  (the test oracle, tests/mappers/closed_forms.py)
import paper_data as pd  # noqa: E402

SEQS = (1024, 262144)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("paper")
    return out, run_paper(out, designs=("unfused", "flat"), models=("bert-base", "xlm"), seqs=SEQS, jobs=2)


def test_files_and_rows(grid) -> None:  # type: ignore[no-untyped-def]
    out, outcome = grid
    assert {p.name for p in out.iterdir()} == {"attention.csv", "end2end.csv", "summary.md"}
    attention, end2end = _rows(out / "attention.csv"), _rows(out / "end2end.csv")
    assert len(attention) == len(end2end) == 2 * 2 * len(SEQS)
    assert {"latency_s", "cycles", "energy_pj", "traffic_bytes", "util_2d", "util_1d", "area_mm2",
            "per_einsum.QK.util_2d", "per_einsum.SN.util_1d"} <= set(attention[0])
    assert {"attention_latency_s", "linear_latency_s", "latency_s", "attention_energy_pj", "linear_energy_pj",
            "energy_pj"} <= set(end2end[0])
    for row in end2end:
        assert float(row["latency_s"]) == pytest.approx(float(row["attention_latency_s"]) + float(row["linear_latency_s"]))


def test_attention_rows_match_the_oracle(grid) -> None:  # type: ignore[no-untyped-def]
    """Attention latencies in the CSV are the simulator's: within 0.4% of the §4.4 closed forms."""
    out, _ = grid
    oracle = {"unfused": cf.unfused_latency_s, "flat": cf.flat_latency_s}
    for row in _rows(out / "attention.csv"):
        expected = oracle[row["design"]](pd.MODELS[row["model"]], int(row["seq"]))
        assert float(row["latency_s"]) == pytest.approx(expected, rel=0.004)


def test_headlines(grid) -> None:  # type: ignore[no-untyped-def]
    """FuseMax is not in this grid: its ratios are n/a; FLAT over Unfused is the mean of the CSV's ratios."""
    out, outcome = grid
    rows = {(r["design"], r["model"], int(r["seq"])): float(r["latency_s"]) for r in _rows(out / "attention.csv")}
    expected = statistics.fmean(rows[("unfused", m, s)] / rows[("flat", m, s)] for m in ("bert-base", "xlm") for s in SEQS)
    assert outcome.headlines["flat_attention_speedup_vs_unfused"] == pytest.approx(expected)
    assert outcome.headlines["attention_speedup_vs_flat"] is None
    summary = (out / "summary.md").read_text(encoding="utf-8")
    for headline in HEADLINES:
        assert f"| {headline.label} |" in summary and headline.paper in summary
    assert "| attention speedup, FuseMax over FLAT | n/a | 6.7x |" in summary
    assert "Nothing: every point was simulated." in summary
    note = summary.split("## Linear layers")[1].split("##")[0]
    ratio = float(re.search(r"([0-9.]+)x the ideal", note).group(1))  # type: ignore[union-attr]
    assert ratio >= 1.0                          # never faster than every PE busy every cycle


def test_missing_and_failing_designs_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = designs.Design("ghost", "attnsim.mappers.ghost_module:map_attention", "attention-1pass", "fusemax-cloud", "test")
    broken = designs.Design("broken", "attnsim.mappers.baselines:CASCADE", "attention-3pass", "flat-cloud", "test")
    monkeypatch.setitem(designs.DESIGNS, "ghost", ghost)
    monkeypatch.setitem(designs.DESIGNS, "broken", broken)
    outcome = run_paper(tmp_path, designs=("flat", "ghost", "broken"), models=("bert-base",), seqs=(1024,), jobs=1)
    assert set(outcome.points) == {("flat", "bert-base", 1024)}
    assert "No module named 'attnsim.mappers.ghost_module'" in outcome.missing_designs["ghost"]
    assert outcome.missing[("broken", "bert-base", 1024)].startswith("TypeError: ")
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "- design `ghost`: missing (" in summary
    assert "- `broken` bert-base seq 1024: failed (TypeError: " in summary
    assert len(_rows(tmp_path / "attention.csv")) == 1


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--out", str(tmp_path), "--designs", "unfused", "flat", "--models", "t5-small",
                 "--seqs", "1K", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "simulated 2 points" in out
    assert any(line.split()[-1] == "6.7x" for line in out.splitlines())   # the paper's column
    assert (tmp_path / "summary.md").is_file()


def test_one_parallelism_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from attnsim.studies.cli import build_parser, main

    assert build_parser().parse_args(["paper", "--workers", "3"]).workers == "3"
    with pytest.raises(SystemExit) as info:            # the old spelling is gone, refused in one line
        main(["paper", "--jobs", "3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--jobs" in err


@pytest.mark.parametrize("argv, message", [
    (["--seqs", "lots"], "--seqs: expected a positive integer"),
    (["--designs", "nope"], "unknown design 'nope'"),
    (["--models", "nope"], "unknown workload 'nope'"),
    (["--workers", "0"], "--workers: expected a positive integer"),
])
def test_bad_input_exits_2(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "summary.md").exists()
