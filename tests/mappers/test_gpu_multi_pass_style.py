"""``gpu-flat-style``: FLAT's GPU dataflow for any multi-pass cascade, its passes and spills taken from
the pass analysis (mappers/gpu_cascade_mapper.py ``_with_derived_passes``; docs/mapping-gpu.md).

Oracles written here from the cascades' definitions: the number of sweeps over the K/V tiles is the
pass count `attnsim passes` prints; the score-sized tensors crossing a pass boundary (FP32 scores and
weights, written by one pass and read by the next) go through HBM at these shapes (FLAT's rule: a
block's rows of 4096 FP32 scores, 2 MiB, fit neither the SMEM nor, for every SM, the L2), each written
once and read back once; Q, K, V are read and O written once besides.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.einsum_ir import load_builtin
from attnsim.einsum_ir.passes import analyze_passes
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import build_gpu_mapping, predict_cascade

H100 = load_gpu("h100-sxm")
WORKLOAD = GpuAttention(batch=4, heads=16, seq=4096, head_dim=128)

# cascade -> the score-sized FP32 tensors that cross a pass boundary (read by FP32 work in a later pass)
CROSSING = {
    "attention-3pass-deferred": ["QK"],                 # GM in pass 1; SN, SD, SNV in pass 2
    "selective-temperature-attention": ["TQK"],         # the scaled logits, then as above
    "softplus-lssa-normalised": ["SN"],                 # SN, SD in pass 1; A = SN / SD in pass 2
    "clipped-softmax-attention": ["QK", "SN"],          # QK, GM | SN, SD | the clip and AV
}


@pytest.mark.parametrize("cascade", sorted(CROSSING))
def test_passes_and_spills_follow_the_pass_analysis(cascade: str) -> None:
    mapping = build_gpu_mapping(H100, cascade, "gpu-flat-style", WORKLOAD)
    blocks = [b.name for b in mapping.cta_schedule(mapping.order[0]).blocks if b.name.startswith("pass")]
    assert len(blocks) == analyze_passes(load_builtin(cascade), "M").passes
    assert mapping.choices["score_rows_in"] == "hbm"
    run = predict_cascade(H100, cascade, "gpu-flat-style", WORKLOAD)
    heads, n, d = WORKLOAD.batch * WORKLOAD.heads, WORKLOAD.seq, WORKLOAD.head_dim
    compulsory = heads * (3 * n * d * 2 + n * d * 2)
    extra_inputs = heads * n * 2 if cascade.startswith("selective") else 0      # TAU, one word per query
    spilled = heads * n * n * 4 * 2 * len(CROSSING[cascade])                      # written and read back
    assert run.hbm_bytes == compulsory + extra_inputs + spilled


def test_a_one_pass_cascade_makes_one_sweep() -> None:
    mapping = build_gpu_mapping(H100, "attention-1pass", "gpu-flat-style", WORKLOAD)
    blocks = [b.name for b in mapping.cta_schedule(mapping.order[0]).blocks if b.name.startswith("pass")]
    assert blocks == ["pass1"]
