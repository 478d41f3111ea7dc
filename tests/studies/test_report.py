"""``DIR/report.md``: the headline table (ours from the store, the paper's from the reference file),
the numbers beside each figure, the per-point tables, failed/missing points; the reference file."""
from __future__ import annotations

import statistics
from pathlib import Path

import pytest

import synthetic_store as syn
from attnsim.studies.errors import UsageError
from attnsim.studies.report import (ColumnRef, format_headline, format_published, headline_values, load_reference,
                            per_point_cell, render_directory)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "specs" / "studies" / "paper-reference.yaml"

PAPER_HEADLINES = {   # paper §VI-B/C as stated (fact sheet §6.1), plus the sheet's FLAT/Unfused mean
    "attention_speedup_vs_flat": 6.7, "attention_speedup_vs_unfused": 10, "attention_energy_vs_flat": 0.79,
    "attention_energy_vs_unfused": 0.77, "end_to_end_speedup_vs_flat": 5.3, "end_to_end_speedup_vs_unfused": 7.6,
    "end_to_end_speedup_vs_unfused_at_1m": 10, "end_to_end_speedup_vs_flat_at_1m": 7.5,
    "end_to_end_energy_vs_flat": 0.83, "end_to_end_energy_vs_unfused": 0.82, "flat_attention_speedup_vs_unfused": 1.51,
}
PAIRS = [(m, s) for m in syn.MODELS for s in syn.SEQS]


def _mean(function) -> float:  # type: ignore[no-untyped-def]
    return statistics.fmean(function(m, s) for m, s in PAIRS)


def _expected() -> dict[str, float]:
    lat, en = syn.attention_latency_s, syn.attention_energy_pj

    def e2e_lat(d: str, m: str, s: int) -> float:
        return lat(d, m, s) + syn.linear_latency_s(m, s)

    def e2e_en(d: str, m: str, s: int) -> float:
        return en(d, m, s) + syn.linear_energy_pj(m, s)

    return {
        "attention_speedup_vs_flat": _mean(lambda m, s: lat("flat", m, s) / lat("fusemax", m, s)),
        "attention_speedup_vs_unfused": _mean(lambda m, s: lat("unfused", m, s) / lat("fusemax", m, s)),
        "attention_energy_vs_flat": _mean(lambda m, s: en("fusemax", m, s) / en("flat", m, s)),
        "attention_energy_vs_unfused": _mean(lambda m, s: en("fusemax", m, s) / en("unfused", m, s)),
        "end_to_end_speedup_vs_flat": _mean(lambda m, s: e2e_lat("flat", m, s) / e2e_lat("fusemax", m, s)),
        "end_to_end_speedup_vs_unfused": _mean(lambda m, s: e2e_lat("unfused", m, s) / e2e_lat("fusemax", m, s)),
        "end_to_end_energy_vs_flat": _mean(lambda m, s: e2e_en("fusemax", m, s) / e2e_en("flat", m, s)),
        "end_to_end_energy_vs_unfused": _mean(lambda m, s: e2e_en("fusemax", m, s) / e2e_en("unfused", m, s)),
        "flat_attention_speedup_vs_unfused": _mean(lambda m, s: lat("unfused", m, s) / lat("flat", m, s)),
    }


def test_reference_file_holds_the_papers_numbers() -> None:
    reference = load_reference(REFERENCE)
    assert {h.key: h.paper for h in reference.headlines} == PAPER_HEADLINES
    assert all(h.source for h in reference.headlines)
    per_point = reference.per_point
    assert per_point is not None and per_point.model == "bert-base"
    assert per_point.seqs == [1024, 4096, 16384, 65536, 262144, 1048576]
    latency = {c.design: c.paper for c in per_point.tables[0].columns}
    assert latency["fusemax"] == [0.002013, 0.0297, 0.4652, 7.403, 118.3, 1892]    # fact sheet §6.3
    assert latency["unfused"][-1] == 2.19e4


