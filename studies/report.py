"""``DIR/report.md``: a study's figures, beside the published numbers it is compared with.

:func:`render_directory` is what ``attnsim plot DIR`` runs: it reads the study copy that
``attnsim sweep`` left in ``DIR`` and ``DIR/results.sqlite``, draws every figure of the study's
``plots:`` (:mod:`studies.plots`) into ``DIR/figs/`` and writes ``DIR/report.md``:

* the points of the study: how many are in the store, failed, or not run yet (with the errors);
* when the study has a ``comparison`` entry, the headline numbers of its reference file (e.g.
  ``specs/studies/paper-reference.yaml``: the FuseMax paper's 6.7x, 10x, 79% ...) next to ours,
  computed from the store the same way (arithmetic mean over the (model, sequence length) points
  that both designs have), and the reference's per-point tables (ours, published, ratio);
* every figure (PNG, with a link to the PDF), each with the headline numbers it illustrates.

Published numbers live in YAML files under ``specs/studies/`` with their sources, never in code.
"""
from __future__ import annotations

from importlib import resources
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from attnsim.einsum_ir import CascadeError
from attnsim.einsum_ir.passes import AnalysisError, analyze_passes, default_rank
from attnsim.studies.check import cascade_from_arg
from attnsim.studies.errors import UsageError
from attnsim.studies.plots import (FORMATS, DrawnFigure, draw_all, lookup, parse_plot_entries, parse_plot_style, selected,
                                   seq_label)
from attnsim.studies.store import DATABASE_NAME, PointRecord, ResultStore

STUDIES_DIR = Path(str(resources.files("attnsim.specs").joinpath("studies")))
"""Where the built-in studies and reference files are (``specs/studies/``)."""

REPORT_NAME = "report.md"
FIGS_DIR = "figs"


# --------------------------------------------------------------------------------------------------
# Reference files.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeadlineRef(_Model):
    """A published headline ratio: mean over points of ``metric(numerator) / metric(denominator)``."""

    key: str
    label: str
    metric: str
    numerator: str
    denominator: str
    paper: float
    percent: bool = False
    seqs: list[int] | None = None
    figure: str | None = None
    source: str


class ColumnRef(_Model):
    """One column of a per-point table: a design's metric, or a ratio of two designs' metric."""

    label: str
    metric: str
    design: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    paper: list[float | None]

    @model_validator(mode="after")
    def _design_or_ratio(self) -> ColumnRef:
        if (self.design is None) == (self.numerator is None or self.denominator is None):
            raise ValueError("expected either design, or numerator and denominator")
        return self


class TableRef(_Model):
    """A per-point table: one row per sequence length."""

    title: str
    columns: list[ColumnRef] = Field(min_length=1)


class PerPointRef(_Model):
    """Per-point published values of one model."""

    model: str
    seqs: list[int] = Field(min_length=1)
    source: str
    tables: list[TableRef] = []

    @model_validator(mode="after")
    def _lengths(self) -> PerPointRef:
        for table in self.tables:
            for column in table.columns:
                if len(column.paper) != len(self.seqs):
                    raise ValueError(f"table '{table.title}', column '{column.label}': {len(column.paper)} "
                                     f"values for {len(self.seqs)} sequence lengths")
        return self


class Reference(_Model):
    """A reference file (``specs/studies/paper-reference.yaml``)."""

    name: str
    source: str
    headlines: list[HeadlineRef] = []
    per_point: PerPointRef | None = None


