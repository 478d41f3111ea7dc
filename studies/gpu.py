"""Attention on GPU specs: one call -> one report (what ``attnsim gpu`` prints), and the published data.

``gpu_report`` maps a forward attention call with one of the GPU designs (``mappers.gpu_*``), runs it
on the engine (:func:`mappers.gpu_common.simulate`) and returns a flat dict whose key names carry the
units. ``FA3_FIG5_TFLOPS`` holds FlashAttention-2/-3's published H100 SXM5 FP16 forward throughput
(GA §2.2, FA3 Fig. 5) used by ``benchmarks/gpu_validation.py`` and the tests.
"""
from __future__ import annotations

import importlib
from typing import Any

from attnsim.archsim.gpu_spec import DTYPES, GpuSpec, load_gpu
from attnsim.mappers.gpu_common import HEAD_DIMS, GpuAttention, GpuRun, fa3_protocol_workload, simulate
from attnsim.studies.errors import UsageError
from attnsim.studies.limits import MAX_GPU_ROWS, MAX_GPU_SEQ, size_problem

GPU_DESIGNS: dict[str, str] = {
    "flash2": "attnsim.mappers.gpu_flash2",
    "flash3": "attnsim.mappers.gpu_flash3",
    "flat": "attnsim.mappers.gpu_flat",
    "fusemax": "attnsim.mappers.gpu_fusemax",
}
"""Design name -> mapper module (each has ``map_attention(workload, spec, *, options)``)."""

DEFAULT_GPU = "h100-sxm"

REPORT_KEYS: tuple[str, ...] = (
    "design", "arch", "batch", "heads", "seq", "head_dim", "causal", "dtype", "flops", "latency_s",
    "tflops", "util_tensor", "util_mufu", "util_fp32", "util_smem", "util_l2", "util_hbm", "bound",
    "ctas", "resident_ctas", "waves", "block_m", "block_n", "energy_pj", "choices")
"""Keys of :func:`gpu_report` (and of ``attnsim gpu --json``)."""

FA3_SEQLENS: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384)
"""The sequence lengths of FA3 Fig. 5 (batch x seqlen = 16k tokens, hidden 2048)."""

FA3_FIG5_TFLOPS: dict[str, dict[tuple[int, bool], tuple[int, ...]]] = {
    # GA §2.2: FA3 paper (arXiv 2407.08608) Fig. 5, H100 SXM5 at 1830 MHz, FP16 forward, values per
    # the cross-checked transcriptions [FA3-fig]; key (head_dim, causal), one value per FA3_SEQLENS.
    "flash2": {
        (64, False): (282, 306, 318, 321, 322, 324), (64, True): (180, 229, 262, 284, 295, 299),
        (128, False): (309, 350, 362, 368, 370, 370), (128, True): (191, 260, 298, 319, 333, 335),
        (256, False): (275, 313, 321, 323, 324, 326), (256, True): (208, 251, 278, 293, 297, 298),
    },
    "flash3": {
        (64, False): (333, 392, 460, 476, 496, 497), (64, True): (197, 265, 371, 420, 460, 473),
        (128, False): (467, 565, 625, 638, 646, 648), (128, True): (292, 423, 521, 579, 602, 616),
        (256, False): (482, 639, 707, 736, 746, 756), (256, True): (286, 427, 537, 612, 628, 642),
    },
}

FA3_ABLATION: tuple[tuple[str, dict[str, bool], int], ...] = (
    # GA §2.4 / FA3 Table 2: batch 4, seqlen 8448, 16 heads, head dim 128, non-causal FP16 forward.
    ("FlashAttention-3", {}, 661),
    ("no GEMM-softmax pipelining, warp specialization", {"pingpong": False, "intra_pipeline": False}, 582),
    ("GEMM-softmax pipelining, no warp specialization", {"warp_specialized": False}, 570),
)
"""(configuration, Flash3Options switches, published TFLOPS)."""
ABLATION_SHAPE = {"batch": 4, "heads": 16, "seq": 8448, "head_dim": 128}


