"""The FuseMax mappers (+Cascade, +Architecture, +Binding), simulated by the engine, against the artifact's
closed forms (closed_forms.py), the paper's BERT numbers (paper_data.py), hand counts and invariants.

Expected values never come from the mapper: cycles from the §4.4 closed forms (or their generalisation
to any array size, written below), fill/drain from a hand count of what closed-form mode drops, traffic
and energy from §2.5/§6.4, latencies and utilisations from the paper's tables.
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import closed_forms as cf
import paper_data as pd
from attnsim.archsim.engine import run
from attnsim.archsim.schedule import Block
from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions, mapper
from attnsim.mappers.errors import MappingError
from attnsim.mappers.fusemax import map_architecture, map_binding, map_cascade
from attnsim.mappers.workloads import load_workload
from attnsim.studies.cli import main as cli_main

FUSEMAX_ARCH = load_arch("fusemax-cloud")
FLAT_ARCH = load_arch("flat-cloud")
MODELS = {name: load_workload(name) for name in pd.MODELS}
BERT = MODELS["bert-base"]
ARTIFACT_CASCADE_SIZING = MapOptions(extra={"glb_sizing_bytes": cf.FUSEMAX_GLB_BYTES})
BYTES_PER_CYCLE = Fraction(cf.DRAM_BYTES_PER_S) / Fraction(cf.CLOCK_HZ)
DESIGNS = {  # design -> (mapper, its architecture, closed-form compute cycles)
    "fusemax": (map_binding, FUSEMAX_ARCH, cf.fusemax_compute_cycles),
    "fusemax-arch": (map_architecture, FUSEMAX_ARCH, cf.arch_compute_cycles),
    "fusemax-cascade": (map_cascade, FLAT_ARCH,
                        lambda model, seq: max(sum(cf.cascade_einsum_cycles(model, seq)[x]
                                                   for x in cf.CASCADE_2D_EINSUMS),
                                               sum(cf.cascade_einsum_cycles(model, seq)[x]
                                                   for x in cf.CASCADE_1D_EINSUMS))),
}
PAPER_KEY = {"fusemax": "fusemax", "fusemax-arch": "arch", "fusemax-cascade": "cascade"}


def simulate(design: str, model, seq: int, closed_form: bool = False, arch=None, extra=None):  # type: ignore[no-untyped-def]
    map_attention, default_arch, _ = DESIGNS[design]
    arch = arch or default_arch
    mapped = map_attention(model, seq, arch, options=MapOptions(closed_form=closed_form, extra=extra or {}))
    return mapped, run(mapped.schedule, arch)


def dram_cycles(n_bytes: int) -> int:
    return math.ceil(Fraction(n_bytes) / BYTES_PER_CYCLE)


# --------------------------------------------------------------------------------------------------
# Closed-form mode = the artifact's closed forms, exactly, at all 24 points.

@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_closed_form_mode_equals_the_closed_form_exactly(design: str, model: str) -> None:
    closed_form_cycles = DESIGNS[design][2]
    for seq in pd.SEQ_LENGTHS:
        _, result = simulate(design, MODELS[model], seq, closed_form=True)
        expected = closed_form_cycles(pd.MODELS[model], seq)
        assert expected == int(expected)
        assert result.cycles == int(expected), (design, model, seq)
        # compute-bound at every point: latency is the compute time
        assert result.traffic_bytes / cf.DRAM_BYTES_PER_S < result.latency_s


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_default_mode_adds_exactly_the_fill_and_drain(design: str) -> None:
    """Default - closed form = the first Q block and K/V tile loads (pipeline fill) + the last AV write
    + the last tile's drain (1D: RD and RNV for +Binding, RD and AV for +Architecture) or, for
    +Cascade, the first BQK before the 1D array can start."""
    for model_name in ("bert-base", "xlm"):
        model = pd.MODELS[model_name]
        e, f = model.head_dim_e, model.head_dim_f
        for seq in pd.SEQ_LENGTHS:
            if design == "fusemax-cascade":
                p2 = cf.p2_from_rule(model, seq, e + f + 514, glb_bytes=32 * 2**20)   # FLAT's 32 MB
            else:
                p2 = cf.fusemax_p2(model, seq)
            p1 = seq // cf.PE // p2
            fill = dram_cycles(p1 * cf.PE * e * 2) + dram_cycles(cf.PE * (e + f) * 2)
            drain = dram_cycles(cf.PE * f * 2) + (e if design == "fusemax-cascade" else 1 + f)
            closed = simulate(design, MODELS[model_name], seq, closed_form=True)[1]
            default = simulate(design, MODELS[model_name], seq)[1]
            assert default.cycles - closed.cycles == fill + drain, (model_name, seq)
            assert default.cycles <= closed.cycles * 1.0005
            assert default.actions == closed.actions


# --------------------------------------------------------------------------------------------------
# The paper's BERT numbers.

@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_bert_latency_within_2_percent_of_the_paper(design: str) -> None:
    for seq in pd.SEQ_LENGTHS:
        printed = pd.BERT_ATTENTION[seq][f"{PAPER_KEY[design]}_latency_s"]
        assert printed.agrees(simulate(design, BERT, seq)[1].latency_s, rel=0.02), seq


def test_bert_1k_ablation_in_milliseconds() -> None:
    """§6.3 at 1K: +Cascade 15.3 ms, +Architecture 5.99 ms, FuseMax 2.01 ms (to the printed digits)."""
    for design, text in (("fusemax-cascade", "15.3"), ("fusemax-arch", "5.99"), ("fusemax", "2.01")):
        latency_ms = simulate(design, BERT, 1024)[1].latency_s * 1e3
        assert pd.Printed(text).agrees(latency_ms), (design, latency_ms)


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_bert_utilisation_matches_the_paper(design: str) -> None:
    for seq in pd.SEQ_LENGTHS:
        result = simulate(design, BERT, seq)[1]
        key = PAPER_KEY[design]
        assert pd.BERT_UTIL_2D[seq][key].agrees(result.utilisation["pe2d"], rel=0.001), seq
        assert pd.BERT_UTIL_1D[seq][key].agrees(result.utilisation["pe1d"], rel=0.001), seq


def test_fig7_per_einsum_2d_shares() -> None:
    """FuseMax's share of 2D activity per Einsum (Fig. 7): QK, LM, SLN, SLD, SLNV."""
    for seq in pd.SEQ_LENGTHS:
        result = simulate("fusemax", BERT, seq)[1]
        for einsum in pd.FIG7_EINSUMS:
            tag = "BQK" if einsum == "QK" else einsum
            share = result.per_einsum[tag]["pe2d"] / result.cycles
            assert share == pytest.approx(pd.BERT_FUSEMAX_EINSUM_2D_SHARE[seq][einsum].value, abs=0.001)


