"""The FlashAttention-2 mapper: hand-computed per-tile cycle counts, the §6.4 energy model it shares
with FuseMax (closed_forms.py), and invariants. The paper has no FlashAttention-2 number to match."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

import closed_forms as cf
import paper_data as pd
from attnsim.archsim.engine import run
from attnsim.archsim.spec import load_arch
from attnsim.mappers.designs import MapOptions
from attnsim.mappers.errors import MappingError
from attnsim.mappers.flash2 import map_attention
from attnsim.mappers.workloads import load_workload

BERT = load_workload("bert-base")
MAC_PJ = 17.1645
BYTES_PER_CYCLE = 400 * 2**30 / 940e6


def simulate(workload, seq: int, arch, closed_form: bool = True):  # type: ignore[no-untyped-def]
    mapped = map_attention(workload, seq, arch, options=MapOptions(closed_form=closed_form))
    return mapped, run(mapped.schedule, arch)


def tiny(width: int = 16, heads: int = 1):  # type: ignore[no-untyped-def]
    return BERT.model_copy(update={"batch": 1, "heads": heads, "head_dim_e": width, "head_dim_f": width})


def test_per_tile_cycles_by_hand_on_fusemax_pes() -> None:
    """16 x 16 arrays, 16 1D PEs, E = F = 16, M = P = 64: 4 x 4 tiles of 16 x 16, then 4 AV blocks.

    One tile, in series: BQK 16 (E MAC steps) + LM 1 (max) + RM 1 (max) + SLN 7 (exp = 6 MAC + 1 add)
    + SLD 1 (add) + SLNV 16 (F MAC steps) + PRM 7 (exp) + SPD 1 + RD 1 + SPNV 16 + RNV 16 = 83 cycles.
    AV: F = 16 divides per query, 16 queries on 16 PEs: 16 cycles per block of 16 queries.
    """
    arch = load_arch("fusemax-cloud", {"arrays.pe2d.rows": 16, "arrays.pe2d.cols": 16, "arrays.pe1d.size": 16})
    _, result = simulate(tiny(), 64, arch)
    assert result.cycles == 16 * 83 + 4 * 16
    assert 4 * 16 * 64 * 2 / BYTES_PER_CYCLE < result.cycles     # Q, K, V, AV: far from DRAM-bound


def test_per_tile_cycles_with_fewer_1d_pes_than_queries() -> None:
    """8 1D PEs for a tile's 16 queries: every per-query Einsum takes two rounds.

    Tile: 16 + 1 + 2*1 + 7 + 1 + 16 + 2*7 + 2*1 + 2*1 + 2*16 + 2*16 = 125; AV 2*16 = 32 per block.
    """
    arch = load_arch("fusemax-cloud", {"arrays.pe2d.rows": 16, "arrays.pe2d.cols": 16, "arrays.pe1d.size": 8})
    _, result = simulate(tiny(), 64, arch)
    assert result.cycles == 16 * 125 + 4 * 32


def test_on_flat_pes_max_and_exp_move_to_the_1d_array() -> None:
    """FLAT's 2D PEs have no max and no exp (its 1D array has both, exp in 1 cycle): LM and SLN run on
    the 16 1D PEs, 256 scores each -> 16 rounds. FLAT's exp unit takes its argument ready, so exp(x - m)
    is exp + add, 2 cycles (fact sheet §4.3, as for +Cascade). Tile: 16 + 16 (LM) + 1 + 2*16 (SLN) + 1
    (SLD on 2D) + 16 + 2 (PRM) + 1 + 1 + 16 + 16 = 118; AV 16 per block."""
    arch = load_arch("flat-cloud", {"arrays.pe2d.rows": 16, "arrays.pe2d.cols": 16, "arrays.pe1d.size": 16})
    mapped, result = simulate(tiny(), 64, arch)
    assert mapped.choices["binding"]["LM"] == mapped.choices["binding"]["SLN"] == "pe1d"
    assert mapped.choices["binding"]["SLD"] == "pe2d"
    assert result.cycles == 16 * 118 + 4 * 16


def test_dram_bound_when_the_bandwidth_is_tiny() -> None:
    """Only DRAM overlaps with compute: with 1 B/cycle the DRAM streams Q and the K/V tiles back to back;
    after the last K/V tile, the last iteration's first tile (83 cycles, as above) and its block's AV (16)
    run before the first of the four AV stores, which then follow back to back."""
    arch = load_arch("fusemax-cloud", {"arrays.pe2d.rows": 16, "arrays.pe2d.cols": 16, "arrays.pe1d.size": 16,
                                       "dram.bandwidth_bytes_per_s": 940e6})
    _, result = simulate(tiny(), 64, arch, closed_form=False)
    traffic = 4 * 16 * 64 * 2                                    # Q, K, V read once (P2 = 1), AV written
    assert result.traffic_bytes == traffic
    assert result.cycles == traffic + 83 + 16


@pytest.mark.parametrize("seq", pd.SEQ_LENGTHS)
def test_bert_on_fusemax_cycles_and_energy(seq: int) -> None:
    """On FuseMax's hardware: (E + 3F + 19) cycles per 256 x 256 tile plus F per query block; the same
    actions as FuseMax's §6.4 energy model (same cascade, same tiling), except its register-file term."""
    arch = load_arch("fusemax-cloud")
    model = pd.MODELS["bert-base"]
    _, result = simulate(BERT, seq, arch)
    tiles = 64 * 12 * (seq // 256) ** 2
    assert result.cycles == tiles * (64 + 3 * 64 + 19) + 64 * 12 * (seq // 256) * 64
    parts = cf.fusemax_energy_breakdown_pj(model, seq)
    assert result.energy_pj == pytest.approx(sum(parts.values()) - parts["reg_file_1d"], rel=1e-9)
    assert result.traffic_bytes == pytest.approx(cf.fusemax_traffic_bytes(model, seq), rel=1e-12)
    assert result.latency_s > cf.fusemax_latency_s(model, seq)    # FuseMax overlaps what FA-2 serialises


@pytest.mark.parametrize("seq", (1024, 65536))
def test_default_mode_adds_only_fill_and_drain(seq: int) -> None:
    arch = load_arch("fusemax-cloud")
    _, closed = simulate(BERT, seq, arch, closed_form=True)
    _, modelled = simulate(BERT, seq, arch, closed_form=False)
    assert closed.cycles <= modelled.cycles <= closed.cycles * 1.001


def test_extrapolation_is_exact() -> None:
    arch = load_arch("fusemax-cloud")
    mapped = map_attention(tiny(64, 2), 2048, arch, options=MapOptions())
    assert run(mapped.schedule, arch).cycles == run(mapped.schedule, arch, extrapolate=False).cycles


@settings(max_examples=25, deadline=None)
@given(arch_name=st.sampled_from(["fusemax-cloud", "flat-cloud"]), rows=st.sampled_from([8, 16, 32]),
       cols=st.sampled_from([8, 16, 32]), pes_1d=st.sampled_from([4, 16, 32]), tiles=st.integers(1, 4),
       width=st.sampled_from([8, 16, 64]), closed_form=st.booleans())
def test_invariants(arch_name: str, rows: int, cols: int, pes_1d: int, tiles: int, width: int,
                    closed_form: bool) -> None:
    arch = load_arch(arch_name, {"arrays.pe2d.rows": rows, "arrays.pe2d.cols": cols, "arrays.pe1d.size": pes_1d})
    seq = tiles * rows * cols
    _, result = simulate(tiny(width, 2), seq, arch, closed_form)
    assert result.cycles >= result.traffic_bytes / BYTES_PER_CYCLE - 1
    assert all(0.0 <= u <= 1.0 + 1e-12 for u in result.utilisation.values())
    macs = 2 * seq * seq * 2 * width                             # BQK and SLNV
    exp_macs = 6 * 2 * seq * seq if arch_name == "fusemax-cloud" else 0   # SLN's exp as 6 MAC + 1 add on 2D
    assert result.actions["pe2d.mac"] == macs + exp_macs
    assert result.energy_pj >= macs * MAC_PJ
    assert result.cycles >= macs / (rows * cols)


def test_mapping_errors() -> None:
    arch = load_arch("fusemax-cloud")
    with pytest.raises(MappingError, match="expected a positive integer"):
        map_attention(BERT, 0, arch, options=MapOptions())
    with pytest.raises(MappingError, match="nothing fits in global_buffer.capacity_bytes"):
        map_attention(BERT, 1024, load_arch("fusemax-cloud", {"global_buffer.capacity_bytes": 1 << 16}),
                      options=MapOptions())
    with pytest.raises(MappingError, match="causal masking is not supported"):
        map_attention(BERT, 1024, arch, options=MapOptions(causal=True))