def _design_module(design: str) -> Any:
    if design not in GPU_DESIGNS:
        raise UsageError(f"gpu: --design: expected one of {', '.join(GPU_DESIGNS)}, got '{design}'")
    return importlib.import_module(GPU_DESIGNS[design])


def make_workload(seq: int, head_dim: int, *, causal: bool = False, dtype: str = "fp16",
                  batch: int | None = None, heads: int | None = None) -> GpuAttention:
    """FA3's protocol shape unless batch/heads are given; UsageError (one line) on bad values."""
    for name, value in (("--seq", seq), ("--batch", batch), ("--heads", heads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UsageError(f"gpu: {name}: expected a positive integer, got {value!r}")
    if head_dim not in HEAD_DIMS:
        raise UsageError(f"gpu: --head-dim: expected one of {', '.join(map(str, HEAD_DIMS))}, "
                         f"got {head_dim!r}")
    if dtype not in DTYPES:
        raise UsageError(f"gpu: --dtype: expected one of {', '.join(DTYPES)}, got '{dtype}'")
    problem = size_problem("--seq", seq, MAX_GPU_SEQ, "GPU attention")
    if problem is not None:
        raise UsageError(f"gpu: {problem}")
    workload = fa3_protocol_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)
    rows = workload.batch * workload.heads * workload.seq
    problem = size_problem("--batch x --heads x --seq", rows, MAX_GPU_ROWS, "GPU attention")
    if problem is not None:
        raise UsageError(f"gpu: {problem}")
    return workload


def predict(spec: GpuSpec, design: str, workload: GpuAttention, options: Any = None) -> GpuRun:
    """Map ``workload`` with ``design`` on ``spec`` and simulate it on the engine."""
    module = _design_module(design)
    mapping = module.map_attention(workload, spec, options=options)
    return simulate(mapping, spec)


def run_report(spec: GpuSpec, design: str, workload: GpuAttention, run: GpuRun) -> dict[str, Any]:
    """The flat report of one simulated call (keys :data:`REPORT_KEYS`)."""
    util = run.utilisation
    return {
        "design": design, "arch": spec.name, "batch": workload.batch, "heads": workload.heads,
        "seq": workload.seq, "head_dim": workload.head_dim, "causal": workload.causal,
        "dtype": workload.dtype, "flops": workload.flops, "latency_s": run.latency_s,
        "tflops": run.tflops, "util_tensor": util["tensor"], "util_mufu": util["mufu"],
        "util_fp32": util["fp32"], "util_smem": util["smem"], "util_l2": util["l2"],
        "util_hbm": util["hbm"], "bound": run.bound, "ctas": run.ctas,
        "resident_ctas": run.resident_ctas, "waves": run.waves,
        "block_m": run.choices.get("block_m"), "block_n": run.choices.get("block_n"),
        "energy_pj": run.energy_pj,
        "choices": {k: v for k, v in run.choices.items() if k not in ("block_m", "block_n")},
    }


def gpu_report(arch: str, design: str, seq: int, head_dim: int, *, causal: bool = False,
               dtype: str = "fp16", batch: int | None = None, heads: int | None = None,
               options: Any = None) -> dict[str, Any]:
    """Everything ``attnsim gpu --json`` prints (:data:`REPORT_KEYS`) for one call."""
    module = _design_module(design)
    workload = make_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)
    spec = load_gpu(arch)
    mapping = module.map_attention(workload, spec, options=options)
    return run_report(spec, design, workload, simulate(mapping, spec))


def mape_percent(predicted: list[float], published: list[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``published``, in percent."""
    if len(predicted) != len(published) or not published:
        raise ValueError("mape_percent: expected two non-empty lists of equal length")
    return 100.0 * sum(abs(p - q) / q for p, q in zip(predicted, published)) / len(published)
