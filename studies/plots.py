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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
from matplotlib.figure import Figure  # noqa: E402
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


class EinsumStackPlot(_Entry):
    """Stacked per-Einsum activity (module docstring)."""

    type: Literal["einsum_stack"]
    stack: dict[str, list[str]] = Field(min_length=1)
    array: Literal["util_2d", "util_1d"] = "util_2d"
    ylabel: str
    groups: list[str] = Field(default=["seq"], min_length=1, max_length=2)
    series: str = "design"
    order: list[Any] | None = None


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


PlotEntry = Annotated[Union[BarsPlot, EinsumStackPlot, ParetoPlot, RooflinePlot, LinesPlot, ComparisonEntry],
                      Field(discriminator="type")]
FigureEntry = Union[BarsPlot, EinsumStackPlot, ParetoPlot, RooflinePlot, LinesPlot]
PLOT_TYPES = ("bars", "einsum_stack", "pareto", "roofline", "lines", "comparison")

_ADAPTER: TypeAdapter[Any] = TypeAdapter(PlotEntry)


def parse_plot_entries(entries: Sequence[Mapping[str, Any]], display: str) -> list[Any]:
    """Validate a study's ``plots:`` list; UsageError ``display: plots.<i>.<key>: problem`` (one line)."""
    parsed = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.get("type") not in PLOT_TYPES:
            raise UsageError(f"{display}: plots.{index}.type: expected one of {', '.join(PLOT_TYPES)}, "
                             f"got {entry.get('type')!r}")
        try:
            plot = _ADAPTER.validate_python(dict(entry))
        except ValidationError as exc:
            error = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")[0]
            loc = [str(part) for part in error["loc"][1:]]      # drop the union tag
            what = "unknown key" if error["type"] == "extra_forbidden" else " ".join(str(error["msg"]).split())
            raise UsageError(f"{display}: plots.{index}.{'.'.join(loc)}: {what}") from None
        name = getattr(plot, "name", None)
        if name is not None:
            if name in names:
                raise UsageError(f"{display}: plots.{index}.name: '{name}' is used by an earlier plot")
            names.add(name)
        parsed.append(plot)
    return parsed


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


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


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
                 groups: Sequence[str]) -> None:
    axes.set_xticks(positions, [value_label(groups[-1], slot[-1]) for slot in slots])
    axes.set_xlim(positions[0] - 0.6, positions[-1] + 0.6)
    if len(groups) < 2:
        axes.set_xlabel(_axis_name(groups[0]))
        return
    transform = blended_transform_factory(axes.transData, axes.transAxes)
    outers = list(dict.fromkeys(slot[0] for slot in slots))
    for outer in outers:
        xs = [x for slot, x in zip(slots, positions) if slot[0] == outer]
        axes.text(sum(xs) / len(xs), -0.09, value_label(groups[0], outer), transform=transform,
                  ha="center", va="top", fontweight="bold")
    for outer in outers[1:]:
        first = next(x for slot, x in zip(slots, positions) if slot[0] == outer)
        axes.axvline(first - 0.8, color="0.8", linewidth=0.8, zorder=0)
    axes.set_xlabel(f"{_axis_name(groups[-1])}, per {_axis_name(groups[0])}", labelpad=24)


def _axis_name(key: str) -> str:
    return {"seq": "sequence length (tokens)", "model": "model", "design": "design",
            "head_dim": "head dimension", "arch": "GPU"}.get(key, key)


def _series_legend(axes: Any, series_key: str, values: Sequence[Any], handles: Sequence[Any],
                   **kwargs: Any) -> Any:
    """A legend in ``values`` order; designs of the FuseMax group under a "FuseMax" heading."""
    entries: list[tuple[Any, str]] = []
    heading = None
    ablation = is_ablation(series_key, values)
    for value, handle in zip(values, handles):
        group = DESIGN_HEADINGS.get(value) if ablation else None
        if group is not None and group != heading:
            entries.append((Rectangle((0, 0), 1, 1, fill=False, edgecolor="none", visible=False), group))
        heading = group
        entries.append((handle, value_label(series_key, value, ablation)))
    legend = axes.legend([h for h, _ in entries], [t for _, t in entries], **kwargs)
    headings = set(DESIGN_HEADINGS.values()) if series_key == "design" else set()
    for text in legend.get_texts():
        if text.get_text() in headings:
            text.set_fontweight("bold")
    return legend


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


