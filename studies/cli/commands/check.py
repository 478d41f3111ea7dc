"""``attnsim check``: compare a cascade's interpreter result with independent references."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from attnsim.studies.cli.options import parse_count, parse_sizes, table
from attnsim.studies.errors import UsageError

if TYPE_CHECKING:
    from attnsim.studies.check import CheckResult

NAMED_SIZES = ("M", "P", "E", "F", "M0", "K")
"""Shape symbols with their own option (``--M 1K``); defaults: :data:`studies.check.DEFAULT_SIZES`."""

INPUT_KINDS = ("normal", "large", "equal", "masked")
"""``--inputs`` choices (:data:`studies.check.INPUT_KINDS`, repeated so the parser imports nothing heavy)."""

DTYPE_NAMES = ("fp32", "fp64")
"""``--dtype`` choices (the keys of :data:`studies.check.DTYPES`)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a cascade numerically against the numba / numpy references",
        description="Evaluate a cascade with the Einsum interpreter on random inputs and compare it with "
                    "the reference its file names (reference: another cascade or a kernels_ref kernel), the "
                    "numba kernel and numpy softmax attention (attention cascades), its closed form "
                    "(pedagogical cascades), or with another cascade (--against B) on the same inputs. "
                    "Exit code 0 within the tolerance (normwise relative error; 1e-12 for fp64, 1e-5 for "
                    "fp32, unless the file or --tolerance says otherwise), 1 beyond it, 2 for bad input.")
    parser.add_argument("name", metavar="NAME", nargs="?",
                        help="built-in cascade name (see 'attnsim cascades') or a YAML path")
    parser.add_argument("--all", action="store_true", help="check every built-in cascade and print a table")
    for symbol in NAMED_SIZES:
        parser.add_argument(f"--{symbol}", default=None, metavar="N",
                            help=f"size of shape symbol {symbol}, e.g. 1024 or 1K")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="size of any other shape symbol, e.g. M1=4 (repeatable)")
    parser.add_argument("--against", metavar="B", help="compare with cascade B (built-in name or YAML path) on the "
                                                       "same random inputs; B reads inputs of the same names")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng (default 0)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="draw inputs with N seeds (seed, seed+1, ...) and report the worst (default 1)")
    parser.add_argument("--inputs", choices=INPUT_KINDS, default="normal",
                        help="normal; large (x16: large logits); equal (all-equal rows); masked (-inf in "
                             "inputs named MASK...) (default normal)")
    parser.add_argument("--tolerance", type=float, metavar="X",
                        help="largest normwise relative error that passes (default: the file's, else per dtype)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default="fp64", help="precision (default fp64)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    from attnsim.studies.check import DEFAULT_SIZES

    sizes = dict(DEFAULT_SIZES)
    for symbol in NAMED_SIZES:
        if getattr(args, symbol) is not None:
            sizes[symbol] = parse_count(getattr(args, symbol), f"--{symbol}")
    sizes.update(parse_sizes(args.size))
    return sizes


def _format_sizes(sizes: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sizes.items())


def _print_one(result: CheckResult) -> None:
    print(f"cascade      {result.cascade}")
    print(f"sizes        {_format_sizes(result.sizes)}")
    print(f"dtype        {result.dtype}")
    print(table([(f"vs {reference}", f"max_abs_err {errors['max_abs_err']:.3e}",
                  f"max_rel_err {errors['max_rel_err']:.3e}") for reference, errors in result.comparisons.items()]))
    verdict = "PASSED" if result.passed else "FAILED"
    print(f"max_abs_err  {result.max_abs_err:.3e}")
    print(f"max_rel_err  {result.max_rel_err:.3e}  (tolerance {result.tolerance:.0e})  {verdict}")


def _print_table(results: list[CheckResult]) -> None:
    print(table([(r.cascade, r.dtype, f"{r.max_abs_err:.3e}", f"{r.max_rel_err:.3e}",
                  "yes" if r.passed else "NO", _format_sizes(r.sizes)) for r in results],
                ("cascade", "dtype", "max_abs_err", "max_rel_err", "passed", "sizes")))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed}/{len(results)} cascades passed")


def run(args: argparse.Namespace) -> int:
    if args.all and args.name:
        raise UsageError("give either NAME or --all, not both")
    if args.all and args.against:
        raise UsageError("--against compares one cascade; give NAME, not --all")
    if not args.all and not args.name:
        raise UsageError("missing cascade NAME; expected a built-in name, a YAML path, or --all")
    from attnsim import einsum_ir
    from attnsim.studies.check import (DTYPES, cascade_from_arg, check_against, check_cascade, check_reference,
                                       print_warnings)

    sizes = _sizes(args)
    dtype = DTYPES[args.dtype]
    if args.all:
        results = [check_cascade(einsum_ir.load_builtin(name), sizes, seed=args.seed, dtype=dtype)
                   for name in einsum_ir.builtin_names()]
        if args.json:
            print(json.dumps([r.to_json() for r in results], indent=2))
        else:
            _print_table(results)
        return 0 if all(r.passed for r in results) else 1
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}; expected a positive number of seeds")
    if args.tolerance is not None and not 0 < args.tolerance < 1:
        raise UsageError(f"--tolerance {args.tolerance}; expected a number in (0, 1)")
    cascade = cascade_from_arg(args.name)
    print_warnings(cascade)
    seeds = tuple(range(args.seed, args.seed + args.seeds))
    options = dict(seeds=seeds, dtype=dtype, inputs=args.inputs, tolerance=args.tolerance)
    if args.against:
        other = cascade_from_arg(args.against)
        print_warnings(other)
        result = check_against(cascade, other, sizes, **options)
    elif "reference" in cascade.meta:
        result = check_reference(cascade, sizes, **options)
    elif args.seeds != 1 or args.inputs != "normal" or args.tolerance is not None:
        raise UsageError("--seeds, --inputs and --tolerance need --against B or a cascade with 'reference:'")
    else:
        result = check_cascade(cascade, sizes, seed=args.seed, dtype=dtype)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_one(result)
    return 0 if result.passed else 1