def reference_path(ref: str, study_dir: Path) -> Path:
    """A reference named in a study: absolute, next to the study file, in the working directory, or
    built in (``specs/studies/``); UsageError if none exists."""
    path = Path(ref)
    candidates = [path] if path.is_absolute() else [study_dir / path, path, STUDIES_DIR / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(f"reference '{ref}': no such file (looked next to the study, in the working "
                     f"directory and in {STUDIES_DIR})")


def load_reference(path: str | Path) -> Reference:
    """Read and validate a reference file; UsageError (one line, file and key) on a problem."""
    from attnsim.archsim.errors import SpecError
    from attnsim.archsim.spec import read_yaml_mapping

    path = Path(path)
    try:
        data = read_yaml_mapping(path, str(path))
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    try:
        return Reference.model_validate(data)
    except ValidationError as exc:
        from attnsim.archsim.errors import format_validation_error

        raise UsageError(f"{path}: {format_validation_error(exc, Reference)}") from None


# --------------------------------------------------------------------------------------------------
# Our numbers.


def _by_point(records: Sequence[PointRecord]) -> dict[tuple[Any, Any, Any], PointRecord]:
    """(design, model, seq) -> the ok record."""
    index: dict[tuple[Any, Any, Any], PointRecord] = {}
    for record in records:
        if record.status == "ok":
            params = record.params
            index.setdefault((params.get("design"), params.get("model"), params.get("seq")), record)
    return index


def _ratio(index: Mapping[tuple[Any, Any, Any], PointRecord], metric: str, numerator: str,
           denominator: str, model: Any, seq: Any) -> float | None:
    top, bottom = index.get((numerator, model, seq)), index.get((denominator, model, seq))
    if top is None or bottom is None:
        return None
    a, b = lookup(top, metric), lookup(bottom, metric)
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)


@dataclass(frozen=True)
class HeadlineValue:
    """Our value of a headline (None when no point pair exists) and how many point pairs it averages."""

    headline: HeadlineRef
    value: float | None
    pairs: int


def headline_values(records: Sequence[PointRecord], headlines: Sequence[HeadlineRef]) -> list[HeadlineValue]:
    """Each headline's arithmetic mean over the (model, seq) pairs where both designs are ok."""
    index = _by_point(records)
    pairs = sorted({(model, seq) for (_, model, seq) in index}, key=lambda p: (str(p[0]), p[1]))
    out = []
    for headline in headlines:
        ratios = [r for model, seq in pairs if headline.seqs is None or seq in headline.seqs
                  if (r := _ratio(index, headline.metric, headline.numerator, headline.denominator,
                                  model, seq)) is not None]
        out.append(HeadlineValue(headline, statistics.fmean(ratios) if ratios else None, len(ratios)))
    return out


