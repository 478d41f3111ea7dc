"""GPU attention mappers: tiling, occupancy and waves by hand; FLOP convention; the published H100 data.

Expected values come from hand computations written here and from the FA3 paper's published numbers
(benchmarks/data/fa3_*.csv via benchmarks/fa3_published.py, typed from /work/shared/reference/gpu-attention.md §2.2,
§2.4); the tolerances are the task's (MAPE <= 10% per design, ablation rows within 5%).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.gpu_spec import load_gpu
from attnsim.einsum_ir import load_builtin
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_cascade_mapper import resolve
from attnsim.mappers.gpu_common import (
    CtaTile,
    CtaWork,
    GpuAttention,
    cta_work,
    dispatch_schedule,
    fa3_protocol_workload,
    hbm_fraction_of_kv,
    launch_order,
    occupancy,
    waves,
)
from attnsim.mappers.gpu_template_multi_pass import spill_level
from attnsim.mappers.mapping_spec import load_mapping
from attnsim.studies.gpu import GPU_DESIGNS, build_gpu_mapping, predict
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fa3_published import ABLATION_SHAPE, FA3_ABLATION, FA3_FIG5_TFLOPS, FA3_SEQLENS  # noqa: E402  (published data, CSV)

H100 = load_gpu("h100-sxm")
SHAPES = [(d, causal) for d in (64, 128, 256) for causal in (False, True)]


def _resolved(design: str, workload: GpuAttention):   # type: ignore[no-untyped-def]
    cascade, mapping = GPU_DESIGNS[design]
    return resolve(load_builtin(cascade + ("-causal" if workload.causal else "")), load_mapping(mapping),
                   workload, H100)


def _tile(design: str, workload: GpuAttention) -> CtaTile:
    return _resolved(design, workload).tile


def simulate(design: str, workload: GpuAttention, switches: dict | None = None):   # type: ignore[no-untyped-def]
    return predict(H100, design, workload, switches)


@pytest.fixture(scope="module")
def fig5_predictions() -> dict[str, dict[tuple[int, bool, int], float]]:
    """TFLOPS of FA2 and FA3 at the 36 shapes of FA3 Fig. 5 (computed once for the module)."""
    out: dict[str, dict[tuple[int, bool, int], float]] = {}
    for design in ("flash2", "flash3"):
        out[design] = {}
        for d, causal in SHAPES:
            for seq in FA3_SEQLENS:
                workload = fa3_protocol_workload(seq, d, causal=causal)
                out[design][(d, causal, seq)] = simulate(design, workload).tflops
    return out


# ----------------------------------------------------------------------------- workload, FLOPs


def test_fa3_protocol_shapes() -> None:
    # 16k tokens, hidden 2048
    assert fa3_protocol_workload(512, 64) == GpuAttention(batch=32, heads=32, seq=512, head_dim=64)
    assert fa3_protocol_workload(16384, 256, causal=True) == GpuAttention(1, 8, 16384, 256, causal=True)
    assert fa3_protocol_workload(4096, 128, batch=3, heads=5).batch == 3


def test_flop_convention_and_causal_halves() -> None:
    full = GpuAttention(batch=2, heads=16, seq=8192, head_dim=128)
    assert full.flops == 4 * 8192 ** 2 * 128 * 16 * 2
    assert GpuAttention(2, 16, 8192, 128, causal=True).flops == full.flops / 2
    run = simulate("flash3", full)
    assert run.tflops == pytest.approx(full.flops / run.latency_s / 1e12)
    assert run.latency_s == pytest.approx(run.cycles / 1830e6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"head_dim": 96}, "gpu attention: head_dim: expected one of 64, 128, 256, got 96"),
    ({"seq": 0}, "gpu attention: seq: expected a positive integer, got 0"),
    ({"dtype": "fp4"}, "gpu attention: dtype: expected one of fp16, bf16, fp8, got 'fp4'"),
])
def test_bad_workloads(kwargs: dict, message: str) -> None:
    with pytest.raises(MappingError) as info:
        GpuAttention(**{"batch": 1, "heads": 1, "seq": 512, "head_dim": 64, **kwargs})
    assert str(info.value) == message


# ----------------------------------------------------------------------------- tiles, occupancy, waves


def test_flash2_occupancy_by_hand() -> None:
    # FA2 head dim 128 on H100: 128 x 64 tile, 4 warps x 32 threads x 255 registers x 4 B = 130560 B
    # -> 262144 // 130560 = 2 CTAs; SMEM (128 + 2 x 64) x 128 x 2 B = 65536 B -> 233472 // 65536 = 3
    tile = _tile("flash2", fa3_protocol_workload(4096, 128))
    assert (tile.block_m, tile.block_n, tile.threads, tile.smem_bytes) == (128, 64, 128, 65536)
    occ = occupancy(H100, tile)
    assert (occ.by_registers, occ.by_smem, occ.resident_ctas, occ.limited_by) == (2, 3, 2, "registers")


def test_flash3_occupancy_and_smem_by_hand() -> None:
    # FA3 head dim 256: 128 x 80, 2 consumer + 1 producer warpgroups = 384 threads; SMEM Q 128x256x2
    # + 2 stages x (K + V) 80x256x2 = 65536 + 163840 = 229376 B <= 227 KB -> 1 CTA
    tile = _tile("flash3", fa3_protocol_workload(4096, 256))
    assert (tile.block_m, tile.block_n, tile.threads, tile.smem_bytes) == (128, 80, 384, 229376)
    assert tile.registers_per_thread == 168   # 65536 registers / 384 threads = 170 -> multiple of 8
    assert occupancy(H100, tile).resident_ctas == 1


def test_occupancy_errors() -> None:
    too_much = CtaTile(block_m=128, block_n=128, consumers=2, threads=128, registers_per_thread=64,
                       smem_bytes=300_000)
    with pytest.raises(MappingError, match=r"smem_bytes: expected at most 232448 per CTA, got 300000"):
        occupancy(H100, too_much)
    greedy = CtaTile(128, 128, 2, 1024, 255, 1024)
    with pytest.raises(MappingError, match=r"a CTA needs 1044480 register bytes; the SM has 262144"):
        occupancy(H100, greedy)


@pytest.mark.parametrize(("ctas", "sms", "resident", "expected"),
                         [(2048, 132, 1, 16), (2048, 132, 2, 8), (264, 132, 2, 1), (265, 132, 2, 2)])
def test_waves_by_hand(ctas: int, sms: int, resident: int, expected: int) -> None:
    assert waves(ctas, sms, resident) == expected == math.ceil(ctas / (sms * resident))


def test_run_reports_ctas_and_waves() -> None:
    # FA2, head dim 64, seq 2048: 16384/2048 = 8 batch x 32 heads x 2048/128 = 16 m-blocks = 4096 CTAs,
    # 2 per SM -> ceil(4096 / 264) = 16 waves
    run = simulate("flash2", fa3_protocol_workload(2048, 64))
    assert (run.ctas, run.resident_ctas, run.waves) == (4096, 2, 16)


def test_causal_cta_work_by_hand() -> None:
    workload = GpuAttention(1, 1, 1000, 256, causal=True)
    tile = CtaTile(block_m=128, block_n=80, consumers=2, threads=384, registers_per_thread=168,
                   smem_bytes=1)
    # m=0: rows 0..127 need keys 0..127 -> tiles 0,1 (keys 0..159), both cross the diagonal
    assert cta_work(workload, tile, 0) == CtaWork(2, 2)
    # m=1: rows 128..255 -> keys 0..255 -> tiles 0..3; tiles from 128 // 80 = 1 on are masked
    assert cta_work(workload, tile, 1) == CtaWork(4, 3)
    # m=7 (last, ragged): rows 896..999 (104 real rows) -> keys 0..999 -> 13 tiles; masked from 896 // 80 = 11
    assert cta_work(workload, tile, 7) == CtaWork(13, 2, rows=104)
    assert cta_work(GpuAttention(1, 1, 1000, 256), tile, 3) == CtaWork(13, 0)   # ceil(1000 / 80)
    order = launch_order(workload, tile, longest_first=True)
    assert [w.tiles for w in order] == sorted((w.tiles for w in order), reverse=True)


def test_hbm_fraction_is_one_over_readers() -> None:
    tile = CtaTile(128, 128, 2, 384, 168, 1)
    # non-causal: every one of the seq/128 CTAs of a head reads every K/V tile once
    assert hbm_fraction_of_kv(GpuAttention(1, 1, 1024, 128), tile) == pytest.approx(1 / 8)
    # causal, 4 blocks: CTAs read 1 + 2 + 3 + 4 = 10 tiles of the 4 distinct ones
    assert hbm_fraction_of_kv(GpuAttention(1, 1, 512, 128, causal=True), tile) == pytest.approx(4 / 10)


def test_dispatch_is_greedy_list_scheduling() -> None:
    # 5 CTAs of 10 cycles on 2 slots: 10 + 10 + 10 = 30; [30, 10, 10, 10] on 2 slots: 30
    assert run_schedule(dispatch_schedule([10] * 5, 2)).cycles == 30
    assert run_schedule(dispatch_schedule([30, 10, 10, 10], 2)).cycles == 30
    assert run_schedule(dispatch_schedule([10, 10, 10, 30], 2)).cycles == 40


def test_one_cta_tensor_time_is_its_flops_over_the_rate() -> None:
    # FA3 head dim 128 non-causal, 3 K/V tiles: 2 warpgroups x 3 tiles x (QK + PV) of
    # 2 x 64 x 176 x 128 FLOPs each, at 4096 FLOP/cycle (wgmma fraction 1): 6 x 2 x 704 cycles
    workload = fa3_protocol_workload(512, 128)
    mapping = build_gpu_mapping(H100, "attention-1pass", "gpu-flash3", workload)
    result = run_schedule(mapping.cta_schedule(CtaWork(3, 0)))
    assert result.busy_cycles["tensor"] == 2 * 3 * 2 * (2 * 64 * 176 * 128 / 4096)
    assert result.actions["tensor.flop_fp16"] == 2 * 3 * 2 * (2 * 64 * 176 * 128)
    # one exp per score plus one correction per row and tile, 64 x 176 + 64 per warpgroup and tile
    assert result.actions["mufu.op"] == pytest.approx(2 * 3 * (64 * 176 + 64) + 2 * 64)


def test_same_inputs_same_numbers() -> None:
    workload = fa3_protocol_workload(2048, 64, causal=True)
    first = simulate("flash3", workload)
    second = simulate("flash3", workload)
    assert (first.cycles, first.tflops, first.bound) == (second.cycles, second.tflops, second.bound)


# ----------------------------------------------------------------------------- published H100 data


def test_mape_against_fa3_figure_5(fig5_predictions: dict) -> None:
    for design, published in FA3_FIG5_TFLOPS.items():
        errors = [abs(fig5_predictions[design][(d, c, seq)] - values[i]) / values[i]
                  for (d, c), values in published.items() for i, seq in enumerate(FA3_SEQLENS)]
        assert len(errors) == 36
        assert 100 * sum(errors) / len(errors) <= 10.0, design


def test_flash3_at_least_flash2_everywhere(fig5_predictions: dict) -> None:
    for key, fa2 in fig5_predictions["flash2"].items():
        assert fig5_predictions["flash3"][key] >= fa2, key


def test_fa3_ablation_order_and_values() -> None:
    workload = GpuAttention(**ABLATION_SHAPE)
    predicted = [simulate("flash3", workload, switches).tflops for _, switches, _ in FA3_ABLATION]
    published = [value for _, _, value in FA3_ABLATION]
    assert published == [661, 582, 570]
    assert predicted[0] > predicted[1] > predicted[2]
    for model, paper in zip(predicted, published):
        assert abs(model - paper) / paper <= 0.05


def test_fp8_is_faster_than_fp16_for_flash3() -> None:
    fp16 = simulate("flash3", fa3_protocol_workload(16384, 128))
    fp8 = simulate("flash3", fa3_protocol_workload(16384, 128, dtype="fp8"))
    assert fp8.tflops > fp16.tflops
    # the FP8 operands halve the K/V bytes loaded from L2
    assert fp8.actions["l2.byte"] < fp16.actions["l2.byte"]


# ----------------------------------------------------------------------------- FuseMax, FLAT


def test_fusemax_split_balances_the_units_by_hand() -> None:
    # head dim 64, FA3 tile 192 x 128 (64 rows per warpgroup): per warpgroup and tile
    # tensor T = 4 x 64 x 128 x 64 / 4096 = 512, MUFU M = 64 x 128 / 16 = 512,
    # FP32 F = (3.5 x 8192 + 3 x 64 + 64 x 64) / 128 = 257.5, polynomial P = 7 x 8192 / 128 = 448
    # f = (T + M - F) / (M + P) = 766.5 / 960
    assert _resolved("fusemax", fa3_protocol_workload(4096, 64)).poly["fraction"] == pytest.approx(766.5 / 960)
    # head dim 128: (1408 + 704 - 373.5) / (704 + 616) > 1 -> every exp on the FMA lanes
    assert _resolved("fusemax", fa3_protocol_workload(4096, 128)).poly["fraction"] == 1.0


def test_fusemax_moves_exponentials_off_the_mufu() -> None:
    workload = fa3_protocol_workload(8192, 128)
    fa3 = simulate("flash3", workload)
    fusemax = simulate("fusemax", workload)
    assert fusemax.actions["mufu.op"] < 0.05 * fa3.actions["mufu.op"]
    assert fusemax.actions["fp32.op"] > fa3.actions["fp32.op"]
    assert fusemax.utilisation["mufu"] < fa3.utilisation["mufu"]


def test_flat_spills_score_rows_that_do_not_fit() -> None:
    # 128 rows x 512 keys x 4 B = 256 KB of scores > 227 KB SMEM; 132 x 256 KB = 33 MB <= 50 MB L2
    assert spill_level(_resolved("flat", fa3_protocol_workload(512, 128))) == "l2"
    # at 16k: 132 x 128 x 16384 x 4 B = 1.1 GB > L2 -> HBM
    assert spill_level(_resolved("flat", fa3_protocol_workload(16384, 128))) == "hbm"
    # 64 keys: 128 x 64 x 4 B = 32 KB of scores fit next to Q and the K/V stages
    assert spill_level(_resolved("flat", GpuAttention(1, 1, 64, 64))) == "smem"
    run = simulate("flat", fa3_protocol_workload(16384, 128))
    # three passes: S written and read (4 + 4 B) and P written and read (2 + 2 B) per score, 16 heads
    assert run.actions["hbm.byte"] > 12 * (16384 * 16384 * 16)