def test_headline_values_are_means_over_point_pairs(tmp_path: Path) -> None:
    syn.make_store(tmp_path)
    records = [r for r in syn.records_of(tmp_path) if r.params["sizing"] == "none"]
    values = {v.headline.key: v for v in headline_values(records, load_reference(REFERENCE).headlines)}
    for key, expected in _expected().items():
        assert values[key].value == pytest.approx(expected, rel=1e-12), key
        assert values[key].pairs == len(PAIRS)
    assert values["end_to_end_speedup_vs_flat_at_1m"].value is None        # no 1M point in the store
    assert values["end_to_end_speedup_vs_flat_at_1m"].pairs == 0


def test_failed_point_drops_its_pair(tmp_path: Path) -> None:
    syn.make_store(tmp_path, failing=(("flat", "xlm", 4096),))
    records = [r for r in syn.records_of(tmp_path) if r.params["sizing"] == "none"]
    values = {v.headline.key: v for v in headline_values(records, load_reference(REFERENCE).headlines)}
    lat = syn.attention_latency_s
    kept = [p for p in PAIRS if p != ("xlm", 4096)]
    assert values["attention_speedup_vs_flat"].pairs == 3
    assert values["attention_speedup_vs_flat"].value == pytest.approx(
        statistics.fmean(lat("flat", m, s) / lat("fusemax", m, s) for m, s in kept))
    assert values["attention_speedup_vs_unfused"].pairs == 4


def test_report_md_headline_table_figures_and_per_point(tmp_path: Path) -> None:
    syn.make_store(tmp_path, failing=(("fusemax-arch", "xlm", 1024),), missing=(("flat", "bert-base", 4096),))
    outcome = render_directory(tmp_path, formats=("png",))
    text = outcome.report.read_text()
    assert (outcome.ok, outcome.failed, outcome.not_run) == (22, 1, 1)
    expected = _expected()
    # the headline table, our value beside the paper's
    speedup_pairs = [p for p in PAIRS if p != ("bert-base", 4096)]
    flat_speedup = statistics.fmean(syn.attention_latency_s("flat", m, s) / syn.attention_latency_s("fusemax", m, s)
                                    for m, s in speedup_pairs)
    assert "## Headline numbers" in text
    assert f"| attention speedup, FuseMax over FLAT | {flat_speedup:.2f}x | 6.7x | 3 |" in text
    assert (f"| attention speedup, FuseMax over Unfused | {expected['attention_speedup_vs_unfused']:.2f}x | 10x | 4 |"
            in text)
    assert f"| attention energy, FuseMax / Unfused | {expected['attention_energy_vs_unfused']:.1%} | 77% | 4 |" in text
    assert "| end-to-end speedup over FLAT at 1M tokens | n/a | 7.5x | 0 |" in text
    # each figure, with its headline numbers right after it
    section = text[text.index("### attention speedup"):text.index("### energy")]
    assert "![speedup](figs/speedup.png)" in section
    assert f"| attention speedup, FuseMax over FLAT | {flat_speedup:.2f}x | 6.7x | 3 |" in section
    assert "![pareto](figs/pareto.png)" in text and (tmp_path / "figs" / "pareto.png").is_file()
    # per-point BERT table: ours / published (ratio)
    ours = syn.attention_latency_s("fusemax", "bert-base", 1024)
    assert f"{ours:.4g} / 0.002013 ({ours / 0.002013:.2f})" in text
    assert "| 1M | n/a / 2.19e+04 |" in text
    # failed and missing points
    assert "- failed: design=fusemax-arch model=xlm seq=1024" in text and "synthetic failure" in text
    assert "- not run: design=flat model=bert-base seq=4096" in text


