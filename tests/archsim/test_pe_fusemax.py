"""PE-level FuseMax +Binding: values against kernels_ref and numpy, cycles against the engine running
mappers.fusemax.map_binding on the same tiny architecture and against a closed form written here."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim import kernels_ref
from attnsim.archsim.engine import run
from attnsim.archsim.pe_fusemax import BindingOpCycles, DramCycles, simulate_fusemax_binding
from attnsim.archsim.spec import Arch, load_arch
from attnsim.mappers.designs import MapOptions
from attnsim.mappers.fusemax import map_binding
from attnsim.mappers.workloads import Workload

FUSEMAX = load_arch("fusemax-cloud")
GENEROUS_DRAM_BYTES_PER_S = 1e15   # ~10^6 bytes per cycle: every transfer takes one cycle, none stalls
SOURCED = ("batch", "d_model", "heads", "head_dim_e", "head_dim_f", "ffn", "seq_lengths")


def tiny_arch(rows: int, cols: int, capacity_bytes: int, *, row_bytes: int = 64,
              dram_bytes_per_s: float = GENEROUS_DRAM_BYTES_PER_S, extra: dict | None = None) -> Arch:
    return FUSEMAX.with_overrides({"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols,
                                   "arrays.pe1d.size": cols, "global_buffer.row_bytes": row_bytes,
                                   "global_buffer.capacity_bytes": capacity_bytes,
                                   "dram.bandwidth_bytes_per_s": dram_bytes_per_s, **(extra or {})})


def tiny_workload(e: int, f: int, seq: int) -> Workload:
    return Workload.from_mapping({"name": "tiny", "batch": 1, "d_model": e, "heads": 1, "head_dim_e": e,
                                  "head_dim_f": f, "ffn": 4, "seq_lengths": [seq], "source": "test",
                                  "sources": {key: "test" for key in SOURCED}})


def engine_and_sim(arch: Arch, e: int, f: int, seq: int, seed: int,  # type: ignore[no-untyped-def]
                   row_operands: str = "broadcast"):
    """(engine Result, choices, PE-level result, q, k, v) for one head of self-attention of length seq."""
    mapped = map_binding(tiny_workload(e, f, seq), seq, arch, options=MapOptions())
    choices = mapped.choices
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((seq, e)), rng.standard_normal((seq, e)), rng.standard_normal((seq, f))
    sim = simulate_fusemax_binding(
        q, k, v, m0=choices["m0"], p0=choices["p0"], p1=choices["p1"], pes_1d=arch.pes_1d,
        op_cycles=BindingOpCycles.from_arch(arch),
        dram_cycles=DramCycles.from_arch(arch, e=e, f=f, m0=choices["m0"], p0=choices["p0"],
                                         p1=choices["p1"]),
        row_operands=row_operands)
    return run(mapped.schedule), choices, sim, q, k, v


def numpy_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    logits = q @ k.T
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)) @ v


def normwise_error(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(a - reference).max() / np.abs(reference).max())


def binding_closed_form_cycles(e: int, f: int, m1: int, p1: int, p2: int) -> int:
    """Hand count for FuseMax's costs (mac/add/max/div 1, exp 7) and one-cycle DRAM transfers.

    Two loads (Q block, first K/V tile) before the first BQK; the first tile's 2D work ends after
    BQK E + LM 1 + RM 1 + SLN 7 + SLD 1 + SLNV F. Each later tile: BQK + LM (E + 1) overlap the 1D
    array's RD + RNV (1 + F) of the previous tile, plus AV (F) when the previous tile was in its
    group's last m1; then RM 1 + SLN/PRM 7 + SLD/SPD 1 + SLNV/SPNV F. The last tile ends with RD 1,
    RNV F, AV F and the one-cycle store.
    """
    in_last_m1 = [m == m1 - 1 for _ in range(p2) for m in range(m1) for _ in range(p1)]
    cycles = 2 + (e + 1 + 1 + 7 + 1 + f)
    for previous in in_last_m1[:-1]:
        cycles += max(e + 1, 1 + f + (f if previous else 0)) + 1 + 7 + 1 + f
    return cycles + 1 + f + f + 1


# (rows, cols, E, F, seq, GLB bytes) -> M1 = 2..4, P1 = 1..3, P2 = 1..2
SHAPES = [
    (4, 4, 4, 4, 8, 512),     # M1 2, P1 2, P2 1
    (4, 4, 8, 8, 16, 512),    # M1 4, P1 2, P2 2
    (4, 8, 4, 4, 16, 512),    # M1 4, P1 2, P2 1 (1D array of 8)
    (4, 8, 8, 8, 8, 512),     # M1 2, P1 1, P2 1
    (4, 4, 4, 8, 12, 512),    # M1 3, P1 3, P2 1, E != F
    (4, 4, 8, 8, 8, 384),     # M1 2, P1 1, P2 2
    (8, 4, 4, 4, 16, 320),    # M1 2, P1 2, P2 2 (M0 = 8 rows)
]


@pytest.mark.parametrize("rows, cols, e, f, seq, capacity", SHAPES)
def test_binding_values_and_cycles_equal_references_and_engine(rows, cols, e, f, seq, capacity):
    arch = tiny_arch(rows, cols, capacity)
    result, choices, sim, q, k, v = engine_and_sim(arch, e, f, seq, seed=rows * 100 + e * 10 + seq)
    assert normwise_error(sim.out, kernels_ref.attention(q, k, v, "fusemax", tile_m=rows)) < 1e-12
    assert normwise_error(sim.out, numpy_attention(q, k, v)) < 1e-12
    expected = binding_closed_form_cycles(e, f, seq // rows, choices["p1"], choices["p2"])
    assert sim.cycles == expected
    assert result.cycles == expected
    assert (sim.m1, sim.p2) == (seq // rows, choices["p2"])


def test_shapes_cover_the_requested_tilings():
    seen = set()
    for rows, cols, e, f, seq, capacity in SHAPES:
        mapped = map_binding(tiny_workload(e, f, seq), seq, tiny_arch(rows, cols, capacity),
                             options=MapOptions())
        seen.add((mapped.choices["m1"], mapped.choices["p1"], mapped.choices["p2"]))
    assert {m1 for m1, _, _ in seen} == {2, 3, 4}
    assert {p1 for _, p1, _ in seen} >= {1, 2} and {p2 for _, _, p2 in seen} == {1, 2}


@pytest.mark.parametrize("rows, cols, e, f, seq, capacity", SHAPES[:4] + SHAPES[6:])
def test_systolic_row_operands_add_the_skew_drain_of_the_last_column(rows, cols, e, f, seq, capacity):
    """K and BV moving one PE per cycle put column c (and its 1D PE) c cycles behind column 0; with DRAM
    off the critical path the only cost is the last AV finishing C - 1 cycles later."""
    arch = tiny_arch(rows, cols, capacity)
    result, _, sim, q, k, v = engine_and_sim(arch, e, f, seq, seed=7, row_operands="systolic")
    assert normwise_error(sim.out, numpy_attention(q, k, v)) < 1e-12
    assert sim.cycles == result.cycles + cols - 1


def test_operation_counts_match_hand_counts_and_the_engine_actions():
    rows, cols, e, f, seq = 4, 4, 8, 8, 16
    arch = tiny_arch(rows, cols, 512)
    result, choices, sim, _, _, _ = engine_and_sim(arch, e, f, seq, seed=3)
    tiles = choices["m1"] * choices["p1"] * choices["p2"]
    scores = tiles * rows * cols
    per_query = tiles * cols
    counts = sim.op_counts
    assert counts["pe2d.mac"] == scores * (e + f)
    assert counts["pe2d.exp"] == counts["pe2d.max"] == scores
    assert counts["pe2d.add"] == 2 * scores                       # SLN's subtract, SLD
    assert counts["pe1d.max"] == counts["pe1d.exp"] == per_query
    assert counts["pe1d.mac"] == per_query * (1 + f)              # SPD, SPNV
    assert counts["pe1d.add"] == per_query * (2 + f)              # PRM's subtract, RD, RNV
    assert counts["pe1d.div"] == seq * f
    assert counts["dram.read_words"] == seq * e + choices["p2"] * seq * (e + f)
    assert counts["dram.write_words"] == seq * f
    actions = result.actions
    taylor_macs = 6                                               # the engine charges exp as 6 MAC + 1 add
    assert actions["pe2d.mac"] == counts["pe2d.mac"] + taylor_macs * counts["pe2d.exp"]
    assert actions["pe1d.mac"] == counts["pe1d.mac"] + taylor_macs * counts["pe1d.exp"]
    for key in ("pe2d.add", "pe2d.max", "pe1d.add", "pe1d.max", "pe1d.div"):
        assert actions[key] == counts[key], key
    assert actions["dram.read"] == counts["dram.read_words"] * arch.word_bytes
    assert actions["dram.write"] == counts["dram.write_words"] * arch.word_bytes


@pytest.mark.parametrize("dram_bytes_per_s, extra", [
    (8e9, {}),                                                    # DRAM-bound: K/V loads on the critical path
    (2e10, {"arrays.pe2d.ops.exp": 3, "arrays.pe2d.ops.mac": 2, "arrays.pe1d.ops.div": 2}),
    (GENEROUS_DRAM_BYTES_PER_S, {"arrays.pe1d.ops.exp": 9, "arrays.pe1d.ops.add": 2}),
    (GENEROUS_DRAM_BYTES_PER_S, {"arrays.pe2d.ops.exp": 9, "arrays.pe1d.ops.exp": 2}),   # 1D waits for SLD
])
def test_cycles_equal_the_engine_with_slow_dram_and_other_op_costs(dram_bytes_per_s, extra):
    arch = tiny_arch(4, 4, 384, dram_bytes_per_s=dram_bytes_per_s, extra=extra)
    result, _, sim, q, k, v = engine_and_sim(arch, 8, 8, 16, seed=11)
    assert sim.cycles == result.cycles
    assert normwise_error(sim.out, numpy_attention(q, k, v)) < 1e-12


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.sampled_from([2, 4]), cols=st.sampled_from([2, 4]), e=st.integers(1, 6), f=st.integers(1, 6),
       multiple=st.integers(1, 3), capacity_rows=st.integers(4, 12),
       dram=st.sampled_from([GENEROUS_DRAM_BYTES_PER_S, 2e10, 5e9]),
       exp_2d=st.integers(1, 8), exp_1d=st.integers(1, 8), div=st.integers(1, 3))
def test_cycles_equal_the_engine_property(rows, cols, e, f, multiple, capacity_rows, dram,
                                          exp_2d, exp_1d, div):
    seq = math.lcm(rows, cols) * multiple * (2 if math.lcm(rows, cols) < 4 else 1)
    extra = {"arrays.pe2d.ops.exp": exp_2d, "arrays.pe1d.ops.exp": exp_1d, "arrays.pe1d.ops.div": div}
    capacity = max(capacity_rows * 64, rows * (e + f) * 2 + cols * (e + f + 2) * 2)
    arch = tiny_arch(rows, cols, -(-capacity // 64) * 64, dram_bytes_per_s=dram, extra=extra)
    result, _, sim, q, k, v = engine_and_sim(arch, e, f, seq, seed=multiple)
    assert sim.cycles == result.cycles
    assert normwise_error(sim.out, kernels_ref.attention(q, k, v, "fusemax", tile_m=rows)) < 1e-12


def test_rejects_what_it_does_not_simulate():
    q, k, v = np.ones((8, 4)), np.ones((8, 4)), np.ones((8, 4))
    with pytest.raises(ValueError, match="pes_1d"):
        simulate_fusemax_binding(q, k, v, m0=4, p0=4, p1=1, pes_1d=2)
    with pytest.raises(ValueError, match="multiple of m0"):
        simulate_fusemax_binding(q, k, v, m0=3, p0=4, p1=1)
    with pytest.raises(ValueError, match="p1 \\* p0"):
        simulate_fusemax_binding(q, k, v, m0=4, p0=4, p1=3)
    with pytest.raises(ValueError, match="row_operands"):
        simulate_fusemax_binding(q, k, v, m0=4, p0=4, p1=1, row_operands="mesh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one cycle"):
        simulate_fusemax_binding(q, k, v, m0=4, p0=4, p1=1, op_cycles=BindingOpCycles(sln_exp=0))
    with pytest.raises(ValueError, match="do not form attention"):
        simulate_fusemax_binding(q, np.ones((8, 3)), v, m0=4, p0=4, p1=1)
    with pytest.raises(ValueError, match="arrays.pe2d.ops"):
        BindingOpCycles.from_arch(FUSEMAX.with_overrides({"arrays.pe2d.ops": {"mac": 1, "add": 1}}))
