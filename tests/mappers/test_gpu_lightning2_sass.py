"""The Lightning-2 mapping's per-block tensor work against the compiled Triton kernel (issue #16).

Oracle: ``benchmarks/data/lightning2_triton_sass_counts.csv`` -- the no-decay forward kernel of
OpenNLPLab/lightning-attention (0ae41be) compiled by Triton 2.2 and 3.1 for sm_80 at the published table's shape,
per warp and iteration of its block loop (``benchmarks/triton_sass_counts.py``). The model derives the
four block GEMMs (Q K^T, the masked intra product, Q S and the state update K^T V) from the cascade
``lightning2-causal``; the counts come from the compiler. Each ``HMMA.1688.F32.TF32`` is one
m16n8k8 TF32 MMA (2048 FLOPs).
"""
from __future__ import annotations

import csv
from pathlib import Path

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import build_gpu_mapping

COUNTS_CSV = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "lightning2_triton_sass_counts.csv"
M16N8K8_FLOPS = 2 * 16 * 8 * 8


def _sass_rows(target: str) -> list[dict[str, str]]:
    lines = [line for line in COUNTS_CSV.read_text().splitlines() if not line.startswith("#")]
    return [row for row in csv.DictReader(lines) if row["target"] == target]


def test_block_gemms_match_the_compiled_kernel() -> None:
    spec = load_gpu("a100-sxm-80gb")
    mapping = build_gpu_mapping(spec, "lightning2-causal", "gpu-lightning2",
                                GpuAttention(batch=4, heads=32, seq=8192, head_dim=128, causal=True, dtype="bf16"))
    body = mapping.cta_schedule(mapping.order[0]).blocks[1]
    flops = sum(op.actions.get("tensor.flop_tf32", 0.0) for op in body.ops if "_c0" in op.id)
    rows = _sass_rows("sm_80")
    assert {row["triton"] for row in rows} == {"2.2.0", "3.1.0"}
    for row in rows:
        assert "HMMA.1688.F32.TF32" in row["widths"], row["triton"]
        assert flops / mapping.tile.consumers / M16N8K8_FLOPS == int(row["hmma"]), row["triton"]