@pytest.mark.parametrize("seq", (1024, 1048576))
def test_ablation_per_einsum_2d_shares(seq: int) -> None:
    arch_result = simulate("fusemax-arch", BERT, seq, closed_form=True)[1]
    for einsum, share in cf.arch_einsum_2d_shares(BERT, seq).items():
        tag = "BQK" if einsum == "QK" else einsum
        assert arch_result.per_einsum[tag]["pe2d"] / arch_result.cycles == pytest.approx(share, rel=1e-12)
    cascade_result = simulate("fusemax-cascade", BERT, seq, closed_form=True)[1]
    cycles = cf.cascade_einsum_cycles(BERT, seq)
    for einsum in cf.CASCADE_2D_EINSUMS:
        tag = "BQK" if einsum == "QK" else einsum
        assert cascade_result.per_einsum[tag]["pe2d"] == pytest.approx(cycles[einsum], rel=1e-12)
    for einsum in cf.CASCADE_1D_EINSUMS:
        assert cascade_result.per_einsum[einsum]["pe1d"] == pytest.approx(cycles[einsum], rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Traffic and energy.

@pytest.mark.parametrize("model", sorted(MODELS))
def test_traffic_q_once_av_once_kv_per_p2_chunk(model: str) -> None:
    m = pd.MODELS[model]
    for seq in (1024, 65536, 1048576):
        for design in ("fusemax", "fusemax-arch"):
            mapped, result = simulate(design, MODELS[model], seq)
            d = cf.dims(m, seq)
            kv_bytes = d.b * d.h * (d.e + d.f) * d.m * 2
            assert result.actions["dram.read"] == d.q_bytes + kv_bytes * mapped.choices["p2"]
            assert result.actions["dram.write"] == d.b * d.h * d.f * d.p * 2
            assert result.traffic_bytes == cf.fusemax_traffic_bytes(m, seq)
        mapped, result = simulate("fusemax-cascade", MODELS[model], seq, extra=ARTIFACT_CASCADE_SIZING.extra)
        assert result.traffic_bytes == cf.cascade_traffic_bytes(m, seq)


def test_p2_follows_the_sheet() -> None:
    for model in ("bert-base", "xlm"):
        width = MODELS[model].head_dim_e
        fusemax_p2 = tuple(map_binding(MODELS[model], seq, FUSEMAX_ARCH, options=MapOptions()).choices["p2"]
                           for seq in pd.SEQ_LENGTHS)
        assert fusemax_p2 == pd.FUSEMAX_P2[width]
    cascade_p2 = tuple(map_cascade(BERT, seq, FLAT_ARCH, options=ARTIFACT_CASCADE_SIZING).choices["p2"]
                       for seq in pd.SEQ_LENGTHS)
    assert cascade_p2 == pd.CASCADE_P2_E64
    # without the option, +Cascade sizes P1 with the buffer it runs on (FLAT's 32 MB: P1 <= 101)
    own = map_cascade(BERT, 1048576, FLAT_ARCH, options=MapOptions()).choices
    assert (own["p1"], own["p2"]) == (64, 64)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_energy_is_the_sheets_fusemax_model(model: str) -> None:
    """§6.4 term by term: 2D MACs, other 2D ops, 1D ops, DRAM, GLB reads/writes, reg_file_1d writes."""
    for seq in (1024, 262144):
        result = simulate("fusemax", MODELS[model], seq)[1]
        expected = cf.fusemax_energy_breakdown_pj(pd.MODELS[model], seq)
        got = result.energy_breakdown_pj
        assert got["pe2d.mac"] == pytest.approx(expected["compute_2d_mac"], rel=1e-12)
        assert got["pe2d.add"] + got["pe2d.max"] == pytest.approx(expected["compute_2d_other"], rel=1e-12)
        assert sum(v for k, v in got.items() if k in ("pe1d.mac", "pe1d.add", "pe1d.max", "pe1d.div")) \
            == pytest.approx(expected["compute_1d"], rel=1e-12)
        assert got["dram.read"] + got["dram.write"] == pytest.approx(expected["dram"], rel=1e-12)
        assert got["global_buffer.read"] == pytest.approx(expected["glb_read"], rel=1e-12)
        assert got["global_buffer.write"] == pytest.approx(expected["glb_write"], rel=1e-12)
        assert got["pe1d.register_file.write"] == pytest.approx(expected["reg_file_1d"], rel=1e-12)
        assert result.energy_pj == pytest.approx(cf.fusemax_energy_pj(pd.MODELS[model], seq), rel=1e-12)


def test_bert_energy_and_the_2d_mac_share() -> None:
    """Within 1% of the paper's FM energy column (§6.4's formula is within 0.55% of the CSVs), and
    §6.1: >= 95% of the energy in 2D MACs (0.950 ... 0.965 to the sheet's printed digits)."""
    low, high = pd.FUSEMAX_2D_MAC_ENERGY_SHARE_RANGE
    for seq in pd.SEQ_LENGTHS:
        result = simulate("fusemax", BERT, seq)[1]
        assert pd.BERT_ATTENTION[seq]["fusemax_energy_j"].agrees(result.energy_pj * 1e-12, rel=0.01), seq
        share = result.energy_breakdown_pj["pe2d.mac"] / result.energy_pj
        assert low.value - low.half_unit <= share <= high.value + high.half_unit


# --------------------------------------------------------------------------------------------------
# The loop nest: nothing unrolled, the engine extrapolates it exactly.

def test_the_schedule_is_a_loop_nest_and_a_1m_point_is_cheap() -> None:
    mapped, result = simulate("fusemax", BERT, 1048576)
    groups, m1, p1 = 64 * 12 * 32, 4096, 128
    assert (mapped.choices["groups"], mapped.choices["m1"], mapped.choices["p1"]) == (groups, m1, p1)
    depth = lambda item: 1 + max((depth(x) for x in item.items if isinstance(x, Block)), default=0)  # noqa: E731
    assert max(depth(block) for block in mapped.schedule.blocks) == 3     # group > m1 > p1
    # op instances: 11 per tile, AV and its store per query block, a K/V load per m1 but the last,
    # the next group's Q block and K/V tile per group but the last, the first group's two loads
    assert mapped.schedule.op_count == (groups * m1 * p1 * 11 + groups * p1 * 2 + groups * (m1 - 1)
                                        + (groups - 1) * 2 + 2)
    assert result.simulated_ops < 20_000
    assert result.actions["pe2d.mac"] == 64 * 12 * 1048576**2 * (64 + 64 + 6)


SMALL = dict(rows=st.sampled_from([2, 4, 8]), cols=st.sampled_from([2, 4, 8]), heads=st.integers(1, 3),
             batch=st.integers(1, 2), tiles=st.integers(1, 4))


def small_point(draw_arch: str, rows: int, cols: int, pes_1d: int, capacity: int, bandwidth: float,
                heads: int, batch: int, e: int, f: int):  # type: ignore[no-untyped-def]
    arch = load_arch(draw_arch, {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols,
                                 "arrays.pe1d.size": pes_1d, "global_buffer.capacity_bytes": capacity,
                                 "dram.bandwidth_bytes_per_s": bandwidth})
    workload = BERT.model_copy(update={"batch": batch, "heads": heads, "head_dim_e": e, "head_dim_f": f})
    return arch, workload


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design=st.sampled_from(sorted(DESIGNS)), pes_1d=st.sampled_from([1, 2, 4, 16]),
       e=st.sampled_from([1, 2, 4, 8]), f=st.sampled_from([1, 2, 4, 8]),
       capacity=st.sampled_from([2048, 8192, 1 << 20]), bandwidth=st.sampled_from([1e9, 4e9, 4e11]),
       closed_form=st.booleans(), **SMALL)
