"""Every figure of ``specs/studies/paper.yaml``, rendered by ``attnsim plot`` from the small synthetic
store (its grid, the paper study's ``plots:``), read back: the fonts in each PDF (parsed with pypdf,
and the raw objects scanned for Type 3), the page size, the text sizes, axis labels, series counts,
no ``Fig. N`` in the image, no text outside the figure or on top of other text.

Expected values come from the study file (sizes, font size) and from ``synthetic_store``'s closed forms.
"""
from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

import synthetic_store as syn
from attnsim.studies.cli import main
from attnsim.studies.errors import UsageError
from attnsim.studies.plots import draw, parse_plot_entries, parse_plot_style, strip_figure_number
from attnsim.studies.study import load_study

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "specs" / "studies" / "paper.yaml"
PAPER_DOC = yaml.safe_load(PAPER.read_text())
PAPER_PLOTS = PAPER_DOC["plots"]
STYLE = next(entry for entry in PAPER_PLOTS if entry.get("type") == "style")
FIGURES = {entry["name"]: entry for entry in PAPER_PLOTS if entry.get("type") not in ("style", "comparison")}
SLOTS = [(model, seq) for model in syn.MODELS for seq in syn.SEQS]
EMBEDDED_FONTS = {"/TrueType", "/Type1", "/Type0", "/CIDFontType2", "/CIDFontType0"}


def _paper_plots_on_synthetic_grid() -> str:
    study = yaml.safe_load(syn.STUDY)
    study["plots"] = PAPER_PLOTS
    return yaml.safe_dump(study, sort_keys=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any], dict[str, Any], Any]:
    directory = tmp_path_factory.mktemp("paper-figures")
    study_file = syn.make_store(directory, study_text=_paper_plots_on_synthetic_grid())
    assert main(["plot", str(directory)]) == 0
    study = load_study(study_file)
    entries = {e.name: e for e in parse_plot_entries(study.spec.plots, study.display) if e.type != "comparison"}
    return directory, syn.records_of(directory), entries, parse_plot_style(study.spec.plots, study.display)


def _size_in(name: str) -> tuple[float, float]:
    entry = FIGURES[name]
    return entry.get("width_in", STYLE["width_in"]), entry.get("height_in", STYLE["height_in"])


def _fonts(resources: Any, seen: set[int]) -> list[Any]:
    """Every font dictionary reachable from a resources dictionary (pages and form XObjects)."""
    fonts = []
    if resources is None:
        return fonts
    resources = resources.get_object()
    for font in (resources.get("/Font") or {}).values():
        font = font.get_object()
        fonts.append(font)
        fonts += [d.get_object() for d in font.get("/DescendantFonts", [])]
    for xobject in (resources.get("/XObject") or {}).values():
        obj = xobject.get_object()
        if id(obj) not in seen and "/Resources" in obj:
            seen.add(id(obj))
            fonts += _fonts(obj["/Resources"], seen)
    return fonts


def test_every_paper_figure_is_written(rendered) -> None:  # type: ignore[no-untyped-def]
    directory, _, entries, _ = rendered
    assert set(entries) == set(FIGURES) == {"fig6a", "fig6b", "fig7", "fig8", "fig9", "fig10", "fig11", "fig12",
                                            "roofline"}
    for name in FIGURES:
        assert (directory / "figs" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (directory / "figs" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_pdf_fonts_are_truetype_or_type1_and_the_page_is_the_study_size(rendered, name: str) -> None:  # type: ignore[no-untyped-def]
    directory, _, _, _ = rendered
    path = directory / "figs" / f"{name}.pdf"
    raw = path.read_bytes()
    assert b"/Type3" not in raw                         # object dictionaries are not compressed
    reader = pypdf.PdfReader(path)
    assert len(reader.pages) == 1
    page = reader.pages[0]
    fonts = _fonts(page.get("/Resources"), set())
    subtypes = {str(font["/Subtype"]) for font in fonts}
    assert fonts and subtypes <= EMBEDDED_FONTS, subtypes
    for font in fonts:                                    # embedded, not just named
        descriptor = font.get("/FontDescriptor")
        if descriptor is not None:
            descriptor = descriptor.get_object()
            assert any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))
    width_in, height_in = _size_in(name)
    box = page.mediabox
    assert (float(box.width), float(box.height)) == pytest.approx((width_in * 72, height_in * 72), abs=0.01)
    assert "/CreationDate" not in (reader.metadata or {})


