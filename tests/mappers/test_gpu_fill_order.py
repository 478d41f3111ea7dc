"""The in-phase template's ``lagging_fill_order`` mechanism (mappers/gpu_mechanisms.py, issue #16).

FA2's forward issues V's cp.async load right before the QK GEMM and waits for it after that GEMM, so
V's SMEM write follows the GEMM's operand reads on the port. The checks: the mechanism only reorders
the port (the same bytes on every unit), never makes a call slower, and removes the wait of one
resident CTA's QK reads for the other CTA's V load latency that the in-order port imposed without it.
"""
from __future__ import annotations

import pytest

from attnsim.archsim.engine import run
from attnsim.archsim.gpu_spec import load_gpu
from attnsim.mappers.gpu_cascade_mapper import map_cascade
from attnsim.mappers.gpu_common import GpuAttention
from attnsim.mappers.gpu_mapping import gpu_section
from attnsim.mappers.gpu_mechanisms import with_mechanisms
from attnsim.studies.gpu import gpu_cascade, gpu_mapping_spec, run_gpu_mapping

H100 = load_gpu("h100-sxm")
MAPPING = gpu_mapping_spec("gpu-fa2-style")


def _mapping(workload: GpuAttention, on: bool, cascade: str = "attention-1pass"):
    section = with_mechanisms(gpu_section(MAPPING), lagging_fill_order=on)
    return map_cascade(gpu_cascade(cascade, workload.causal), MAPPING, workload, H100, section=section)


def test_the_fa2_mappings_switch_it_on() -> None:
    for name in ("gpu-flash2", "gpu-fa2-style"):
        assert gpu_section(gpu_mapping_spec(name)).mechanisms.lagging_fill_order, name


@pytest.mark.parametrize("cascade", ["attention-1pass", "sigmoid-attention"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_it_only_reorders_the_port_and_never_slows_a_call(cascade: str, head_dim: int, causal: bool) -> None:
    workload = GpuAttention(batch=2, heads=16, seq=2048, head_dim=head_dim, causal=causal)
    name = f"{cascade}-causal" if causal else cascade
    on, off = (run_gpu_mapping(_mapping(workload, flag, name), H100) for flag in (True, False))
    for action in ("smem.byte", "l2.byte", "hbm.byte"):
        assert on.actions.get(action) == pytest.approx(off.actions.get(action), rel=1e-12), action
    assert on.cycles <= off.cycles
    # the same tensor work in fewer cycles: utilisation rises by the cycle ratio exactly
    assert on.utilisation["tensor"] * on.cycles == pytest.approx(off.utilisation["tensor"] * off.cycles, rel=1e-9)


def _body_rows(on: bool) -> list:
    mapping = _mapping(GpuAttention(batch=1, heads=2, seq=1024, head_dim=128), on)
    assert mapping.occupancy.resident_ctas == 2
    schedule = mapping.cta_schedule(mapping.order[0])
    return [r for r in run(schedule, trace=True).timeline if r.block == "body" and r.iteration == 4]


@pytest.mark.parametrize("on", [True, False])
def test_a_ctas_qk_reads_wait_for_the_other_ctas_v_latency_only_when_off(on: bool) -> None:
    rows = {r.op_id: r for r in _body_rows(on)}
    qk_reads = rows["BQK.tensor_c0_ldsm0"]      # copy 0's first QK operand read
    other_v = rows["ldV_c1_lat"]                 # copy 1's V load, issued after its PV GEMM
    if on:
        assert qk_reads.start_cycle < other_v.end_cycle
        assert rows["ldV_c1_smem"].start_cycle >= rows["BQK.tensor_c1_ldsm"].end_cycle
    else:
        assert qk_reads.start_cycle >= other_v.end_cycle