def test_extrapolation_equals_full_simulation_and_invariants(design, pes_1d, e, f, capacity, bandwidth,
                                                             closed_form, rows, cols, heads, batch, tiles):  # type: ignore[no-untyped-def]
    base = "flat-cloud" if design == "fusemax-cascade" else "fusemax-cloud"
    arch, workload = small_point(base, rows, cols, pes_1d, capacity, bandwidth, heads, batch, e, f)
    seq = rows * cols * tiles
    try:
        mapped = DESIGNS[design][0](workload, seq, arch, options=MapOptions(closed_form=closed_form))
    except MappingError as error:
        assert "nothing fits" in str(error)
        return
    fast = run(mapped.schedule, arch)
    full = run(mapped.schedule, arch, extrapolate=False)
    assert (fast.cycles, fast.actions, fast.busy_cycles, fast.per_einsum) == \
        (full.cycles, full.actions, full.busy_cycles, full.per_einsum)
    # invariants, counted by hand
    n = batch * heads * seq * seq
    exp_macs = 0 if design == "fusemax-cascade" else 6 * n
    assert fast.actions["pe2d.mac"] == n * (e + f) + exp_macs
    assert fast.actions["pe1d.div"] == batch * heads * seq * f
    if not closed_form:     # (closed-form mode takes the first loads and the last write as free)
        assert fast.cycles >= fast.traffic_bytes / (bandwidth / cf.CLOCK_HZ) - 1
    assert all(busy <= fast.cycles for busy in fast.busy_cycles.values())