def _texts(figure: Any) -> list[Text]:
    """The texts that are drawn: visible and non-empty, tick labels only where their tick is within
    the axis' view (matplotlib keeps labels of ticks beyond the limits, undrawn)."""
    hidden: set[int] = set()
    for axes in figure.axes:
        for axis, coordinate in ((axes.xaxis, 0), (axes.yaxis, 1)):
            low, high = sorted(axis.get_view_interval())
            for label in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True):
                if not low - 1e-12 * abs(low) <= label.get_position()[coordinate] <= high + 1e-12 * abs(high):
                    hidden.add(id(label))
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_text_size_no_figure_number_nothing_clipped_or_overlapping(rendered, name: str) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    figure = draw(records, entries[name], style)
    assert tuple(figure.get_size_inches()) == pytest.approx(_size_in(name))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = _texts(figure)
    for axes in figure.axes:
        for label in (axes.xaxis.label, axes.yaxis.label):
            if label.get_text():
                assert label.get_fontsize() == STYLE["font_size_pt"]
    wanted = {"xlabel": FIGURES[name].get("xlabel"), "ylabel": FIGURES[name].get("ylabel")}
    if FIGURES[name]["type"] == "roofline":
        wanted = {"xlabel": "arithmetic intensity (FLOP/byte of DRAM traffic)",
                  "ylabel": "attained performance (TFLOP/s)"}
    first = figure.axes[0]
    if wanted["ylabel"]:                                   # the study's label, wrapped to the axis at most
        assert " ".join(first.get_ylabel().split()) == wanted["ylabel"]
    if wanted["xlabel"]:
        assert first.get_xlabel() == wanted["xlabel"]
    # nothing smaller than 3/4 of the study's font size (the complaint: ~4 pt labels once placed)
    assert min(t.get_fontsize() for t in texts) >= 0.75 * STYLE["font_size_pt"]
    assert not any(re.match(r"\s*Fig(ure)?\.?\s*\d", t.get_text()) for t in texts)
    page = figure.bbox
    boxes = []
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1, \
            f"{name}: {text.get_text()!r} is outside the figure"
        boxes.append((text.get_text(), box.padded(-0.5)))
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert not overlapping, f"{name}: overlapping text {overlapping}"


@pytest.mark.parametrize("name, metric, speedup", [
    ("fig8", "attention_latency_s", True), ("fig9", "attention_energy_pj", False),
    ("fig10", "latency_s", True), ("fig11", "energy_pj", False)])
def test_figs_8_to_11_geomean_group_and_baseline(rendered, name: str, metric: str, speedup: bool) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    axes = draw(records, entries[name], style).axes[0]

    def value(design: str, model: str, seq: int) -> float:
        attention = {"attention_latency_s": syn.attention_latency_s, "latency_s": syn.attention_latency_s,
                     "attention_energy_pj": syn.attention_energy_pj, "energy_pj": syn.attention_energy_pj}[metric]
        linear = {"latency_s": syn.linear_latency_s, "energy_pj": syn.linear_energy_pj}.get(metric)
        return attention(design, model, seq) + (linear(model, seq) if linear else 0.0)

    assert len(axes.containers) == len(syn.DESIGNS)                        # one series per design
    for design, container in zip(syn.DESIGNS, axes.containers):
        ratios = [(value("unfused", m, s) / value(design, m, s)) if speedup else
                  (value(design, m, s) / value("unfused", m, s)) for m, s in SLOTS]
        geomean = math.exp(math.fsum(math.log(r) for r in ratios) / len(ratios))
        assert [p.get_height() for p in container.patches] == pytest.approx(ratios + [geomean], rel=1e-12)
    assert [t.get_text() for t in axes.get_xticklabels()][-1] == "GM"
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend[0] == "Unfused (baseline = 1)"
    assert [p.get_height() for p in axes.containers[0].patches] == [1.0] * (len(SLOTS) + 1)
    # designs differ in hatch or colour lightness, so they read in greyscale
    keys = {(c.patches[0].get_hatch() or "", tuple(round(v, 2) for v in c.patches[0].get_facecolor()[:3]))
            for c in axes.containers}
    assert len(keys) == len(syn.DESIGNS)
    assert len({c.patches[0].get_hatch() or "" for c in axes.containers}) >= 4


