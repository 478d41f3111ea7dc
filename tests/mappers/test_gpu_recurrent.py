"""Block-recurrent cascades on the GPU (style ``recurrent``, specs/mappings/gpu-lightning2.yaml).

Bounds derived here from Lightning Attention-2's block algorithm alone (arXiv:2401.04658 Algorithm 1,
decay 1), per (batch, head) of N tokens in T = ceil(N / B) blocks of B = 64 rows, head dim d, and each
CTA holding Fs = 32 value columns (the Triton kernel's BLOCK_MODEL), so d / Fs CTAs per head:

- FLOPs per block and CTA: Q_t K_t^T 2 B B d, its masked product with V_t 2 B B Fs, Q_t S 2 B d Fs,
  K_t^T V_t 2 d B Fs; the tensor bound is their sum over all CTAs and blocks at the spec's dense TF32
  rate x its mma.sync fraction (the mapping's TF32 mma.sync);
- HBM: Q, K, V read and O written once, 4 N d x 2 bytes per head (bf16), at the peak bandwidth;
- the chain: a CTA's T blocks run one after another on one SM, each at least its own FLOPs at one
  SM's tensor rate;
- linear in N: the cost per added block is constant once the grid is past its first waves, so
  L(4N) - L(2N) = 2 (L(2N) - L(N)).
"""
from __future__ import annotations

import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.mappers.mapping_spec import MappingSpec
from attnsim.studies.gpu import build_gpu_mapping, gpu_mapping_spec, predict_cascade

GPUS = ("h100-sxm", "a100-sxm-80gb", "h100-pcie", "h200")
B, FS = 64, 32


def _workload(seq: int, head_dim: int = 128) -> GpuAttention:
    return GpuAttention(batch=4, heads=32, seq=seq, head_dim=head_dim, causal=True, dtype="bf16")


