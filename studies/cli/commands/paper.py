"""``attnsim paper [--out out/paper] [--designs ...] [--models ...] [--seqs ...] [--jobs N]``: the FuseMax
paper's grid (4 models x 6 sequence lengths x 5 designs), simulated (``studies.paper``)."""
from __future__ import annotations

import argparse

from attnsim.mappers.designs import PAPER_DESIGNS
from attnsim.studies.paper import HEADLINES, PAPER_MODELS, PAPER_SEQS, run_paper
from attnsim.studies.errors import UsageError
from attnsim.studies.simulate import parse_seq


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "paper", help="simulate the FuseMax paper's evaluation grid and compare with its headline numbers",
        description="Simulates every (design, model, sequence length) point end to end and writes "
                    "attention.csv, end2end.csv and summary.md (headline ratios next to the paper's). "
                    "A design that cannot be mapped is reported as missing.")
    parser.add_argument("--out", default="out/paper", help="output folder (default out/paper)")
    parser.add_argument("--designs", nargs="+", default=list(PAPER_DESIGNS), metavar="DESIGN",
                        help=f"designs (default: {' '.join(PAPER_DESIGNS)})")
    parser.add_argument("--models", nargs="+", default=list(PAPER_MODELS), metavar="MODEL",
                        help=f"workloads (default: {' '.join(PAPER_MODELS)})")
    parser.add_argument("--seqs", nargs="+", default=[str(s) for s in PAPER_SEQS], metavar="SEQ",
                        help="sequence lengths, e.g. 1K 4K 1M (default: 1K 4K 16K 64K 256K 1M)")
    parser.add_argument("--jobs", default="2", help="worker processes (default 2; 1 = no pool)")
    parser.set_defaults(func=run)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--jobs: expected a positive integer, got '{text}'") from None
    if value < 1:
        raise UsageError(f"--jobs: expected a positive integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the grid, print where the files are and the headline table."""
    seqs = [parse_seq(text, "--seqs") for text in args.seqs]
    jobs = _jobs(args.jobs)
    outcome = run_paper(args.out, args.designs, args.models, seqs, jobs=jobs)
    print(f"simulated {len(outcome.points)} points; wrote "
          + ", ".join(str(path) for path in outcome.files.values()))
    for headline in HEADLINES:
        value = outcome.headlines.get(headline.key)
        shown = "n/a" if value is None else (f"{value:.1%}" if headline.as_percent else f"{value:.2f}x")
        print(f"  {headline.label:<45} {shown:>8}   (paper {headline.paper})")
    for name, reason in outcome.missing_designs.items():
        print(f"  missing design {name}: {reason}")
    for (name, model, seq), reason in sorted(outcome.missing.items()):
        print(f"  failed {name} {model} seq {seq}: {reason}")
    return 0
