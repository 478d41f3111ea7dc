"""Attention on GPU specs: one call -> one report (what ``attnsim gpu`` prints), and the published data.

``gpu_report`` maps a forward attention call with one of the GPU designs (``mappers.gpu_*``), runs it
on the engine (:func:`mappers.gpu_common.simulate`) and returns a flat dict whose key names carry the
units. FlashAttention-2/-3's published H100 throughput (FA3 Fig. 5, Table 2) is data, not code:
``benchmarks/data/*.csv`` with its sources, read by ``benchmarks/fa3_published.py``.
"""
from __future__ import annotations

import importlib
from typing import Any

from attnsim.archsim.gpu_spec import DTYPES, GpuSpec, load_gpu
from attnsim.mappers.gpu_common import HEAD_DIMS, GpuAttention, GpuRun, fa3_protocol_workload, simulate
from attnsim.studies.errors import UsageError

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
    "cycles", "traffic_bytes", "tflops", "util_tensor", "util_mufu", "util_fp32", "util_smem", "util_l2", "util_hbm", "bound",
    "ctas", "resident_ctas", "waves", "block_m", "block_n", "energy_pj", "choices")
"""Keys of :func:`gpu_report` (and of ``attnsim gpu --json``)."""

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
    return fa3_protocol_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)


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
        "cycles": run.cycles, "traffic_bytes": run.actions.get("hbm.byte", 0.0),
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
               options: Any = None, overrides: dict[str, object] | None = None) -> dict[str, Any]:
    """Everything ``attnsim gpu --json`` prints (:data:`REPORT_KEYS`) for one call; ``overrides``:
    ``{"dotted.key": value}`` GPU-spec overrides (``--set``). ``traffic_bytes``: HBM reads + writes."""
    module = _design_module(design)
    workload = make_workload(seq, head_dim, causal=causal, dtype=dtype, batch=batch, heads=heads)
    spec = load_gpu(arch, overrides)
    mapping = module.map_attention(workload, spec, options=options)
    return run_report(spec, design, workload, simulate(mapping, spec))


def mape_percent(predicted: list[float], published: list[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``published``, in percent."""
    if len(predicted) != len(published) or not published:
        raise ValueError("mape_percent: expected two non-empty lists of equal length")
    return 100.0 * sum(abs(p - q) / q for p, q in zip(predicted, published)) / len(published)
