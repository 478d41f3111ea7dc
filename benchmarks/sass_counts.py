"""Instruction counts of FA2's and FlashSigmoid's forward kernels, compiled for the H100 (sm_90).

Offline evidence for docs/validation.md (issue #16), not part of the model or the tests: it needs
``nvcc``/``cuobjdump`` and the kernels' sources, which the project does not carry. What it counts is
written to ``benchmarks/data/fa2_flashsigmoid_sass_counts.csv`` (committed), so nothing reads the
sources at run or test time.

Sources, compiled the same way (FA2's setup.py flags: ``-O3 --use_fast_math`` ..., ``-gencode
arch=compute_90,code=sm_90``, ``-Xptxas -v``):
- FA2: Dao-AILab/flash-attention tag v2.5.6, ``csrc/flash_attn/src`` (the version FlashSigmoid forks);
- FlashSigmoid: apple/ml-sigmoid-attention commit 9273b49, ``flash_sigmoid/csrc/flash_sigmoid/src``;
- CUTLASS: NVIDIA/cutlass bbe579a9 (both repositories' submodule commit), ``include``;
- ATen: four stub headers (``PhiloxCudaState``, ``philox::unpack``, the two ``C10_CUDA_*`` macros):
  the forward kernels without dropout use none of them on the device.
Only the kernels the H100 launches are instantiated (``INSTANTIATE``): fp16, no dropout, not local,
no ALiBi, even M/N and K, no returned softmax; ``Flash_fwd_kernel_traits<64, 128, 128, 4>`` and
``<128, 128, 64, 4>`` (both launch templates' choice on sm_90), non-causal and causal.

Counts: ``ptxas -v``'s registers and spill bytes per thread, and per warp the SASS instructions of one
K/V iteration of the main loop -- the span from a backward branch's target to its branch that holds the
most HMMA instructions (both GEMMs of one tile: 256 m16n8k16 per warp for both tilings), by opcode.
tests/mappers/test_gpu_sass_counts.py checks the model's per-tile work against these counts.

Usage: ``python benchmarks/sass_counts.py --fa2 DIR --flashsigmoid DIR --cutlass DIR --work DIR``
(compiles, disassembles, counts, writes the CSV), or ``--listing NAME=FILE`` to count existing
``cuobjdump -sass`` listings. The compile used for the committed CSV: nvcc 13.0 (V13.0.88), cuobjdump
13.5 -- not the CUDA 12 of the published runs; ptxas versions allocate registers differently.
"""
from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

from sass_listing import families, heaviest_loop, write_counts

OUT = Path(__file__).resolve().parent / "data" / "fa2_flashsigmoid_sass_counts.csv"

INSTANTIATE = """#include "flash_fwd_launch_template.h"
using T = cutlass::half_t;
using K64 = Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, T>;
using K128 = Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, T>;
void* kernels[] = {
  (void*)&flash_fwd_kernel<K64, false, false, false, false, true, true, false>,
  (void*)&flash_fwd_kernel<K64, false, true, false, false, true, true, false>,
  (void*)&flash_fwd_kernel<K128, false, false, false, false, true, true, false>,
  (void*)&flash_fwd_kernel<K128, false, true, false, false, true, true, false>,
};
"""

ATEN_STUB = """#pragma once
#include <cstdint>
#include <tuple>
#include <cuda_runtime.h>
namespace at {
struct PhiloxCudaState { uint64_t seed_ = 0; uint64_t offset_ = 0; bool captured_ = false; };
namespace cuda {
inline cudaDeviceProp* getCurrentDeviceProperties() { static cudaDeviceProp p{}; return &p; }
namespace philox {
__host__ __device__ inline std::tuple<uint64_t, uint64_t> unpack(at::PhiloxCudaState a) {
  return std::make_tuple(a.seed_, a.offset_); }
}}}
#define C10_CUDA_CHECK(x) (void)(x)
#define C10_CUDA_KERNEL_LAUNCH_CHECK() (void)0
"""

NVCC_FLAGS = ["-O3", "-std=c++17", "--use_fast_math", "-U__CUDA_NO_HALF_OPERATORS__",
              "-U__CUDA_NO_HALF_CONVERSIONS__", "-U__CUDA_NO_HALF2_OPERATORS__",
              "-U__CUDA_NO_BFLOAT16_CONVERSIONS__", "--expt-relaxed-constexpr", "--expt-extended-lambda",
              "-gencode", "arch=compute_90,code=sm_90", "-Xptxas", "-v", "-cubin"]

CLASSES = ("HMMA", "LDSM", "MUFU", "FMUL", "FFMA", "FADD", "FMNMX", "F2FP", "FSETP", "FSEL", "MOV",
           "SHFL", "LDL", "STL", "LDGSTS", "BAR")
