"""Backward pass of the GPU model against FA3's published H100 backward throughput (FA3 Fig. 6).

Used by ``benchmarks/gpu_validation.py``. Published values: ``data/fa3_fig6_backward_tflops.csv``
(FP16, non-causal, head dims 64 and 128, FA2 and FA3 bars, sources per row; FLOPs = 2.5 x forward).
The model: ``attnsim gpu --pass backward --design flash2|flash3`` (mappers/gpu_template_backward.py).
"""
from __future__ import annotations

import csv
from pathlib import Path

from attnsim.archsim.gpu_spec import GpuSpec
from attnsim.studies.gpu import make_workload, mape_percent
from attnsim.studies.gpu_backward import run_backward

BACKWARD_CSV = Path(__file__).resolve().parent / "data" / "fa3_fig6_backward_tflops.csv"
Key = tuple[str, int, int]   # design, head_dim, seq


def load_backward() -> dict[Key, float]:
    """(design, head_dim, seq) -> published backward TFLOPS (every row needs a source)."""
    with BACKWARD_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if any(not row.get("source") for row in rows):
        raise ValueError(f"{BACKWARD_CSV}: every row needs a source")
    return {(r["design"], int(r["head_dim"]), int(r["seq"])): float(r["tflops"]) for r in rows}


def backward_report(spec: GpuSpec) -> tuple[dict[Key, float], dict[str, float]]:
    """(model TFLOPS per published point, MAPE per design)."""
    published = load_backward()
    model = {key: run_backward(spec, key[0], make_workload(key[2], key[1])).tflops for key in sorted(published)}
    mapes = {}
    for design in sorted({k[0] for k in published}):
        keys = [k for k in sorted(published) if k[0] == design]
        mapes[design] = mape_percent([model[k] for k in keys], [published[k] for k in keys])
    return model, mapes


def backward_lines(model: dict[Key, float]) -> list[str]:
    """Markdown rows: published and model backward TFLOPS per point."""
    published = load_backward()
    lines = ["| kernel | head dim | seqlen | published | model | error |", "|---|---|---|---|---|---|"]
    for key in sorted(published):
        q, p = published[key], model[key]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {q:.0f} | {p:.0f} | {100 * (p - q) / q:+.1f}% |")
    return lines


__all__ = ["backward_lines", "backward_report", "load_backward"]
