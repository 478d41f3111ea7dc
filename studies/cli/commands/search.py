"""``attnsim search --cascade C --arch A --model M --seq N [--base MAPPING] [--objective latency|energy|edp]
[--budget-s S] [--workers N | --scheduler ADDR] [--out FILE] [--json] [--quiet]`` and
``attnsim search --gemm M N K [--arch A] [--objective ...] [--json]``: search the mappings of a cascade
(``mappers.search``) or the tilings of a GEMM (``mappers.search.gemm_search``) and print the Pareto front
of (latency_s, energy_pj, onchip_bytes). ``--out`` writes the best mapping as YAML that
``attnsim simulate --mapping FILE`` accepts (docs/mapping-search.md)."""
from __future__ import annotations

import argparse
import json

from attnsim.studies.cli.options import add_set_option, add_workers_option, parse_count, parse_key_values, table
from attnsim.studies.errors import UsageError

OBJECTIVE_NAMES = ("latency", "energy", "edp")
"""``--objective`` choices (:data:`mappers.search.driver.OBJECTIVES`, repeated to keep the parser light)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "search", help="search the mappings of a cascade (or a GEMM's tilings) for the Pareto front",
        description="Enumerate the mappings the generic spatial mapper can run (tile sizes, spatial "
                    "assignment, binding, fusion granularity; placement and pipelining by exact dominance), "
                    "prune by the live-footprint bound and lower bounds, evaluate the rest on the engine "
                    "and print the Pareto front of latency, energy and on-chip bytes.")
    parser.add_argument("--cascade", default=None, help="a built-in cascade or a cascade YAML file")
    parser.add_argument("--gemm", nargs=3, metavar=("M", "N", "K"), default=None,
                        help="search the tilings of the GEMM C[M,N] = A[M,K] @ B[K,N] instead of a cascade")
    parser.add_argument("--arch", default="fusemax-cloud", help="architecture (default fusemax-cloud)")
    parser.add_argument("--model", default=None, help="workload name or YAML path (with --cascade)")
    parser.add_argument("--seq", default=None, help="sequence length M = P, e.g. 4096, 4K or 1M (with --cascade)")
    parser.add_argument("--base", default=None,
                        help="a mapping whose policy every candidate keeps (charged actions, drains, placement "
                             "of inputs/outputs/state) and which is evaluated first (default: the cascade's "
                             "default mapping, every priced action charged)")
    parser.add_argument("--objective", default="latency", help="what the best point minimises: "
                        + ", ".join(OBJECTIVE_NAMES) + " (default latency)")
    parser.add_argument("--budget-s", default=None, help="wall-clock budget of the search in seconds (default none)")
    add_workers_option(parser, "1", "1: the engine runs in this process")
    parser.add_argument("--scheduler", default=None, help="run the engine on this Dask scheduler (tcp://host:port)")
    parser.add_argument("--out", metavar="FILE", default=None,
                        help="write the best mapping there as YAML (for attnsim simulate --mapping FILE)")
    parser.add_argument("--json", action="store_true", help="print a list of front points, each with its mapping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set_option(parser, "global_buffer.capacity_bytes=8388608")
    parser.set_defaults(func=run)


def _budget(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--budget-s: expected a positive number of seconds, got '{text}'") from None
    if not value > 0:
        raise UsageError(f"--budget-s: expected a positive number of seconds, got '{text}'")
    return value


def _run_gemm(args: argparse.Namespace) -> int:
    from attnsim.archsim.spec import load_arch
    from attnsim.mappers.search.gemm_search import search_gemm

    if args.cascade or args.model or args.seq or args.out or args.base:
        raise UsageError("--gemm searches a GEMM: --cascade, --model, --seq, --base and --out do not apply")
    m, n, k = (parse_count(v, f"--gemm {name}") for v, name in zip(args.gemm, "MNK"))
    arch = load_arch(args.arch, parse_key_values(args.overrides))
    result = search_gemm(m, n, k, arch, objective=args.objective)
    if args.json:
        print(json.dumps([p.to_json() for p in result.front], indent=2))
        return 0
    print(f"gemm {m}x{n}x{k} on {arch.name}: {result.candidates} tilings, {result.pruned} pruned by bound, "
          f"{result.evaluated} evaluated in {result.wall_s:.2f} s")
    rows = [(p.latency_s, p.energy_pj, p.onchip_bytes, p.plan.dataflow, p.plan.description) for p in result.front]
    print(table(rows, ("latency_s", "energy_pj", "onchip_bytes", "dataflow", "mapping"), indent="  "))
    best = result.best
    print(f"  best ({args.objective}): {best.plan.dataflow} {best.plan.description}; "
          f"mapping {json.dumps(best.plan.mapping)}")
    for dataflow, point in result.planner.items():
        print(f"  planner {dataflow}: latency_s {point.latency_s:.6g}, {point.plan.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.objective not in OBJECTIVE_NAMES:
        raise UsageError(f"--objective: expected one of {', '.join(OBJECTIVE_NAMES)}, got '{args.objective}'")
    if args.gemm is not None:
        return _run_gemm(args)
    if args.cascade is None or args.model is None or args.seq is None:
        raise UsageError("expected --cascade, --model and --seq (or --gemm M N K)")
    budget = _budget(args.budget_s)
    workers = parse_count(args.workers, "--workers")
    seq = parse_count(args.seq, "--seq")
    out = None
    if args.out is not None:
        from attnsim.studies.outputs import output_file
        out = output_file("--out", args.out)
    from attnsim.studies.search_run import run_search

    result = run_search(args.cascade, args.model, seq, args.arch, base=args.base, objective=args.objective,
                        budget_s=budget, workers=workers, scheduler=args.scheduler, quiet=args.quiet,
                        overrides=parse_key_values(args.overrides))
    if out is not None:
        import yaml

        text = yaml.safe_dump(result.best.mapping, sort_keys=False, default_flow_style=None, width=110)
        out.write_text(f"# attnsim search: {result.label}, objective {args.objective}\n" + text, encoding="utf-8")
    if args.json:
        print(json.dumps([{**p.to_json(), "best": p is result.best} for p in result.front], indent=2))
        return 0
    stats = result.stats
    print(f"search {result.label}: {stats.enumerated} candidates, {stats.evaluated} evaluated, pruned "
          + ", ".join(f"{rule} {count}" for rule, count in stats.pruned.items()) + f"; {stats.wall_s:.2f} s")
    rows = [(p.latency_s, p.energy_pj, p.onchip_bytes, p.origin,
             p.candidate.describe() if p.candidate else p.mapping.get("name", "")) for p in result.front]
    print(table(rows, ("latency_s", "energy_pj", "onchip_bytes", "origin", "mapping"), indent="  "))
    if result.seed is not None:
        seed = result.seed
        print(f"  seed {seed.mapping.get('name')}: latency_s {seed.latency_s:.6g}, energy_pj {seed.energy_pj:.6g}, "
              f"onchip_bytes {seed.onchip_bytes}")
    best = result.best
    print(f"  best ({args.objective}): latency_s {best.latency_s:.6g}, energy_pj {best.energy_pj:.6g}, "
          f"onchip_bytes {best.onchip_bytes}" + (" (no worse than the seed in latency and energy)" if result.seed else "")
          + (f"; written to {out}" if out else ""))
    other = result.best_any
    if other is not None and other is not best:
        print(f"  best of the whole front ({args.objective}): latency_s {other.latency_s:.6g}, energy_pj "
              f"{other.energy_pj:.6g}, onchip_bytes {other.onchip_bytes}")
    return 0
