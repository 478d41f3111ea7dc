"""Unfused attention (specs/mappings/unfused.yaml through the generic path), simulated by the engine, against the artifact's closed form (closed_forms.py, an
independent oracle), the paper's BERT numbers (paper_data.py) and invariants."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

import closed_forms as cf
import paper_data as pd
from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions
from attnsim.mappers.errors import MappingError
from attnsim.mappers.baselines import map_unfused as map_attention
from attnsim.mappers.workloads import load_workload

ARCH = load_arch("flat-cloud")
MODELS = {name: load_workload(name) for name in pd.MODELS}
BERT = MODELS["bert-base"]
SMALL_SEQS = tuple(s for s in pd.SEQ_LENGTHS if s <= 65536)
LARGE_SEQS = tuple(s for s in pd.SEQ_LENGTHS if s > 65536)
MAC_PJ = 17.1645            # fact sheet §3.5
BYTES_PER_CYCLE = 400 * 2**30 / 940e6


def simulate(workload, seq: int, closed_form: bool = False, arch=ARCH):  # type: ignore[no-untyped-def]
    mapped = map_attention(workload, seq, arch, options=MapOptions(closed_form=closed_form))
    return run(mapped.schedule, arch)


@pytest.mark.parametrize("seq", SMALL_SEQS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_closed_form_mode_equals_the_oracle_exactly(model: str, seq: int) -> None:
    """Three phases, each max(DRAM, compute), summed: to the cycle (each phase rounds once)."""
    result = simulate(MODELS[model], seq, closed_form=True)
    expected_cycles = cf.unfused_latency_s(pd.MODELS[model], seq) * cf.CLOCK_HZ
    assert abs(result.cycles - expected_cycles) <= 2


@pytest.mark.parametrize("seq", LARGE_SEQS)
def test_closed_form_mode_within_the_sheets_tolerance_at_256k_up(seq: int) -> None:
    """Q (or V) of a head no longer fits the 32 MB buffer: K (or the AV partial sums) are re-read,
    a little more traffic than 4(|Q| + S); the sheet's artifact is within 0.4% too."""
    result = simulate(BERT, seq, closed_form=True)
    oracle = cf.unfused_latency_s(pd.MODELS["bert-base"], seq)
    assert oracle <= result.latency_s <= oracle * (1 + pd.LATENCY_ACCURACY["unfused_256k_up_rel"])


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_default_mode_adds_only_fill_and_drain(seq: int) -> None:
    closed = simulate(BERT, seq, closed_form=True)
    modelled = simulate(BERT, seq)
    assert closed.cycles <= modelled.cycles <= closed.cycles * 1.001
    assert modelled.actions == pytest.approx(closed.actions)


@pytest.mark.parametrize("seq", SMALL_SEQS)
def test_traffic_is_four_times_q_plus_s(seq: int) -> None:
    """Q, K read and QK written; QK read and A written; A, V read and AV written (sheet §4.4)."""
    b, h, e = 64, 12, 64
    q_bytes, s_bytes = b * h * e * seq * 2, b * h * seq * seq * 2
    assert simulate(BERT, seq).traffic_bytes == pytest.approx(4 * (q_bytes + s_bytes), rel=1e-12)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_latency_within_5_percent_of_the_paper(seq: int) -> None:
    printed = pd.BERT_ATTENTION[seq]["unfused_latency_s"]
    assert printed.agrees(simulate(BERT, seq).latency_s, rel=0.05)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_utilisation_within_0_02(seq: int) -> None:
    result = simulate(BERT, seq)
    assert result.utilisation["pe2d"] == pytest.approx(pd.BERT_UTIL_2D[seq]["unfused"].value, abs=0.02)
    assert result.utilisation["pe1d"] == pytest.approx(pd.BERT_UTIL_1D[seq]["unfused"].value, abs=0.02)


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_energy_within_5_percent_of_the_paper(seq: int) -> None:
    printed = pd.BERT_ATTENTION[seq]["unfused_energy_j"]
    assert printed.agrees(simulate(BERT, seq).energy_pj * 1e-12, rel=0.05)


