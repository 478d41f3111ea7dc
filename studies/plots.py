"""Figures of a study's results, drawn with matplotlib (Agg) from the records of its results store.

A study lists its figures under ``plots:``; each entry is a mapping with a ``type`` (validated here,
errors name ``plots.<i>.<key>``):

``bars``
    grouped bars: one slot per combination of the ``groups`` parameters (outer first, e.g. model then
    seq), one bar per ``series`` value (e.g. design, in ``order``) of ``metric``; ``normalise``
    ``speedup`` (baseline / value) or ``relative`` (value / baseline) against the ``baseline`` series
    value of the same slot. Figs. 6a/6b and 8-11 of the FuseMax paper.
``einsum_stack``
    per slot (``groups``) one stacked bar per ``series`` value: the ``array``'s per-Einsum activity
    (``per_einsum.<einsum>.util_2d``), Einsums gathered into the ``stack`` categories. Fig. 7.
``pareto``
    ``y`` against ``x`` (times ``x_scale``, e.g. mm^2 -> cm^2) on log-log axes, one line per ``series``
    value, points labelled by ``point_label``. Fig. 12.
``roofline``
    attained performance (``flops`` / ``latency``) against arithmetic intensity (``flops`` / ``bytes``)
    under the roofs ``min(peak, bandwidth x intensity)`` of the architectures, one marker per series.
``lines``
    ``y`` against ``x``, one line per ``series`` value, one panel per ``panels`` value.
``comparison``
    no figure: tells :mod:`studies.report` which published numbers (``reference``) to compare with.
``style``
    no figure: the size and font of every figure (:class:`FigureStyle`): ``width_in`` / ``height_in``
    (inches; default 7 x 2.6, a two-column page's full width), ``font_size_pt`` (default 8, so text
    is 8 pt when the figure is placed at its size), ``title_in_figure`` (default false: the title is
    the caption, in the report and the paper, not baked into the image; when true any ``Fig. N:``
    prefix is still left out). A figure entry may set its own ``width_in`` / ``height_in``.

PDFs embed TrueType (Type 42) fonts, never Type 3 (``pdf.fonttype = 42``), and carry no creation date,
so the same store gives the same bytes. Bars are hatched per series and stacks per category, so the
figures read in greyscale. Normalised bars (``speedup`` / ``relative``) end with a geometric-mean
group (``mean``) and name the baseline series, whose bars are 1 by construction, in the legend. The
legend above bars is one row where that fits the figure's width, else as many columns as fit.

Every figure entry has ``name`` (the file stem: ``figs/<name>.png`` and ``.pdf``), ``title``,
``where`` (``{param: value or [values]}``: which points it uses) and ``headlines`` (keys of the
reference's headline numbers that the report shows beside it).

Values are looked up in a point's parameters, then in its results (a dotted path such as
``per_einsum.QK.util_2d``); ``attention_<x>`` falls back to ``<x>`` for a point simulated without
``end_to_end``. A failed or missing point leaves a gap, never a crash. Every drawing function returns
the :class:`matplotlib.figure.Figure`, so tests can read back what was drawn.
"""
from __future__ import annotations

import io
import math
import re
import string
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError  # noqa: E402

from attnsim.studies.errors import UsageError  # noqa: E402
from attnsim.studies.store import PointRecord  # noqa: E402

FORMATS: tuple[str, ...] = ("png", "pdf")
"""The file formats every figure is written in."""

DESIGN_ORDER: tuple[str, ...] = ("unfused", "flat", "flash2", "flash3", "fusemax-cascade",
                                 "fusemax-arch", "fusemax")
"""Legend order of the designs: the FuseMax paper's (Unfused, FLAT, then the FuseMax steps)."""

DESIGN_LABELS: dict[str, str] = {
    "unfused": "Unfused", "flat": "FLAT", "flash2": "FlashAttention-2", "flash3": "FlashAttention-3",
    "fusemax-cascade": "+Cascade", "fusemax-arch": "+Architecture", "fusemax": "FuseMax",
}
"""How the paper names each design (§6.2)."""

ABLATION_STEPS: tuple[str, ...] = ("fusemax-cascade", "fusemax-arch")
ABLATION_LABELS: dict[str, str] = {"fusemax": "+Binding"}
"""Beside its ablation steps (+Cascade, +Architecture), full FuseMax is the paper's "+Binding"."""

DESIGN_SHORT: dict[str, str] = {
    "unfused": "U", "flat": "FL", "flash2": "FA2", "flash3": "FA3", "fusemax-cascade": "+C",
    "fusemax-arch": "+A", "fusemax": "+B",
}
"""The paper's short labels under the bars of Fig. 7 (FL, +C, +A, +B)."""

DESIGN_HEADINGS: dict[str, str] = {"fusemax-cascade": "FuseMax", "fusemax-arch": "FuseMax",
                                   "fusemax": "FuseMax"}
"""Designs listed in the legend under a heading (the paper's "FuseMax" group)."""

MODEL_LABELS: dict[str, str] = {"bert-base": "BERT", "trxl-wt103": "TrXL", "t5-small": "T5", "xlm": "XLM"}

GPU_LABELS: dict[str, str] = {"h100-sxm": "H100 SXM", "h100-pcie": "H100 PCIe", "h200": "H200"}

DESIGN_COLOURS: dict[str, str] = {
    "unfused": "#7f7f7f", "flat": "#1f77b4", "flash2": "#17becf", "flash3": "#9467bd",
    "fusemax-cascade": "#ffbb78", "fusemax-arch": "#ff7f0e", "fusemax": "#d62728",
}

# --------------------------------------------------------------------------------------------------
# Plot entries of a study.

Where = dict[str, Any]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = ""
    where: Where = {}
    headlines: list[str] = []
    width_in: float | None = Field(default=None, gt=0, le=30)
    height_in: float | None = Field(default=None, gt=0, le=30)