def generalised_closed_form(design: str, rows: int, cols: int, batch: int, heads: int, e: int, f: int,
                            seq: int) -> Fraction:
    """§4.4 for a rows x cols array (M0 = rows, P0 = cols, 1D array of cols PEs; FuseMax exp 7,
    FLAT exp 1): per (m1, p0-block) tile cycles x u, u = B H (M / rows) (P / cols)."""
    m1 = seq // rows
    u = batch * heads * m1 * (seq // cols)
    av = Fraction(f, m1)
    if design == "fusemax":
        return u * (max(e + 1, 1 + f + av) + 1 + 8 + f)
    if design == "fusemax-arch":
        return u * (max(e + 1, 1 + av) + rows + 1 + 8 + max(f, 2 * f))
    per_score = rows * cols // cols          # scores per 1D PE in one tile
    return max(u * (e + f), u * (4 * per_score + 5 + 2 * f + av))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design=st.sampled_from(sorted(DESIGNS)), width=st.sampled_from([1, 2, 4, 8, 16]), **SMALL)
def test_closed_form_mode_on_any_array(design, width, rows, cols, heads, batch, tiles):  # type: ignore[no-untyped-def]
    """E = F, a 1D array as wide as the 2D array, DRAM fast enough never to stall (and for +Cascade,
    whose closed-form mode lets the 1D array start before the first BQK ends, E <= 4 M0 + 5)."""
    assume(design != "fusemax-cascade" or width <= 4 * rows + 5)
    base = "flat-cloud" if design == "fusemax-cascade" else "fusemax-cloud"
    arch, workload = small_point(base, rows, cols, cols, 1 << 20, 1e15, heads, batch, width, width)
    seq = rows * cols * tiles
    mapped = DESIGNS[design][0](workload, seq, arch, options=MapOptions(closed_form=True))
    assert run(mapped.schedule, arch).cycles == generalised_closed_form(design, rows, cols, batch, heads,
                                                                        width, width, seq)