def bars_figure(records: Sequence[PointRecord], plot: BarsPlot) -> Figure:
    """Grouped bars (module docstring): one BarContainer per series value, labelled, in legend order."""
    chosen = selected(records, plot.where)
    slots = _slot_values(chosen, plot.groups)
    values = bar_values(records, plot)
    series = list(values)
    positions = _slot_positions(slots)
    figure, axes = _new_figure(min(16.0, max(7.0, 0.11 * len(slots) * max(1, len(series)) + 3.0)), 4.5)
    width = 0.8 / max(1, len(series))
    ablation = is_ablation(plot.series, series)
    containers = []
    for i, value in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for slot, x in zip(slots, positions) if slot in values[value]]
        hs = [values[value][slot] for slot in slots if slot in values[value]]
        containers.append(axes.bar(xs, hs, width=width, label=value_label(plot.series, value, ablation),
                                   color=_colour(plot.series, value, i), edgecolor="black", linewidth=0.3))
    if positions:
        _label_slots(axes, slots, positions, plot.groups)
    if plot.normalise != "none":
        axes.axhline(1.0, color="black", linewidth=0.6, linestyle="--", zorder=0)
    if plot.log_y:
        axes.set_yscale("log")
    axes.set_ylabel(plot.ylabel)
    axes.set_title(plot.title, fontsize="medium")
    axes.grid(axis="y", alpha=0.3)
    _series_legend(axes, plot.series, series, containers, fontsize="small", loc="upper left",
                   bbox_to_anchor=(1.0, 1.0))
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


def einsum_stack_figure(records: Sequence[PointRecord], plot: EinsumStackPlot) -> Figure:
    """Fig. 7-style stacks: one BarContainer per category (bottom to top in ``stack`` order)."""
    chosen = selected(records, plot.where)
    slots = _slot_values(chosen, plot.groups)
    series = ordered_values(chosen, plot.series, plot.order)
    values = stack_values(records, plot)
    bars = [(*slot, value) for slot in slots for value in series
            if any((*slot, value) in column for column in values.values())]
    positions, x, previous = [], 0.0, None
    for bar in bars:
        if previous is not None and bar[:-1] != previous:
            x += 0.6
        positions.append(x)
        previous = bar[:-1]
        x += 1.0
    figure, axes = _new_figure(min(16.0, max(7.0, 0.4 * len(bars) + 3.0)), 4.5)
    bottoms = [0.0] * len(bars)
    containers = []
    for i, (category, column) in enumerate(values.items()):
        heights = [column.get(bar, 0.0) for bar in bars]
        containers.append(axes.bar(positions, heights, bottom=bottoms, width=0.8, label=category,
                                   color=plt.get_cmap("tab10")(i % 10), edgecolor="black", linewidth=0.3))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axes.set_xticks(positions, [DESIGN_SHORT.get(bar[-1], str(bar[-1])) if plot.series == "design"
                                else value_label(plot.series, bar[-1]) for bar in bars], fontsize="small")
    transform = blended_transform_factory(axes.transData, axes.transAxes)
    for slot in slots:
        xs = [x for bar, x in zip(bars, positions) if bar[:-1] == slot]
        if xs:
            axes.text(sum(xs) / len(xs), -0.08, " / ".join(value_label(g, v) for g, v in zip(plot.groups, slot)),
                      transform=transform, ha="center", va="top", fontweight="bold")
    if plot.series == "design":
        ablation = is_ablation(plot.series, series)
        key = ", ".join(f"{DESIGN_SHORT[d]} = {value_label('design', d, ablation)}" for d in series
                        if d in DESIGN_SHORT)
        axes.set_xlabel(f"design ({key}), per {_axis_name(plot.groups[-1])}", labelpad=26)
    else:
        axes.set_xlabel(f"{_axis_name(plot.series)}, per {_axis_name(plot.groups[-1])}", labelpad=26)
    axes.set_ylabel(plot.ylabel)
    axes.set_title(plot.title, fontsize="medium")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(containers[::-1], list(values)[::-1], title="Einsum", fontsize="small", loc="upper left",
                bbox_to_anchor=(1.0, 1.0))
    return figure


