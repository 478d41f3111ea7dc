"""FlashSigmoid's kernel speed-up over FlashAttention-2 on H100, predicted from first principles.

Usage (from the repository root)::

    .venv/bin/python benchmarks/flashsigmoid_validation.py

Published: FlashSigmoid (Ramapuram et al. 2024, arXiv:2409.04431; apple/ml-sigmoid-attention,
flash_sigmoid/README.md) reports a 17% inference (forward) kernel speed-up over FlashAttention-2 on
H100; the repository's figure files name the averages: forward +17.39% (full), +18.76% (causal).
FlashSigmoid is FA2 v2.5.6's code with the softmax replaced (sigmoid as 0.5 (1 + tanh(0.5 x)) with the
hardware tanh; no row max, no row sum, no rescale, no final division), so both kernels share FA2's
tiling and schedule: here both run the one FA2-style mapping (specs/mappings/gpu-fa2-style.yaml) on
h100-sxm, softmax as attention-1pass, sigmoid as sigmoid-attention(-causal). Nothing is fitted: the
only sigmoid-specific input is the spec's special_functions (tanh is one MUFU op; sigmoid's form).

The paper's exact benchmark shapes are not in the sources this project could read (the figure images
were not seen); the shapes here are FA3's protocol (batch x seq = 16k tokens, hidden 2048, FP16), head
dims 64 and 128, seq 512-16k, and the speed-up is averaged over them like the figure's headline.
Speed-up = latency(FA2 softmax) / latency(FlashSigmoid) - 1.
"""
from __future__ import annotations

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_common import fa3_protocol_workload
from attnsim.studies.gpu import predict_cascade

SEQS = (512, 1024, 2048, 4096, 8192, 16384)
HEAD_DIMS = (64, 128)
PUBLISHED_PERCENT = {False: 17.39, True: 18.76}
MAPPINGS = ("gpu-fa2-style", "gpu-fa3-style")


def speedups(mapping: str, causal: bool) -> dict[tuple[int, int], tuple[float, float, str]]:
    """(head_dim, seq) -> (softmax ms, sigmoid ms, sigmoid's bound) under ``mapping``."""
    spec = load_gpu("h100-sxm")
    out = {}
    for d in HEAD_DIMS:
        for seq in SEQS:
            w = fa3_protocol_workload(seq, d, causal=causal)
            soft = predict_cascade(spec, "attention-1pass-causal" if causal else "attention-1pass", mapping, w)
            sig = predict_cascade(spec, "sigmoid-attention-causal" if causal else "sigmoid-attention", mapping, w)
            out[(d, seq)] = (soft.latency_s * 1e3, sig.latency_s * 1e3, sig.bound)
    return out


def main() -> None:
    for mapping in MAPPINGS:
        for causal in (False, True):
            rows = speedups(mapping, causal)
            print(f"\n{mapping}, {'causal' if causal else 'non-causal'} (FA3 protocol shapes, FP16, h100-sxm)")
            print("| head dim | seq | softmax ms | sigmoid ms | speed-up % | sigmoid bound |")
            print("|---|---|---|---|---|---|")
            gains = []
            for (d, seq), (soft, sig, bound) in rows.items():
                gain = (soft / sig - 1) * 100
                gains.append(gain)
                print(f"| {d} | {seq} | {soft:.4f} | {sig:.4f} | {gain:+.1f} | {bound} |")
            mean = sum(gains) / len(gains)
            line = f"mean speed-up {mean:+.2f}%"
            if mapping == "gpu-fa2-style":
                line += f" (published FlashSigmoid vs FA2: {PUBLISHED_PERCENT[causal]:+.2f}%, " \
                        f"difference {mean - PUBLISHED_PERCENT[causal]:+.2f} points)"
            print(line)


if __name__ == "__main__":
    main()
