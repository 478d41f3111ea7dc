"""End to end per token on GPUs (studies/llm.py, mappers/gpu_gemm.py, ``attnsim gpu --end-to-end``).

The bounds are derived here from the workload file's numbers (read as plain YAML) and the GPU spec's
peaks, never from the code's output: a step can never beat reading every weight and every cached K/V
byte once at the peak HBM bandwidth, nor doing its FLOPs at the tensor peak.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_gemm import gpu_gemm
from attnsim.mappers.workloads import load_workload
from attnsim.studies.cli import main
from attnsim.studies.llm import gpu_end_to_end

ROOT = Path(__file__).resolve().parents[2]
LLAMA = ROOT / "specs" / "workloads" / "llama-3.1-8b.yaml"
H100 = ROOT / "specs" / "arch" / "h100-sxm.yaml"
WORD = 2  # fp16 bytes


def _llama() -> dict:
    return yaml.safe_load(LLAMA.read_text())


def _peaks() -> tuple[float, float]:
    spec = yaml.safe_load(H100.read_text())
    bandwidth = float(spec["memory"]["hbm_bandwidth_bytes_per_s"]["value"])  # YAML 1.1 reads 3.35e12 as text
    flops = spec["sm_count"]["value"] * spec["per_sm_per_clock"]["tensor_flops"]["fp16"]["value"] \
        * float(spec["clocks"]["tensor_hz"]["value"])
    return bandwidth, flops


def _weight_params_per_layer(w: dict) -> int:
    """Q (D x H E), K and V (D x HKV E each), O (H E x D), gate + up (D x S each), down (S x D)."""
    d, h, hkv, e, s = w["d_model"], w["heads"], w["kv_heads"], w["head_dim_e"], w["ffn"]
    return d * h * e + 2 * d * hkv * e + h * e * d + 3 * d * s


def test_decode_tpot_respects_the_hbm_and_tensor_bounds() -> None:
    w, (bandwidth, peak_flops) = _llama(), _peaks()
    batch, kv_len = 8, 8192
    weights_bytes = w["layers"] * _weight_params_per_layer(w) * WORD
    kv_bytes = w["layers"] * batch * w["kv_heads"] * kv_len * 2 * w["head_dim_e"] * WORD
    flops = w["layers"] * (2 * batch * _weight_params_per_layer(w)
                           + 4 * batch * w["heads"] * kv_len * w["head_dim_e"])
    report = gpu_end_to_end("h100-sxm", "leanattention", "llama-3.1-8b", kv_len, phase="decode", batch=batch)
    assert report["weight_bytes"] == weights_bytes
    assert report["kv_cache_bytes_per_step"] == kv_bytes
    assert report["kv_cache_bytes_per_token"] == kv_bytes / batch
    assert report["flops"] == pytest.approx(flops, rel=1e-12)
    memory_bound = (weights_bytes + kv_bytes) / bandwidth
    assert report["tpot_s"] >= memory_bound
    assert report["tpot_s"] >= flops / peak_flops
    # Decode is HBM-bound: the model takes 1.11x the bound here (linear GEMMs fill 112-128 of 132 SMs); margin to 1.3x.
    assert report["tpot_s"] <= 1.3 * memory_bound
    assert report["bound"] == "hbm"
    assert {part["bound"] for part in report["parts"]} == {"hbm"}


def test_prefill_ttft_respects_the_tensor_bound_and_is_tensor_bound() -> None:
    w, (bandwidth, peak_flops) = _llama(), _peaks()
    seq = 4096
    linear_flops = w["layers"] * 2 * seq * _weight_params_per_layer(w)
    report = gpu_end_to_end("h100-sxm", "flash3", "llama-3.1-8b", seq, phase="prefill", batch=1)
    assert report["ttft_s"] >= linear_flops / peak_flops
    assert report["ttft_s"] >= report["weight_bytes"] / bandwidth
    assert report["bound"] == "tensor"
    assert report["causal"] is True


def test_layers_scale_linearly() -> None:
    workload = load_workload("llama-3.1-8b")
    one = gpu_end_to_end("h100-sxm", "flashdecoding", workload.model_copy(update={"layers": 1}), 4096,
                         phase="decode", batch=4)
    full = gpu_end_to_end("h100-sxm", "flashdecoding", workload, 4096, phase="decode", batch=4)
    layers = _llama()["layers"]
    for key in ("tpot_s", "weight_bytes", "kv_cache_bytes_per_step", "hbm_bytes", "flops"):
        assert full[key] == pytest.approx(layers * one[key], rel=1e-12)


def test_gqa_narrows_only_the_kv_projection_and_the_cache() -> None:
    w = _llama()
    gqa = gpu_end_to_end("h100-sxm", "flashdecoding", "llama-3.1-8b", 4096, phase="decode", batch=1)
    mha = gpu_end_to_end("h100-sxm", "flashdecoding", "llama-3.1-8b", 4096, phase="decode", batch=1,
                         kv_heads=w["heads"])
    kv_projection_delta = w["layers"] * 2 * w["d_model"] * (w["heads"] - w["kv_heads"]) * w["head_dim_e"] * WORD
    assert mha["weight_bytes"] - gqa["weight_bytes"] == kv_projection_delta
    assert mha["kv_cache_bytes_per_step"] == gqa["kv_cache_bytes_per_step"] * w["heads"] // w["kv_heads"]
    assert mha["attention_latency_s"] > gqa["attention_latency_s"]


@pytest.mark.parametrize("shape", [(8, 14336, 4096), (8, 4096, 14336), (1, 4096, 4096), (4096, 4096, 4096),
                                   (16384, 14336, 4096), (300, 1000, 777)])
def test_gemm_never_beats_its_roofline(shape: tuple[int, int, int]) -> None:
    m, n, k = shape
    bandwidth, peak_flops = _peaks()
    gemm = gpu_gemm(m, n, k, load_gpu("h100-sxm"))
    compulsory = (m * k + k * n + m * n) * WORD
    assert gemm.hbm_bytes >= compulsory
    assert gemm.latency_s >= compulsory / bandwidth
    assert gemm.latency_s >= 2 * m * n * k / peak_flops


def test_gemm_bounds_decode_vs_prefill() -> None:
    spec = load_gpu("h100-sxm")
    assert gpu_gemm(8, 14336, 4096, spec).bound == "hbm"       # 8 rows: 2 FLOPs per weight byte
    assert gpu_gemm(16384, 14336, 4096, spec).bound == "tensor"


def test_cli_end_to_end_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["gpu", "--workload", "llama-3.1-8b", "--phase", "decode", "--kv-len", "4K", "--batch", "2",
                 "--design", "flash2", "--end-to-end", "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["tpot_s"] == report["latency_s"] > 0
    assert [part["name"] for part in report["parts"]] == ["attention", "q_projection", "kv_projection",
                                                          "output_projection", "ffn_gate_up", "ffn_down"]


def test_cli_end_to_end_needs_a_workload(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["gpu", "--phase", "decode", "--kv-len", "4096", "--head-dim", "128", "--design", "flash2",
                 "--end-to-end"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "--end-to-end: expected --workload" in err
    assert len(err.strip().splitlines()) == 1


# -- the spatial accelerator (attnsim simulate --end-to-end) ------------------------------------------

GATED = {"name": "gated-test", "batch": 1, "d_model": 512, "heads": 8, "head_dim_e": 64, "head_dim_f": 64,
         "ffn": 1024, "ffn_kind": "gated", "layers": 1, "seq_lengths": [1024], "source": "test shape",
         "sources": {key: "test shape" for key in ("batch", "d_model", "heads", "head_dim_e", "head_dim_f", "ffn",
                                                   "seq_lengths", "layers", "ffn_kind")}}


def _gated_file(tmp_path: Path, layers: int) -> Path:
    path = tmp_path / f"gated-{layers}.yaml"
    path.write_text(yaml.safe_dump({**GATED, "layers": layers}))
    return path


def test_spatial_end_to_end_layers_scale_linearly_and_respect_the_bounds(tmp_path: Path) -> None:
    from attnsim.studies.simulate import simulate

    arch = yaml.safe_load((ROOT / "specs" / "arch" / "fusemax-cloud.yaml").read_text())
    bandwidth = float(arch["dram"]["bandwidth_bytes_per_s"])
    seq, layers = 1024, 4
    one = simulate("fusemax", str(_gated_file(tmp_path, 1)), seq, end_to_end=True)
    four = simulate("fusemax", str(_gated_file(tmp_path, layers)), seq, end_to_end=True)
    assert four["latency_s"] == pytest.approx(layers * one["latency_s"], rel=1e-12)
    assert four["ttft_s"] == four["latency_s"]
    # Q, K, V and O (D x H E each) and the gated FFN (3 D S), 16-bit words, per layer
    d, he, s = GATED["d_model"], GATED["heads"] * GATED["head_dim_e"], GATED["ffn"]
    weights = layers * (4 * d * he + 3 * d * s) * 2
    assert four["weight_bytes"] == weights
    assert [part["name"] for part in four["parts"]] == ["attention", "qkv_projection", "output_projection",
                                                       "ffn_gate_up", "ffn_down"]
    assert {part["bound"] for part in four["parts"]} <= {"2d_array", "1d_array", "dram"}
    macs = layers * seq * (4 * d * he + 3 * d * s)
    pes, clock = arch["arrays"]["pe2d"]["rows"] * arch["arrays"]["pe2d"]["cols"], float(arch["clock_hz"])
    assert four["linear_latency_s"] >= macs / pes / clock
    assert four["linear_latency_s"] >= weights / bandwidth
