"""The FA2-style mapping's per-tile work against the compiled kernels' instruction counts (issue #16).

Oracle: ``benchmarks/data/fa2_flashsigmoid_sass_counts.csv`` -- FA2 v2.5.6's and FlashSigmoid's forward
kernels compiled for sm_90, per warp and K/V iteration of the main loop (``benchmarks/sass_counts.py``).
The model derives its ops from the cascades; the counts come from the compiler. Each HMMA is one
m16n8k16 (4096 FLOPs), each LDSM an ``ldmatrix.x4`` (512 B), each MUFU one special-function result per
thread. Where the kernel repeats per-row work in each of the 4 threads that share a row (the quad of the
m16n8 accumulator layout), the model counts it once per row; the test says so where it matters.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import build_gpu_mapping

COUNTS_CSV = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "fa2_flashsigmoid_sass_counts.csv"
KERNELS = {"fa2-v2.5.6": "attention-1pass", "flashsigmoid-9273b49": "sigmoid-attention"}
HMMA_FLOPS = 2 * 16 * 8 * 16
LDSM_BYTES = 4 * 8 * 8 * 2
THREADS_PER_ROW = 4              # m16n8 accumulator: a row's columns spread over a quad of threads
FP32_PIPE = ("fmul", "ffma", "fadd", "fmnmx", "f2fp")

H100 = load_gpu("h100-sxm")


def _sass(kernel: str, head_dim: int) -> dict[str, int]:
    lines = [line for line in COUNTS_CSV.read_text().splitlines() if not line.startswith("#")]
    for row in csv.DictReader(lines):
        if row["kernel"] == kernel and int(row["head_dim"]) == head_dim and row["causal"] == "false":
            return {k: int(v) for k, v in row.items() if k not in ("kernel", "causal")}
    raise AssertionError(f"no row for {kernel} at head dim {head_dim}")


def _model_per_tile(cascade: str, head_dim: int) -> tuple[dict[str, float], object]:
    """One resident CTA's actions in one K/V iteration of the body, and its tile."""
    mapping = build_gpu_mapping(H100, cascade, "gpu-fa2-style", GpuAttention(batch=1, heads=2, seq=1024,
                                                                             head_dim=head_dim))
    body = mapping.cta_schedule(mapping.order[0]).blocks[1]
    actions: dict[str, float] = {}
    for op in body.ops:
        if "_c0" in op.id:
            for key, value in op.actions.items():
                actions[key] = actions.get(key, 0.0) + value
    return actions, mapping.tile


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("head_dim", [64, 128])
def test_gemm_and_operand_reads_match_the_compiled_kernel(kernel: str, head_dim: int) -> None:
    sass = _sass(kernel, head_dim)
    actions, tile = _model_per_tile(KERNELS[kernel], head_dim)
    assert sass["block_n"] == tile.block_n
    assert actions["tensor.flop_fp16"] / tile.consumers / HMMA_FLOPS == sass["hmma"]
    fills = 2 * tile.block_n * head_dim * 2          # K and V tiles written by cp.async, 16-bit
    assert (actions["smem.byte"] - fills) / tile.consumers / LDSM_BYTES == sass["ldsm"]


@pytest.mark.parametrize("head_dim", [64, 128])
def test_exponentials_match_the_compiled_kernel(head_dim: int) -> None:
    # one MUFU op per score in both kernels; FA2's correction exp per row is computed by each of the
    # row's quad of threads in the kernel and once per row in the model
    for kernel, cascade in KERNELS.items():
        actions, tile = _model_per_tile(cascade, head_dim)
        per_thread = actions["mufu.op"] / tile.threads
        rows_per_thread = tile.block_m * THREADS_PER_ROW / tile.threads
        duplicated = (THREADS_PER_ROW - 1) / THREADS_PER_ROW * rows_per_thread if kernel.startswith("fa2") else 0
        assert per_thread + duplicated == _sass(kernel, head_dim)["mufu"], kernel


@pytest.mark.parametrize("head_dim", [64, 128])
def test_fp32_work_is_the_compiled_kernels_for_sigmoid_and_a_subset_for_softmax(head_dim: int) -> None:
    actions, tile = _model_per_tile("sigmoid-attention", head_dim)
    sass = _sass("flashsigmoid-9273b49", head_dim)
    assert actions["fp32.op"] / tile.threads == sum(sass[c] for c in FP32_PIPE)
    actions, tile = _model_per_tile("attention-1pass", head_dim)
    sass = _sass("fa2-v2.5.6", head_dim)
    # the model leaves out the quad shuffles' maxes, per-thread copies of per-row work, moves and checks
    assert actions["fp32.op"] / tile.threads < sum(sass[c] for c in FP32_PIPE)