# --------------------------------------------------------------------------------------------------
# Registry, options and errors.

def test_registry_reaches_the_three_mappers() -> None:
    assert mapper("fusemax") is map_binding
    assert mapper("fusemax-arch") is map_architecture
    assert mapper("fusemax-cascade") is map_cascade
    mapped = map_binding(BERT, 4096, FUSEMAX_ARCH, options=MapOptions())
    assert mapped.einsums_2d == ("BQK", "LM", "SLN", "SLD", "SLNV")
    assert set(mapped.einsums_1d) == {"RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV"}
    assert mapped.choices["glb_peak_bytes"] <= FUSEMAX_ARCH.global_buffer.capacity_bytes


@pytest.mark.parametrize("call, message", [
    (lambda: map_binding(BERT, 0, FUSEMAX_ARCH, options=MapOptions()), "expected a positive integer"),
    (lambda: map_binding(BERT, 1024, load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 131072}),
                         options=MapOptions()), "nothing fits in global_buffer.capacity_bytes = 131072"),
    (lambda: map_binding(BERT, 1024, FLAT_ARCH, options=MapOptions()), "no 'max' operation (needed by Einsum LM)"),
    (lambda: map_architecture(BERT, 1024, FUSEMAX_ARCH, options=MapOptions(causal=True)), "causal masking"),
    (lambda: map_binding(BERT, 1024, FUSEMAX_ARCH, options=MapOptions(extra={"p1": 4})), "unknown option 'p1'"),
    (lambda: map_cascade(BERT, 1024, FLAT_ARCH, options=MapOptions(extra={"glb_sizing_bytes": -1})),
     "glb_sizing_bytes: expected a positive integer"),
])
def test_bad_inputs_are_one_line_mapping_errors(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MappingError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_reports_a_bad_sequence_length_in_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    code = cli_main(["simulate", "--design", "fusemax", "--model", "bert-base", "--seq", "0"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and "--seq: expected a positive integer" in captured.err
    assert "Traceback" not in captured.err