def _flops(seq: int, d: int) -> float:
    blocks = -(-seq // B)
    per_block = 2 * B * B * d + 2 * B * B * FS + 2 * B * d * FS + 2 * d * B * FS
    return 4 * 32 * (d // FS) * blocks * per_block


@pytest.mark.parametrize("arch, seq, d", [(arch, seq, 128) for arch in GPUS for seq in (512, 4096, 5000)]
                         + [("h100-sxm", 4096, 64), ("h100-sxm", 4096, 256), ("a100-sxm-80gb", 2048, 256)])
def test_lightning2_never_beats_its_bounds(arch: str, seq: int, d: int) -> None:
    spec = load_gpu(arch)
    mapping = build_gpu_mapping(spec, "lightning2-causal", "gpu-lightning2", _workload(seq, d))
    assert mapping.choices["cascade_tensor_flops"] == pytest.approx(_flops(seq, d), rel=1e-12)
    run = predict_cascade(spec, "lightning2-causal", "gpu-lightning2", _workload(seq, d))
    rate_sm = spec.tensor_flops_per_cycle("tf32") * spec.calibration_value("mma_sync_tensor_fraction") \
        * spec.clock_hz
    tensor_s = _flops(seq, d) / (spec.sms * rate_sm)
    hbm_s = 4 * 4 * 32 * seq * d * 2 / spec.memory.hbm_bandwidth_bytes_per_s.value
    blocks = -(-seq // B)
    chain_s = blocks * (_flops(seq, d) / (4 * 32 * (d // FS) * blocks)) / rate_sm
    for bound in (tensor_s, hbm_s, chain_s):
        assert run.latency_s >= bound * (1 - 1e-9)
    assert run.ctas == 4 * 32 * (d // FS)
    assert run.hbm_bytes >= 4 * 4 * 32 * seq * d * 2 * (1 - 1e-9)   # compulsory traffic at least


@pytest.mark.parametrize("arch", ("h100-sxm", "a100-sxm-80gb"))
def test_lightning2_is_linear_in_the_length(arch: str) -> None:
    spec = load_gpu(arch)
    lat = {n: predict_cascade(spec, "lightning2-causal", "gpu-lightning2", _workload(n)).latency_s
           for n in (8192, 16384, 32768)}
    step1 = (lat[16384] - lat[8192]) / (16384 // B - 8192 // B)
    step2 = (lat[32768] - lat[16384]) / (32768 // B - 16384 // B)
    assert step2 == pytest.approx(step1, rel=2e-3)   # achieved < 1e-3; cycles are integers
    assert step1 > 0


def test_causal_linear_attention_runs_on_the_same_template() -> None:
    spec = load_gpu("h100-sxm")
    run = predict_cascade(spec, "linear-attention-causal", "gpu-lightning2", _workload(4096))
    # phi = elu + 1 on every element of Q and K: one exp each (2 N d per head); a reciprocal per output
    mufu_s = 4 * 32 * 2 * 4096 * 128 * (128 // FS) / (spec.sms * spec.per_sm_per_clock.mufu_ops.value
                                                      * spec.clock_hz)
    assert run.latency_s >= mufu_s
    assert run.latency_s > predict_cascade(spec, "lightning2-causal", "gpu-lightning2", _workload(4096)).latency_s


def _mapping_with(**gpu: object) -> MappingSpec:
    base = gpu_mapping_spec("gpu-lightning2")
    data = base.model_dump()
    data["gpu"] = {**data["gpu"], **gpu}
    return MappingSpec.model_validate({**data, "origin": "test.yaml"}) if "origin" in data else \
        MappingSpec.model_validate(data)


@pytest.mark.parametrize("gpu, message", [
    ({"keys_rank": "i"}, "gpu.keys_rank: style 'recurrent' walks an iterative rank"),
    ({"split_rank": "e"}, "gpu.split_rank: 'e' is reduced by"),
])
def test_bad_recurrent_mappings_are_one_line(gpu: dict, message: str) -> None:
    with pytest.raises(MappingError) as info:
        build_gpu_mapping(load_gpu("h100-sxm"), "lightning2-causal", _mapping_with(**gpu), _workload(1024))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_operand_staging_moves_the_operands_through_smem() -> None:
    """operand_staging: per step and CTA each GEMM operand is written to SMEM once per MMA operand layout
    in FP32 -- Q (B x d, A), K (d x B, as B of Q K^T and as A of K^T V: twice), V (B x Fs, B), Q K^T
    (B x B, A), the state S (d x Fs, B) -- and the two computed ones are also read
    back by their GEMMs: Q K^T as the rows-indexed A operand (once), S as the B operand of Q S (by each
    of the 4 warps). The loaded operands' reads are charged with or without staging."""
    spec, seq, d = load_gpu("h100-sxm"), 4096, 128
    on = predict_cascade(spec, "lightning2-causal", "gpu-lightning2", _workload(seq, d))
    off = predict_cascade(spec, "lightning2-causal", _mapping_with(operand_staging=False), _workload(seq, d))
    writes = (B * d + 2 * d * B + B * FS + B * B + d * FS) * 4
    reads = B * B * 4 + 4 * d * FS * 4
    per_cta_step = writes + reads
    expected = per_cta_step * (seq // B) * 4 * 32 * (d // FS)
    assert on.actions["smem.byte"] - off.actions["smem.byte"] == pytest.approx(expected, rel=1e-9)
    assert on.latency_s > off.latency_s


def test_prefetching_the_next_block_never_slows_it_down() -> None:
    """stages: 2 lets block t+1's loads run while block t computes (each buffer waits for the readers
    of the block two steps back): never slower than one buffer, and the step inputs' SMEM doubles."""
    spec = load_gpu("h100-sxm")
    one = build_gpu_mapping(spec, "lightning2-causal", "gpu-lightning2", _workload(4096))
    two = build_gpu_mapping(spec, "lightning2-causal", _mapping_with(stages=2), _workload(4096))
    assert two.tile.smem_bytes == 2 * one.tile.smem_bytes == 2 * (B * 128 + B * 128 + B * FS) * 2   # Q, K, V blocks, bf16
    slow = predict_cascade(spec, "lightning2-causal", "gpu-lightning2", _workload(4096)).latency_s
    fast = predict_cascade(spec, "lightning2-causal", _mapping_with(stages=2), _workload(4096)).latency_s
    assert fast <= slow
