"""FlashSigmoid on the GPU model: sigmoid costed as the spec declares it (one MUFU tanh per score).

Expected counts come from FlashSigmoid's formulation (Ramapuram et al. 2024, apple/ml-sigmoid-attention
flash_sigmoid/README.md: sigmoid(x) = 0.5 (1 + tanh(0.5 x)) with the hardware tanh), counted by hand:
per score one MUFU op (tanh) and two FP32 FMAs (s x + b with the 0.5 folded into s and b; 0.5 t + 0.5),
against exp + reciprocal (2 MUFU) when the spec declares no form.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.errors import SpecError
from attnsim.archsim.gpu_spec import GpuSpec, load_gpu
from attnsim.einsum_ir import load_builtin
from attnsim.mappers.gpu_cascade_work import SpecialFunctions, gpu_cascade_work
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.studies.gpu import predict_cascade

H100 = load_gpu("h100-sxm")


def _pieces(special: SpecialFunctions) -> dict[tuple[str, str], float]:
    work = gpu_cascade_work(load_builtin("sigmoid-attention"), frozenset({"m"}), special)
    return {(p.unit, p.kind): p.per_point for p in work.einsums["A"].pieces}


def test_sigmoid_is_one_mufu_tanh_and_two_fmas_with_the_spec_form() -> None:
    special = SpecialFunctions.of(H100.mufu_functions, H100.function_forms)
    assert "tanh" in H100.mufu_functions
    assert _pieces(special) == {("mufu", "main"): 1.0, ("fp32", "main"): 2.0}


def test_without_a_form_sigmoid_is_exp_and_reciprocal() -> None:
    # 1 / (1 + exp(-x)): exp and reciprocal on the MUFU; the scale/bias FMA, the add and the multiply
    # of the division on the FP32 lanes
    assert _pieces(SpecialFunctions()) == {("mufu", "main"): 2.0, ("fp32", "main"): 3.0}


@pytest.mark.parametrize("head_dim", [64, 128])
def test_flashsigmoid_is_faster_than_fa2_softmax_under_the_same_mapping(head_dim: int) -> None:
    # the direction of FlashSigmoid's result (faster than FA2 on H100, same FA2 code base); the size of
    # the speed-up is compared with the paper in benchmarks/flashsigmoid_validation.py
    workload = GpuAttention(batch=4, heads=2048 // head_dim, seq=4096, head_dim=head_dim)
    softmax = predict_cascade(H100, "attention-1pass", "gpu-fa2-style", workload)
    sigmoid = predict_cascade(H100, "sigmoid-attention", "gpu-fa2-style", workload)
    assert sigmoid.latency_s < softmax.latency_s


@pytest.mark.parametrize("form, message", [
    ("0.5 * tanh(0.5 * y) + 0.5", "special_functions.forms.sigmoid.expr: expected an expression of x"),
    ("0.5 * nosuch(x)", "special_functions.forms.sigmoid.expr: expected an expression of x"),
])
def test_a_bad_form_is_a_one_line_spec_error(form: str, message: str) -> None:
    data = H100.model_dump()
    data["special_functions"]["forms"]["sigmoid"]["expr"] = form
    with pytest.raises(SpecError) as caught:
        GpuSpec.from_mapping(data, "bad.yaml")
    text = str(caught.value)
    assert text.startswith("bad.yaml: ") and message in text and "\n" not in text


def test_an_unknown_mufu_function_is_refused() -> None:
    data = H100.model_dump()
    data["special_functions"]["mufu"]["value"] = ["exp", "erf"]
    with pytest.raises(SpecError, match=r"special_functions.mufu.value\[1\]: unknown function 'erf'"):
        GpuSpec.from_mapping(data, "bad.yaml")
