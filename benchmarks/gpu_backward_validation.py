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


# --------------------------------------------------------------------------------------------------
# Forward + backward of FA2 against the FA2 paper's figures (A100 Fig. 4, H100 Fig. 7).

FWD_BWD_CSVS = {"a100-sxm-80gb": Path(__file__).resolve().parent / "data" / "fa2_a100_fwd_bwd_tflops.csv",
                "h100-sxm": Path(__file__).resolve().parent / "data" / "fa2_h100_fwd_bwd_tflops.csv"}
FwdBwdKey = tuple[str, int, bool, int]   # gpu, head_dim, causal, seq


def load_fwd_bwd() -> dict[FwdBwdKey, float]:
    """(gpu, head_dim, causal, seq) -> published FA2 forward+backward TFLOPS (every row needs a source)."""
    out: dict[FwdBwdKey, float] = {}
    for path in FWD_BWD_CSVS.values():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if any(not row.get("source") for row in rows):
            raise ValueError(f"{path}: every row needs a source")
        for r in rows:
            out[(r["gpu"], int(r["head_dim"]), r["causal"] == "true", int(r["seq"]))] = float(r["tflops"])
    return out


def fwd_bwd_report() -> tuple[dict[FwdBwdKey, tuple[float, float, float]], dict[str, float]]:
    """(model forward+backward, forward-only and backward-only TFLOPS per published point; MAPE per GPU)."""
    from attnsim.studies.gpu_backward import pass_report

    published = load_fwd_bwd()
    model = {}
    for key in sorted(published):
        gpu, d, causal, seq = key
        rep = pass_report(gpu, "flash2", seq, d, "forward+backward", causal=causal)
        forward_flops = rep["flops"] / 3.5
        model[key] = (rep["tflops"], forward_flops / rep["forward_latency_s"] / 1e12,
                      2.5 * forward_flops / rep["backward_latency_s"] / 1e12)
    mapes = {}
    for gpu in sorted({k[0] for k in published}):
        keys = [k for k in sorted(published) if k[0] == gpu]
        mapes[gpu] = mape_percent([model[k][0] for k in keys], [published[k] for k in keys])
    return model, mapes


def fwd_bwd_lines(model: dict[FwdBwdKey, tuple[float, float, float]]) -> list[str]:
    """Markdown rows: published and model FA2 forward+backward TFLOPS, with the model's two parts."""
    published = load_fwd_bwd()
    lines = ["| GPU | head dim | mask | seqlen | published fwd+bwd | model fwd+bwd | error | model fwd | model bwd |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(published):
        q, (p, f, b) = published[key], model[key]
        lines.append(f"| {key[0]} | {key[1]} | {'causal' if key[2] else 'non-causal'} | {key[3]} | {q:.0f} | "
                     f"{p:.0f} | {100 * (p - q) / q:+.1f}% | {f:.0f} | {b:.0f} |")
    return lines


def backward_ablation(spec: GpuSpec) -> list[tuple[str, dict[str, float]]]:
    """(mechanism switched off, MAPE per design) for each backward mechanism, the model first."""
    from attnsim.mappers import gpu_template_backward as template
    from attnsim.mappers.gpu_mechanisms import BACKWARD_MECHANISMS, with_mechanisms

    rows = [("none (the model)", backward_report(spec)[1])]
    original = template.backward_section
    for name in BACKWARD_MECHANISMS:
        template.backward_section = lambda mapping, n=name: with_mechanisms(original(mapping), **{n: False})
        try:
            rows.append((name, backward_report(spec)[1]))
        finally:
            template.backward_section = original
    return rows


__all__ += ["backward_ablation", "fwd_bwd_lines", "fwd_bwd_report", "load_fwd_bwd"]


ROUND3_MECHANISMS: tuple[str, ...] = ("operand_read_completion", "source_op_order")
"""FA2's backward mechanisms of issue #17's third round (docs/validation.md's before/after table)."""


ROUND4_MECHANISMS: tuple[str, ...] = ("barrier_drain",)
"""FA2's backward mechanism of issue #17's fourth round: the latency exposed at its __syncthreads."""


def backward_before_after(spec: GpuSpec, mechanisms: tuple[str, ...] = ROUND3_MECHANISMS
                          ) -> tuple[dict[Key, float], float]:
    """FA2 backward TFLOPS per published point with ``mechanisms`` off (the others as in the mapping),
    and that MAPE."""
    from attnsim.mappers import gpu_template_backward as template
    from attnsim.mappers.gpu_mechanisms import with_mechanisms

    published = load_backward()
    keys = [k for k in sorted(published) if k[0] == "flash2"]
    original = template.backward_section
    template.backward_section = lambda mapping: with_mechanisms(original(mapping), **{n: False for n in mechanisms})
    try:
        before = {k: run_backward(spec, k[0], make_workload(k[2], k[1])).tflops for k in keys}
    finally:
        template.backward_section = original
    return before, mape_percent([before[k] for k in keys], [published[k] for k in keys])


def before_after_lines(before: dict[Key, float], model: dict[Key, float],
                       label: str = "round-3 mechanisms off") -> list[str]:
    """Markdown rows: FA2's published backward TFLOPS, the model without (``label``) and with some
    mechanisms."""
    published = load_backward()
    lines = [f"| head dim | seqlen | published | before ({label}) | error | after | error |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted(before):
        q, b, a = published[key], before[key], model[key]
        lines.append(f"| {key[1]} | {key[2]} | {q:.0f} | {b:.0f} | {100 * (b - q) / q:+.1f}% | {a:.0f} | "
                     f"{100 * (a - q) / q:+.1f}% |")
    return lines


__all__ += ["ROUND3_MECHANISMS", "ROUND4_MECHANISMS", "backward_before_after", "before_after_lines"]