def test_per_point_cell_scales_and_ratios(tmp_path: Path) -> None:
    syn.make_store(tmp_path)
    records = syn.records_of(tmp_path)
    energy = ColumnRef(label="E", design="fusemax", metric="attention_energy_pj", scale=1e-12, paper=[1.0])
    assert per_point_cell(records, "bert-base", 4096, energy) == pytest.approx(
        syn.attention_energy_pj("fusemax", "bert-base", 4096) * 1e-12)
    ratio = ColumnRef(label="r", metric="latency_s", numerator="flat", denominator="fusemax", paper=[1.0])
    expected = ((syn.attention_latency_s("flat", "xlm", 1024) + syn.linear_latency_s("xlm", 1024))
                / (syn.attention_latency_s("fusemax", "xlm", 1024) + syn.linear_latency_s("xlm", 1024)))
    assert per_point_cell(records, "xlm", 1024, ratio) == pytest.approx(expected)
    share = ColumnRef(label="QK", design="fusemax", metric="per_einsum.BQK.util_2d", paper=[1.0])
    assert per_point_cell(records, "bert-base", 1024, share) == pytest.approx(0.4 * syn.UTIL_2D["fusemax"] / 0.87)


def test_headline_formats() -> None:
    assert format_headline(6.7, False) == "6.70x" and format_headline(0.7874, True) == "78.7%"
    assert format_headline(None, True) == "n/a"
    assert format_published(6.7, False) == "6.7x" and format_published(10, False) == "10x"
    assert format_published(0.79, True) == "79%" and format_published(1.51, False) == "1.51x"


def test_bad_reference_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ref.yaml"
    bad.write_text("name: r\nsource: s\nheadlines:\n  - {key: k, label: l, metric: m, numerator: a, denominator: b}\n")
    with pytest.raises(UsageError, match=r"^.*ref.yaml: headlines.0.paper: missing required key \(and 1 more problem\)$"):
        load_reference(bad)


# --- the pass-count table (issue 16: "a pass-count table" beside the variants' figures) ------------------

def _record(cascade: str | None, index: int = 0) -> "PointRecord":
    from attnsim.studies.store import PointRecord
    return PointRecord(key=f"k{index}", study="s", kind="attention", point_index=index,
                       params={"cascade": cascade, "seq": 1024}, point_json="{}", status="ok",
                       result={}, error=None, started_at="", finished_at="", wall_s=0.0)


def test_pass_rows_follow_the_paper_and_the_variants_definitions():
    from attnsim.studies.report import pass_rows
    rows = pass_rows([_record("attention-3pass", 0), _record("attention-1pass", 1), _record("attention-3pass", 2),
                      _record("softplus-lssa-normalised", 3), _record("sigmoid-attention", 4), _record(None, 5)])
    by_name = {row[0]: row for row in rows}
    # one row per named cascade, in first-seen order; a point without a cascade adds none
    assert [row[0] for row in rows] == ["attention-3pass", "attention-1pass", "softplus-lssa-normalised",
                                       "sigmoid-attention"]
    # FuseMax paper, Cascades 2-3: the 3-pass cascade's passes are (QK, GM), (SN, SD), (A, AV) over M
    assert by_name["attention-3pass"][1:3] == ("M", 3)
    assert by_name["attention-3pass"][4] == "QK, GM | SN, SD | A, AV"
    assert by_name["attention-1pass"][1:3] == ("M", 1)
    # LSSA normalised as written: the l1 sum over M must finish before any score is divided by it
    assert by_name["softplus-lssa-normalised"][2] == 2
    # sigmoid has no row reduction at all: one pass
    assert by_name["sigmoid-attention"][2] == 1


def test_pass_table_in_the_report_and_an_unreadable_cascade_gets_its_reason(tmp_path):
    from attnsim.studies.report import _pass_table, pass_rows
    missing = tmp_path / "gone.yaml"
    rows = pass_rows([_record(str(missing))])
    assert rows[0][2] == 0 and rows[0][4].startswith("not analysed: ")
    lines = _pass_table([_record("attention-2pass")])
    assert lines[0] == "## Passes of each cascade"
    assert any(line.startswith("| `attention-2pass` | M | 2 |") for line in lines)
    assert _pass_table([_record(None)]) == []