def pareto_values(records: Sequence[PointRecord], plot: ParetoPlot
                  ) -> dict[Any, list[tuple[float, float, Any]]]:
    """series value -> [(x * x_scale, y * y_scale, point label)], sorted by x."""
    records = [r for r in selected(records, plot.where) if r.status == "ok"]
    out: dict[Any, list[tuple[float, float, Any]]] = {}
    for value in ordered_values(records, plot.series):
        points = []
        for record in records:
            if record.params.get(plot.series) != value:
                continue
            x, y = lookup(record, plot.x), lookup(record, plot.y)
            if x is None or y is None:
                continue
            label = lookup(record, plot.point_label) if plot.point_label else None
            points.append((float(x) * plot.x_scale, float(y) * plot.y_scale, label))
        out[value] = sorted(points, key=lambda p: p[0])
    return out


def pareto_figure(records: Sequence[PointRecord], plot: ParetoPlot) -> Figure:
    """Log-log lines (one Line2D per series value, labelled), each point annotated with its label."""
    values = pareto_values(records, plot)
    figure, axes = _new_figure(7.0, 5.0)
    for i, (value, points) in enumerate(values.items()):
        if not points:
            continue
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=value_label(plot.series, value),
                  color=plt.get_cmap("tab10")(i % 10))
        for x, y, label in points:
            if label is not None:
                axes.annotate(value_label(plot.point_label or "", label), (x, y), textcoords="offset points",
                              xytext=(4, 4), fontsize="x-small")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(plot.xlabel)
    axes.set_ylabel(plot.ylabel)
    axes.set_title(plot.title, fontsize="medium")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_lines():
        axes.legend(title=_axis_name(plot.series), fontsize="small")
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


def roofline_figure(records: Sequence[PointRecord], plot: RooflinePlot) -> Figure:
    """Roofs (dashed lines, labelled by peak and bandwidth) and one marker set per series value."""
    values, roofs = roofline_values(records, plot)
    figure, axes = _new_figure(7.0, 5.0)
    intensities = [p.intensity_flop_per_byte for points in values.values() for p in points]
    low = min(intensities + [peak / bw for peak, bw in roofs], default=1.0) / 4
    high = max(intensities + [peak / bw for peak, bw in roofs], default=10.0) * 4
    grid = [low * (high / low) ** (i / 200) for i in range(201)]
    for peak, bandwidth in roofs:
        axes.plot(grid, [min(peak, bandwidth * x) / 1e12 for x in grid], linestyle="--", color="black",
                  linewidth=1.0, label=f"roof: {peak / 1e12:.4g} TFLOP/s, {bandwidth / 1e9:.4g} GB/s")
    handles = []
    markers = "osD^v<>ph*"
    for i, (value, points) in enumerate(values.items()):
        handles.append(axes.scatter([p.intensity_flop_per_byte for p in points],
                                    [p.performance_flop_per_s / 1e12 for p in points],
                                    marker=markers[i % len(markers)], color=_colour(plot.series, value, i),
                                    edgecolor="black", linewidth=0.3, zorder=3,
                                    label=value_label(plot.series, value)))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP/byte of DRAM traffic)")
    axes.set_ylabel("attained performance (TFLOP/s)")
    axes.set_title(plot.title, fontsize="medium")
    axes.grid(True, which="both", alpha=0.3)
    roof_lines = [line for line in axes.get_lines() if str(line.get_label()).startswith("roof")]
    if roof_lines:
        axes.add_artist(axes.legend(roof_lines, [str(line.get_label()) for line in roof_lines],
                                    fontsize="x-small", loc="upper left"))
    _series_legend(axes, plot.series, list(values), handles, fontsize="small", loc="lower right")
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


