"""HBM traffic of the GPU designs stays between the compulsory bytes and the tiled re-reads (issue #12).

Bounds derived here from the problem alone (batch B, heads H, seq N, head dim d, element bytes b,
the CTA tile block_m x block_n the run reports):

- compulsory: every element of Q, K, V read once and O (16-bit) written once:
  ``B H (3 N d b + 2 N d)``;
- tiled re-reads: no reuse through L2 at all -- every CTA reads its query rows once and, from HBM,
  every key of every K/V tile it visits (clipped to the N real keys), plus the O store:
  ``B H (N d b + 2 d b sum_m keys(m) + 2 N d)`` with ``keys(m) = N`` (non-causal) or
  ``min(N, block_n ceil(min((m + 1) block_m, N) / block_n))`` (causal, CTA m of ceil(N / block_m)).

A problem that fits one CTA and one tile (``--seq 1`` of issue #12) moves exactly the compulsory bytes.
"""
from __future__ import annotations

import math

import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import predict

H100 = load_gpu("h100-sxm")
ONE_PASS = ("flash2", "flash3", "fusemax")
SHAPES = [(1, 64, False), (1, 128, True), (7, 256, False), (100, 64, True), (513, 128, False),
          (1000, 256, True), (3000, 128, True), (4096, 64, False)]


def _compulsory(w: GpuAttention) -> float:
    b = w.element_bytes
    return w.batch * w.heads * (3 * w.seq * w.head_dim * b + 2 * w.seq * w.head_dim)


def _tiled(w: GpuAttention, block_m: int, block_n: int) -> float:
    n, d, b = w.seq, w.head_dim, w.element_bytes
    keys = 0
    for m in range(math.ceil(n / block_m)):
        last_row = min((m + 1) * block_m, n)
        keys += min(n, block_n * math.ceil(last_row / block_n)) if w.causal else n
    return w.batch * w.heads * (n * d * b + 2 * d * b * keys + 2 * n * d)


@pytest.mark.parametrize("design", ONE_PASS)
@pytest.mark.parametrize(("seq", "head_dim", "causal"), SHAPES)
def test_hbm_traffic_between_compulsory_and_tiled(design: str, seq: int, head_dim: int, causal: bool) -> None:
    workload = GpuAttention(batch=2, heads=3, seq=seq, head_dim=head_dim, causal=causal)
    run = predict(H100, design, workload)
    low = _compulsory(workload)
    high = _tiled(workload, run.choices["block_m"], run.choices["block_n"])
    assert low * (1 - 1e-9) <= run.hbm_bytes <= high * (1 + 1e-9), (low, run.hbm_bytes, high)


@pytest.mark.parametrize("design", ONE_PASS)
def test_one_token_moves_exactly_the_compulsory_bytes(design: str) -> None:
    # issue #12: seq 1 on a 128-row, 128-key tile used to charge a whole tile per tensor
    workload = GpuAttention(batch=1, heads=1, seq=1, head_dim=64)
    run = predict(H100, design, workload)
    assert run.hbm_bytes == pytest.approx(3 * 64 * 2 + 64 * 2, rel=1e-12)


def test_flat_never_below_compulsory() -> None:
    # FLAT adds its S/P spills on top: only the lower bound holds
    for seq, head_dim, causal in SHAPES:
        workload = GpuAttention(batch=2, heads=3, seq=seq, head_dim=head_dim, causal=causal)
        assert predict(H100, "flat", workload).hbm_bytes >= _compulsory(workload) * (1 - 1e-9)


def test_flat_spill_level_from_the_mapping(tmp_path) -> None:   # type: ignore[no-untyped-def]
    # FLAT at seq 2048, head dim 64: 132 SMs x 128 rows x 2048 x 4 B = 138 MB > 50 MB L2 -> HBM by the
    # rule; forced to L2 the S and P spills (4 + 4 + 2 + 2 B per score) leave HBM
    from pathlib import Path

    from attnsim.studies.gpu import predict_cascade

    source = Path(__file__).resolve().parents[2] / "specs" / "mappings" / "gpu-flat.yaml"
    forced = tmp_path / "flat-l2.yaml"
    forced.write_text(source.read_text(encoding="utf-8") + "  spill_level: l2\n", encoding="utf-8")
    workload = GpuAttention(batch=1, heads=4, seq=2048, head_dim=64)
    auto = predict_cascade(H100, "attention-3pass-deferred", "gpu-flat", workload)
    in_l2 = predict_cascade(H100, "attention-3pass-deferred", str(forced), workload)
    assert (auto.choices["score_rows_in"], in_l2.choices["score_rows_in"]) == ("hbm", "l2")
    scores = 4 * 2048 * 2048
    assert auto.hbm_bytes - in_l2.hbm_bytes == pytest.approx(12 * scores, rel=1e-9)
    assert in_l2.hbm_bytes == pytest.approx(_compulsory(workload), rel=1e-9)