def format_headline(value: float | None, percent: bool) -> str:
    """One of our headline values: ``6.65x`` or ``78.7%`` (``n/a`` for None)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.2f}x"


def format_published(value: float, percent: bool) -> str:
    """A published number as the paper writes it: ``6.7x``, ``10x``, ``79%``."""
    return f"{value * 100:g}%" if percent else f"{value:g}x"


def per_point_cell(records: Sequence[PointRecord], model: str, seq: int, column: ColumnRef) -> float | None:
    """Our value of one per-point table cell (scaled to the published unit), or None."""
    index = _by_point(records)
    if column.design is not None:
        record = index.get((column.design, model, seq))
        value = lookup(record, column.metric) if record else None
        return None if value is None else float(value) * column.scale
    assert column.numerator is not None and column.denominator is not None
    ratio = _ratio(index, column.metric, column.numerator, column.denominator, model, seq)
    return None if ratio is None else ratio * column.scale


# --------------------------------------------------------------------------------------------------
# The report.


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _headline_table(values: Sequence[HeadlineValue]) -> list[str]:
    lines = ["| claim | attnsim | paper | point pairs averaged |", "|---|---|---|---|"]
    for item in values:
        h = item.headline
        lines.append(f"| {h.label} | {format_headline(item.value, h.percent)} | "
                     f"{format_published(h.paper, h.percent)} | {item.pairs} |")
    return lines


def _per_point_tables(records: Sequence[PointRecord], per_point: PerPointRef) -> list[str]:
    lines: list[str] = []
    for table in per_point.tables:
        lines += [f"### {table.title}", "",
                  "Each cell: attnsim / published (ratio of the two).", "",
                  "| seq | " + " | ".join(c.label for c in table.columns) + " |",
                  "|---|" + "---|" * len(table.columns)]
        for i, seq in enumerate(per_point.seqs):
            cells = []
            for column in table.columns:
                ours, paper = per_point_cell(records, per_point.model, seq, column), column.paper[i]
                ratio = f" ({ours / paper:.2f})" if ours is not None and paper else ""
                cells.append(f"{_num(ours)} / {_num(paper)}{ratio}")
            lines.append(f"| {seq_label(seq)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def pass_rows(records: Sequence[PointRecord]) -> list[tuple[str, str, int, str, str]]:
    """One row per cascade the study's points name (their ``cascade`` parameter), in first-seen order:
    (cascade, the rank analysed by default, its pass count, the passes over every other rank the pass
    analysis accepts as ``N: k``, the fused groups of the default rank). A cascade the analysis cannot
    read gets its one-line reason in the groups column and pass count 0."""
    names = list(dict.fromkeys(str(r.params["cascade"]) for r in records if r.params.get("cascade")))
    rows = []
    for name in names:
        try:
            cascade = cascade_from_arg(name)
            rank = default_rank(cascade)
            analysis = analyze_passes(cascade, rank)
        except (CascadeError, UsageError, OSError) as error:
            rows.append((name, "-", 0, "-", f"not analysed: {error}"))
            continue
        others = []
        for shape in sorted({symbol.name for symbol in cascade.ranks.values()} - {rank}):
            try:
                others.append(f"{shape}: {analyze_passes(cascade, shape).passes}")
            except AnalysisError:
                continue   # a rank no Einsum traverses has no pass count
        groups = " | ".join(", ".join(group) for group in analysis.fusable_groups)
        rows.append((name, rank, analysis.passes, "; ".join(others) or "-", groups))
    return rows


def _pass_table(records: Sequence[PointRecord]) -> list[str]:
    rows = pass_rows(records)
    if not rows:
        return []
    lines = ["## Passes of each cascade", "",
             "From the cascade's dependency graph (`einsum_ir.passes`, as `attnsim passes` prints it): the "
             "passes any mapping must make over the rank, and the Einsums each pass can fuse.", "",
             "| cascade | rank | passes | passes over the other ranks | fusable groups, per pass |",
             "|---|---|---|---|---|"]
    lines += [f"| `{name}` | {rank} | {passes} | {others} | {groups} |"
              for name, rank, passes, others, groups in rows]
    return lines + [""]


def _shown(params: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items() if value is not None)


@dataclass
class Comparison:
    """A study's comparison entry, loaded: the reference and the points it applies to."""

    reference: Reference
    path: Path
    where: dict[str, Any] = field(default_factory=dict)


def write_report(path: Path, study: Any, records: Sequence[PointRecord], not_run: Sequence[Mapping[str, Any]],
                 drawn: Sequence[DrawnFigure], comparison: Comparison | None) -> Path:
    """Write the report (module docstring) to ``path``; figure links are relative to its folder."""
    ok = sum(r.status == "ok" for r in records)
    failed = [r for r in records if r.status != "ok"]
    lines = [f"# Study `{study.name}`", ""]
    if study.spec.description:
        lines += [study.spec.description, ""]
    lines += [f"Points: {len(records) + len(not_run)} in the study; {ok} ok, {len(failed)} failed, "
              f"{len(not_run)} not run yet (`attnsim sweep` resumes them). Figures are drawn from the ok "
              "points; a failed or missing point leaves a gap.", ""]
    values: dict[str, HeadlineValue] = {}
    if comparison is not None:
        chosen = selected(records, comparison.where)
        values = {v.headline.key: v for v in headline_values(chosen, comparison.reference.headlines)}
        if values:
            lines += ["## Headline numbers", "",
                      f"Ours: arithmetic means over the (model, sequence length) points that both designs have, "
                      f"as the paper's (4 models x 6 lengths). Published: {comparison.reference.source} "
                      f"(`{comparison.path.name}`, where each number's source is given).", ""]
            lines += _headline_table(list(values.values())) + [""]
    lines += ["## Figures", ""]
    for figure in drawn:
        plot = figure.plot
        png = figure.paths.get("png")
        lines += [f"### {plot.title or plot.name}", ""]
        if png is not None:
            lines.append(f"![{plot.name}]({png.relative_to(path.parent).as_posix()})")
        others = [f"[{fmt.upper()}]({p.relative_to(path.parent).as_posix()})"
                  for fmt, p in figure.paths.items() if fmt != "png"]
        lines += ["", f"{' '.join(others)} · {figure.points_used} points drawn"
                      + (f", {figure.points_missing} failed" if figure.points_missing else ""), ""]
        beside = [values[key] for key in plot.headlines if key in values]
        if beside:
            lines += _headline_table(beside) + [""]
    lines += _pass_table([r for r in records if r.status == "ok"])
    if comparison is not None and comparison.reference.per_point is not None:
        per_point = comparison.reference.per_point
        chosen = selected(records, comparison.where)
        lines += [f"## Per point: {per_point.model} vs the published values", "",
                  f"Source: {per_point.source}.", ""]
        lines += _per_point_tables(chosen, per_point)
    if failed or not_run:
        lines += ["## Failed and missing points", ""]
        lines += [f"- failed: {_shown(r.params)}: {r.error}" for r in failed]
        lines += [f"- not run: {_shown(params)}" for params in not_run]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# attnsim plot DIR


