"""Figures drawn from a synthetic results store: what is drawn (bars, heights, legends, labels, lines,
points), the files written, `attnsim plot` and its Gantt mode, and bad input.

Every expected value is recomputed here from the synthetic closed forms of ``synthetic_store``.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import synthetic_store as syn
from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.plots import (bars_figure, einsum_stack_figure, lines_figure, pareto_figure, parse_plot_entries,
                           roofline_figure, seq_label)
from attnsim.studies.store import PointRecord
from attnsim.studies.study import load_study

PAPER_LEGEND = ["Unfused", "FLAT", "FuseMax", "+Cascade", "+Architecture", "+Binding"]
NORMALISED_LEGEND = ["Unfused (baseline = 1)", *PAPER_LEGEND[1:]]     # its bars are 1 by construction
SLOTS = [(model, seq) for model in syn.MODELS for seq in syn.SEQS]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, dict]:
    directory = tmp_path_factory.mktemp("synthetic")
    study_file = syn.make_store(directory)
    study = load_study(study_file)
    entries = {entry.name: entry for entry in parse_plot_entries(study.spec.plots, study.display)
               if entry.type != "comparison"}
    return directory, syn.records_of(directory), entries


def _heights(container) -> list[float]:  # type: ignore[no-untyped-def]
    return [patch.get_height() for patch in container.patches]


def _legend(axes) -> list[str]:  # type: ignore[no-untyped-def]
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_speedup_bars_heights_legend_and_labels(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    figure = bars_figure(records, entries["speedup"])
    axes = figure.axes[0]
    assert _legend(axes) == NORMALISED_LEGEND
    assert " ".join(axes.get_ylabel().split()) == "attention speedup over Unfused (x, latency ratio)"
    assert [c.get_label() for c in axes.containers] == ["Unfused", "FLAT", "+Cascade", "+Architecture", "+Binding"]
    for design, container in zip(syn.DESIGNS, axes.containers):
        expected = [syn.attention_latency_s("unfused", m, s) / syn.attention_latency_s(design, m, s)
                    for m, s in SLOTS]
        geomean = math.prod(expected) ** (1 / len(expected))
        assert len(container.patches) == len(SLOTS) + 1                  # the slots, then the geometric mean
        assert _heights(container) == pytest.approx(expected + [geomean], rel=1e-12)
    # one tick per (model, seq) slot, labelled 1K / 4K, then GM; model names under each group
    assert [t.get_text() for t in axes.get_xticklabels()] == [seq_label(s) for _, s in SLOTS] + ["GM"]
    assert {"BERT", "XLM", "geo. mean"} <= {t.get_text() for t in axes.texts}
    assert "sequence length (tokens)" in axes.get_xlabel()
    # bars of one slot sit side by side in legend order
    first = [container.patches[0].get_x() for container in axes.containers]
    assert first == sorted(first)


def test_utilisation_and_relative_energy_bars(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    util = bars_figure(records, entries["util1d"]).axes[0]
    assert "fraction of PE-cycles" in " ".join(util.get_ylabel().split())
    assert _legend(util) == PAPER_LEGEND                                  # not normalised: no baseline, no mean
    for design, container in zip(syn.DESIGNS, util.containers):
        assert _heights(container) == pytest.approx([syn.UTIL_1D[design]] * len(SLOTS))
    energy = bars_figure(records, entries["energy"]).axes[0]
    for design, container in zip(syn.DESIGNS, energy.containers):
        expected = [(syn.attention_energy_pj(design, m, s) + syn.linear_energy_pj(m, s))
                    / (syn.attention_energy_pj("unfused", m, s) + syn.linear_energy_pj(m, s)) for m, s in SLOTS]
        geomean = math.exp(sum(math.log(v) for v in expected) / len(expected))
        assert _heights(container) == pytest.approx(expected + [geomean], rel=1e-12)


def test_failed_point_leaves_a_gap(tmp_path: Path, store) -> None:  # type: ignore[no-untyped-def]
    _, _, entries = store
    syn.make_store(tmp_path, failing=(("flat", "xlm", 4096),), missing=(("unfused", "bert-base", 1024),))
    axes = bars_figure(syn.records_of(tmp_path), entries["speedup"]).axes[0]
    counts = [len(c.patches) for c in axes.containers]
    # unfused bert 1K missing: no speedup for any design there; flat xlm 4K failed: one more gap
    # (each count + 1: the geometric mean over the bars there are)
    assert counts == [4, 3, 4, 4, 4]


def test_einsum_stack_content(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    figure = einsum_stack_figure(records, entries["stack"])
    axes, zoom = figure.axes[0], figure.axes[1]
    categories = {"QK": ("QK", "BQK"), "LM": ("LM",), "SLN": ("SLN",), "SLD": ("SLD",), "SLNV/AV": ("SLNV", "AV")}
    assert [c.get_label() for c in axes.containers] == list(categories)
    assert _legend(axes) == list(categories)[::-1]                  # top of the stack first
    designs = ["flat", "fusemax-cascade", "fusemax-arch", "fusemax"]
    bars = [(seq, design) for seq in syn.SEQS for design in designs]
    assert [t.get_text() for t in zoom.get_xticklabels()] == ["FL", "+C", "+A", "+B"] * len(syn.SEQS)
    bottoms = [0.0] * len(bars)
    for (category, einsums), container in zip(categories.items(), axes.containers):
        expected = [sum(syn.per_einsum(design).get(e, {}).get("util_2d", 0.0) for e in einsums)
                    for _, design in bars]
        assert _heights(container) == pytest.approx(expected, abs=1e-15)
        assert [p.get_y() for p in container.patches] == pytest.approx(bottoms, abs=1e-15)
        bottoms = [b + h for b, h in zip(bottoms, expected)]
    # the whole stack is the design's 2D utilisation (per-Einsum shares sum to 0.87 / 0.87)
    assert bottoms == pytest.approx([syn.UTIL_2D[design] for _, design in bars], rel=1e-12)
    assert " ".join(axes.get_ylabel().split()) == "2D array active (fraction of PE-cycles)"
    # the magnified panel: the categories never above 10% of the tallest stack (0.9), side by side
    tallest = max(syn.UTIL_2D[d] for d in designs)
    small = [c for c, es in categories.items()
             if max(sum(syn.per_einsum(d).get(e, {}).get("util_2d", 0.0) for e in es) for d in designs) <= 0.1 * tallest]
    assert small == ["LM", "SLN", "SLD"]
    assert [c.get_label() for c in zoom.containers] == small
    for category, container in zip(small, zoom.containers):
        expected = [sum(syn.per_einsum(design).get(e, {}).get("util_2d", 0.0) for e in categories[category])
                    for _, design in bars]
        assert _heights(container) == pytest.approx(expected, abs=1e-15)
    # every category has its own hatch, the same in both panels (readable in greyscale)
    hatches = [c.patches[0].get_hatch() or "" for c in axes.containers]
    assert len(set(hatches)) == len(hatches)
    assert [c.patches[0].get_hatch() or "" for c in zoom.containers] == [hatches[list(categories).index(c)] for c in small]


def test_pareto_is_log_log_in_cm2_one_line_per_model(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    axes = pareto_figure(records, entries["pareto"]).axes[0]
    assert axes.get_xscale() == axes.get_yscale() == "log"
    assert axes.get_xlabel() == "chip area (cm$^2$)" and axes.get_ylabel() == "attention latency (s)"
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["BERT", "XLM"]
    for model, line in zip(syn.MODELS, lines):
        assert list(line.get_xdata()) == pytest.approx([syn.pareto_area_mm2(pe) / 100 for pe in syn.PE_DIMS])
        assert list(line.get_ydata()) == pytest.approx([syn.pareto_latency_s(model, pe) for pe in syn.PE_DIMS])
    assert sorted(t.get_text() for t in axes.texts) == ["128x128", "64x64"]    # each label once


def test_roofline_points_and_roof(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    axes = roofline_figure(records, entries["roofline"]).axes[0]
    assert axes.get_xlabel() == "arithmetic intensity (FLOP/byte of DRAM traffic)"
    assert " ".join(axes.get_ylabel().split()) == "attained performance (TFLOP/s)"
    points = len(SLOTS)
    roof_label = f"roof: {syn.PEAK_FLOPS_PER_S / 1e12:g} TFLOP/s, {syn.BANDWIDTH_BYTES_PER_S / 1e12:g} TB/s"
    assert _legend(axes) == [f"{label} ({points})" if label != "FuseMax" else label
                             for label in PAPER_LEGEND] + [roof_label]
    for design, collection in zip(syn.DESIGNS, axes.collections):
        points = sorted(map(tuple, collection.get_offsets()))
        expected = sorted((syn.attention_flops(m, s) / syn.attention_traffic_bytes(design, m, s),
                           syn.attention_flops(m, s) / syn.attention_latency_s(design, m, s) / 1e12)
                          for m, s in SLOTS)
        assert [v for point in points for v in point] == pytest.approx([v for e in expected for v in e], rel=1e-12)
    # every point inside the axes (none clipped), the roof labelled in the axes' units (TFLOP/s, TB/s)
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    assert all(x0 < x < x1 and y0 < y < y1 for c in axes.collections for x, y in c.get_offsets())
    roof = next(line for line in axes.get_lines() if str(line.get_label()).startswith("roof"))
    assert roof.get_label() == roof_label
    for x, y in zip(roof.get_xdata(), roof.get_ydata()):
        assert y == pytest.approx(min(syn.PEAK_FLOPS_PER_S, syn.BANDWIDTH_BYTES_PER_S * x) / 1e12, rel=1e-12)


def test_lines_panels_and_series(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    figure = lines_figure(records, entries["lines"])
    assert [a.get_title() for a in figure.axes] == ["BERT", "XLM"]
    for model, axes in zip(syn.MODELS, figure.axes):
        assert [line.get_label() for line in axes.get_lines()] == ["Unfused", "FLAT", "+Cascade", "+Architecture",
                                                                  "FuseMax"]
        for design, line in zip(syn.DESIGNS, axes.get_lines()):
            assert list(line.get_xdata()) == list(syn.SEQS)
            assert list(line.get_ydata()) == pytest.approx([syn.attention_latency_s(design, model, s)
                                                            for s in syn.SEQS])
    assert figure.axes[0].get_ylabel() == "attention latency (s)"


def test_attnsim_plot_writes_png_pdf_and_report(store,  # type: ignore[no-untyped-def]
                                                capsys: pytest.CaptureFixture[str]) -> None:
    directory, _, entries = store
    assert main(["plot", str(directory)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("study synthetic: 24 ok, 0 failed, 0 not run; 7 figures")
    for name in entries:
        assert (directory / "figs" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (directory / "figs" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert "![speedup](figs/speedup.png)" in (directory / "report.md").read_text()


def test_plot_entry_errors_are_one_line() -> None:
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.type: expected one of bars, einsum_stack"):
        parse_plot_entries([{"name": "x", "type": "pie"}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.1.metric: missing required key$"):
        parse_plot_entries([{"name": "a", "type": "roofline"}, {"name": "b", "type": "bars", "ylabel": "y"}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.colour: unknown key 'colour'$"):
        parse_plot_entries([{"name": "a", "type": "roofline", "colour": "red"}], "s.yaml")
    with pytest.raises(UsageError, match=r"plots.1.name: 'a' is used by an earlier plot"):
        parse_plot_entries([{"name": "a", "type": "roofline"}, {"name": "a", "type": "roofline"}], "s.yaml")


def test_ambiguous_bars_are_refused(store) -> None:  # type: ignore[no-untyped-def]
    _, records, entries = store
    ambiguous = entries["util1d"].model_copy(update={"where": {}, "groups": ["model"]})
    with pytest.raises(UsageError, match="several points have model=bert-base, design=unfused"):
        bars_figure(records, ambiguous)


def _variant_records(names: list[str], seqs: tuple[int, ...] = (1024, 16384, 262144)) -> list[PointRecord]:
    """One ok point per (series value, seq) with a made-up latency (``cascade`` series, ``seq`` groups)."""
    return [PointRecord(key=f"{name}-{seq}", study="legend", kind="attention", point_index=i, params={
        "cascade": name, "seq": seq}, point_json="{}", status="ok", result={"latency_s": (1 + i) * seq * 1e-9},
        error=None, started_at="", finished_at="", wall_s=0.0)
        for i, (name, seq) in enumerate((n, s) for n in names for s in seqs)]


LONG_NAMES = {
    "variants": ["attention-1pass", "sigmoid-attention", "softplus-attention", "softplus-lssa", "linear-attention",
                 "hedgehog-attention", "lightning2-causal", "window-attention"],       # variants.yaml's order
    "many-long": [f"selective-temperature-attention-variant-{i:02d}" for i in range(14)],
}


@pytest.mark.parametrize("names", LONG_NAMES.values(), ids=list(LONG_NAMES))
def test_bar_legend_of_many_long_series_fits_the_figure(names: list[str], tmp_path: Path) -> None:
    """The legend above the bars (a row of the study's 7 x 2.6 in, 8 pt figure) wraps into columns that fit
    the figure: all of it inside the figure, above the axes, every series named, and the files are the
    figure's size (nothing cropped or added)."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from attnsim.studies.plots import BarsPlot, FigureStyle, draw, save

    style = FigureStyle(width_in=7.0, height_in=2.6, font_size_pt=8)
    plot = BarsPlot(name="legend", type="bars", metric="latency_s", ylabel="latency / softmax latency (x)",
                    normalise="relative", baseline=names[0], series="cascade", groups=["seq"], order=names,
                    log_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = draw(_variant_records(names), plot, style)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    axes = figure.axes[0]
    legend = axes.get_legend()
    assert _legend(axes) == [f"cascade {names[0]} (baseline = 1)"] + [f"cascade {n}" for n in names[1:]]
    box, page = legend.get_window_extent(canvas.get_renderer()), figure.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)
    assert box.y0 >= axes.get_window_extent().y1 - 1       # above the axes, not over the bars
    assert axes.get_window_extent().height > 0.4 * page.height
    assert not [str(w.message) for w in caught]           # e.g. "constrained_layout not applied"
    for text in legend.get_texts():
        inner = text.get_window_extent(canvas.get_renderer())
        assert page.x0 <= inner.x0 and inner.x1 <= page.x1, text.get_text()
    png = save(figure, tmp_path, "legend", ("png",), style)["png"].read_bytes()
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (2100, 780)  # 300 dpi


def test_bar_legend_that_fits_stays_in_one_row(store) -> None:  # type: ignore[no-untyped-def]
    """A legend no wider than the figure keeps its single row (the paper's figures unchanged)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from attnsim.studies.plots import DEFAULT_STYLE, draw

    _, records, entries = store
    figure = draw(records, entries["speedup"], DEFAULT_STYLE)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rows = {round(t.get_window_extent(canvas.get_renderer()).y0, 3) for t in figure.axes[0].get_legend().get_texts()}
    assert len(rows) == 1


def _trace(path: Path) -> list[tuple[str, str, int, int]]:
    rows = [("dram", "", 0, 100), ("pe2d", "BQK", 100, 164), ("pe2d", "SLNV", 164, 228), ("pe1d", "RNV", 170, 300)]
    lines = ["unit,einsum,op_id,block,iteration,start_cycle,end_cycle"]
    lines += [f"{u},{e},op{i},main,0,{s},{t}" for i, (u, e, s, t) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return rows


def test_gantt_from_trace_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attnsim.archsim.trace import gantt_figure, read_trace_csv

    rows = _trace(tmp_path / "trace.csv")
    out = tmp_path / "gantt.png"
    assert main(["plot", "--gantt", str(tmp_path / "trace.csv"), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote the Gantt chart of {len(rows)} operations to {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = gantt_figure(read_trace_csv(tmp_path / "trace.csv")).axes[0]
    # one broken_barh collection per (unit, Einsum), one bar per operation (none closer than the resolution)
    assert len(axes.collections) == len(rows)
    bars = sorted((float(p.vertices[:, 0].min()), float(np.ptp(p.vertices[:, 0])))
                  for c in axes.collections for p in c.get_paths())
    assert bars == sorted((float(s), float(t - s)) for _, _, s, t in rows)
    assert axes.get_xlabel() == "cycle"
    assert [t.get_text() for t in axes.get_yticklabels()] == ["dram", "pe2d", "pe1d"]


@pytest.mark.parametrize("argv, message", [
    (["plot"], "plot: expected DIR (a sweep's output directory) or --gantt TRACE.csv --out FILE"),
    (["plot", "--gantt", "nope.csv", "--out", "x.png"], "--gantt nope.csv: no such file"),
    (["plot", "DIR_THAT_DOES_NOT_EXIST"], "DIR_THAT_DOES_NOT_EXIST: no such directory"),
])
def test_bad_plot_input_exit_2_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"attnsim: error: {message}\n"


def test_bad_trace_and_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,einsum\npe2d,QK\n")
    assert main(["plot", "--gantt", str(bad), "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err == (f"attnsim: error: --gantt {bad}: line 1: missing column 'op_id' (expected "
                                       "the columns unit, einsum, op_id, block, iteration, start_cycle, end_cycle "
                                       "of a --trace CSV)\n")
    _trace(tmp_path / "t.csv")
    assert main(["plot", "--gantt", str(tmp_path / "t.csv"), "--out", str(tmp_path / "g.xyz")]) == 2
    assert capsys.readouterr().err.startswith(f"attnsim: error: --out {tmp_path / 'g.xyz'}: expected a file name")


def test_subprocess_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "attnsim", "plot", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"attnsim: error: {tmp_path}: no results.sqlite here (run `attnsim sweep` first)\n"
    assert "Traceback" not in proc.stderr
