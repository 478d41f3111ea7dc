"""The FuseMax paper's evaluation grid, simulated: 4 models x 6 sequence lengths x the 5 paper designs.

:func:`run_paper` simulates every (design, model, seq) point end to end (:func:`studies.simulate.simulate`
with ``end_to_end=True``, which also reports attention alone) and writes to ``out_dir``:

* ``attention.csv``: one row per point -- latency, cycles, energy, DRAM traffic, utilisation, area and
  each Einsum's 2D/1D utilisation, named as in the sweep results (``per_einsum.QK.util_2d`` ...);
* ``end2end.csv``: one row per point -- attention, linear-layer and total latency and energy;
* ``summary.md``: the headline ratios (arithmetic means over the points both designs have, as the
  paper's §VI-B/C: FuseMax's speedup over FLAT and Unfused, its energy relative to them, attention
  and end to end) next to the paper's numbers, and every design or point that is missing, with why.

A design whose mapper cannot be imported, or a point that raises, is reported as missing, never a
crash. Points run in a process pool (``jobs`` workers; ``jobs=1`` runs in this process).
"""
from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsim.mappers.designs import PAPER_DESIGNS, design as design_entry
from attnsim.mappers.workloads import load_workload
from attnsim.studies.errors import UsageError
from attnsim.studies.simulate import load_mapper, simulate

PAPER_MODELS: tuple[str, ...] = ("bert-base", "trxl-wt103", "t5-small", "xlm")
"""The paper's four models (paper §VI-A; FlauBERT omitted: same hyper-parameters as TrXL)."""

PAPER_SEQS: tuple[int, ...] = tuple(1024 * 4 ** k for k in range(6))
"""1K, 4K, 16K, 64K, 256K, 1M tokens (paper §VI-A)."""

REFERENCE = "fusemax"


@dataclass(frozen=True)
class Headline:
    """One headline ratio: mean over points of ``numerator / denominator`` of ``metric``."""

    key: str
    label: str
    metric: str          # "latency_s" / "energy_pj" of attention or end to end
    end_to_end: bool
    numerator: str       # design
    denominator: str     # design
    paper: str           # as the paper states it
    as_percent: bool = False
    seqs: tuple[int, ...] | None = None


HEADLINES: tuple[Headline, ...] = (
    Headline("attention_speedup_vs_flat", "attention speedup, FuseMax over FLAT", "latency_s", False,
             "flat", REFERENCE, "6.7x"),
    Headline("attention_speedup_vs_unfused", "attention speedup, FuseMax over Unfused", "latency_s", False,
             "unfused", REFERENCE, "10x"),
    Headline("attention_energy_vs_flat", "attention energy, FuseMax / FLAT", "energy_pj", False,
             REFERENCE, "flat", "79%", as_percent=True),
    Headline("attention_energy_vs_unfused", "attention energy, FuseMax / Unfused", "energy_pj", False,
             REFERENCE, "unfused", "77%", as_percent=True),
    Headline("end_to_end_speedup_vs_flat", "end-to-end speedup, FuseMax over FLAT", "latency_s", True,
             "flat", REFERENCE, "5.3x"),
    Headline("end_to_end_speedup_vs_unfused", "end-to-end speedup, FuseMax over Unfused", "latency_s", True,
             "unfused", REFERENCE, "7.6x"),
    Headline("end_to_end_energy_vs_flat", "end-to-end energy, FuseMax / FLAT", "energy_pj", True,
             REFERENCE, "flat", "83%", as_percent=True),
    Headline("end_to_end_energy_vs_unfused", "end-to-end energy, FuseMax / Unfused", "energy_pj", True,
             REFERENCE, "unfused", "82%", as_percent=True),
    Headline("end_to_end_speedup_vs_unfused_at_1m", "end-to-end speedup over Unfused at 1M", "latency_s", True,
             "unfused", REFERENCE, "10x", seqs=(1048576,)),
    Headline("end_to_end_speedup_vs_flat_at_1m", "end-to-end speedup over FLAT at 1M", "latency_s", True,
             "flat", REFERENCE, "7.5x", seqs=(1048576,)),
    Headline("flat_attention_speedup_vs_unfused", "attention speedup, FLAT over Unfused", "latency_s", False,
             "unfused", "flat", "1.51x (fact sheet §6.1, from the artifact's CSVs)"),
)
"""The paper's §VI headline claims (fact sheet §6.1), arithmetic means over 4 models x 6 lengths."""


