"""Engine time per schedule: the event engine (``archsim.engine.run(..., fast=False)``, the path that
predates the list-scheduling fast path, unchanged) against the default fast path, in one process, on the mapping search's slowest kind of schedule (FuseMax's hand
mapping of attention-1pass on fusemax-cloud through the generic mapper, the kind of schedule the search's
engine runs spend their time on). Prints per schedule the time of each path,
new/old as a ratio, and checks that both give the same cycles, actions and busy cycles.

    .venv/bin/python benchmarks/bench_engine.py [--seqs 65536 1048576] [--repeat 3]

Run under ``nice -n 19`` on a shared machine; the ratio, not the seconds, is the figure.
"""
from __future__ import annotations

import argparse
import time

from attnsim.archsim import engine, load_arch
from attnsim.mappers.cascade_mapper import load_cascade_arg, map_cascade
from attnsim.mappers.mapping_spec import load_mapping
from attnsim.mappers.workloads import load_workload

def _event_engine(schedule, arch):
    return engine.run(schedule, arch, fast=False)


def _best_of(function, schedule, arch, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(schedule, arch)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--seqs", nargs="+", type=int, default=[65536, 1048576])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    arch = load_arch("fusemax-cloud")
    cascade = load_cascade_arg("attention-1pass")
    base = load_mapping("fusemax")
    workload = load_workload(args.model)
    print("| model | seq | simulated ops | old s | new s | new/old |")
    print("|---|---|---|---|---|---|")
    total_old = total_new = 0.0
    for seq in args.seqs:
        schedule = map_cascade(cascade, base, workload, seq, arch).schedule
        old_s, old = _best_of(_event_engine, schedule, arch, args.repeat)
        new_s, new = _best_of(engine.run, schedule, arch, args.repeat)
        assert (old.cycles, old.actions, old.busy_cycles, old.energy_pj) == \
            (new.cycles, new.actions, new.busy_cycles, new.energy_pj), seq
        total_old, total_new = total_old + old_s, total_new + new_s
        print(f"| {args.model} | {seq} | {new.simulated_ops} | {old_s:.3f} | {new_s:.3f} | "
              f"{new_s / old_s:.3f} |")
    print(f"total: old {total_old:.3f} s, new {total_new:.3f} s, new/old {total_new / total_old:.3f}")


if __name__ == "__main__":
    main()
