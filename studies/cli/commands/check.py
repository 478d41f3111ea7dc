"""``attnsim check``: compare a cascade's interpreter result with independent references."""
from __future__ import annotations

import argparse
import json

from attnsim import einsum_ir
from attnsim.studies.check import (DEFAULT_SIZES, DTYPES, INPUT_KINDS, CheckResult, cascade_from_arg, check_against,
                                   check_cascade, check_reference, print_warnings)
from attnsim.studies.errors import UsageError


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
    for symbol in ("M", "P", "E", "F", "M0", "K"):
        parser.add_argument(f"--{symbol}", type=int, default=DEFAULT_SIZES[symbol], metavar="N",
                            help=f"size of shape symbol {symbol} (default {DEFAULT_SIZES[symbol]})")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="size of any other shape symbol (repeatable)")
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
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp64", help="precision (default fp64)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    sizes = dict(DEFAULT_SIZES)
    sizes.update({symbol: getattr(args, symbol) for symbol in ("M", "P", "E", "F", "M0", "K")})
    for item in args.size:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier() or not value.strip().lstrip("-").isdigit():
            raise UsageError(f"bad --size '{item}'; expected NAME=N with an integer N")
        sizes[name.strip()] = int(value)
    return sizes


def _format_sizes(sizes: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sizes.items())


def _print_one(result: CheckResult) -> None:
    print(f"cascade      {result.cascade}")
    print(f"sizes        {_format_sizes(result.sizes)}")
    print(f"dtype        {result.dtype}")
    for reference, errors in result.comparisons.items():
        print(f"vs {reference:<30} max_abs_err {errors['max_abs_err']:.3e}  max_rel_err {errors['max_rel_err']:.3e}")
    verdict = "PASSED" if result.passed else "FAILED"
    print(f"max_abs_err  {result.max_abs_err:.3e}")
    print(f"max_rel_err  {result.max_rel_err:.3e}  (tolerance {result.tolerance:.0e})  {verdict}")


def _print_table(results: list[CheckResult]) -> None:
    width = max(len(r.cascade) for r in results)
    print(f"{'cascade':<{width}}  {'dtype':<5}  {'max_abs_err':>11}  {'max_rel_err':>11}  passed  sizes")
    for r in results:
        print(f"{r.cascade:<{width}}  {r.dtype:<5}  {r.max_abs_err:>11.3e}  {r.max_rel_err:>11.3e}  "
              f"{'yes' if r.passed else 'NO':<6}  {_format_sizes(r.sizes)}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed}/{len(results)} cascades passed")


def run(args: argparse.Namespace) -> int:
    if args.all and args.name:
        raise UsageError("give either NAME or --all, not both")
    if args.all and args.against:
        raise UsageError("--against compares one cascade; give NAME, not --all")
    if not args.all and not args.name:
        raise UsageError("missing cascade NAME; expected a built-in name, a YAML path, or --all")
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
