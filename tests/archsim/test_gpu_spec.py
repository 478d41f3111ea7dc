"""GPU specs (archsim.gpu_spec): the shipped files carry the reference's numbers; bad specs fail in one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnsim.archsim.errors import SpecError
from attnsim.archsim.spec import read_yaml_mapping
from attnsim.archsim.gpu_spec import (DTYPE_BYTES, ENERGY_ACTIONS, OPTIONAL_ENERGY_ACTIONS, GpuSpec, available_gpus, gpu_energy_breakdown_pj,
                                     is_gpu_mapping, load_gpu)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "arch"
SXM_TEXT = (SPECS / "h100-sxm.yaml").read_text(encoding="utf-8")

# /work/shared/reference/gpu-attention.md §1.1-1.2 (NVIDIA datasheet, CUDA programming guide, FA3):
# (SMs, tensor clock Hz, HBM bytes/s, dense FP16 TFLOPS)
REFERENCE = {
    "h100-sxm": (132, 1830e6, 3.35e12, 989.4),
    "h100-pcie": (114, 1620e6, 2.0e12, 756.0),
    "h200": (132, 1830e6, 4.8e12, 989.4),
}


def test_the_four_gpus_are_shipped() -> None:
    assert available_gpus() == ["a100-sxm-80gb", "h100-pcie", "h100-sxm", "h200"]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_specs_carry_the_reference_numbers(name: str) -> None:
    sms, clock_hz, hbm, fp16_tflops = REFERENCE[name]
    spec = load_gpu(name)
    assert spec.sms == sms
    assert spec.clock_hz == clock_hz
    assert spec.memory.hbm_bandwidth_bytes_per_s.value == hbm
    # per SM per clock: FP16/BF16 4096, FP8 8192 tensor FLOPs, 128 FP32 lanes, 16 MUFU, 128 B SMEM
    assert [spec.tensor_flops_per_cycle(t) for t in ("fp16", "bf16", "fp8")] == [4096, 4096, 8192]
    per_clock = spec.per_sm_per_clock
    assert (per_clock.fp32_lanes.value, per_clock.mufu_ops.value, per_clock.smem_bytes.value) == (128, 16, 128)
    assert spec.storage.register_file_bytes_per_sm.value == 256 * 1024
    assert spec.storage.smem_bytes_per_sm.value == 228 * 1024
    assert spec.storage.smem_bytes_per_cta.value == 227 * 1024
    assert spec.peak_tensor_flops_per_s("fp16") / 1e12 == pytest.approx(fp16_tflops, rel=2e-3)
    assert spec.peak_tensor_flops_per_s("fp8") == 2 * spec.peak_tensor_flops_per_s("fp16")
    assert spec.hbm_bytes_per_cycle_per_sm == pytest.approx(hbm / (sms * clock_hz))
    assert spec.origin == f"specs/arch/{name}.yaml"


def test_every_number_has_a_source_and_calibration_is_justified() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if "value" in node:
                assert isinstance(node.get("source"), str) and node["source"].strip(), path
            if "pj" in node:
                assert node.get("source") and isinstance(node.get("estimate"), bool), path
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            assert path.endswith((".value", ".pj")), f"bare number at {path}"

    for name in REFERENCE:
        data = read_yaml_mapping(SPECS / f"{name}.yaml", name)
        assert data["kind"] == "gpu"
        walk(data, name)
        calibration = data["calibration"]
        assert set(calibration) == {"mma_sync_tensor_fraction", "wgmma_tensor_fraction", "mufu_tensor_overlap"}
        assert all(entry["justification"].strip() for entry in calibration.values())
        # calibration constants are shared by all specs (the model is not refitted per GPU)
        assert calibration == read_yaml_mapping(SPECS / "h100-sxm.yaml", "sxm")["calibration"]


def test_energy_at_peak_stays_under_the_board_bound() -> None:
    # GA §1.3: 700 W / 989 TFLOP/s = 0.71 pJ per dense FP16 FLOP is everything included
    spec = load_gpu("h100-sxm")
    assert spec.energy["tensor.flop_fp16"].pj < 700 / 989.4e12 * 1e12
    assert set(spec.energy) == set(ENERGY_ACTIONS) | set(OPTIONAL_ENERGY_ACTIONS)   # every spec prices TF32 too


def test_energy_breakdown_is_counts_times_table_plus_static_power() -> None:
    spec = load_gpu("h100-sxm")
    breakdown = gpu_energy_breakdown_pj(spec, {"tensor.flop_fp16": 1e6, "hbm.byte": 1000}, 2e-6)
    # products of two or three doubles: exact to a few ulp (rel 1e-14 leaves a 20x margin)
    assert breakdown["tensor.flop_fp16"] == pytest.approx(1e6 * 0.19, rel=1e-14)
    assert breakdown["hbm.byte"] == pytest.approx(1000 * 31.2, rel=1e-14)
    assert breakdown["static"] == pytest.approx(100.0 * 2e-6 * 1e12, rel=1e-14)   # 100 W for 2 us
    # counts may be zero or fractional (averages); only negative counts and latencies are refused
    partial = gpu_energy_breakdown_pj(spec, {"fp32.op": 0, "smem.byte": 0.5}, 0.0)
    assert partial == {"fp32.op": 0.0, "smem.byte": pytest.approx(0.5 * spec.energy["smem.byte"].pj, rel=1e-14),
                       "static": 0.0}
    with pytest.raises(SpecError, match=r"latency_s: expected a number >= 0, got -0.5"):
        gpu_energy_breakdown_pj(spec, {"fp32.op": 1}, -0.5)
    with pytest.raises(SpecError, match=r"energy: no entry for action 'dram.read'"):
        gpu_energy_breakdown_pj(spec, {"dram.read": 1}, 0.0)
    with pytest.raises(SpecError, match=r"action 'fp32.op': expected a count >= 0, got -1"):
        gpu_energy_breakdown_pj(spec, {"fp32.op": -1}, 0.0)


# ------------------------------------------------------------------------------------- bad specs


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    assert SXM_TEXT.count(old) == 1, old
    path = tmp_path / "gpu.yaml"
    path.write_text(SXM_TEXT.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("sm_count: {value: 132,", "sm_count: {value: 0,", "sm_count.value: expected a positive integer, got 0"),
    ("sm_count: {value: 132,", "sm_count: {value: many,",
     "sm_count.value: expected a positive integer, got 'many'"),
    ("sm_count: {value: 132, source: \"GA §1.1 (NVIDIA datasheet via hpctech/prohardver): 132 SMs enabled "
     "(66 TPC), die has 144\"}", "sm_count: {value: 132}", "sm_count.source: missing required key"),
    ("    fp8:  {value: 8192,", "    fp4:  {value: 8192,",
     "per_sm_per_clock.tensor_flops.fp4: unknown key 'fp4' (known: fp16, bf16, fp8, tf32)"),
    ("    value: 0.0\n", "    value: 1.5\n", "calibration.mufu_tensor_overlap.value: expected a number in [0, 1], "
                                             "got 1.5"),
    ("  smem_bytes_per_cta:         {value: 232448,", "  smem_bytes_per_cta:         {value: 300000,",
     "storage.smem_bytes_per_cta.value: expected at most smem_bytes_per_sm (233472), got 300000"),
    ("  mufu.op:          {pj: 4.6, per: op,", "  mufu.exp:         {pj: 4.6, per: op,",
     "energy.mufu.exp: unknown action 'mufu.exp' (known: tensor.flop_fp16, tensor.flop_bf16, "
     "tensor.flop_fp8, fp32.op, mufu.op, smem.byte, l2.byte, hbm.byte, tensor.flop_tf32)"),
    ("  hbm.byte:         {pj: 31.2, per: byte,", "  hbm.byte:         {pj: 31.2, per: op,",
     "energy.hbm.byte.per: expected 'byte' for hbm.byte, got 'op'"),
    ("  l2.byte:          {pj: 1.25, per: byte, estimate: true,", "  l2.byte:          {pj: 1.25, per: byte, "
     "estimate: maybe,", "energy.l2.byte.estimate: expected true or false, got 'maybe'"),
    ("kind: gpu\n", "", "kind: expected 'gpu' (a GPU spec starts with 'kind: gpu'), got no kind key"),
    ("kind: gpu\n", "kind: accelerator\n",
     "kind: expected 'gpu' (a GPU spec starts with 'kind: gpu'), got 'accelerator'"),
])
def test_bad_spec_files_give_one_line_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(SpecError) as info:
        load_gpu(path)
    assert str(info.value) == f"{path}: {message}"
    assert "\n" not in str(info.value)


def test_missing_energy_entry_and_malformed_yaml(tmp_path: Path) -> None:
    path = _variant(tmp_path, "  smem.byte:", "  # smem.byte:")
    with pytest.raises(SpecError, match=r": energy: missing entry 'smem.byte'$"):
        load_gpu(path)
    path.write_text("kind: gpu\nname: [x\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"gpu\.yaml:\d+: malformed YAML"):
        load_gpu(path)


def test_unknown_names_and_paths() -> None:
    with pytest.raises(SpecError, match=r"^unknown GPU spec 'a100' \(known: a100-sxm-80gb, h100-pcie, h100-sxm, h200; or give "):
        load_gpu("a100")
    with pytest.raises(SpecError, match=r"^nowhere/x\.yaml: no such GPU spec file$"):
        load_gpu("nowhere/x.yaml")
    accelerator = SPECS / "fusemax-cloud.yaml"
    with pytest.raises(SpecError) as info:
        load_gpu(accelerator)
    assert str(info.value) == (f"{accelerator}: kind: expected 'gpu' (a GPU spec starts with 'kind: gpu'), "
                               "got no kind key")


def test_overrides_are_revalidated_and_named() -> None:
    spec = load_gpu("h100-sxm")
    faster = spec.with_overrides({"memory.hbm_bandwidth_bytes_per_s.value": 4.8e12})
    assert faster.memory.hbm_bandwidth_bytes_per_s.value == 4.8e12 and spec != faster
    assert spec.with_overrides({"energy.hbm.byte.pj": 10.0}).energy["hbm.byte"].pj == 10.0
    with pytest.raises(SpecError, match=r"^--set sm_count\.value=-1: expected a positive integer, got -1$"):
        spec.with_overrides({"sm_count.value": -1})
    with pytest.raises(SpecError, match=r"^--set clocks\.turbo_hz=1: unknown key 'turbo_hz' \(known: "
                                        r"tensor_hz, boost_hz\)$"):
        spec.with_overrides({"clocks.turbo_hz": 1})
    with pytest.raises(SpecError, match=r"^--set energy\.hbm\.bit\.pj=1: unknown key 'hbm\.bit\.pj'"):
        spec.with_overrides({"energy.hbm.bit.pj": 1})


def test_from_mapping_equals_file_and_hashes() -> None:
    data = read_yaml_mapping(SPECS / "h100-sxm.yaml", "sxm")
    from_mapping = GpuSpec.from_mapping(data)
    assert from_mapping == load_gpu("h100-sxm")
    assert hash(from_mapping) == hash(load_gpu("h100-sxm"))
    assert from_mapping.origin == "<mapping>"


def test_static_power_above_the_tdp_is_refused_in_one_line() -> None:
    with pytest.raises(SpecError) as info:
        load_gpu("h100-sxm", {"power.static_w.value": 800.0})      # TDP 700 W (NVIDIA datasheet)
    assert str(info.value) == ("--set power.static_w.value=800.0: expected at most tdp_w (700), got 800")


def test_tensor_clock_may_equal_the_boost_clock() -> None:
    # the check is boost >= tensor: a GPU run at its boost clock is valid; one MHz above is refused
    spec = load_gpu("h100-sxm")
    boost = spec.clocks.boost_hz.value
    assert spec.with_overrides({"clocks.tensor_hz.value": boost}).clocks.tensor_hz.value == boost
    with pytest.raises(SpecError, match=r"clocks\.boost_hz\.value: expected at least tensor_hz "
                                        r"\(1\.981e\+09\), got 1\.98e\+09$"):
        spec.with_overrides({"clocks.tensor_hz.value": boost + 1e6})


@pytest.mark.parametrize(("data", "expected"), [
    ({"kind": "gpu"}, True), ({"kind": "accelerator"}, False), ({"kind": "workload"}, False), ({}, False),
    (["kind", "gpu"], False)])
def test_is_gpu_mapping_only_for_kind_gpu(data: object, expected: bool) -> None:
    assert is_gpu_mapping(data) is expected


def test_dtype_widths_are_the_formats_bits_over_eight() -> None:
    # IEEE 754 binary16 and bfloat16 are 16-bit formats, OCP FP8 (E4M3/E5M2) 8-bit
    assert DTYPE_BYTES == {"fp16": np.dtype(np.float16).itemsize, "bf16": 16 // 8, "fp8": 8 // 8}


def test_per_sm_bandwidth_shares() -> None:
    # H100 SXM (specs/arch/h100-sxm.yaml): 3.35 TB/s HBM and 5.5 TB/s L2 over 132 SMs at 1830 MHz
    spec = load_gpu("h100-sxm")
    assert spec.hbm_bytes_per_cycle_per_sm == pytest.approx(3.35e12 / (132 * 1830e6), rel=1e-12)
    assert spec.l2_bytes_per_cycle_per_sm == pytest.approx(5.5e12 / (132 * 1830e6), rel=1e-12)