class FigureStyle(BaseModel):
    """Size and font of the figures of a study (the ``style`` entry of ``plots:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["style"] = "style"
    width_in: float = Field(default=7.0, gt=0, le=30)
    height_in: float = Field(default=2.6, gt=0, le=30)
    font_size_pt: float = Field(default=8.0, ge=4, le=24)
    title_in_figure: bool = False

    def rc(self) -> dict[str, Any]:
        """The matplotlib rcParams of this style (TrueType fonts in PDF / PS, text as text in SVG)."""
        size = self.font_size_pt
        return {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "font.size": size,
                "axes.titlesize": size, "axes.labelsize": size, "xtick.labelsize": size - 1,
                "ytick.labelsize": size - 1, "legend.fontsize": size - 1, "legend.title_fontsize": size - 1,
                "hatch.linewidth": 0.5, "axes.linewidth": 0.6, "lines.linewidth": 1.0,
                "lines.markersize": 3.5, "figure.constrained_layout.h_pad": 0.02,
                "figure.constrained_layout.w_pad": 0.02}


DEFAULT_STYLE = FigureStyle()


class BarsPlot(_Entry):
    """Grouped bars (module docstring)."""

    type: Literal["bars"]
    metric: str
    ylabel: str
    normalise: Literal["none", "speedup", "relative"] = "none"
    baseline: Any = None
    groups: list[str] = Field(default=["model", "seq"], min_length=1, max_length=2)
    series: str = "design"
    order: list[Any] | None = None
    log_y: bool = False
    mean: Literal["geometric", "arithmetic", "none"] | None = None
    """The mean group at the right: default geometric for normalised bars, none otherwise."""

    @property
    def mean_kind(self) -> str:
        """The mean group drawn (``geometric``, ``arithmetic`` or ``none``)."""
        if self.mean is not None:
            return self.mean
        return "geometric" if self.normalise != "none" else "none"


class EinsumStackPlot(_Entry):
    """Stacked per-Einsum activity (module docstring)."""

    type: Literal["einsum_stack"]
    stack: dict[str, list[str]] = Field(min_length=1)
    array: Literal["util_2d", "util_1d"] = "util_2d"
    ylabel: str
    groups: list[str] = Field(default=["seq"], min_length=1, max_length=2)
    series: str = "design"
    order: list[Any] | None = None
    small_fraction: float = Field(default=0.1, ge=0, le=1)
    """Categories never above this fraction of the tallest stack get a magnified panel below (0: none)."""


class ParetoPlot(_Entry):
    """Log-log lines of ``y`` against ``x`` (module docstring)."""

    type: Literal["pareto"]
    x: str = "area_mm2"
    x_scale: float = 0.01
    xlabel: str = "area (cm$^2$)"
    y: str = "attention_latency_s"
    y_scale: float = 1.0
    ylabel: str = "attention latency (s)"
    series: str = "model"
    point_label: str | None = "pe_dim"
    baseline_where: Where | None = None
    """Points drawn as reference markers (e.g. the paper's fixed designs at the same length)."""
    baseline_series: str = "design"


class RooflinePlot(_Entry):
    """Attained FLOP/s against arithmetic intensity (module docstring)."""

    type: Literal["roofline"]
    flops: str = "attention_flops"
    bytes: str = "attention_traffic_bytes"
    latency: str = "attention_latency_s"
    peak: str = "peak_flops_per_s"
    bandwidth: str = "dram_bandwidth_bytes_per_s"
    series: str = "design"
    order: list[Any] | None = None


_NUMBER_SPEC_RE = re.compile(r"^(?:.?[<>=^])?[-+ ]?#?0?(?P<width>\d{0,3})[,_]?(?:\.\d{1,2})?[eEfFgG%n]?$")


def _number_format(text: str) -> str:
    """A label format with plain ``{}`` / ``{:spec}`` number fields only (no names, attributes, indexes,
    conversions or nested fields), widths under 1000: ``str.format`` cannot reach anything else."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"expected a format such as '{{:g}} GiB/s' ({exc})") from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name != "" or conversion is not None or not _NUMBER_SPEC_RE.match(spec or ""):
            raise ValueError(f"expected plain number fields such as {{:g}} or {{:.2f}}, got "
                             f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}")
    if sum(name is not None for _, name, _, _ in fields) > 1:
        raise ValueError(f"expected at most one number field (the series value), got '{text}'")
    return text


class LinesPlot(_Entry):
    """Lines of ``y`` against ``x`` per series, a panel per ``panels`` value (module docstring)."""

    type: Literal["lines"]
    x: str
    x_scale: float = 1.0
    xlabel: str
    y: str
    y_scale: float = 1.0
    ylabel: str
    series: str
    series_label: str | None = None
    series_scale: float = 1.0
    series_format: Annotated[str, AfterValidator(_number_format)] = "{:g}"
    panels: str | None = None
    log_x: bool = False
    log_y: bool = False


class ComparisonEntry(BaseModel):
    """Which published numbers the report compares the study with (no figure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["comparison"]
    reference: str
    where: Where = {}


PlotEntry = Annotated[Union[BarsPlot, EinsumStackPlot, ParetoPlot, RooflinePlot, LinesPlot, ComparisonEntry,
                            FigureStyle], Field(discriminator="type")]
FigureEntry = Union[BarsPlot, EinsumStackPlot, ParetoPlot, RooflinePlot, LinesPlot]
PLOT_TYPES = ("bars", "einsum_stack", "pareto", "roofline", "lines", "comparison", "style")

_ADAPTER: TypeAdapter[Any] = TypeAdapter(PlotEntry)


def _validate_entries(entries: Sequence[Mapping[str, Any]], display: str) -> list[Any]:
    parsed = []
    names: set[str] = set()
    styles = 0
    for index, entry in enumerate(entries):
        if entry.get("type") == "style":
            styles += 1
            if styles > 1:
                raise UsageError(f"{display}: plots.{index}.type: only one style entry per study")
        if entry.get("type") not in PLOT_TYPES:
            raise UsageError(f"{display}: plots.{index}.type: expected one of {', '.join(PLOT_TYPES)}, "
                             f"got {entry.get('type')!r}")
        try:
            plot = _ADAPTER.validate_python(dict(entry))
        except ValidationError as exc:
            from attnsim.archsim.errors import describe_error

            error = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")[0]
            where, what = describe_error({**error, "loc": error["loc"][1:]})   # drop the union tag
            raise UsageError(f"{display}: plots.{index}.{where}: {what}") from None
        name = getattr(plot, "name", None)
        if name is not None:
            if name in names:
                raise UsageError(f"{display}: plots.{index}.name: '{name}' is used by an earlier plot")
            names.add(name)
        parsed.append(plot)
    return parsed


def parse_plot_entries(entries: Sequence[Mapping[str, Any]], display: str) -> list[Any]:
    """Validate a study's ``plots:`` list; UsageError ``display: plots.<i>.<key>: problem`` (one line).

    Returns the figure and comparison entries (the style entry: :func:`parse_plot_style`)."""
    return [entry for entry in _validate_entries(entries, display) if entry.type != "style"]


def parse_plot_style(entries: Sequence[Mapping[str, Any]], display: str) -> FigureStyle:
    """The study's ``style`` entry (validated as :func:`parse_plot_entries` does), or the defaults."""
    styles = [entry for entry in _validate_entries(entries, display) if entry.type == "style"]
    return styles[0] if styles else DEFAULT_STYLE


# --------------------------------------------------------------------------------------------------
# Reading values.


def lookup(record: PointRecord, key: str) -> Any:
    """``key`` of a point: a parameter, else a result (dotted path); None when absent or failed.

    ``attention_<x>`` falls back to ``<x>`` when the point has no ``attention_<x>`` (a point simulated
    without ``end_to_end`` is attention only).
    """
    if key in record.params:
        return record.params[key]
    if record.result is None:
        return None
    value = _dotted(record.result, key)
    if value is None and key.startswith("attention_") and "linear_latency_s" not in record.result:
        value = _dotted(record.result, key[len("attention_"):])
    return value


def _dotted(result: Mapping[str, Any], key: str) -> Any:
    if key in result:
        return result[key]
    node: Any = result
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    """Equal values, a boolean never equal to a number (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def matches(record: PointRecord, where: Mapping[str, Any]) -> bool:
    """True if every ``where`` parameter of the point equals the value (or one of the values) given;
    an absent parameter reads as null."""
    for key, wanted in where.items():
        value = record.params.get(key)
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(value, option) for option in options):
            return False
    return True


def selected(records: Iterable[PointRecord], where: Mapping[str, Any]) -> list[PointRecord]:
    """The records that match ``where`` (ok or not)."""
    return [record for record in records if matches(record, where)]


def seq_label(seq: int) -> str:
    """1024 -> ``1K``, 1048576 -> ``1M``, other values as they are."""
    if isinstance(seq, int) and not isinstance(seq, bool):
        if seq >= 1024 * 1024 and seq % (1024 * 1024) == 0:
            return f"{seq // (1024 * 1024)}M"
        if seq >= 1024 and seq % 1024 == 0:
            return f"{seq // 1024}K"
    return str(seq)


def value_label(key: str, value: Any, ablation: bool = False) -> str:
    """How a parameter value is shown on an axis or in a legend (``ablation``: designs shown beside
    FuseMax's ablation steps, where FuseMax is "+Binding")."""
    if key == "design":
        if ablation and value in ABLATION_LABELS:
            return ABLATION_LABELS[value]
        return DESIGN_LABELS.get(value, str(value))
    if key == "model":
        return MODEL_LABELS.get(value, str(value))
    if key == "arch":
        return GPU_LABELS.get(value, str(value))
    if key == "seq":
        return seq_label(value)
    if key == "head_dim":
        return f"head dim {value}"
    if key == "pe_dim":
        return f"{value}x{value}"
    return f"{key} {value}"


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def ordered_values(records: Iterable[PointRecord], key: str, order: Sequence[Any] | None = None) -> list[Any]:
    """The distinct values of parameter ``key``: in ``order`` (values absent from the records dropped),
    else in study order, except designs (paper legend order) and numbers (ascending)."""
    seen = list(dict.fromkeys(record.params.get(key) for record in records if key in record.params))
    if order is not None:
        return [value for value in order if value in seen]
    if key == "design":
        known = [d for d in DESIGN_ORDER if d in seen]
        return known + [d for d in seen if d not in known]
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return sorted(seen, key=_sort_key)
    return seen


def _slot_values(records: Sequence[PointRecord], groups: Sequence[str]) -> list[tuple[Any, ...]]:
    """The group slots in drawing order: the outer key's values, each with the inner key's values."""
    if len(groups) == 1:
        return [(value,) for value in ordered_values(records, groups[0])]
    slots = []
    for outer in ordered_values(records, groups[0]):
        inner_records = [r for r in records if r.params.get(groups[0]) == outer]
        slots.extend((outer, inner) for inner in ordered_values(inner_records, groups[1]))
    return slots


def _index(records: Sequence[PointRecord], keys: Sequence[str], plot_name: str
           ) -> dict[tuple[Any, ...], PointRecord]:
    """(values of ``keys``) -> the ok record; UsageError if two points share them (the figure would
    have to drop one: its ``where`` must pick one point per bar)."""
    index: dict[tuple[Any, ...], PointRecord] = {}
    for record in records:
        if record.status != "ok":
            continue
        slot = tuple(record.params.get(key) for key in keys)
        if slot in index:
            other = index[slot].params
            differ = [k for k in record.params if record.params.get(k) != other.get(k)]
            shown = ", ".join(f"{k}={v}" for k, v in zip(keys, slot))
            raise UsageError(f"plot {plot_name}: several points have {shown} (they differ in "
                             f"{', '.join(differ)}); narrow its where: or group by those parameters")
        index[slot] = record
    return index


# --------------------------------------------------------------------------------------------------
# Layout helpers.

DESIGN_HATCHES: dict[str, str] = {
    "unfused": "", "flat": "////", "flash2": "\\\\\\\\", "flash3": "++", "fusemax-cascade": "....",
    "fusemax-arch": "xxxx", "fusemax": "",
}
"""Hatches per design, so that the bars read in greyscale (Unfused light grey, FuseMax dark red: solid)."""
HATCHES: tuple[str, ...] = ("", "////", "....", "xxxx", "\\\\\\\\", "++", "oo", "--")
"""Hatches of series / categories without their own (in order)."""
MEAN_LABELS = {"geometric": ("GM", "geo. mean"), "arithmetic": ("AM", "mean")}
"""Tick and group label of the mean group of a bar chart."""

_FIG_PREFIX = re.compile(r"^\s*Fig(?:ure)?\.?\s*\d+[a-z]?\s*[:.]\s*", re.IGNORECASE)


def strip_figure_number(title: str) -> str:
    """``"Fig. 8: attention speedup"`` -> ``"attention speedup"`` (the caption numbers the figure)."""
    return _FIG_PREFIX.sub("", title)


def figure_size(plot: Any, style: FigureStyle) -> tuple[float, float]:
    """(width, height) in inches of a figure: its own ``width_in`` / ``height_in``, else the style's."""
    return (plot.width_in or style.width_in, plot.height_in or style.height_in)


def _new_figure(plot: Any, style: FigureStyle) -> tuple[Figure, Any]:
    figure = Figure(figsize=figure_size(plot, style), layout="constrained")
    return figure, figure.add_subplot()


def _title(axes: Any, plot: Any, style: FigureStyle) -> None:
    if style.title_in_figure and plot.title:
        axes.set_title(strip_figure_number(plot.title))


def _hatch(series_key: str, value: Any, index: int) -> str:
    if series_key == "design" and value in DESIGN_HATCHES:
        return DESIGN_HATCHES[value]
    return HATCHES[index % len(HATCHES)]


def _slot_positions(slots: Sequence[tuple[Any, ...]], gap: float = 0.6) -> list[float]:
    """x of each slot: 1 apart, with an extra ``gap`` where the outer group changes."""
    positions, x, previous = [], 0.0, None
    for slot in slots:
        if previous is not None and len(slot) > 1 and slot[0] != previous:
            x += gap
        positions.append(x)
        previous = slot[0]
        x += 1.0
    return positions


def _label_slots(axes: Any, slots: Sequence[tuple[Any, ...]], positions: Sequence[float],
                 groups: Sequence[str], mean: tuple[float, str] | None = None) -> None:
    """Tick labels (inner group), outer group names under them, separators; ``mean``: (x, kind) of the
    mean group after the slots."""
    ticks = list(positions) + ([mean[0]] if mean else [])
    labels = [value_label(groups[-1], slot[-1]) for slot in slots]
    if mean:
        labels.append(MEAN_LABELS[mean[1]][0])
    axes.set_xticks(ticks, labels)
    axes.tick_params(axis="x", length=0, pad=2)
    axes.set_xlim(ticks[0] - 0.6, ticks[-1] + 0.6)
    transform = blended_transform_factory(axes.transData, axes.transAxes)
    if mean:
        axes.axvline((positions[-1] + mean[0]) / 2, color="0.6", linewidth=0.6, zorder=0)
    if len(groups) < 2:
        axes.set_xlabel(_axis_name(groups[0]))
        return
    outers = list(dict.fromkeys(slot[0] for slot in slots))
    names = [(outer, [x for slot, x in zip(slots, positions) if slot[0] == outer]) for outer in outers]
    if mean:
        names.append((None, [mean[0]]))
    for outer, xs in names:
        text = value_label(groups[0], outer) if outer is not None else MEAN_LABELS[mean[1]][1]  # type: ignore[index]
        axes.annotate(text, (sum(xs) / len(xs), 0), xycoords=transform, xytext=(0, -1.9), ha="center", va="top",
                      textcoords="offset fontsize", fontweight="bold", annotation_clip=False)
    for outer in outers[1:]:
        first = next(x for slot, x in zip(slots, positions) if slot[0] == outer)
        axes.axvline(first - 0.8, color="0.8", linewidth=0.6, zorder=0)
    axes.set_xlabel(f"{_axis_name(groups[-1])}, per {_axis_name(groups[0])}", labelpad=_group_pad())


def _group_pad() -> float:
    """The x label's pad (points) that leaves room for the group names under the tick labels."""
    return 2.3 * float(matplotlib.rcParams["font.size"])


def fit_label(text: str, length_in: float) -> str:
    """``text`` broken into lines that fit ``length_in`` inches at the current font size (an axis
    label longer than its axis would be clipped by the figure edge)."""
    size_pt = float(matplotlib.rcParams["font.size"])
    per_line = max(12, int(length_in * 72 / (0.55 * size_pt)))
    if len(text) <= per_line:
        return text
    return "\n".join(textwrap.wrap(text, per_line, break_on_hyphens=False))


def _ylabel(axes: Any, text: str, figure: Figure, share: float = 0.8) -> None:
    axes.set_ylabel(fit_label(text, figure.get_figheight() * share))


def _axis_name(key: str) -> str:
    return {"seq": "sequence length (tokens)", "model": "model", "design": "design",
            "head_dim": "head dimension", "arch": "GPU"}.get(key, key)


def _series_legend(axes: Any, series_key: str, values: Sequence[Any], handles: Sequence[Any],
                   labels: Mapping[Any, str] | None = None, **kwargs: Any) -> Any:
    """A legend in ``values`` order; designs of the FuseMax group under a "FuseMax" heading;
    ``labels`` replaces the text of some values."""
    entries: list[tuple[Any, str]] = []
    heading = None
    ablation = is_ablation(series_key, values)
    for value, handle in zip(values, handles):
        group = DESIGN_HEADINGS.get(value) if ablation else None
        if group is not None and group != heading:
            entries.append((Rectangle((0, 0), 1, 1, fill=False, edgecolor="none", visible=False), group))
        heading = group
        text = (labels or {}).get(value) or value_label(series_key, value, ablation)
        entries.append((handle, text))
    legend = axes.legend([h for h, _ in entries], [t for _, t in entries], **kwargs)
    headings = set(DESIGN_HEADINGS.values()) if series_key == "design" else set()
    for text in legend.get_texts():
        if text.get_text() in headings:
            text.set_fontweight("bold")
    return legend


TOP_LEGEND_COLUMNS = 7
"""The most entries in one row of the legend above a bar chart."""
LEGEND_PAD_PT = 2.0
"""The least gap (points) between a legend and the left or right edge of the figure (above it,
constrained layout's own pad applies)."""


def _top_legend(axes: Any, series_key: str, values: Sequence[Any], handles: Sequence[Any],
                labels: Mapping[Any, str] | None = None) -> Any:
    """The series legend above the axes (room for the plot on a narrow page): in one row of up to
    ``TOP_LEGEND_COLUMNS`` entries where that fits inside the figure, else in as many columns as fit,
    as many entries in each (the legend measured with the figure's renderer where constrained layout
    puts it, so the saved files, which are the figure's size, hold all of it); a label wider than the
    figure by itself is wrapped onto several lines."""
    count = len(values) + (1 if is_ablation(series_key, values) else 0)
    figure = axes.figure
    texts = dict(labels or {})

    def legend_of(columns: int) -> Any:
        return _series_legend(axes, series_key, values, handles, texts, loc="lower center",
                              bbox_to_anchor=(0.5, 1.0), ncol=columns, frameon=False,
                              handlelength=1.6, columnspacing=1.0, borderaxespad=0.2)

    widest = max(1, min(count, TOP_LEGEND_COLUMNS))
    legend = legend_of(widest)
    if _legend_fits(figure, legend):
        return legend                        # as it always was
    fewest_rows = None                       # the most columns no wider than the figure
    for columns in range(widest - 1, 0, -1):
        legend = legend_of(columns)
        if not _legend_fits(figure, legend, laid_out=False):
            continue
        fewest_rows = fewest_rows or columns
        if _legend_fits(figure, legend):
            even = -(-count // -(-count // columns))      # the same rows, filled evenly
            if even == columns:
                return legend
            balanced = legend_of(even)
            return balanced if _legend_fits(figure, balanced) else legend_of(columns)
    if fewest_rows is not None:              # taller than the figure allows at any width: fewest rows
        return legend if fewest_rows == 1 else legend_of(fewest_rows)
    ablation = is_ablation(series_key, values)
    full = {value: texts.get(value) or value_label(series_key, value, ablation) for value in values}
    longest = max((len(text) for text in full.values()), default=1)
    while longest > 8 and not _legend_fits(figure, legend, vertical=False):
        scale = _available_width(figure) / max(1.0, float(legend.get_window_extent().width))
        longest = max(8, min(longest - 1, int(longest * min(scale, 0.95))))
        texts = {value: "\n".join(textwrap.wrap(text, longest, break_on_hyphens=False)) or text
                 for value, text in full.items()}
        legend = legend_of(1)
    return legend


def _available_width(figure: Figure) -> float:
    """The width (display units) a legend may take: the figure's, less a pad at each edge."""
    return float(figure.bbox.width) - 2 * LEGEND_PAD_PT * figure.dpi / 72


def _legend_fits(figure: Figure, legend: Any, laid_out: bool = True, vertical: bool = True) -> bool:
    """True if ``legend`` is no wider than the figure (less its pads) and, with ``laid_out``, lies inside
    it (only across it, without ``vertical``) once constrained layout has made room for it above the
    axes, measured with the figure's renderer.

    A trial layout puts the axes back where they were: constrained layout starts from their positions,
    so one left in place would move them by a fraction of a point in the saved files."""
    if float(legend.get_window_extent().width) > _available_width(figure):
        return False
    if not laid_out:
        return True
    positions = [(ax, ax.get_position(original=True).frozen(), ax.get_position(original=False).frozen())
                 for ax in figure.axes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # "constrained_layout not applied": it is too tall
        figure.draw_without_rendering()
    box, page = legend.get_window_extent(), figure.bbox
    for ax, original, active in positions:
        ax._set_position(original, "original")
        ax._set_position(active, "active")
    pad = LEGEND_PAD_PT * figure.dpi / 72
    across = box.x0 >= page.x0 + pad and box.x1 <= page.x1 - pad
    return bool(across and (not vertical or (box.y0 >= page.y0 and box.y1 <= page.y1)))


def is_ablation(series_key: str, values: Iterable[Any]) -> bool:
    """True for a design series that holds FuseMax's ablation steps (the paper's legend applies)."""
    return series_key == "design" and any(value in ABLATION_STEPS for value in values)


def _colour(series_key: str, value: Any, index: int) -> Any:
    if series_key == "design" and value in DESIGN_COLOURS:
        return DESIGN_COLOURS[value]
    return plt.get_cmap("tab10")(index % 10)


# --------------------------------------------------------------------------------------------------
# The figures.


def bar_values(records: Sequence[PointRecord], plot: BarsPlot) -> dict[Any, dict[tuple[Any, ...], float]]:
    """series value -> {slot: plotted value} (normalised as the plot says; absent where a point or
    its baseline is missing)."""
    records = selected(records, plot.where)
    slots = _slot_values(records, plot.groups)
    index = _index(records, [*plot.groups, plot.series], plot.name)
    out: dict[Any, dict[tuple[Any, ...], float]] = {}
    for value in ordered_values(records, plot.series, plot.order):
        heights = {}
        for slot in slots:
            record = index.get((*slot, value))
            raw = lookup(record, plot.metric) if record else None
            if raw is None:
                continue
            if plot.normalise != "none":
                base = index.get((*slot, plot.baseline))
                base_raw = lookup(base, plot.metric) if base else None
                if base_raw is None or base_raw == 0 or raw == 0:
                    continue
                raw = base_raw / raw if plot.normalise == "speedup" else raw / base_raw
            heights[slot] = float(raw)
        out[value] = heights
    return out


def mean_of(values: Iterable[float], kind: str) -> float | None:
    """The geometric or arithmetic mean of ``values`` (None when there are none, or a geometric mean
    of a non-positive value)."""
    items = list(values)
    if not items:
        return None
    if kind == "geometric":
        if any(v <= 0 for v in items):
            return None
        return math.exp(math.fsum(math.log(v) for v in items) / len(items))
    return math.fsum(items) / len(items)


def bar_means(values: Mapping[Any, Mapping[tuple[Any, ...], float]], kind: str) -> dict[Any, float]:
    """series value -> the mean of its bars (``kind`` geometric or arithmetic); absent without bars."""
    if kind == "none":
        return {}
    return {value: mean for value, heights in values.items()
            if (mean := mean_of(heights.values(), kind)) is not None}


def bars_figure(records: Sequence[PointRecord], plot: BarsPlot, style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """Grouped bars (module docstring): one BarContainer per series value, labelled, in legend order;
    with a mean group, each container's last bar is the series' mean."""
    chosen = selected(records, plot.where)
    slots = _slot_values(chosen, plot.groups)
    values = bar_values(records, plot)
    means = bar_means(values, plot.mean_kind)
    series = list(values)
    positions = _slot_positions(slots)
    mean_x = (positions[-1] + 1.6) if positions and means else None
    figure, axes = _new_figure(plot, style)
    width = 0.8 / max(1, len(series))
    containers = []
    for i, value in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        xs = [x + offset for slot, x in zip(slots, positions) if slot in values[value]]
        hs = [values[value][slot] for slot in slots if slot in values[value]]
        if mean_x is not None and value in means:
            xs.append(mean_x + offset)
            hs.append(means[value])
        containers.append(axes.bar(xs, hs, width=width, label=value_label(plot.series, value, is_ablation(plot.series, series)),
                                   color=_colour(plot.series, value, i), hatch=_hatch(plot.series, value, i),
                                   edgecolor="black", linewidth=0.3))
    if positions:
        _label_slots(axes, slots, positions, plot.groups,
                     (mean_x, plot.mean_kind) if mean_x is not None else None)
    labels = {}
    if plot.normalise != "none":
        axes.axhline(1.0, color="black", linewidth=0.6, linestyle="--", zorder=0)
        if plot.baseline in series:
            labels[plot.baseline] = f"{value_label(plot.series, plot.baseline)} (baseline = 1)"
    if plot.log_y:
        axes.set_yscale("log")
    _ylabel(axes, plot.ylabel, figure, 0.72)
    _title(axes, plot, style)
    axes.grid(axis="y", alpha=0.3, linewidth=0.5)
    _top_legend(axes, plot.series, series, containers, labels)
    return figure


def stack_values(records: Sequence[PointRecord], plot: EinsumStackPlot
                 ) -> dict[str, dict[tuple[Any, ...], float]]:
    """category -> {(slot..., series value): summed per-Einsum activity of ``plot.array``}."""
    records = selected(records, plot.where)
    slots = _slot_values(records, plot.groups)
    index = _index(records, [*plot.groups, plot.series], plot.name)
    out: dict[str, dict[tuple[Any, ...], float]] = {category: {} for category in plot.stack}
    for slot in slots:
        for value in ordered_values(records, plot.series, plot.order):
            record = index.get((*slot, value))
            per = lookup(record, "per_einsum") if record else None
            if not isinstance(per, Mapping):
                continue
            for category, einsums in plot.stack.items():
                out[category][(*slot, value)] = math.fsum(
                    float(per[e].get(plot.array, 0.0)) for e in einsums if isinstance(per.get(e), Mapping))
    return out


def small_categories(values: Mapping[str, Mapping[tuple[Any, ...], float]], fraction: float) -> list[str]:
    """The categories that are never above ``fraction`` of the tallest stack (magnified panel)."""
    bars = {bar for column in values.values() for bar in column}
    tallest = max((math.fsum(column.get(bar, 0.0) for column in values.values()) for bar in bars), default=0.0)
    if fraction <= 0 or tallest <= 0:
        return []
    return [category for category, column in values.items()
            if column and max(column.values()) <= fraction * tallest]


def einsum_stack_figure(records: Sequence[PointRecord], plot: EinsumStackPlot,
                        style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """Fig. 7-style stacks: one BarContainer per category (bottom to top in ``stack`` order), hatched;
    the categories too small to read get a second, magnified panel below (grouped bars)."""
    chosen = selected(records, plot.where)
    slots = _slot_values(chosen, plot.groups)
    series = ordered_values(chosen, plot.series, plot.order)
    values = stack_values(records, plot)
    small = small_categories(values, plot.small_fraction)
    bars = [(*slot, value) for slot in slots for value in series
            if any((*slot, value) in column for column in values.values())]
    positions, x, previous = [], 0.0, None
    for bar in bars:
        if previous is not None and bar[:-1] != previous:
            x += 0.6
        positions.append(x)
        previous = bar[:-1]
        x += 1.0
    figure = Figure(figsize=figure_size(plot, style), layout="constrained")
    if small:
        axes, zoom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1.0]})
    else:
        axes, zoom = figure.add_subplot(), None
    colours = {category: plt.get_cmap("tab10")(i % 10) for i, category in enumerate(values)}
    hatches = {category: HATCHES[i % len(HATCHES)] for i, category in enumerate(values)}
    bottoms = [0.0] * len(bars)
    containers = []
    for category, column in values.items():
        heights = [column.get(bar, 0.0) for bar in bars]
        containers.append(axes.bar(positions, heights, bottom=bottoms, width=0.8, label=category,
                                   color=colours[category], hatch=hatches[category], edgecolor="black",
                                   linewidth=0.3))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    _ylabel(axes, plot.ylabel, figure, 0.55 if small else 0.75)
    _title(axes, plot, style)
    axes.grid(axis="y", alpha=0.3, linewidth=0.5)
    axes.legend(containers[::-1], list(values)[::-1], title="Einsum", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom_axes = axes
    if zoom is not None:
        width = 0.8 / len(small)
        for i, category in enumerate(small):
            offset = (i - (len(small) - 1) / 2) * width
            zoom.bar([p + offset for p in positions], [values[category].get(bar, 0.0) for bar in bars], width=width,
                     label=category, color=colours[category], hatch=hatches[category], edgecolor="black",
                     linewidth=0.3)
        zoom.set_ylabel("small Einsums\n(magnified)")
        zoom.grid(axis="y", alpha=0.3, linewidth=0.5)
        zoom.legend(title=f"< {plot.small_fraction:.0%} of the top", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        bottom_axes = zoom
    bottom_axes.set_xticks(positions, [DESIGN_SHORT.get(bar[-1], str(bar[-1])) if plot.series == "design"
                                       else value_label(plot.series, bar[-1]) for bar in bars])
    bottom_axes.tick_params(axis="x", length=0, pad=2)
    transform = blended_transform_factory(bottom_axes.transData, bottom_axes.transAxes)
    for slot in slots:
        xs = [x for bar, x in zip(bars, positions) if bar[:-1] == slot]
        if xs:
            bottom_axes.annotate(" / ".join(value_label(g, v) for g, v in zip(plot.groups, slot)),
                                 (sum(xs) / len(xs), 0), xycoords=transform, xytext=(0, -1.9),
                                 textcoords="offset fontsize", ha="center", va="top", fontweight="bold",
                                 annotation_clip=False)
    if plot.series == "design":
        ablation = is_ablation(plot.series, series)
        key = ", ".join(f"{DESIGN_SHORT[d]} = {value_label('design', d, ablation)}" for d in series
                        if d in DESIGN_SHORT)
        bottom_axes.set_xlabel(f"design ({key}), per {_axis_name(plot.groups[-1])}", labelpad=_group_pad())
    else:
        bottom_axes.set_xlabel(f"{_axis_name(plot.series)}, per {_axis_name(plot.groups[-1])}",
                               labelpad=_group_pad())
    return figure


def _scaled_points(records: Sequence[PointRecord], plot: ParetoPlot, series: str, label: Any,
                   sort_key: Any) -> dict[Any, list[tuple[float, float, Any]]]:
    """``series`` value -> [(x * x_scale, y * y_scale, label(record))] of ``records`` with both x and y,
    sorted by ``sort_key``."""
    out: dict[Any, list[tuple[float, float, Any]]] = {}
    for value in ordered_values(records, series):
        points = []
        for record in records:
            if record.params.get(series) != value:
                continue
            x, y = lookup(record, plot.x), lookup(record, plot.y)
            if x is not None and y is not None:
                points.append((float(x) * plot.x_scale, float(y) * plot.y_scale, label(record)))
        out[value] = sorted(points, key=sort_key)
    return out


def pareto_values(records: Sequence[PointRecord], plot: ParetoPlot
                  ) -> dict[Any, list[tuple[float, float, Any]]]:
    """series value -> [(x * x_scale, y * y_scale, point label)], sorted by x."""
    records = [r for r in selected(records, plot.where) if r.status == "ok"]
    return _scaled_points(records, plot, plot.series,
                          lambda r: lookup(r, plot.point_label) if plot.point_label else None,
                          lambda p: p[0])


def pareto_baselines(records: Sequence[PointRecord], plot: ParetoPlot
                     ) -> dict[Any, list[tuple[float, float, Any]]]:
    """baseline series value (e.g. design) -> [(x, y, series value of the point)] of the
    ``baseline_where`` points, scaled as the lines are; empty without ``baseline_where``."""
    if plot.baseline_where is None:
        return {}
    chosen = [r for r in selected(records, plot.baseline_where) if r.status == "ok"]
    return _scaled_points(chosen, plot, plot.baseline_series, lambda r: r.params.get(plot.series),
                          lambda p: (p[0], p[1]))


def pareto_figure(records: Sequence[PointRecord], plot: ParetoPlot, style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """Log-log lines (one Line2D per series value, labelled); each point label written once, above
    the highest point that has it; ``baseline_where`` points as hollow markers (one per baseline value)
    in their series' colour."""
    values = pareto_values(records, plot)
    baselines = pareto_baselines(records, plot)
    figure, axes = _new_figure(plot, style)
    colours = {value: plt.get_cmap("tab10")(i % 10) for i, value in enumerate(values)}
    for value, points in values.items():
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=value_label(plot.series, value),
                      color=colours[value])
    highest: dict[Any, tuple[float, float]] = {}
    for points in values.values():
        for x, y, label in points:
            if label is not None and (label not in highest or y > highest[label][1]):
                highest[label] = (x, y)
    for label, (x, y) in highest.items():
        axes.annotate(value_label(plot.point_label or "", label), (x, y), textcoords="offset points",
                      xytext=(0, 4), ha="center", va="bottom", fontsize="small")
    markers = "sD^v<>ph*"
    baseline_handles = []
    for i, (value, points) in enumerate(baselines.items()):
        marker = markers[i % len(markers)]
        axes.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, s=22, facecolors="none",
                     edgecolors=[colours.get(p[2], "black") for p in points], linewidths=0.9, zorder=3)
        baseline_handles.append(Line2D([], [], linestyle="none", marker=marker, markerfacecolor="none",
                                       markeredgecolor="black", label=f"{value_label(plot.baseline_series, value)} "
                                                                      f"(baseline)"))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.margins(x=0.08, y=0.18)
    axes.set_xlabel(plot.xlabel)
    _ylabel(axes, plot.ylabel, figure)
    _title(axes, plot, style)
    axes.grid(True, which="major", alpha=0.3, linewidth=0.5)
    if axes.get_lines():
        handles = axes.get_lines() + baseline_handles
        axes.legend(handles, [str(h.get_label()) for h in handles], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        axes.text(0.5, 0.5, "no points", transform=axes.transAxes, ha="center")
    return figure


@dataclass(frozen=True)
class RooflinePoint:
    """One point of a roofline: intensity in FLOP/byte, performance in FLOP/s."""

    intensity_flop_per_byte: float
    performance_flop_per_s: float
    record: PointRecord = field(compare=False, repr=False)


def roofline_values(records: Sequence[PointRecord], plot: RooflinePlot
                    ) -> tuple[dict[Any, list[RooflinePoint]], list[tuple[float, float]]]:
    """(series value -> points, the distinct roofs as (peak FLOP/s, bandwidth bytes/s))."""
    records = [r for r in selected(records, plot.where) if r.status == "ok"]
    out: dict[Any, list[RooflinePoint]] = {}
    roofs: list[tuple[float, float]] = []
    for value in ordered_values(records, plot.series, plot.order):
        points = []
        for record in records:
            if record.params.get(plot.series) != value:
                continue
            flops, traffic, latency = (lookup(record, k) for k in (plot.flops, plot.bytes, plot.latency))
            if not flops or not traffic or not latency:
                continue
            points.append(RooflinePoint(flops / traffic, flops / latency, record))
            roof = (float(lookup(record, plot.peak) or 0.0), float(lookup(record, plot.bandwidth) or 0.0))
            if all(roof) and roof not in roofs:
                roofs.append(roof)
        out[value] = points
    return out, roofs


def roofline_figure(records: Sequence[PointRecord], plot: RooflinePlot, style: FigureStyle = DEFAULT_STYLE
                    ) -> Figure:
    """Roofs (dashed, labelled in TFLOP/s and TB/s: the units of the axes, so slope = bandwidth) and
    one hollow marker set per series value (every point visible where points coincide), the axes
    spanning every point."""
    values, roofs = roofline_values(records, plot)
    figure, axes = _new_figure(plot, style)
    intensities = [p.intensity_flop_per_byte for points in values.values() for p in points]
    performances = [p.performance_flop_per_s / 1e12 for points in values.values() for p in points]
    ridges = [peak / bw for peak, bw in roofs]
    low = min(intensities + ridges, default=1.0) / 3
    high = max(intensities + ridges, default=10.0) * 3
    grid = [low * (high / low) ** (i / 200) for i in range(201)]
    for peak, bandwidth in roofs:
        axes.plot(grid, [min(peak, bandwidth * x) / 1e12 for x in grid], linestyle="--", color="black",
                  linewidth=0.8, label=f"roof: {peak / 1e12:.4g} TFLOP/s, {bandwidth / 1e12:.4g} TB/s")
    handles = []
    markers = "osD^v<>ph*"
    for i, (value, points) in enumerate(values.items()):
        handles.append(axes.scatter([p.intensity_flop_per_byte for p in points],
                                    [p.performance_flop_per_s / 1e12 for p in points],
                                    marker=markers[i % len(markers)], s=16, facecolors="none",
                                    edgecolors=[_colour(plot.series, value, i)], linewidths=0.8, zorder=3,
                                    label=value_label(plot.series, value)))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(low, high)
    tops = performances + [peak / 1e12 for peak, _ in roofs]
    if tops:
        axes.set_ylim(min(tops) / 3, max(tops) * 3)
    axes.set_xlabel("arithmetic intensity (FLOP/byte of DRAM traffic)")
    _ylabel(axes, "attained performance (TFLOP/s)", figure)
    _title(axes, plot, style)
    axes.grid(True, which="major", alpha=0.3, linewidth=0.5)
    roof_lines = [line for line in axes.get_lines() if str(line.get_label()).startswith("roof")]
    counts = {value: f"{value_label(plot.series, value, is_ablation(plot.series, list(values)))} ({len(points)})"
              for value, points in values.items()}
    roofs_key = [("__roof__", i) for i in range(len(roof_lines))]
    counts.update({key: str(line.get_label()) for key, line in zip(roofs_key, roof_lines)})
    _series_legend(axes, plot.series, [*values, *roofs_key], [*handles, *roof_lines], counts, loc="upper left",
                   bbox_to_anchor=(1.0, 1.0), title="points per series")
    return figure


def line_values(records: Sequence[PointRecord], plot: LinesPlot
                ) -> dict[Any, dict[Any, list[tuple[float, float]]]]:
    """panel value (None: one panel) -> series value -> [(x, y)] sorted by x, scales applied."""
    records = [r for r in selected(records, plot.where) if r.status == "ok"]
    panels = ordered_values(records, plot.panels) if plot.panels else [None]
    out: dict[Any, dict[Any, list[tuple[float, float]]]] = {}
    for panel in panels:
        in_panel = [r for r in records if plot.panels is None or r.params.get(plot.panels) == panel]
        out[panel] = {}
        for value in ordered_values(in_panel, plot.series):
            points = []
            for record in in_panel:
                if record.params.get(plot.series) != value:
                    continue
                x, y = lookup(record, plot.x), lookup(record, plot.y)
                if x is not None and y is not None:
                    points.append((float(x) * plot.x_scale, float(y) * plot.y_scale))
            out[panel][value] = sorted(points)
    return out


def lines_figure(records: Sequence[PointRecord], plot: LinesPlot, style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """One axes per panel, one labelled Line2D per series value."""
    values = line_values(records, plot)
    figure = Figure(figsize=figure_size(plot, style), layout="constrained")
    all_axes = figure.subplots(1, max(1, len(values)), squeeze=False, sharey=True)[0]
    for axes, (panel, series) in zip(all_axes, values.items()):
        for i, (value, points) in enumerate(series.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                label = plot.series_format.format(value * plot.series_scale)
            else:
                label = value_label(plot.series, value)
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="os^Dv<>ph*"[i % 10], label=label,
                      color=plt.get_cmap("viridis")(i / max(1, len(series) - 1)))
        if plot.log_x:
            axes.set_xscale("log", base=2)
        if plot.log_y:
            axes.set_yscale("log")
        axes.set_xlabel(plot.xlabel)
        if plot.panels:
            axes.set_title(value_label(plot.panels, panel))
        axes.grid(True, which="major", alpha=0.3, linewidth=0.5)
        if axes.get_lines():
            axes.legend(title=plot.series_label or _axis_name(plot.series))
    _ylabel(all_axes[0], plot.ylabel, figure)
    if style.title_in_figure and plot.title:
        figure.suptitle(strip_figure_number(plot.title))
    return figure


DRAWERS = {"bars": bars_figure, "einsum_stack": einsum_stack_figure, "pareto": pareto_figure,
           "roofline": roofline_figure, "lines": lines_figure}


def draw(records: Sequence[PointRecord], plot: FigureEntry, style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """The figure of one plot entry, drawn under the style's fonts."""
    with matplotlib.rc_context(style.rc()):
        return DRAWERS[plot.type](records, plot, style)  # type: ignore[operator]


@dataclass
class DrawnFigure:
    """A figure written to disk: its entry, the files, how many of its points were missing."""

    plot: Any
    paths: dict[str, Path]
    points_used: int
    points_missing: int
    figure: Figure | None = None


def save(figure: Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS,
         style: FigureStyle = DEFAULT_STYLE) -> dict[str, Path]:
    """Write ``figure`` as ``out_dir/name.<format>`` for each format (TrueType fonts in PDF, no creation
    date, so the bytes repeat); the paths by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with matplotlib.rc_context(style.rc()):
        for fmt in formats:
            path = out_dir / f"{name}.{fmt}"
            metadata = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg" else None)
            figure.savefig(path, dpi=300 if fmt == "png" else None, metadata=metadata)
            paths[fmt] = path
    return paths


def draw_all(records: Sequence[PointRecord], entries: Sequence[Any], out_dir: Path,
             formats: Sequence[str] = FORMATS, keep_figures: bool = False,
             style: FigureStyle = DEFAULT_STYLE) -> list[DrawnFigure]:
    """Draw and write every figure entry (``comparison`` and ``style`` entries are skipped)."""
    drawn = []
    for plot in entries:
        if plot.type in ("comparison", "style"):
            continue
        chosen = selected(records, plot.where)
        figure = draw(records, plot, style)
        paths = save(figure, out_dir, plot.name, formats, style)
        drawn.append(DrawnFigure(plot=plot, paths=paths, points_used=sum(r.status == "ok" for r in chosen),
                                 points_missing=sum(r.status != "ok" for r in chosen),
                                 figure=figure if keep_figures else None))
    return drawn


# --------------------------------------------------------------------------------------------------
# Gantt charts of traces (archsim.trace).


def gantt(trace: str | Path, out: str | Path, title: str = "") -> int:
    """Draw the Gantt chart of a ``--trace`` file (CSV, or trace-event JSON for any other suffix) to
    ``out`` (format from its suffix); return the number of operations.

    Reuses :func:`archsim.trace.read_trace` and :func:`archsim.trace.plot_gantt` (one ``broken_barh``
    per unit and Einsum, bars merged below the drawing's resolution). Raises UsageError (one line)
    for a missing or malformed trace, or an output format matplotlib lacks.
    """
    import csv
    import json

    from attnsim.archsim.trace import COLUMNS, plot_gantt, read_trace_csv, read_trace_json

    from attnsim.safe_io import FileProblem, read_text
    from attnsim.studies.outputs import output_file

    path = Path(trace)
    if not path.exists():
        raise UsageError(f"--gantt {path}: no such file")
    try:
        text = read_text(path)
    except FileProblem as exc:
        raise UsageError(f"--gantt {exc.named(str(path))}") from None
    if path.suffix.lower() == ".csv":
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UsageError(f"--gantt {path}: line 1: missing column '{missing[0]}' (expected the columns "
                             f"{', '.join(COLUMNS)} of a --trace CSV)")
        try:
            rows = read_trace_csv(path)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"--gantt {path}: not a trace CSV ({' '.join(str(exc).split())})") from None
    else:
        try:
            rows = read_trace_json(path)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--gantt {path}: line {exc.lineno}: not JSON ({exc.msg}); expected a --trace "
                             "trace-event file, or a .csv trace") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"--gantt {path}: not an attnsim trace-event file (missing {exc}); expected the "
                             "output of --trace FILE.json, or a .csv trace") from None
    if not rows:
        raise UsageError(f"--gantt {path}: the trace has no operations")
    target = Path(out)
    suffix = target.suffix.lstrip(".").lower()
    supported = Figure().canvas.get_supported_filetypes()
    if suffix not in supported:
        raise UsageError(f"--out {target}: expected a file name ending in one of "
                         f"{', '.join('.' + s for s in sorted(supported))}")
    output_file("--out", target, create_parents=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(DEFAULT_STYLE.rc()):
        plot_gantt(rows, target, title=title or path.stem)
    return len(rows)


__all__ = ["BarsPlot", "ComparisonEntry", "DEFAULT_STYLE", "DESIGN_HATCHES", "DESIGN_LABELS", "DESIGN_ORDER",
           "DrawnFigure", "EinsumStackPlot", "FORMATS", "FigureStyle", "LinesPlot", "ParetoPlot", "RooflinePlot",
           "bar_means", "bar_values", "bars_figure", "draw", "figure_size", "mean_of", "pareto_baselines",
           "parse_plot_style", "small_categories", "strip_figure_number",
           "draw_all", "einsum_stack_figure", "gantt", "line_values", "lines_figure", "lookup", "matches",
           "ordered_values", "pareto_figure", "pareto_values", "parse_plot_entries", "roofline_figure",
           "roofline_values", "save", "selected", "seq_label", "stack_values", "value_label"]