"""Opcodes counted one by one; every other opcode goes to ``other``."""

_KERNEL = re.compile(r"traitsILi(\d+)ELi128ELi(\d+)ELi4E.*?EELb0ELb(\d)E")

def compile_kernels(name: str, source: Path, cutlass: Path, work: Path) -> tuple[Path, str]:
    """Compile the instantiated kernels of one source tree; (cuobjdump -sass listing, ptxas log)."""
    stub = work / "stub" / "ATen" / "cuda"
    stub.mkdir(parents=True, exist_ok=True)
    for header in ("CUDAGeneratorImpl.h", "CUDAGraphsUtils.cuh", "CUDAContext.h"):
        (stub / header).write_text(ATEN_STUB)
    (work / "stub" / "ATen" / "CUDAGeneratorImpl.h").write_text(ATEN_STUB)
    unit = work / f"{name}.cu"
    unit.write_text(INSTANTIATE)
    cubin = work / f"{name}.cubin"
    log = subprocess.run(["nvcc", *NVCC_FLAGS, "-I", str(work / "stub"), "-I", str(cutlass), "-I", str(source),
                          "-o", str(cubin), str(unit)], check=True, capture_output=True, text=True).stderr
    listing = work / f"{name}.sass"
    listing.write_text(subprocess.run(["cuobjdump", "-sass", str(cubin)], check=True, capture_output=True,
                                      text=True).stdout)
    return listing, log


def ptxas_resources(log: str) -> dict[tuple[int, int, bool], dict[str, int]]:
    """(head dim, block_n, causal) -> registers and spill bytes per thread, from ``ptxas -v``."""
    out: dict[tuple[int, int, bool], dict[str, int]] = {}
    key = None
    for line in log.splitlines():
        match = _KERNEL.search(line) if "Compiling entry" in line else None
        if match:
            key = (int(match.group(1)), int(match.group(2)), match.group(3) == "1")
        spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if key and spill:
            out.setdefault(key, {}).update(spill_store_bytes=int(spill.group(1)), spill_load_bytes=int(spill.group(2)))
        used = re.search(r"Used (\d+) registers", line)
        if key and used:
            out.setdefault(key, {})["registers"] = int(used.group(1))
    return out


def main_loop_counts(listing: str) -> dict[tuple[int, int, bool], collections.Counter]:
    """(head dim, block_n, causal) -> opcode-family counts of one main-loop iteration (the backward-branch
    span with the most HMMA instructions)."""
    out = {}
    for body in re.split(r"\n\s*Function : ", listing)[1:]:
        match = _KERNEL.search(body.split("\n", 1)[0])
        if match:
            out[(int(match.group(1)), int(match.group(2)), match.group(3) == "1")] = families(heaviest_loop(body))
    return out


def rows(kernel: str, counts: dict, resources: dict) -> list[dict]:
    out = []
    for (head_dim, block_n, causal), span in sorted(counts.items()):
        row = {"kernel": kernel, "head_dim": head_dim, "block_n": block_n, "causal": str(causal).lower(),
               **resources.get((head_dim, block_n, causal), {}), "instructions": sum(span.values())}
        row.update({c.lower(): span.get(c, 0) for c in CLASSES})
        row["other"] = sum(n for op, n in span.items() if op not in CLASSES)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fa2", type=Path)
    parser.add_argument("--flashsigmoid", type=Path)
    parser.add_argument("--cutlass", type=Path)
    parser.add_argument("--work", type=Path, default=Path("sass-work"))
    parser.add_argument("--listing", action="append", default=[], help="NAME=cuobjdump listing[:ptxas log]")
    args = parser.parse_args(argv)
    table: list[dict] = []
    for item in args.listing:
        name, files = item.split("=", 1)
        listing, _, log = files.partition(":")
        table += rows(name, main_loop_counts(Path(listing).read_text()),
                      ptxas_resources(Path(log).read_text()) if log else {})
    for name, source in (("fa2-v2.5.6", args.fa2), ("flashsigmoid-9273b49", args.flashsigmoid)):
        if source is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            listing, log = compile_kernels(name, source, args.cutlass, args.work)
            table += rows(name, main_loop_counts(listing.read_text()), ptxas_resources(log))
    if not table:
        print("sass_counts: nothing to count (give --fa2/--flashsigmoid or --listing)", file=sys.stderr)
        return 2
    write_counts(OUT, "Per-warp SASS instructions of one main-loop K/V iteration, and ptxas registers / spill bytes per\n"
                      "thread; nvcc 13.0 for sm_90 (benchmarks/sass_counts.py docstring: sources, flags, method)", table)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