@dataclass
class PaperRun:
    """What :func:`run_paper` produced: the reports per point, what is missing and why, the files."""

    points: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    missing: dict[tuple[str, str, int], str] = field(default_factory=dict)
    missing_designs: dict[str, str] = field(default_factory=dict)
    headlines: dict[str, float | None] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _run_point(point: tuple[str, str, int]) -> tuple[tuple[str, str, int], dict[str, Any] | None, str | None]:
    """Simulate one point (in a worker); never raises: (point, report or None, reason or None)."""
    design, model, seq = point
    try:
        return point, simulate(design, model, seq, end_to_end=True), None
    except Exception as exc:  # noqa: BLE001 -- a failing point is reported, not a crash
        return point, None, _one_line(exc)


def _check_inputs(designs: Sequence[str], models: Sequence[str], seqs: Sequence[int]) -> None:
    for name in designs:
        design_entry(name)                      # MappingError naming the known designs
    for name in models:
        load_workload(name)                     # MappingError naming the known workloads
    for seq in seqs:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise UsageError(f"--seqs: expected positive integers, got {seq!r}")
        from attnsim.studies.limits import MAX_ATTENTION_SEQ, size_problem
        problem = size_problem("--seqs", seq, MAX_ATTENTION_SEQ, "attention on a spatial array")
        if problem is not None:
            raise UsageError(problem)
    if not designs or not models or not seqs:
        raise UsageError("paper: expected at least one design, one model and one sequence length")


