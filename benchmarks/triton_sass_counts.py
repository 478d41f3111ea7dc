"""Instruction counts of Lightning Attention-2's Triton forward kernel, compiled for the A100 and H100.

Offline evidence for docs/validation.md (issue #16), not part of the model or the tests: it needs Triton
(2.2, the release of the published run's time, or 3.1; each run writes its version's rows) and PyTorch,
which the kernel file imports (the optional extra ``triton-sass`` installs 3.1; 2.2 goes in an
environment of its own, ``pip install triton==2.2.0 torch numpy``), and a checkout of
OpenNLPLab/lightning-attention at commit 0ae41be (the commit of the published table, March 2024), which
the project does not carry. What it counts is written to
``benchmarks/data/lightning2_triton_sass_counts.csv`` (committed), so nothing reads the sources at run or
test time.

What is compiled: ``_fwd_kernel`` of ``lightning_attn/ops/triton/lightning_attn2_no_decay.py``, as
``LightningAttention2NoDecay.forward`` launches it at the table's shape (batch 4, 32 heads, head dim 128,
bf16): d = e = 128, BLOCK = 64, BLOCK_MODEL = 32, NUM_BLOCK = n / 64 (n = 8192 here; the loop body does
not depend on it), Triton's launch defaults num_warps = 4 and num_stages = 3, and the pointer arguments
16-byte aligned (the specialisation Triton's JIT applies to PyTorch's allocations). ``triton.compile``
needs no GPU (Triton 2.x's only at the end, for the launcher, which is skipped). Targets: sm_80 (A100)
and sm_90 (H100; both versions emit wgmma there).

Counts: ``ptxas -v`` (Triton's bundled ptxas) registers and spill bytes per thread, the shared memory
Triton allocates per CTA, and per warp the SASS instructions of one iteration of the block loop -- the
span from a backward branch's target to its branch that holds the most tensor instructions -- by opcode
with its width suffix, and the shared-memory bytes those instructions move per warp (32 threads x the
access width; ldmatrix.x4 512 B, cp.async 16 B per thread; wgmma's own operand reads from SMEM are
not per-thread instructions and are not in it).
tests/mappers/test_gpu_lightning2_sass.py checks the model's per-block tensor work against these counts.

Usage: ``python benchmarks/triton_sass_counts.py --source DIR [--work DIR]``.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from sass_listing import families, heaviest_loop, write_counts

OUT = Path(__file__).resolve().parent / "data" / "lightning2_triton_sass_counts.csv"
KERNEL_FILE = Path("lightning_attn") / "ops" / "triton" / "lightning_attn2_no_decay.py"
SEQ = 8192
CONSTANTS = {"b": 4, "h": 32, "n": SEQ, "d": 128, "e": 128, "BLOCK": 64, "NUM_BLOCK": SEQ // 64, "BLOCK_MODEL": 32}
OPTIONS = {"num_warps": 4, "num_stages": 3}
TARGETS = (80, 90)

TENSOR_OPS = ("HMMA", "HGMMA")
SMEM_BYTES_PER_THREAD = {"LDS": 4, "LDS.U": 4, "LDS.64": 8, "LDS.U.64": 8, "LDS.128": 16, "LDS.U.128": 16,
                         "STS": 4, "STS.64": 8, "STS.128": 16, "LDSM.16.M88.4": 16, "LDSM.16.MT88.4": 16,
                         "LDSM.16.M88.2": 8, "LDSM.16.MT88.2": 8, "LDGSTS.E.BYPASS.128": 16, "LDGSTS.E.128": 16}
"""Bytes each thread moves through shared memory per instruction (a warp moves 32x)."""
COLUMNS = ("HMMA", "HGMMA", "LDSM", "LDS", "STS", "LDGSTS", "LDG", "LDL", "STL", "BAR", "IMAD", "PRMT")
"""Opcode families counted one by one (any width); the rest go to ``other``."""


def _load_kernel(source: Path):
    spec = importlib.util.spec_from_file_location("lightning_attn2_no_decay", source / KERNEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._fwd_kernel


def _compile_3x(fn, cc: int) -> tuple[str, bytes, int]:
    """(PTX, cubin, shared bytes per CTA) with Triton 3.x's GPU-free ``triton.compile``."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler.compiler import AttrsDescriptor

    signature = {**{p: "*bf16" for p in ("Q", "K", "V", "Out")}, **{k: "constexpr" for k in CONSTANTS}}
    kernel = triton.compile(ASTSource(fn=fn, signature=signature, constants=CONSTANTS,
                                      attrs=AttrsDescriptor(divisible_by_16=(0, 1, 2, 3), equal_to_1=())),
                            target=GPUTarget("cuda", cc, 32), options=OPTIONS)
    return kernel.asm["ptx"], kernel.asm["cubin"], kernel.metadata.shared


