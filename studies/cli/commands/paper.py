"""``attnsim paper [--out out/paper] [--designs ...] [--models ...] [--seqs ...] [--workers N]``: the
FuseMax paper's grid (4 models x 6 sequence lengths x 5 designs), simulated (``studies.paper``)."""
from __future__ import annotations

import argparse

from attnsim.mappers.designs import PAPER_DESIGNS
from attnsim.studies.cli.options import add_workers_option, parse_count, table, workers_from


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "paper", help="simulate the FuseMax paper's evaluation grid and compare with its headline numbers",
        description="Simulates every (design, model, sequence length) point end to end and writes "
                    "attention.csv, end2end.csv and summary.md (headline ratios next to the paper's). "
                    "A design that cannot be mapped is reported as missing.")
    parser.add_argument("--out", default="out/paper", help="output folder (default out/paper)")
    parser.add_argument("--designs", nargs="+", default=list(PAPER_DESIGNS), metavar="DESIGN",
                        help=f"designs (default: {' '.join(PAPER_DESIGNS)})")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help="workloads (default: bert-base trxl-wt103 t5-small xlm)")
    parser.add_argument("--seqs", nargs="+", default=None, metavar="SEQ",
                        help="sequence lengths, e.g. 1K 4K 1M (default: 1K 4K 16K 64K 256K 1M)")
    add_workers_option(parser, "2", "2")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the grid, print where the files are and the headline table."""
    from attnsim.studies.paper import HEADLINES, PAPER_MODELS, PAPER_SEQS, run_paper

    seqs = [parse_count(text, "--seqs") for text in args.seqs] if args.seqs else list(PAPER_SEQS)
    models = args.models or list(PAPER_MODELS)
    workers = workers_from(args)
    assert workers is not None
    outcome = run_paper(args.out, args.designs, models, seqs, jobs=workers)
    print(f"simulated {len(outcome.points)} points; wrote "
          + ", ".join(str(path) for path in outcome.files.values()))
    rows = []
    for headline in HEADLINES:
        value = outcome.headlines.get(headline.key)
        shown = "n/a" if value is None else (f"{value:.1%}" if headline.as_percent else f"{value:.2f}x")
        rows.append((headline.label, shown, headline.paper))
    print(table(rows, ("headline", "attnsim", "paper"), indent="  "))
    for name, reason in outcome.missing_designs.items():
        print(f"  missing design {name}: {reason}")
    for (name, model, seq), reason in sorted(outcome.missing.items()):
        print(f"  failed {name} {model} seq {seq}: {reason}")
    return 0
