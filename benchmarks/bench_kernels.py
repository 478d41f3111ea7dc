"""Benchmark: numba 1-pass attention kernel vs a numpy 3-pass reference (prints figures, asserts nothing).

Workload: one head, M = P (keys = queries), E = F, float32, non-causal, scale 1, seeded normal inputs.

Throughput: FLOPs = 4*M*P*E (2*M*P*E multiply-adds for Q K^T and 2*M*P*F for A V with F = E; the
exponentials, maxima, sums and divisions are not counted). GFLOP/s = FLOPs / best wall time / 1e9,
best of ``--rounds`` x ``--repeats`` runs, each variant's runs in a block after one warm-up run,
all variants timed in this one process.

Extra peak memory: each variant runs in a fresh subprocess that builds the inputs, warms up on a
small problem (JIT cache load, BLAS buffers), records its resident set size, runs the full problem
once and reads the peak resident set size. Extra = peak - resident before the call. On Linux the
peak is reset first (``/proc/self/clear_refs`` = 5, then ``VmHWM``); elsewhere the script falls
back to ``ru_maxrss`` before/after, which can under-report. Threads follow the environment as set
(OPENBLAS_*, NUMBA_NUM_THREADS); nothing here changes them.

Then the variant references (benchmarks/bench_variant_kernels.py): each numba kernel's GFLOP/s beside
a numpy formulation's, at ``--variants-size`` (the variant kernels are plain loops, no BLAS).

Usage: python benchmarks/bench_kernels.py [--size 4096] [--dim 64] [--rounds 3] [--repeats 5] [--variants-size 1024]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from attnsim import kernels_ref
ONE_PASS_TILE_M = 512
SMALL_WARMUP_SIZE = 64
MIB = 1024 * 1024


def numpy_3pass_inplace(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """3-pass reference materialising the (P, M) logits through BLAS; softmax in place on them."""
    logits = q @ k.T
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits @ v


def numpy_3pass_textbook(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The same computation written plainly (each step allocates a new (P, M) array)."""
    logits = q @ k.T
    numerators = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (numerators / numerators.sum(axis=1, keepdims=True)) @ v


def numba_1pass(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """kernels_ref's FlashAttention-2-order kernel (query blocks x key blocks, BLAS on tiles)."""
    return kernels_ref.attention_1pass(q, k, v, tile_m=ONE_PASS_TILE_M)


VARIANTS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]] = {
    "numba-1pass": (f"numba 1-pass (kernels_ref.attention_1pass, tile_m={ONE_PASS_TILE_M})", numba_1pass),
    "numpy-3pass": ("numpy 3-pass (q @ k.T, in-place softmax, @ v)", numpy_3pass_inplace),
    "numpy-3pass-textbook": ("numpy 3-pass, textbook (temporaries per step)", numpy_3pass_textbook),
}
BASELINE = "numpy-3pass"


