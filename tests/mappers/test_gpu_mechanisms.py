"""The named GPU schedule mechanisms of issue #17 (mappers/gpu_mechanisms.py) move predictions the way
their physics says, and their work is what the kernels' instruction counts give.

Directions (each mechanism off, everything else on, FA3 on h100-sxm): removing a fixed cost
(``cta_setup``, ``epilogue_smem``, ``kernel_launch``) or FP8 layout work (``fp8_v_transpose``,
``fp8_accumulator_permute``) never slows a point; removing the persistent overlap never speeds one up;
the FP8 mechanisms leave FP16 unchanged. No prediction exceeds the spec's dense tensor peak.
Closed forms written here from the workload alone: the launch gap adds exactly 2 us x the clock; the
V transpose moves 2 x (bytes of every V tile a CTA loads) through SMEM; the permutes are 2 per 8
scores.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_cascade_mapper import map_cascade
from attnsim.mappers.gpu_mapping import gpu_section
from attnsim.mappers.gpu_mechanisms import MECHANISMS, with_mechanisms
from attnsim.studies.gpu import GpuRun, gpu_cascade, gpu_mapping_spec, make_workload, run_gpu_mapping

H100 = load_gpu("h100-sxm")
MAPPING = gpu_mapping_spec("gpu-flash3")
SECTION = gpu_section(MAPPING)
POINTS = [(d, causal, seq) for d in (64, 128, 256) for causal in (False, True) for seq in (512, 4224)]
FIXED_COSTS = ("cta_setup", "epilogue_smem", "kernel_launch")
FP8_ONLY = ("fp8_v_transpose", "fp8_accumulator_permute")
_CACHE: dict[tuple, GpuRun] = {}


def _run(point: tuple[int, bool, int], dtype: str, off: tuple[str, ...] = ()) -> GpuRun:
    key = (point, dtype, off)
    if key not in _CACHE:
        head_dim, causal, seq = point
        workload = make_workload(seq, head_dim, causal=causal, dtype=dtype)
        section = with_mechanisms(SECTION, **{name: False for name in off})
        mapping = map_cascade(gpu_cascade("attention-1pass", causal), MAPPING, workload, H100, section=section,
                              design="flash3")
        _CACHE[key] = run_gpu_mapping(mapping, H100)
    return _CACHE[key]


def test_flash3_switches_every_mechanism_on() -> None:
    assert all(getattr(SECTION.mechanisms, name) for name in MECHANISMS)


@pytest.mark.parametrize("dtype", ["fp16", "fp8"])
@pytest.mark.parametrize("name", [*FIXED_COSTS, *FP8_ONLY])
def test_removing_a_cost_never_slows_a_point(name: str, dtype: str) -> None:
    for point in POINTS:
        on, off = _run(point, dtype), _run(point, dtype, (name,))
        assert off.cycles <= on.cycles, (name, dtype, point, on.cycles, off.cycles)
        if dtype == "fp16" and name in FP8_ONLY:
            assert off.cycles == on.cycles, (name, point)


@pytest.mark.parametrize("dtype", ["fp16", "fp8"])
def test_removing_the_persistent_overlap_never_speeds_up(dtype: str) -> None:
    for point in POINTS:
        on, off = _run(point, dtype), _run(point, dtype, ("persistent_overlap",))
        assert off.cycles >= on.cycles, (dtype, point)
        if dtype == "fp8":   # the paper's FP8 kernel is not persistent (gpu-flash3.yaml)
            assert off.cycles == on.cycles, point


def test_the_launch_gap_adds_two_microseconds_at_the_clock() -> None:
    gap_cycles = round(2.0e-6 * 1830.0e6)   # the spec's tensor clock, FA3's fixed 1830 MHz
    for point in POINTS[:4]:
        on, off = _run(point, "fp8"), _run(point, "fp8", ("kernel_launch",))
        assert on.cycles - off.cycles == gap_cycles, point


def test_v_transpose_moves_twice_every_v_tile_through_smem() -> None:
    seq, head_dim = 2048, 128   # FP8 tile 128 x 256: 8 whole K/V tiles, 16 query blocks per head
    on, off = _run((head_dim, False, seq), "fp8"), _run((head_dim, False, seq), "fp8", ("fp8_v_transpose",))
    batch, heads = 16384 // seq, 2048 // head_dim
    ctas = batch * heads * (seq // 128)
    v_tile_bytes = 256 * head_dim * 1
    expected = 2 * ctas * (seq // 256) * v_tile_bytes
    assert on.actions["smem.byte"] - off.actions["smem.byte"] == pytest.approx(expected, rel=1e-9)


def test_accumulator_permutes_are_two_per_eight_scores() -> None:
    seq, head_dim = 2048, 128
    on = _run((head_dim, False, seq), "fp8")
    off = _run((head_dim, False, seq), "fp8", ("fp8_accumulator_permute",))
    batch, heads = 16384 // seq, 2048 // head_dim
    scores = batch * heads * seq * seq
    assert on.actions["fp32.op"] - off.actions["fp32.op"] == pytest.approx(2 / 8 * scores, rel=1e-9)


@pytest.mark.parametrize("dtype", ["fp16", "fp8"])
def test_no_prediction_exceeds_the_dense_tensor_peak(dtype: str) -> None:
    peak = H100.sms * H100.tensor_flops_per_cycle(dtype) * H100.clock_hz / 1e12   # 989 / 1979 TFLOPS
    for point in POINTS:
        for off in ((), tuple(MECHANISMS)):
            assert _run(point, dtype, off).tflops < peak, (dtype, point, off)