@dataclass
class RenderOutcome:
    """What :func:`render_directory` wrote."""

    study: str
    figures: list[DrawnFigure]
    report: Path
    ok: int
    failed: int
    not_run: int


def find_study_file(directory: Path, store_studies: set[str]) -> Path:
    """The study copy in ``directory`` whose ``name`` is a study of the store; UsageError otherwise."""
    from attnsim.archsim.errors import SpecError
    from attnsim.archsim.spec import read_yaml_mapping

    matches = []
    for candidate in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            data = read_yaml_mapping(candidate, str(candidate))
        except SpecError:
            continue
        if data.get("name") in store_studies and "kind" in data:
            matches.append(candidate)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"{directory}: no study file of the stored study "
                         f"{', '.join(sorted(store_studies)) or '(none)'} here (attnsim sweep copies it "
                         "in); give it with --study")
    raise UsageError(f"{directory}: several study files ({', '.join(m.name for m in matches)}); "
                     "choose one with --study")


def render_directory(directory: str | Path, *, study_path: str | Path | None = None,
                     formats: Sequence[str] = FORMATS) -> RenderOutcome:
    """Draw the figures of the study in ``directory`` and write its report (module docstring)."""
    from attnsim.studies.points import resolve_points
    from attnsim.studies.study import load_study

    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    if not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"{directory}: no {DATABASE_NAME} here (run `attnsim sweep` first)")
    with ResultStore.in_directory(directory, create=False) as store:
        stored = store.records()
        study_file = Path(study_path) if study_path else find_study_file(directory, {r.study for r in stored})
        study = load_study(study_file)
        entries = parse_plot_entries(study.spec.plots, study.display)
        style = parse_plot_style(study.spec.plots, study.display)
        points = resolve_points(study)
        wanted = {p.key for p in points}
        by_key = {r.key: r for r in stored if r.key in wanted}
    records = [by_key[p.key] for p in dict((p.key, p) for p in points).values() if p.key in by_key]
    not_run = [p.params for p in dict((p.key, p) for p in points).values() if p.key not in by_key]
    comparison = None
    for entry in entries:
        if entry.type == "comparison":
            ref = reference_path(entry.reference, study_file.parent)
            comparison = Comparison(load_reference(ref), ref, dict(entry.where))
    drawn = draw_all(records, entries, directory / FIGS_DIR, formats, style=style)
    report = write_report(directory / REPORT_NAME, study, records, not_run, drawn, comparison)
    return RenderOutcome(study=study.name, figures=drawn, report=report,
                         ok=sum(r.status == "ok" for r in records),
                         failed=sum(r.status != "ok" for r in records), not_run=len(not_run))


__all__ = ["ColumnRef", "Comparison", "HeadlineRef", "HeadlineValue", "PerPointRef", "Reference",
           "RenderOutcome", "find_study_file", "format_headline", "format_published", "headline_values",
           "load_reference", "per_point_cell", "reference_path", "render_directory", "write_report"]
