"""The FA2/FA3 backward model (mappers/gpu_template_backward.py, studies/gpu_backward.py).

Independent references written here: the backward's tensor-core work is 5 GEMMs of 2 x block_m x
block_n x head_dim FLOPs per (K/V block, query block) pair, i.e. 10 seq^2 head_dim per (batch, head),
against the forward's 2 GEMMs (4 seq^2 head_dim), so the FA convention's 2.5x follows; no prediction
exceeds the dense FP16 peak; bad input is one line, exit 2.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.engine import run as run_schedule
from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.errors import MappingError
from attnsim.mappers.gpu_template_backward import backward_flops, backward_section, map_backward
from attnsim.mappers.mapping_spec import load_mapping
from attnsim.studies.cli import main
from attnsim.studies.gpu import make_workload
from attnsim.studies.gpu_backward import BACKWARD_DESIGNS, pass_report, run_backward

H100 = load_gpu("h100-sxm")


@pytest.mark.parametrize("design", sorted(BACKWARD_DESIGNS))
@pytest.mark.parametrize("head_dim", [64, 128])
def test_backward_tensor_work_is_five_gemms_and_two_and_a_half_forwards(design: str, head_dim: int) -> None:
    seq = 1024
    workload = make_workload(seq, head_dim)
    mapping = map_backward(load_mapping(BACKWARD_DESIGNS[design]), workload, H100)
    per_cta = {blocks: run_schedule(mapping.cta_schedule(blocks)).actions["tensor.flop_fp16"]
               for blocks in set(mapping.order)}
    simulated = sum(per_cta[blocks] for blocks in mapping.order)
    heads = workload.batch * workload.heads
    five_gemms = 5 * 2 * seq * seq * head_dim * heads       # S, dP, dV, dK, dQ over every (key, query)
    forward = 2 * 2 * seq * seq * head_dim * heads          # S, O: FA3's 4 seq^2 d per head
    assert simulated == pytest.approx(five_gemms, rel=1e-12)
    assert five_gemms / forward == 2.5
    assert backward_flops(workload) == pytest.approx(five_gemms, rel=1e-12)


@pytest.mark.parametrize("design", sorted(BACKWARD_DESIGNS))
def test_no_backward_prediction_exceeds_the_peak(design: str) -> None:
    peak = H100.sms * H100.tensor_flops_per_cycle("fp16") * H100.clock_hz / 1e12
    for head_dim in (64, 128, 256):
        for causal in (False, True):
            for seq in (512, 4096):
                run = run_backward(H100, design, make_workload(seq, head_dim, causal=causal))
                assert 0 < run.tflops < peak, (design, head_dim, causal, seq)


def test_causal_backward_does_half_the_pairs() -> None:
    seq, head_dim = 2048, 128
    full = map_backward(load_mapping("gpu-flash3-backward"), make_workload(seq, head_dim), H100)
    causal = map_backward(load_mapping("gpu-flash3-backward"), make_workload(seq, head_dim, causal=True), H100)
    m_blocks, n_blocks = seq // 64, seq // 128
    assert sum(full.order) == m_blocks * n_blocks * full.workload.batch * full.workload.heads
    per_head = sum(m_blocks - (j * 128) // 64 for j in range(n_blocks))   # query blocks at or below the diagonal
    assert sum(causal.order) == per_head * causal.workload.batch * causal.workload.heads


def test_forward_plus_backward_adds_the_latencies() -> None:
    both = pass_report("h100-sxm", "flash3", 2048, 128, "forward+backward")
    backward = pass_report("h100-sxm", "flash3", 2048, 128, "backward")
    assert both["latency_s"] == pytest.approx(both["forward_latency_s"] + backward["latency_s"], rel=1e-12)
    assert both["flops"] == pytest.approx(3.5 / 2.5 * backward["flops"], rel=1e-12)


def test_a_forward_mapping_is_not_a_backward_mapping() -> None:
    with pytest.raises(MappingError, match="gpu.style: expected 'backward'"):
        backward_section(load_mapping("gpu-flash3"))


@pytest.mark.parametrize("argv, expected", [
    (["--design", "flat", "--pass", "backward"], "--pass backward: expected --design flash2 or flash3"),
    (["--design", "flash3", "--pass", "sideways"], "--pass: expected one of forward, backward, forward+backward"),
    (["--design", "flash3", "--pass", "backward", "--dtype", "fp8"], "--dtype: the backward pass is modelled"),
])
def test_bad_pass_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                expected: str) -> None:
    code = main(["gpu", "--seq", "1024", "--head-dim", "128", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err, err
