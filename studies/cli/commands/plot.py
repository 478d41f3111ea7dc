"""``attnsim plot DIR [--study FILE] [--format png,pdf]`` and ``attnsim plot --gantt TRACE.csv --out FILE``.

The first form draws every figure listed in the ``plots:`` of the study that ``attnsim sweep`` ran
into ``DIR`` (read from ``DIR/results.sqlite`` and the study copy in ``DIR``) as ``DIR/figs/<name>.png``
and ``.pdf``, and writes ``DIR/report.md`` (:mod:`studies.report`). The second draws the Gantt chart of
a ``--trace`` CSV (``attnsim simulate ... --trace`` / ``attnsim gemm ... --trace``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from attnsim.studies.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "plot", help="draw a sweep's figures and report, or the Gantt chart of a trace",
        description="Draw the figures listed under plots: in the study of a sweep directory into "
                    "DIR/figs/ (PNG and PDF) and write DIR/report.md; or, with --gantt, draw the Gantt "
                    "chart of a --trace CSV into --out.")
    parser.add_argument("directory", metavar="DIR", nargs="?", help="a sweep's output directory")
    parser.add_argument("--study", metavar="FILE",
                        help="the study file (default: the copy attnsim sweep left in DIR)")
    parser.add_argument("--format", metavar="LIST", default="png,pdf",
                        help="comma-separated figure formats (default png,pdf)")
    parser.add_argument("--gantt", metavar="TRACE.csv", help="draw the Gantt chart of this trace instead")
    parser.add_argument("--out", metavar="FILE", help="with --gantt: the image to write (.png, .pdf, .svg)")
    parser.add_argument("--title", default="", help="with --gantt: the chart's title")
    parser.set_defaults(func=run)


def _formats(text: str) -> list[str]:
    from matplotlib.figure import Figure

    supported = Figure().canvas.get_supported_filetypes()
    formats = [item.strip().lower() for item in text.split(",") if item.strip()]
    if not formats:
        raise UsageError("--format: expected a comma-separated list such as png,pdf")
    for fmt in formats:
        if fmt not in supported:
            raise UsageError(f"--format: unknown format '{fmt}' (known: {', '.join(sorted(supported))})")
    return formats


def run(args: argparse.Namespace) -> int:
    """Draw; print one line per file written."""
    if args.gantt is not None:
        if args.directory is not None:
            raise UsageError("plot: give either DIR or --gantt TRACE.csv, not both")
        if not args.out:
            raise UsageError("--gantt: expected --out FILE (the image to write)")
        from attnsim.studies.plots import gantt

        rows = gantt(args.gantt, args.out, title=args.title)
        print(f"wrote the Gantt chart of {rows} operations to {args.out}")
        return 0
    if args.directory is None:
        raise UsageError("plot: expected DIR (a sweep's output directory) or --gantt TRACE.csv --out FILE")
    if args.out:
        raise UsageError("--out: only with --gantt (figures of DIR go to DIR/figs/)")
    from attnsim.studies.outputs import output_dir
    from attnsim.studies.report import render_directory

    if Path(args.directory).is_dir():
        output_dir("plot", args.directory)  # figs/ and report.md go there

    outcome = render_directory(args.directory, study_path=args.study, formats=_formats(args.format))
    for figure in outcome.figures:
        print(f"{figure.plot.name}: {', '.join(str(p) for p in figure.paths.values())}")
    print(f"study {outcome.study}: {outcome.ok} ok, {outcome.failed} failed, {outcome.not_run} not run; "
          f"{len(outcome.figures)} figures; report {outcome.report}")
    return 0