def run_paper(out_dir: str | Path = "out/paper", designs: Sequence[str] = PAPER_DESIGNS,
              models: Sequence[str] = PAPER_MODELS, seqs: Sequence[int] = PAPER_SEQS,
              jobs: int = 2) -> PaperRun:
    """Simulate the grid, write ``attention.csv``, ``end2end.csv`` and ``summary.md`` to ``out_dir``."""
    _check_inputs(designs, models, seqs)
    if jobs < 1:
        raise UsageError(f"--workers: expected a positive integer, got {jobs}")
    from attnsim.studies.outputs import output_dir, output_file

    if str(out_dir) == "":
        raise UsageError("--out: expected a directory name, got an empty one")
    output_dir("--out", out_dir)  # before hours of simulation, not after
    for name in ("attention.csv", "end2end.csv", "summary.md"):
        if (Path(out_dir) / name).exists():
            output_file("--out", Path(out_dir) / name)
    outcome = PaperRun()
    for name in designs:
        try:
            load_mapper(name)
        except UsageError as exc:
            outcome.missing_designs[name] = str(exc)
    todo = [(d, m, s) for d in designs if d not in outcome.missing_designs for m in models for s in seqs]
    if jobs == 1 or len(todo) <= 1:
        results = [_run_point(point) for point in todo]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
            results = list(pool.map(_run_point, todo, chunksize=max(1, len(todo) // (4 * jobs))))
    for point, report, reason in results:
        if report is not None:
            outcome.points[point] = report
        else:
            outcome.missing[point] = reason or "unknown error"
    outcome.headlines = {h.key: headline_value(h, outcome.points, models, seqs) for h in HEADLINES}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcome.files = {
        "attention": _write_attention_csv(out / "attention.csv", outcome.points),
        "end2end": _write_end_to_end_csv(out / "end2end.csv", outcome.points),
        "summary": _write_summary(out / "summary.md", outcome, designs, models, seqs),
    }
    return outcome


def headline_value(headline: Headline, points: dict[tuple[str, str, int], dict[str, Any]],
                   models: Sequence[str], seqs: Sequence[int]) -> float | None:
    """Mean of the headline's ratio over the (model, seq) points both designs have; None if none."""
    ratios = []
    for model in models:
        for seq in headline.seqs or seqs:
            if headline.seqs and seq not in seqs:
                continue
            top, bottom = points.get((headline.numerator, model, seq)), points.get((headline.denominator, model, seq))
            if top is None or bottom is None:
                continue
            key = headline.metric if headline.end_to_end else f"attention_{headline.metric}"
            ratios.append(top[key] / bottom[key])
    return statistics.fmean(ratios) if ratios else None


# -- files ---------------------------------------------------------------------------------------------

ATTENTION_COLUMNS = ("design", "model", "seq", "arch", "latency_s", "cycles", "energy_pj", "traffic_bytes",
                     "util_2d", "util_1d", "area_mm2")
END_TO_END_COLUMNS = ("design", "model", "seq", "arch", "attention_latency_s", "linear_latency_s", "latency_s",
                      "attention_energy_pj", "linear_energy_pj", "energy_pj", "linear_traffic_bytes")


def _sorted_points(points: dict[tuple[str, str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate(PAPER_DESIGNS)}
    return [points[key] for key in sorted(points, key=lambda k: (order.get(k[0], len(order)), k[0], k[1], k[2]))]


def _write_attention_csv(path: Path, points: dict[tuple[str, str, int], dict[str, Any]]) -> Path:
    einsums = sorted({e for report in points.values() for e in report["per_einsum"]})
    columns = [*ATTENTION_COLUMNS, *(f"per_einsum.{e}.util_2d" for e in einsums),
               *(f"per_einsum.{e}.util_1d" for e in einsums)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for report in _sorted_points(points):
            attention = {"latency_s": report["attention_latency_s"], "cycles": report["attention_cycles"],
                         "energy_pj": report["attention_energy_pj"],
                         "traffic_bytes": report["attention_traffic_bytes"]}
            row = [attention.get(c, report.get(c)) for c in ATTENTION_COLUMNS]
            per = report["per_einsum"]
            row += [per[e]["util_2d"] if e in per else "" for e in einsums]
            row += [per[e]["util_1d"] if e in per else "" for e in einsums]
            writer.writerow(row)
    return path


def _write_end_to_end_csv(path: Path, points: dict[tuple[str, str, int], dict[str, Any]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(END_TO_END_COLUMNS)
        for report in _sorted_points(points):
            writer.writerow([report[c] for c in END_TO_END_COLUMNS])
    return path


def _format(value: float | None, as_percent: bool) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if as_percent else f"{value:.2f}x"


def _write_summary(path: Path, outcome: PaperRun, designs: Sequence[str], models: Sequence[str],
                   seqs: Sequence[int]) -> Path:
    lines = ["# FuseMax paper grid, simulated by attnsim", "",
             f"Designs: {', '.join(designs)}. Models: {', '.join(models)}. "
             f"Sequence lengths: {', '.join(str(s) for s in seqs)}.",
             f"Points simulated: {len(outcome.points)}; missing: "
             f"{len(outcome.missing) + len(outcome.missing_designs) * len(models) * len(seqs)}.", "",
             "## Headline ratios", "",
             "Arithmetic means over the (model, sequence length) points that both designs have "
             "(the paper's are over 4 models x 6 lengths, §VI-B/C).", "",
             "| ratio | attnsim | paper |", "|---|---|---|"]
    for headline in HEADLINES:
        value = outcome.headlines.get(headline.key)
        lines.append(f"| {headline.label} | {_format(value, headline.as_percent)} | {headline.paper} |")
    lines += ["", "## Missing", ""]
    if not outcome.missing_designs and not outcome.missing:
        lines.append("Nothing: every point was simulated.")
    for name, reason in outcome.missing_designs.items():
        lines.append(f"- design `{name}`: missing ({reason})")
    for (name, model, seq), reason in sorted(outcome.missing.items()):
        lines.append(f"- `{name}` {model} seq {seq}: failed ({reason})")
    lines += ["", "## Linear layers", "", _linear_note(outcome), "",
              "## Attention latency per point (s)", "", _latency_table(outcome, designs, models, seqs), ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _linear_note(outcome: PaperRun) -> str:
    """How far the simulated linear layers are from full 2D-array utilisation (the artifact's figure)."""
    ratios = []
    for (_, model, seq), report in outcome.points.items():
        ideal_cycles = load_workload(model).linear_macs(seq) / report["array_pes_2d"]
        ratios.append(report["linear_cycles"] / ideal_cycles)
    if not ratios:
        return "No point was simulated."
    return (f"Simulated with `mappers.gemm` (best of os/ws/is, overlapped folds): "
            f"{statistics.fmean(ratios):.2f}x the ideal full-utilisation time on average "
            f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x). The artifact's linear latency is the ideal "
            "one (fact sheet §4.4, T5 at 0.96), so end-to-end ratios here weigh the linear layers more.")


def _latency_table(outcome: PaperRun, designs: Sequence[str], models: Sequence[str], seqs: Sequence[int]) -> str:
    rows = ["| model | seq | " + " | ".join(designs) + " |", "|---|---|" + "---|" * len(designs)]
    for model in models:
        for seq in seqs:
            cells = []
            for name in designs:
                report = outcome.points.get((name, model, seq))
                cells.append(f"{report['attention_latency_s']:.4g}" if report else "missing")
            rows.append(f"| {model} | {seq} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


__all__ = ["HEADLINES", "Headline", "PAPER_MODELS", "PAPER_SEQS", "PaperRun", "headline_value", "run_paper"]
