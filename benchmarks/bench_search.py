"""Speed and pruning of the mapping search (``mappers.search``), and the searched mapping against
FuseMax's hand mapping (``specs/mappings/fusemax.yaml``) on fusemax-cloud.

Prints, per point: candidates enumerated, candidates decided per second (pruned or evaluated), engine
evaluations, the fraction of candidates each rule removed, and the searched mapping's (the fastest no worse than the hand mapping in energy)
latency and energy against the hand mapping's. Last line: points searched per second.

    .venv/bin/python benchmarks/bench_search.py                       # BERT and XLM, 1K .. 1M
    .venv/bin/python benchmarks/bench_search.py --models bert-base --seqs 1024 4096

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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