def make_inputs(size: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded float32 q (P, E), k (M, E), v (M, F) with M = P = size and E = F = dim."""
    rng = np.random.default_rng(2024)
    return tuple(rng.standard_normal((size, dim), dtype=np.float32) for _ in range(3))  # type: ignore[return-value]


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_extra_memory(variant: str, size: int, dim: int) -> dict[str, object]:
    """In this (fresh) process: extra peak resident bytes of one full-size call of ``variant``."""
    function = VARIANTS[variant][1]
    small = make_inputs(SMALL_WARMUP_SIZE, dim)
    function(*small)
    q, k, v = make_inputs(size, dim)
    if _reset_peak_rss() and _proc_status_kib("VmHWM") is not None:
        before_kib = _proc_status_kib("VmRSS") or 0
        function(q, k, v)
        peak_kib = _proc_status_kib("VmHWM") or 0
        method = "VmHWM after clear_refs reset, minus VmRSS before the call"
    else:
        before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        function(q, k, v)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        method = "ru_maxrss after minus ru_maxrss before the call (may under-report)"
    return {"variant": variant, "extra_bytes": max(0, peak_kib - before_kib) * 1024, "method": method}


def extra_memory_in_subprocess(variant: str, size: int, dim: int) -> dict[str, object]:
    """Run ``measure_extra_memory`` in a fresh interpreter and return its JSON result."""
    command = [sys.executable, os.path.abspath(__file__), "--measure-memory", variant,
               "--size", str(size), "--dim", str(dim)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def best_times_s(size: int, dim: int, rounds: int, repeats: int) -> dict[str, float]:
    """Best wall time (s) per variant over ``rounds`` rounds of ``repeats`` timed runs each.

    In each round every variant gets one untimed warm-up run and then its timed runs, in a block:
    numpy and scipy (numba's np.dot) each bundle their own OpenBLAS, whose idle threads keep spinning
    for a while after a call and would slow the other library's next call on a small machine, so
    runs are not interleaved one by one. Several rounds keep a transient load on the machine from
    spoiling one variant only.
    """
    q, k, v = make_inputs(size, dim)
    best = {name: float("inf") for name in VARIANTS}
    for _ in range(rounds):
        for name, (_, function) in VARIANTS.items():
            function(q, k, v)
            for _ in range(repeats):
                start = time.perf_counter()
                function(q, k, v)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def max_normwise_difference(size: int, dim: int) -> float:
    """max|1-pass - numpy| / max|numpy| on the benchmark inputs (a sanity figure, not a test)."""
    q, k, v = make_inputs(size, dim)
    reference = numpy_3pass_inplace(q, k, v)
    return float(np.abs(numba_1pass(q, k, v) - reference).max() / np.abs(reference).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="M = P (keys = queries)")
    parser.add_argument("--dim", type=int, default=64, help="E = F (head dimension)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all variants")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant and round")
    parser.add_argument("--variants-size", type=int, default=1024, help="M = P of the variant references (0: skip)")
    parser.add_argument("--measure-memory", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        print(json.dumps(measure_extra_memory(args.measure_memory, args.size, args.dim)))
        return 0

    size, dim = args.size, args.dim
    flops = 4 * size * size * dim
    blas_env = {key: value for key, value in sorted(os.environ.items()) if key.startswith("OPENBLAS")}
    print(f"attention forward, one head, fp32, non-causal: M = P = {size}, E = F = {dim}")
    print(f"FLOPs = 4*M*P*E = {flops:.3e} (QK^T and AV multiply-adds only); best of {args.rounds} x {args.repeats} runs")
    print(f"cpus: {os.cpu_count()}, NUMBA_NUM_THREADS: {os.environ.get('NUMBA_NUM_THREADS', 'default')}, "
          f"OPENBLAS env: {blas_env or 'none'}")

    load_before = os.getloadavg()[0]
    best = best_times_s(size, dim, args.rounds, args.repeats)
    load_after = os.getloadavg()[0]
    memory = {name: extra_memory_in_subprocess(name, size, dim) for name in VARIANTS}
    print()
    print(f"{'variant':<58} {'best ms':>9} {'GFLOP/s':>9} {'extra peak MiB':>15}")
    for name, (label, _) in VARIANTS.items():
        extra_mib = int(memory[name]["extra_bytes"]) / MIB
        print(f"{label:<58} {best[name] * 1e3:9.1f} {flops / best[name] / 1e9:9.1f} {extra_mib:15.1f}")
    print()
    print(f"throughput ratio numba 1-pass / numpy 3-pass (in-place): {best[BASELINE] / best['numba-1pass']:.2f}x")
    print(f"for scale: output P*F*4 bytes = {size * dim * 4 / MIB:.1f} MiB; "
          f"logits M*P*4 bytes = {size * size * 4 / MIB:.1f} MiB")
    print(f"extra memory method: {memory['numba-1pass']['method']}, each variant in a fresh subprocess")
    print(f"1-minute load average before / after timing: {load_before:.2f} / {load_after:.2f} "
          f"(figures are unreliable if other work ran meanwhile)")
    print(f"max|1-pass - numpy| / max|numpy| = {max_normwise_difference(size, dim):.2e}")
    if args.variants_size:
        from bench_variant_kernels import print_table  # beside this file
        print_table(args.variants_size, dim, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