def test_fig7_stacks_and_magnified_small_einsums(rendered) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    figure = draw(records, entries["fig7"], style)
    top, zoom = figure.axes[0], figure.axes[1]
    assert [c.get_label() for c in top.containers] == ["QK", "LM", "SLN", "SLD", "SLNV/AV"]
    assert [c.get_label() for c in zoom.containers] == ["LM", "SLN", "SLD"]    # 0.01, 0.05, 0.01 shares
    assert " ".join(zoom.get_ylabel().split()) == "small Einsums (magnified)"
    # magnified: the zoom panel's axis ends near its tallest bar, far below the stacks' axis
    assert zoom.get_ylim()[1] < 0.2 * top.get_ylim()[1]


def test_fig12_labels_once_and_baseline_markers(rendered) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    entry = entries["fig12"]
    assert entry.baseline_where == {"sizing": "none", "seq": 262144, "design": ["flat", "fusemax"]}
    # the synthetic grid stops at 4K tokens: the same baseline designs there
    plot = entry.model_copy(update={"baseline_where": {"sizing": "none", "seq": 4096, "design": ["flat", "fusemax"]}})
    axes = draw(records, plot, style).axes[0]
    assert [line.get_label() for line in axes.get_lines()] == ["BERT", "XLM"]
    assert sorted(t.get_text() for t in axes.texts) == ["128x128", "64x64"]
    markers = axes.collections
    assert len(markers) == 2
    for design, collection in zip(("flat", "fusemax"), markers):
        expected = sorted((1300.0 * 0.01, syn.attention_latency_s(design, m, 4096)) for m in syn.MODELS)
        got = sorted(map(tuple, collection.get_offsets()))
        assert [v for p in got for v in p] == pytest.approx([v for p in expected for v in p], rel=1e-12)
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["BERT", "XLM", "FLAT (baseline)",
                                                                     "FuseMax (baseline)"]


def test_roofline_every_point_visible_in_tb_per_s(rendered) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    axes = draw(records, entries["roofline"], style).axes[0]
    assert len(axes.collections) == len(syn.DESIGNS)
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    for collection in axes.collections:
        offsets = collection.get_offsets()
        assert len(offsets) == len(SLOTS)
        assert all(x0 < x < x1 and y0 < y < y1 for x, y in offsets)
        assert list(collection.get_facecolor()) == [] or collection.get_facecolor()[0][3] == 0   # hollow
    roof = [line.get_label() for line in axes.get_lines()]
    assert roof == [f"roof: {syn.PEAK_FLOPS_PER_S / 1e12:g} TFLOP/s, {syn.BANDWIDTH_BYTES_PER_S / 1e12:g} TB/s"]


def test_pdf_bytes_repeat(rendered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from attnsim.studies.plots import save

    _, records, entries, style = rendered
    first = save(draw(records, entries["fig8"], style), tmp_path / "a", "fig8", ("pdf",), style)["pdf"]
    second = save(draw(records, entries["fig8"], style), tmp_path / "b", "fig8", ("pdf",), style)["pdf"]
    assert first.read_bytes() == second.read_bytes()


def test_style_entry_is_validated() -> None:
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.width_in: input should be greater than 0$"):
        parse_plot_style([{"type": "style", "width_in": -1}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.font_size_pt: input should be greater than or equal to 4"):
        parse_plot_style([{"type": "style", "font_size_pt": 2}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.colour: unknown key 'colour'$"):
        parse_plot_style([{"type": "style", "colour": "red"}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.1.type: only one style entry per study$"):
        parse_plot_style([{"type": "style"}, {"type": "style"}], "s.yaml")
    with pytest.raises(UsageError, match=r"^s.yaml: plots.0.height_in: input should be greater than 0$"):
        parse_plot_entries([{"name": "r", "type": "roofline", "height_in": 0}], "s.yaml")
    defaults = parse_plot_style([], "s.yaml")
    assert (defaults.width_in, defaults.font_size_pt, defaults.title_in_figure) == (7.0, 8.0, False)


def test_title_in_figure_leaves_the_figure_number_out(rendered) -> None:  # type: ignore[no-untyped-def]
    _, records, entries, style = rendered
    assert strip_figure_number("Fig. 8: attention speedup over Unfused") == "attention speedup over Unfused"
    assert strip_figure_number("Figure 6b. 2D utilisation") == "2D utilisation"
    axes = draw(records, entries["fig8"], style.model_copy(update={"title_in_figure": True})).axes[0]
    assert axes.get_title() == "attention speedup over Unfused"
    assert draw(records, entries["fig8"], style).axes[0].get_title() == ""
