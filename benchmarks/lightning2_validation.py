"""Lightning Attention-2 (no decay) vs FlashAttention-2 causal: both curves and their crossover length.

Usage (from the repository root)::

    .venv/bin/python benchmarks/lightning2_validation.py

Published: benchmarks/data/lightning2_fwd_ms.csv (OpenNLPLab/lightning-attention benchmarks/README.md
at commit 0ae41be: forward ms by triton.testing.do_bench at batch 4, 32 heads, head dim 128, bf16; the
GPU is not stated), Lightning-2 without decay (what the cascade lightning2-causal computes) against
Flash2 = flash_attn_func(causal=True); the published curves cross between 4K and 8K.

Predicted, nothing fitted: Lightning-2 = cascade lightning2-causal with mapping gpu-lightning2 (style
recurrent: one CTA per (batch, head, 32 value columns) walks the 64-row blocks in series with the FP32
state; TF32 mma.sync), FA2 = design flash2 (attention-1pass-causal, gpu-flash2) with --causal, both at
the table's shapes on h100-sxm and a100-sxm-80gb (the table does not say which GPU). The crossover is
the length where the two predicted latencies are equal, found by bisection on the model between the
table's lengths (log-linear interpolation of the published curves for the published one).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.mappers.mapping_spec import MappingSpec
from attnsim.studies.gpu import gpu_mapping_spec, predict, predict_cascade

DATA = Path(__file__).resolve().parent / "data" / "lightning2_fwd_ms.csv"
GPUS = ("h100-sxm", "a100-sxm-80gb")


def published() -> list[dict[str, float]]:
    """The table's rows: n and the three published forward times (ms)."""
    with DATA.open() as handle:
        return [{"n": int(r["n"]), "lightning2_no_decay_ms": float(r["lightning2_no_decay_ms"]),
                 "flash2_causal_ms": float(r["flash2_causal_ms"])} for r in csv.DictReader(handle)]


def workload(n: int) -> GpuAttention:
    """The table's shape: batch 4, 32 heads, head dim 128, bf16, causal."""
    return GpuAttention(batch=4, heads=32, seq=n, head_dim=128, causal=True, dtype="bf16")


def without_staging() -> MappingSpec:
    """gpu-lightning2 with ``operand_staging`` off (the ablation: operands read from SMEM as loaded)."""
    data = gpu_mapping_spec("gpu-lightning2").model_dump()
    data["gpu"] = {**data["gpu"], "operand_staging": False}
    return MappingSpec.model_validate(data)


def predicted_ms(arch: str, n: int, mapping: str | MappingSpec = "gpu-lightning2") -> tuple[float, float]:
    """(Lightning-2 ms, FA2 causal ms) predicted on ``arch`` at length ``n``."""
    spec = load_gpu(arch)
    light = predict_cascade(spec, "lightning2-causal", mapping, workload(n)).latency_s
    flash = predict(spec, "flash2", workload(n)).latency_s
    return light * 1e3, flash * 1e3


def crossover(arch: str, low: int, high: int, mapping: str | MappingSpec = "gpu-lightning2") -> int:
    """The smallest length in [low, high] (a multiple of 64) at which Lightning-2 is predicted
    faster than FA2, by bisection (the difference is monotone there)."""
    low, high = low // 64, high // 64
    while high - low > 1:
        mid = (low + high) // 2
        light, flash = predicted_ms(arch, mid * 64, mapping)
        if light < flash:
            high = mid
        else:
            low = mid
    return high * 64


def published_crossover(rows: list[dict[str, float]]) -> float:
    """Where the published curves cross: log-log interpolation between the two bracketing lengths."""
    for a, b in zip(rows, rows[1:]):
        da = math.log(a["lightning2_no_decay_ms"] / a["flash2_causal_ms"])
        db = math.log(b["lightning2_no_decay_ms"] / b["flash2_causal_ms"])
        if da > 0 >= db:
            x = math.log(a["n"]) + (math.log(b["n"]) - math.log(a["n"])) * da / (da - db)
            return math.exp(x)
    return float("nan")


def main() -> None:
    rows = published()
    print(f"published crossover (log-log interpolation): n = {published_crossover(rows):.0f}")
    for arch in GPUS:
        print(f"\n{arch}: batch 4, heads 32, head dim 128, bf16, causal")
        print("| n | Lightning-2 model ms | published ms | error % | FA2 model ms | published ms | error % | "
              "model L2/FA2 | published L2/FA2 |")
        print("|---|---|---|---|---|---|---|---|---|")
        model = {}
        for row in rows:
            n = int(row["n"])
            light, flash = predicted_ms(arch, n)
            model[n] = (light, flash)
            pl, pf = row["lightning2_no_decay_ms"], row["flash2_causal_ms"]
            print(f"| {n} | {light:.3f} | {pl:.3f} | {100 * (light / pl - 1):+.1f} | {flash:.3f} | {pf:.3f} | "
                  f"{100 * (flash / pf - 1):+.1f} | {light / flash:.3f} | {pl / pf:.3f} |")
        ns = [int(r["n"]) for r in rows]
        bracket = next(((a, b) for a, b in zip(ns, ns[1:]) if model[a][0] >= model[a][1] and model[b][0] < model[b][1]),
                       None)
        if bracket is None:
            faster = "always" if model[ns[0]][0] < model[ns[0]][1] else "never"
            print(f"predicted crossover: none in {ns[0]}..{ns[-1]} (Lightning-2 {faster} faster)")
        else:
            print(f"predicted crossover: n = {crossover(arch, *bracket)} (between {bracket[0]} and {bracket[1]})")
        lmape = sum(abs(model[int(r['n'])][0] / r['lightning2_no_decay_ms'] - 1) for r in rows) / len(rows) * 100
        fmape = sum(abs(model[int(r['n'])][1] / r['flash2_causal_ms'] - 1) for r in rows) / len(rows) * 100
        print(f"MAPE vs the published times: Lightning-2 {lmape:.1f}%, FA2 causal {fmape:.1f}%")
        ablation = without_staging()
        light_off = {n: predicted_ms(arch, n, ablation)[0] for n in ns}
        omape = sum(abs(light_off[n] / r["lightning2_no_decay_ms"] - 1) for n, r in zip(ns, rows)) / len(rows) * 100
        pair = next(((a, b) for a, b in zip(ns, ns[1:]) if light_off[a] >= model[a][1] and light_off[b] < model[b][1]),
                    None)
        where = f"n = {crossover(arch, *pair, ablation)}" if pair else "none in the table's range"
        print(f"ablation, operand_staging off: Lightning-2 MAPE {omape:.1f}%, crossover {where}")


if __name__ == "__main__":
    main()
