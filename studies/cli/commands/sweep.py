"""``attnsim sweep STUDY.yaml [--out DIR] [--workers N] [--scheduler ADDRESS] [--quiet] [--retry-failed]
[--point-timeout S] [--scheduler-timeout S]``.

Runs every point of a study (``studies.sweep``), committing each result to ``DIR/results.sqlite`` as
it finishes; a re-run skips the finished points. Prints a summary that lists the failed points; the
exit code is 0 when every point is ok, 1 if any failed, 2 for a bad study or bad options.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from attnsim.studies.cli.options import add_workers_option, workers_from
from attnsim.studies.errors import UsageError

if TYPE_CHECKING:
    from attnsim.studies.sweep import SweepSummary

DEFAULT_SCHEDULER_TIMEOUT_S = 30.0
"""``studies.sweep.DEFAULT_SCHEDULER_TIMEOUT_S`` (not imported: building the parser stays cheap; a test
checks the two agree)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "sweep", help="run a design-space study (YAML) into a resumable results database",
        description="Evaluate every point of a study YAML file in parallel and record each result in "
                    "DIR/results.sqlite as it finishes. Re-running skips finished points (failed ones "
                    "too, unless --retry-failed). Exit code 1 if any point failed.")
    parser.add_argument("study", metavar="STUDY",
                        help="a study YAML file (see docs/studies.md), or the name of a built-in study: "
                             "paper, buffer-vs-bandwidth, gpu, gemm-example")
    parser.add_argument("--out", metavar="DIR", help="output directory (default out/<study name>)")
    add_workers_option(parser, None, "the number of CPU cores")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--scheduler-timeout", metavar="S", default=None,
                        help=f"seconds to wait for the Dask scheduler, then for its first worker "
                             f"(default {DEFAULT_SCHEDULER_TIMEOUT_S:g})")
    parser.add_argument("--point-timeout", metavar="S", default=None,
                        help="wall-clock limit of one point in seconds, local workers (default: the "
                             "study's point_timeout_s, 3600 unless it says otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--retry-failed", action="store_true",
                        help="evaluate again the points that failed in an earlier run")
    parser.set_defaults(func=run)


def _seconds(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option}: expected a positive number of seconds, got '{text}'") from None
    if not 0 < value < float("inf"):
        raise UsageError(f"{option}: expected a positive number of seconds, got '{text}'")
    return value


def _shown(params: dict[str, object]) -> str:
    return " ".join(f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}"
                    for key, value in params.items())


def print_summary(summary: SweepSummary) -> None:
    """The end-of-sweep report: counts, where the results are, and every failed point."""
    print(f"study {summary.study}: {summary.total} points, {summary.ran} evaluated now, "
          f"{summary.skipped} already in the store; {summary.ok} ok, {len(summary.failed)} failed "
          f"-> {summary.out_dir / 'results.sqlite'}")
    if summary.retried:
        print(f"retried on a new worker ({len(summary.retried)}: the worker process evaluating it died):")
        for point in summary.retried:
            print(f"  {point.key[:12]}  {_shown(point.params)}: {point.reason}")
    if summary.failed:
        print("failed points (re-run with --retry-failed to evaluate them again):")
        for point in summary.failed:
            print(f"  {point.key[:12]}  {_shown(point.params)}: {point.error}")


def run(args: argparse.Namespace) -> int:
    """Run the sweep and print its summary; the exit code says whether every point is ok."""
    from attnsim.studies.sweep import run_sweep

    try:
        summary = run_sweep(args.study, args.out, workers=workers_from(args),
                            scheduler=args.scheduler, quiet=args.quiet,
                            retry_failed=args.retry_failed,
                            point_timeout_s=_seconds("--point-timeout", args.point_timeout),
                            scheduler_timeout_s=_seconds("--scheduler-timeout", args.scheduler_timeout)
                            or DEFAULT_SCHEDULER_TIMEOUT_S)
    except KeyboardInterrupt:
        print("attnsim: interrupted; every finished point is in the store, re-run to resume",
              file=sys.stderr)
        return 130
    print_summary(summary)
    return summary.exit_code