def test_energy_is_the_three_pass_model_plus_glb_and_dram() -> None:
    """§6.4's 3-pass compute, the 32 MB buffer's 4 reads + 3 writes per score, and the DRAM bytes."""
    seq = 4096
    result = simulate(BERT, seq)
    d = cf.dims(pd.MODELS["bert-base"], seq)
    glb = 4 * d.n / 256 * cf.GLB32_READ_PJ_PER_ROW + 3 * d.n / 256 * cf.GLB32_WRITE_PJ_PER_ROW
    expected = cf.three_pass_compute_energy_pj(pd.MODELS["bert-base"], seq) + glb \
        + cf.dram_energy_pj(cf.unfused_traffic_bytes(pd.MODELS["bert-base"], seq))
    assert result.energy_pj == pytest.approx(expected, rel=1e-9)


def test_per_einsum_activity() -> None:
    """QK and AV each take half of the 2D busy cycles; the four softmax Einsums a quarter of the 1D's."""
    result = simulate(BERT, 1024)
    busy = result.per_einsum
    assert busy["QK"]["pe2d"] == busy["AV"]["pe2d"] == pytest.approx(64 * 12 * 64 * 1024 * 1024 / 65536)
    for einsum in ("GM", "SN", "SD", "A"):
        assert busy[einsum]["pe1d"] == pytest.approx(64 * 12 * 1024 * 1024 / 256)


def test_extrapolation_is_exact() -> None:
    workload = BERT.model_copy(update={"batch": 1, "heads": 2})
    mapped = map_attention(workload, 1024, ARCH, options=MapOptions())
    assert run(mapped.schedule, ARCH).cycles == run(mapped.schedule, ARCH, extrapolate=False).cycles


@settings(max_examples=25, deadline=None)
@given(rows=st.sampled_from([8, 16, 32]), cols=st.sampled_from([8, 16, 32]), pes_1d=st.sampled_from([4, 8, 32]),
       tiles=st.integers(1, 4), heads=st.integers(1, 3), width=st.sampled_from([8, 16, 64]),
       closed_form=st.booleans(), capacity=st.sampled_from([1 << 16, 1 << 25]))
def test_invariants(rows: int, cols: int, pes_1d: int, tiles: int, heads: int, width: int, closed_form: bool,
                    capacity: int) -> None:
    arch = load_arch("flat-cloud", {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols,
                                    "arrays.pe1d.size": pes_1d, "global_buffer.capacity_bytes": capacity})
    seq = tiles * rows * cols
    workload = BERT.model_copy(update={"batch": 1, "heads": heads, "head_dim_e": width, "head_dim_f": width})
    result = simulate(workload, seq, closed_form, arch)
    assert result.cycles >= result.traffic_bytes / BYTES_PER_CYCLE - 1
    assert all(0.0 <= u <= 1.0 + 1e-12 for u in result.utilisation.values())
    macs = heads * seq * seq * 2 * width
    assert result.actions["pe2d.mac"] == macs
    assert result.energy_pj >= macs * MAC_PJ
    assert result.traffic_bytes >= 4 * heads * seq * width * 2 + 4 * heads * seq * seq * 2


def test_sequence_not_a_multiple_of_the_array() -> None:
    """A length that is not a multiple of the array runs with padded tiles: between its neighbours."""
    low, mid, high = (simulate(BERT, s) for s in (768, 1000, 1024))
    assert low.latency_s <= mid.latency_s <= high.latency_s
    assert low.traffic_bytes <= mid.traffic_bytes <= high.traffic_bytes


def test_buffer_too_small() -> None:
    arch = load_arch("flat-cloud", {"global_buffer.capacity_bytes": 1 << 18})
    with pytest.raises(MappingError, match=r"groups\[0\] \(qk\): nothing fits in global_buffer.capacity_bytes = 262144"):
        map_attention(BERT, 1024, arch, options=MapOptions())


def test_unsupported_options() -> None:
    with pytest.raises(MappingError, match="causal masking is not supported"):
        map_attention(BERT, 1024, ARCH, options=MapOptions(causal=True))
    with pytest.raises(MappingError, match="unknown option 'tile'"):
        map_attention(BERT, 1024, ARCH, options=MapOptions(extra={"tile": 3}))
