"""Speed and pruning of the mapping search (``mappers.search``), and the searched mapping against
FuseMax's hand mapping (``specs/mappings/fusemax.yaml``) on fusemax-cloud.

Prints, per point: candidates enumerated, candidates decided per second (pruned or evaluated), engine
evaluations, the fraction of candidates each rule removed, and the searched mapping's (the fastest no worse than the hand mapping in energy)
latency and energy against the hand mapping's. Last line: points searched per second.

    .venv/bin/python benchmarks/bench_search.py                       # BERT and XLM, 1K .. 1M
    .venv/bin/python benchmarks/bench_search.py --models bert-base --seqs 1024 4096
    .venv/bin/python benchmarks/bench_search.py --flat      # FLAT's 3-pass cascade on flat-cloud vs its table

Run under ``nice -n 19`` on a shared machine. Figures are wall-clock and vary with load.
"""
from __future__ import annotations

import argparse
import time

from attnsim.archsim import load_arch
from attnsim.mappers.cascade_mapper import load_cascade_arg
from attnsim.mappers.mapping_spec import load_mapping
from attnsim.mappers.search.driver import search
from attnsim.mappers.search.mapspace import make_problem
from attnsim.mappers.workloads import load_workload

SEQS = (1024, 4096, 16384, 65536, 262144, 1048576)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bert-base", "xlm"])
    parser.add_argument("--seqs", nargs="+", type=int, default=list(SEQS))
    parser.add_argument("--budget-s", type=float, default=None)
    parser.add_argument("--flat", action="store_true",
                        help="search FLAT's 3-pass cascade on flat-cloud (the groups path) against its tabled choice")
    args = parser.parse_args()
    if args.flat:
        flat(args)
        return
    arch = load_arch("fusemax-cloud")
    cascade = load_cascade_arg("attention-1pass")
    base = load_mapping("fusemax")
    started = time.perf_counter()
    count = 0
    print("| model | seq | candidates | decided/s | evaluated | footprint | infeasible | bound | budget | "
          "hand latency_s | searched latency_s | speed-up | hand energy_pj | searched energy_pj | energy ratio | "
          "searched mapping |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        workload = load_workload(model)
        for seq in args.seqs:
            problem = make_problem(cascade, workload, seq, arch, base)
            result = search(problem, "latency", args.budget_s)
            stats = result.stats
            fractions = stats.fractions()
            seed, best = result.seed, result.best
            assert seed is not None
            described = best.candidate.describe() if best.candidate else "the hand mapping"
            print(f"| {model} | {seq} | {stats.enumerated} | {stats.enumerated / stats.wall_s:.0f} | "
                  f"{stats.evaluated} | {fractions['footprint']:.2f} | {fractions['infeasible']:.2f} | "
                  f"{fractions['bound']:.2f} | {fractions['budget']:.2f} | {seed.latency_s:.6g} | "
                  f"{best.latency_s:.6g} | {seed.latency_s / best.latency_s:.4f} | {seed.energy_pj:.6g} | "
                  f"{best.energy_pj:.6g} | {best.energy_pj / seed.energy_pj:.6f} | {described} |", flush=True)
            count += 1
    elapsed = time.perf_counter() - started
    print(f"\n{count} points in {elapsed:.1f} s: {count / elapsed:.3f} points searched per second")


def flat(args: argparse.Namespace) -> None:
    """The groups search of attention-3pass on flat-cloud (base: specs/mappings/flat.yaml, seed: FLAT's
    tabled choice) per point: candidates, candidates decided per second, engine runs, the fraction each
    rule removed, and the searched mapping against the tabled one."""
    from attnsim.mappers.search.groups_search import make_groups_problem, search_groups

    arch = load_arch("flat-cloud")
    cascade = load_cascade_arg("attention-3pass")
    base = load_mapping("flat")
    started = time.perf_counter()
    count = 0
    print("| model | seq | candidates | decided/s | evaluated | footprint | infeasible | bound | table latency_s | "
          "searched latency_s | speed-up | table energy_pj | searched energy_pj | energy ratio | searched mapping |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        for seq in args.seqs:
            result = search_groups(make_groups_problem(cascade, load_workload(model), seq, arch, base), "latency",
                                   args.budget_s)
            stats, seed, best = result.stats, result.seed, result.best
            assert seed is not None
            fractions = stats.fractions()
            described = best.candidate.describe() if best.candidate else "the tabled choice"
            print(f"| {model} | {seq} | {stats.enumerated} | {stats.enumerated / stats.wall_s:.0f} | {stats.evaluated} | "
                  f"{fractions['footprint']:.2f} | {fractions['infeasible']:.2f} | {fractions['bound']:.2f} | "
                  f"{seed.latency_s:.6g} | {best.latency_s:.6g} | {seed.latency_s / best.latency_s:.4f} | "
                  f"{seed.energy_pj:.6g} | {best.energy_pj:.6g} | {best.energy_pj / seed.energy_pj:.6f} | {described} |",
                  flush=True)
            count += 1
    elapsed = time.perf_counter() - started
    print(f"\n{count} points in {elapsed:.1f} s: {count / elapsed:.3f} points searched per second")


if __name__ == "__main__":
    main()