def lines_figure(records: Sequence[PointRecord], plot: LinesPlot) -> Figure:
    """One axes per panel, one labelled Line2D per series value."""
    values = line_values(records, plot)
    figure = Figure(figsize=(5.0 * max(1, len(values)) + 1.0, 4.2), layout="constrained")
    all_axes = figure.subplots(1, max(1, len(values)), squeeze=False, sharey=True)[0]
    for axes, (panel, series) in zip(all_axes, values.items()):
        for i, (value, points) in enumerate(series.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                label = plot.series_format.format(value * plot.series_scale)
            else:
                label = value_label(plot.series, value)
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label,
                      color=plt.get_cmap("viridis")(i / max(1, len(series) - 1)))
        if plot.log_x:
            axes.set_xscale("log", base=2)
        if plot.log_y:
            axes.set_yscale("log")
        axes.set_xlabel(plot.xlabel)
        axes.set_title(value_label(plot.panels, panel) if plot.panels else plot.title, fontsize="medium")
        axes.grid(True, which="both", alpha=0.3)
        if axes.get_lines():
            axes.legend(title=plot.series_label or _axis_name(plot.series), fontsize="x-small")
    all_axes[0].set_ylabel(plot.ylabel)
    if plot.panels:
        figure.suptitle(plot.title)
    return figure


DRAWERS = {"bars": bars_figure, "einsum_stack": einsum_stack_figure, "pareto": pareto_figure,
           "roofline": roofline_figure, "lines": lines_figure}


def draw(records: Sequence[PointRecord], plot: FigureEntry) -> Figure:
    """The figure of one plot entry."""
    return DRAWERS[plot.type](records, plot)


@dataclass
class DrawnFigure:
    """A figure written to disk: its entry, the files, how many of its points were missing."""

    plot: Any
    paths: dict[str, Path]
    points_used: int
    points_missing: int
    figure: Figure | None = None


def save(figure: Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write ``figure`` as ``out_dir/name.<format>`` for each format; the paths by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        figure.savefig(path, dpi=150 if fmt == "png" else None)
        paths[fmt] = path
    return paths


def draw_all(records: Sequence[PointRecord], entries: Sequence[Any], out_dir: Path,
             formats: Sequence[str] = FORMATS, keep_figures: bool = False) -> list[DrawnFigure]:
    """Draw and write every figure entry (``comparison`` entries are skipped)."""
    drawn = []
    for plot in entries:
        if plot.type == "comparison":
            continue
        chosen = selected(records, plot.where)
        figure = draw(records, plot)
        paths = save(figure, out_dir, plot.name, formats)
        drawn.append(DrawnFigure(plot=plot, paths=paths, points_used=sum(r.status == "ok" for r in chosen),
                                 points_missing=sum(r.status != "ok" for r in chosen),
                                 figure=figure if keep_figures else None))
    return drawn


# --------------------------------------------------------------------------------------------------
# Gantt charts of traces (archsim.trace).


def gantt(trace_csv: str | Path, out: str | Path, title: str = "") -> int:
    """Draw the Gantt chart of a ``--trace`` CSV to ``out`` (format from its suffix); rows drawn.

    Reuses :func:`archsim.trace.read_trace_csv` and :func:`archsim.trace.plot_gantt`. Raises
    UsageError (one line) for a missing or malformed trace, or an output format matplotlib lacks.
    """
    import csv

    from attnsim.archsim.trace import COLUMNS, plot_gantt, read_trace_csv

    from attnsim.safe_io import FileProblem, read_text
    from attnsim.studies.outputs import output_file

    path = Path(trace_csv)
    if not path.exists():
        raise UsageError(f"--gantt {path}: no such file")
    try:
        text = read_text(path)
    except FileProblem as exc:
        raise UsageError(f"--gantt {exc.named(str(path))}") from None
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise UsageError(f"--gantt {path}: line 1: missing column '{missing[0]}' (expected the columns "
                         f"{', '.join(COLUMNS)} of a --trace CSV)")
    try:
        rows = read_trace_csv(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--gantt {path}: not a trace CSV ({' '.join(str(exc).split())})") from None
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
    plot_gantt(rows, target, title=title or path.stem)
    return len(rows)


__all__ = ["BarsPlot", "ComparisonEntry", "DESIGN_LABELS", "DESIGN_ORDER", "DrawnFigure", "EinsumStackPlot",
           "FORMATS", "LinesPlot", "ParetoPlot", "RooflinePlot", "bar_values", "bars_figure", "draw",
           "draw_all", "einsum_stack_figure", "gantt", "line_values", "lines_figure", "lookup", "matches",
           "ordered_values", "pareto_figure", "pareto_values", "parse_plot_entries", "roofline_figure",
           "roofline_values", "save", "selected", "seq_label", "stack_values", "value_label"]
