"""Start-up cost of the command line: ``python -X importtime`` figures and wall times, in one run.

Prints, for ``import attnsim``, ``import attnsim.studies.cli`` + building the parser, and a heavy
command's imports, the import time (``-X importtime``, cumulative over top-level imports, less what an
empty ``python -c pass`` imports) and the slowest modules; then the median wall time of ``attnsim --help``, ``attnsim cascades``
(needs sympy) and ``attnsim check`` (needs numba) over several runs, as ratios to ``--help``.

    python benchmarks/bench_startup.py [--runs 5]

Figures depend on the machine and on the file-system cache; the first run of a session warms it.
Nothing here is asserted by the tests (they check only that the light imports stay light).
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPORTTIME_RE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")

SNIPPETS = {
    "python itself (site, encodings)": "pass",
    "import attnsim": "import attnsim",
    "CLI parser (attnsim --help)": "import attnsim.studies.cli as c; c.build_parser()",
    "heavy: attnsim check's imports": "import attnsim.studies.cli as c; c.build_parser(); "
                                      "import attnsim.studies.check, attnsim.kernels_ref",
}

COMMANDS = {
    "attnsim --help": ["--help"],
    "attnsim results --help": ["results", "--help"],
    "attnsim cascades (sympy)": ["cascades"],
    "attnsim check (numba, sympy)": ["check", "attention-1pass", "--M", "256", "--P", "64", "--M0", "64",
                                     "--E", "16", "--F", "16"],
}
HEAVY = ("numba", "matplotlib", "sympy", "dask", "distributed", "pandas", "networkx", "numpy", "pydantic")


def importtime(code: str, runs: int) -> tuple[float, list[tuple[float, str]], list[str]]:
    """(median over ``runs`` of the total seconds of top-level imports, the 8 slowest modules by self
    time in the last run, heavy packages loaded)."""
    totals = []
    for _ in range(runs):
        total, slowest, heavy = _importtime_once(code)
        totals.append(total)
    return statistics.median(totals), slowest, heavy


def _importtime_once(code: str) -> tuple[float, list[tuple[float, str]], list[str]]:
    probe = f"{code}; import sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    process = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], capture_output=True,
                             text=True, check=True)
    total_us = 0
    selfs: list[tuple[float, str]] = []
    for line in process.stderr.splitlines():
        match = IMPORTTIME_RE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, module = int(match[1]), int(match[2]), match[3], match[4]
        if len(indent) == 1:                     # a top-level import: its cumulative time counts once
            total_us += cumulative_us
        selfs.append((self_us / 1e6, module))
    heavy = [name for name in process.stdout.strip().split(",") if name]
    return total_us / 1e6, sorted(selfs, reverse=True)[:8], heavy


def wall_s(argv: list[str], runs: int) -> float:
    """Median wall time of ``python -m attnsim ARGV`` over ``runs`` runs (after one warm-up)."""
    command = [sys.executable, "-m", "attnsim", *argv]
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} ({sys.executable}), attnsim from {Path(__file__).parents[1]}")
    print(f"\nimports (python -X importtime, median of {args.runs} runs):")
    baseline = None
    parser_s = 0.0
    for label, code in SNIPPETS.items():
        total, slowest, heavy = importtime(code, args.runs)
        if baseline is None:
            baseline = total
            print(f"  {label:<34} {total * 1e3:8.1f} ms  (subtracted below)")
            continue
        extra = total - baseline
        parser_s = parser_s if label != "CLI parser (attnsim --help)" else extra
        ratio = f"  ({extra / parser_s:.1f}x the parser)" if parser_s and label.startswith("heavy") else ""
        print(f"  {label:<34} {extra * 1e3:8.1f} ms{ratio}  heavy loaded: {', '.join(heavy) or 'none'}")
        print("      slowest (self): " + ", ".join(f"{name} {s * 1e3:.1f} ms" for s, name in slowest[:5]))
    print(f"\nwall time, median of {args.runs} runs:")
    reference = None
    for label, argv in COMMANDS.items():
        seconds = wall_s(argv, args.runs)
        reference = reference or seconds
        print(f"  {label:<34} {seconds:6.3f} s  ({seconds / reference:5.1f}x attnsim --help)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