def _compile_2x(fn, cc: int, work: Path) -> tuple[str, bytes, int]:
    """The same with Triton 2.x, whose ``compile`` ends by building a launcher against libcuda: the
    launcher is skipped (no GPU here) after the compiled stages and their metadata are in the cache."""
    import json
    import os

    os.environ["TRITON_CACHE_DIR"] = str(work / f"cache-{cc}")
    import triton
    import triton.compiler.compiler as compiler

    no_launcher = work / "no-launcher.so"
    compiler.make_stub = lambda *args, **kwargs: str(no_launcher)   # metadata is cached after this call
    constants = {fn.arg_names.index(k): v for k, v in CONSTANTS.items()}
    try:
        triton.compile(fn, signature={i: "*bf16" for i in range(4)}, constants=constants,
                       configs=[compiler.instance_descriptor(divisible_by_16={0, 1, 2, 3}, equal_to_1=set())],
                       cc=cc, **OPTIONS)
    except ImportError as error:   # loading the launcher that was not built
        if str(no_launcher) not in str(error):
            raise
    found = {f.name: f for f in (work / f"cache-{cc}").rglob("_fwd_kernel.*")}
    shared = json.loads(found["_fwd_kernel.json"].read_text())["shared"]
    return found["_fwd_kernel.ptx"].read_text(), found["_fwd_kernel.cubin"].read_bytes(), shared


def compile_target(source: Path, cc: int, work: Path) -> dict:
    """One row: resources and main-loop counts of the kernel compiled for ``sm_<cc>``."""
    import triton

    fn = _load_kernel(source)
    major = int(triton.__version__.split(".")[0])
    ptx_text, cubin_bytes, shared = _compile_3x(fn, cc) if major >= 3 else _compile_2x(fn, cc, work)
    package = Path(triton.__file__).parent
    tools = package / ("backends/nvidia/bin" if major >= 3 else "third_party/cuda/bin")
    ptx, cubin = work / f"lightning2_sm{cc}.ptx", work / f"lightning2_sm{cc}.cubin"
    ptx.write_text(ptx_text)
    cubin.write_bytes(cubin_bytes)
    arch = f"sm_{cc}a" if cc >= 90 else f"sm_{cc}"
    log = subprocess.run([str(tools / "ptxas"), "-v", f"-arch={arch}", str(ptx), "-o", str(work / "ptxas.cubin")],
                         check=True, capture_output=True, text=True).stderr
    listing = subprocess.run([str(tools / "cuobjdump"), "-sass", str(cubin)], check=True, capture_output=True,
                             text=True).stdout
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    registers = re.search(r"Used (\d+) registers", log)
    span = heaviest_loop(listing, TENSOR_OPS)
    row = {"kernel": "lightning2-no-decay-0ae41be", "target": f"sm_{cc}", "triton": triton.__version__,
           "registers": int(registers.group(1)), "spill_store_bytes": int(spill.group(1)),
           "spill_load_bytes": int(spill.group(2)), "smem_bytes_per_cta": shared,
           "instructions": sum(span.values()),
           "smem_bytes_per_warp": 32 * sum(SMEM_BYTES_PER_THREAD.get(op, 0) * n for op, n in span.items())}
    family = families(span)
    row.update({c.lower(): family.get(c, 0) for c in COLUMNS})
    row["other"] = sum(n for op, n in family.items() if op not in COLUMNS)
    row["widths"] = " ".join(f"{op}:{n}" for op, n in sorted(span.items())
                             if op.split(".")[0] in ("LDS", "STS", "LDSM", "LDGSTS", "LDL", "STL", "HMMA"))
    unknown = [op for op in span if op.split(".")[0] in ("LDS", "STS", "LDSM", "LDGSTS")
               and op not in SMEM_BYTES_PER_THREAD]
    if unknown:
        raise SystemExit(f"triton_sass_counts: no access width known for {unknown}")
    return row


def _committed_rows() -> list[dict]:
    if not OUT.is_file():
        return []
    return list(csv.DictReader(line for line in OUT.read_text().splitlines() if not line.startswith("#")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="checkout of OpenNLPLab/lightning-attention")
    parser.add_argument("--work", type=Path, default=Path("triton-sass-work"))
    args = parser.parse_args(argv)
    if not (args.source / KERNEL_FILE).is_file():
        print(f"triton_sass_counts: {args.source / KERNEL_FILE}: not found (give a checkout at 0ae41be)",
              file=sys.stderr)
        return 2
    import triton

    work = args.work / f"triton-{triton.__version__}"
    work.mkdir(parents=True, exist_ok=True)
    fresh = [compile_target(args.source, cc, work) for cc in TARGETS]
    kept = [row for row in _committed_rows() if row["triton"] != triton.__version__]
    table = sorted(kept + fresh, key=lambda row: (row["triton"], row["target"]))
    write_counts(OUT, "Lightning-2 no-decay Triton forward kernel (OpenNLPLab/lightning-attention 0ae41be): ptxas\n"
                      "registers / spill bytes per thread, Triton's SMEM per CTA, per-warp SASS of one block\n"
                      "iteration (benchmarks/triton_sass_counts.py docstring: shape, options, method)", table)
    print(f"wrote {OUT} (Triton {triton.__version__}'s rows; other versions' rows kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
