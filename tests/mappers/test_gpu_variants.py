"""Variant cascades on the GPU: numerically right, and never faster than their own work allows.

Numbers: each variant cascade (specs/cascades/{sigmoid,softplus,linear}-attention.yaml, from the
einsum_ir helper's branch) evaluated by einsum_ir equals a numpy formula of its paper written here
(float64; achieved ~1e-15, bound 1e-12).

Bounds: on h100-sxm with the FA2-style mapping (specs/mappings/gpu-fa2-style.yaml) the latency is at
least each of these, derived here from the attention formulas alone (per head of N queries and keys,
head dim d, FP16 operands), with the spec's rates (dense tensor peak x its mma.sync fraction, 16 MUFU
results per SM per clock, HBM bandwidth):

- tensor: sigmoid/softplus compute S = Q K^T and S V (4 N^2 d FLOPs); linear attention phi(K)^T V
  and phi(Q) (phi(K)^T V) (4 N d^2 FLOPs);
- MUFU: sigmoid = 0.5 tanh(0.5 x) + 0.5 (FlashSigmoid's form, the spec's special_functions) needs one
  tanh per score (N^2), softplus =
  log(1 + exp(x)) an exp and a log (2 N^2); linear attention's elu an exp per element of phi(Q) and
  phi(K) (2 N d) and a reciprocal per query row (N);
- HBM: Q, K, V read and O (16-bit) written once, 3 N d 2 + 2 N d bytes.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnsim.archsim.gpu_spec import load_gpu
from attnsim.einsum_ir import evaluate, load_builtin
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import predict_cascade

H100 = load_gpu("h100-sxm")
VARIANTS = ("sigmoid-attention", "softplus-attention", "linear-attention")


def _elu1(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(x)) + 1.0


def _reference(name: str, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """O[f, p] from Q[e, p], K[e, m], V[f, m] (the cascades' layouts and published definitions)."""
    e, m = q.shape[0], k.shape[1]
    s = q.T @ k                                    # [p, m]
    if name == "sigmoid-attention":                # scale 1/sqrt(E), bias -log(M) (Ramapuram et al.)
        return ((1.0 / (1.0 + np.exp(-(s / np.sqrt(e) - np.log(m))))) @ v.T).T
    if name == "softplus-attention":               # l1-normalised softplus weights
        a = np.logaddexp(0.0, s / np.sqrt(e))
        return ((a @ v.T) / a.sum(axis=1, keepdims=True)).T
    phi_q, phi_k = _elu1(q), _elu1(k)              # linear attention, right-product form
    num = phi_q.T @ (phi_k @ v.T)                  # [p, f]
    den = phi_q.T @ phi_k.sum(axis=1)              # [p]
    return (num / den[:, None]).T


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_cascades_match_numpy(name: str) -> None:
    rng = np.random.default_rng(7)
    sizes = {"M": 12, "P": 9, "E": 5, "F": 4}
    q, k, v = rng.standard_normal((5, 9)), rng.standard_normal((5, 12)), rng.standard_normal((4, 12))
    out = evaluate(load_builtin(name), sizes, {"Q": q, "K": k, "V": v})["AV"]
    ref = _reference(name, q, k, v)
    assert np.abs(out - ref).max() / np.abs(ref).max() <= 1e-12


def _bounds_s(name: str, w: GpuAttention) -> dict[str, float]:
    heads = w.batch * w.heads
    n, d = w.seq, w.head_dim
    tensor_rate = (H100.sms * H100.tensor_flops_per_cycle("fp16") * H100.clock_hz
                   * H100.calibration_value("mma_sync_tensor_fraction"))
    mufu_rate = H100.sms * H100.per_sm_per_clock.mufu_ops.value * H100.clock_hz
    if name == "linear-attention":
        flops, mufu = 4.0 * n * d * d, 2.0 * n * d + n
    else:
        flops, mufu = 4.0 * n * n * d, (1.0 if name == "sigmoid-attention" else 2.0) * n * n
    hbm = 3 * n * d * 2 + 2 * n * d
    return {"tensor": heads * flops / tensor_rate, "mufu": heads * mufu / mufu_rate,
            "hbm": heads * hbm / H100.memory.hbm_bandwidth_bytes_per_s.value}


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("seq", "head_dim"), [(512, 64), (4096, 128), (2048, 256), (1000, 64)])
def test_variant_latency_never_undercuts_its_bounds(name: str, seq: int, head_dim: int) -> None:
    workload = GpuAttention(batch=4, heads=8, seq=seq, head_dim=head_dim)
    run = predict_cascade(H100, name, "gpu-fa2-style", workload)
    for unit, bound in _bounds_s(name, workload).items():
        assert run.latency_s >= bound * (1 - 1e-9), (unit, run.latency_s, bound)
    assert run.hbm_bytes >= workload.batch * workload.heads * (3 * seq * head_dim * 2 + 2 * seq * head_dim) * (1 - 1e-9)


@pytest.mark.parametrize("mapping", ["gpu-fa2-style", "gpu-fa3-style"])
def test_selective_temperature_adds_one_fp32_op_per_score(mapping: str) -> None:
    """The 1-pass selective attention cascade is attention-1pass with each score times its query's
    temperature (TQK): per K/V tile one FP32 op per score more than softmax, the same tensor and MUFU
    work, and the latency no lower."""
    from attnsim.studies.gpu import build_gpu_mapping

    workload = GpuAttention(batch=4, heads=8, seq=4096, head_dim=128)

    def body_actions(cascade: str) -> tuple[dict[str, float], object]:
        gpu_mapping = build_gpu_mapping(H100, cascade, mapping, workload)
        totals: dict[str, float] = {}
        for op in gpu_mapping.cta_schedule(gpu_mapping.order[0], 1).blocks[1].ops:
            for key, value in op.actions.items():
                totals[key] = totals.get(key, 0.0) + value
        return totals, gpu_mapping.tile

    selective, tile = body_actions("selective-temperature-attention-1pass")
    softmax, _ = body_actions("attention-1pass")
    assert selective["fp32.op"] - softmax["fp32.op"] == tile.block_m * tile.block_n
    for key in ("tensor.flop_fp16", "mufu.op"):
        assert selective[key] == softmax[key], key
    assert (predict_cascade(H100, "selective-temperature-attention-1pass", mapping, workload).latency_s
            >= predict_cascade(H100, "attention-1pass", mapping, workload).latency_s)
